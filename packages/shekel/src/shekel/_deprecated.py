"""``Budget`` members that moved, kept working with a ``DeprecationWarning`` that names the new
spelling. ``Budget`` keeps the members users call; counters live in ``snapshot()`` and
framework plumbing in ``shekel.integration``."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ._budget import Budget
    from ._context import Activation
    from ._history import CallRecord
    from ._tree import Node


def _calls_used(node: Node) -> int:
    return node.budget.snapshot().llm_calls_used


def _tool_calls_used(node: Node) -> int:
    return node.budget.snapshot().tool_calls_used


def _active_children(node: Node) -> tuple[Budget, ...]:
    from ._budget import _TREE_LOCK

    with _TREE_LOCK:
        return tuple(dict.fromkeys(node.active_children))


def _fallback_model(node: Node) -> Callable[[], str | None]:
    from . import _spend

    return lambda: _spend.fallback_model(node.chain)


def _activate(node: Node) -> Callable[[], Activation]:
    from .integration import activate

    return lambda: activate(node.budget)


def _deactivate(node: Node) -> Callable[[Activation], None]:
    from ._errors import BudgetConfigError
    from .integration import deactivate

    b = node.budget

    def end(activation: Activation) -> None:
        if activation.budget is not b:
            raise BudgetConfigError(
                f"this activation belongs to budget {activation.budget.full_name!r}, not to "
                f"{b.full_name!r}; call deactivate() on the budget that activated it"
            )
        deactivate(activation)

    return end


def _record_tool_call(node: Node) -> Callable[..., CallRecord]:
    b = node.budget

    def record(tool_name: str, usd: float | None = None, *, arguments: object = None) -> CallRecord:
        return b.tool_call(tool_name, usd, arguments=arguments).commit()

    return record


# old name -> (what to use instead, the value given for it)
_MOVED: Final[dict[str, tuple[str, Callable[[Node], Any]]]] = {
    "calls_used": ("budget.snapshot().llm_calls_used", _calls_used),
    "tool_calls_used": ("budget.snapshot().tool_calls_used", _tool_calls_used),
    "tokens_used": ("budget.snapshot().tokens_used", lambda n: n.budget.snapshot().tokens_used),
    "max_usd": (
        "budget.config.max_usd (budget.limit is the limit in force)",
        lambda n: n.budget.config.max_usd,
    ),
    "depth": ("budget.full_name.count('.')", lambda n: n.depth),
    "rollups": ("budget.tree() (rollups show as one line per name)", lambda n: n.rollups),
    "active_children": ("budget.active_child", _active_children),
    "period_ends_at": (
        "budget.snapshot().period_ends_at",
        lambda n: lambda: n.budget.snapshot().period_ends_at,
    ),
    "fallback_model": ("budget.model_switched", _fallback_model),
    "record_tool_call": ("budget.tool_call(name, usd).commit()", _record_tool_call),
    "activate": ("shekel.integration.activate(budget)", _activate),
    "deactivate": ("shekel.integration.deactivate(activation)", _deactivate),
}


class _Moved:
    """A moved ``Budget`` member, set on the class by :func:`keep_moved_members`: reading it
    warns, then answers as the new spelling does. A descriptor per name, not a ``__getattr__``
    on ``Budget``: a class with one takes CPython's slow path on every attribute read, hot ones
    included (about 300 instructions each)."""

    __slots__ = ("name", "value")

    def __init__(self, name: str, value: Callable[[Node], Any]) -> None:
        self.name = name
        self.value = value

    def __get__(self, budget: Budget | None, owner: type | None = None) -> Any:
        if budget is None:
            return self
        instead = _MOVED[self.name][0]
        warnings.warn(  # stacklevel 2: the line that read the member
            f"Budget.{self.name} is deprecated and will be removed; use {instead}",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.value(budget._node)


class HidesMovedMembers(type):
    """``Budget``'s metaclass: ``dir(Budget)`` lists the members users call, not the moved
    ones (``Budget.__dir__`` does the same for a budget)."""

    def __dir__(cls) -> list[str]:
        return shown(super().__dir__())


def shown(names: Iterable[str]) -> list[str]:
    """``names`` without the moved members, sorted as ``dir()`` sorts."""
    return sorted(name for name in names if name not in _MOVED)


def keep_moved_members(cls: type) -> None:
    """Give ``cls`` (``Budget``) its moved members, hidden from type checkers."""
    for name, (_, value) in _MOVED.items():
        setattr(cls, name, _Moved(name, value))
