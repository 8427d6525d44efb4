"""``Budget`` members that moved, kept working with a ``DeprecationWarning`` that names the new
spelling. ``Budget`` keeps the members users call; counters live in ``snapshot()`` and
framework plumbing in ``shekel.integration``."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ._budget import Budget
    from ._context import Activation
    from ._history import CallRecord


def _calls_used(b: Budget) -> int:
    return b.snapshot().llm_calls_used


def _tool_calls_used(b: Budget) -> int:
    return b.snapshot().tool_calls_used


def _active_children(b: Budget) -> tuple[Budget, ...]:
    from ._budget import _TREE_LOCK

    with _TREE_LOCK:
        return tuple(dict.fromkeys(b._node.active_children))


def _fallback_model(b: Budget) -> Callable[[], str | None]:
    from . import _spend

    return lambda: _spend.fallback_model(b._c)


def _activate(b: Budget) -> Callable[[], Activation]:
    from .integration import activate

    return lambda: activate(b)


def _deactivate(b: Budget) -> Callable[[Activation], None]:
    from ._errors import BudgetConfigError
    from .integration import deactivate

    def end(activation: Activation) -> None:
        if activation.budget is not b:
            raise BudgetConfigError(
                f"this activation belongs to budget {activation.budget.full_name!r}, not to "
                f"{b.full_name!r}; call deactivate() on the budget that activated it"
            )
        deactivate(activation)

    return end


def _record_tool_call(b: Budget) -> Callable[..., CallRecord]:
    def record(tool_name: str, usd: float | None = None, *, arguments: object = None) -> CallRecord:
        return b.tool_call(tool_name, usd, arguments=arguments).commit()

    return record


# old name -> (what to use instead, the value given for it)
_MOVED: Final[dict[str, tuple[str, Callable[[Budget], Any]]]] = {
    "calls_used": ("budget.snapshot().llm_calls_used", _calls_used),
    "tool_calls_used": ("budget.snapshot().tool_calls_used", _tool_calls_used),
    "tokens_used": ("budget.snapshot().tokens_used", lambda b: b.snapshot().tokens_used),
    "max_usd": (
        "budget.config.max_usd (budget.limit is the limit in force)",
        lambda b: b.config.max_usd,
    ),
    "depth": ("budget.full_name.count('.')", lambda b: b._node.depth),
    "rollups": ("budget.tree() (rollups show as one line per name)", lambda b: b._node.rollups),
    "active_children": ("budget.active_child", _active_children),
    "period_ends_at": (
        "budget.snapshot().period_ends_at",
        lambda b: lambda: b.snapshot().period_ends_at,
    ),
    "fallback_model": ("budget.model_switched", _fallback_model),
    "record_tool_call": ("budget.tool_call(name, usd).commit()", _record_tool_call),
    "activate": ("shekel.integration.activate(budget)", _activate),
    "deactivate": ("shekel.integration.deactivate(activation)", _deactivate),
}


def moved_member(name: str) -> Callable[[Budget], Any] | None:
    """How to read the moved ``Budget`` member ``name``, after warning that it moved (called by
    ``Budget.__getattr__``, so the warning points at the caller's line); ``None`` if ``name``
    never was a member."""
    moved = _MOVED.get(name)
    if moved is None:
        return None
    instead, value = moved
    warnings.warn(
        f"Budget.{name} is deprecated and will be removed; use {instead}",
        DeprecationWarning,
        stacklevel=3,
    )
    return value
