"""Limits per framework step (``budgets=``, ``nodes=``, ``agents=``, ``tasks=``): one parser,
one way to get the child a step pays into, one warning for names that never matched."""

from __future__ import annotations

import difflib
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeAlias

from ._errors import BudgetConfigError
from ._keys import budget_name
from ._kit_install import UnmatchedNameWarning
from ._plugins import hookimpl, plugin_manager

if TYPE_CHECKING:
    from ._budget import Budget

Limits: TypeAlias = "float | int | Decimal | Mapping[str, Any] | None"
"""What a step's name maps to: a USD limit (``0.50``, ``Decimal("0.50")``), a dict of
``budget()`` options (``{"max_usd": 1.0, "max_llm_calls": 5}``), or ``None`` (a child that only
tracks)."""

_NOT_OPTIONS = ("name", "ledger", "store")


class StepLimits:
    """One mapped step: its framework name, the name of its budget, and the child's options."""

    __slots__ = ("budget_name", "options", "step")

    def __init__(self, step: str, options: Mapping[str, Any]) -> None:
        self.step = step
        self.budget_name = budget_name(step)
        self.options: Mapping[str, Any] = MappingProxyType(dict(options))

    def __repr__(self) -> str:
        return f"StepLimits({self.step!r}, {dict(self.options)!r})"


def parse_limits(
    limits: Mapping[str, Limits] | None, *, param: str, steps: str
) -> dict[str, StepLimits]:
    """``limits`` checked now (as ``budget()`` would check each child's options later), by step
    name. ``param`` is the argument's name in messages (``"nodes"``), ``steps`` what its keys
    are (``"LangGraph node names"``). Raises ``BudgetConfigError`` naming the bad entry."""
    if limits is None:
        return {}
    if not isinstance(limits, Mapping):
        raise BudgetConfigError(
            f"{param} must map {steps} to limits, e.g. {{'summarize': 0.50}}; "
            f"got {type(limits).__name__}"
        )
    parsed: dict[str, StepLimits] = {}
    for step, spec in limits.items():
        if not isinstance(step, str) or not step:
            raise BudgetConfigError(f"{param} keys are {steps} (non-empty strings); got {step!r}")
        options = _options(param, step, spec)
        _check(param, step, options)
        parsed[step] = StepLimits(step, options)
    return parsed


def _options(param: str, step: str, spec: object) -> dict[str, Any]:
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        options = dict(spec)
        for key in options:
            if not isinstance(key, str):
                raise BudgetConfigError(
                    f"{param}[{step!r}] options must be budget() keyword names; got {key!r}"
                )
        for key in _NOT_OPTIONS:
            if key in options:
                raise BudgetConfigError(
                    f"{param}[{step!r}] may not set {key!r}: the child is named after the step "
                    "and kept in its parent's store; remove it"
                )
        return options
    if isinstance(spec, bool) or not isinstance(spec, int | float | Decimal):
        raise BudgetConfigError(
            f"{param}[{step!r}] must be a USD limit (e.g. 0.50), a dict of budget() options "
            f"(e.g. {{'max_usd': 1.0, 'max_llm_calls': 5}}) or None; got {spec!r}"
        )
    return {"max_usd": spec}


def _check(param: str, step: str, options: Mapping[str, Any]) -> None:
    from ._budget import Budget

    try:
        Budget(name=budget_name(step), **options)  # in memory: opens nothing in a store
    except BudgetConfigError as exc:
        raise BudgetConfigError(f"{param}[{step!r}]: {exc}") from None
    except TypeError as exc:
        raise BudgetConfigError(f"{param}[{step!r}]: {exc}") from None


def child_of(parent: Budget, name: str, options: Mapping[str, Any] | None = None) -> Budget:
    """The child of ``parent`` named ``name``: the existing one, with its limits as they are
    now (made by an earlier step, by ``parent.child()`` or by a ``with budget(name=...)`` block),
    else a new one with ``options``. Options only apply when the child is created: a step that
    runs again (a retry, a loop, a parallel branch) finds the same child. The parent may be
    unnamed. Levels made here do not count against the depth limit of hand-written budgets."""
    from ._tree import framework_child

    found = parent.find_child(name)
    if found is not None:
        return found
    return framework_child(parent, name, options or {})


class NameWatch:
    """The names of one ``limits`` mapping, and which of them matched a step, per budget.

    ``matched(budget, step)`` as steps run; ``unmatched(budget, seen)`` once that budget ends:
    the mapped names that matched nothing there, each with the closest step name ``seen``,
    reported once (``UnmatchedNameWarning``)."""

    def __init__(self, limits: Mapping[str, StepLimits], *, param: str, steps: str) -> None:
        self.limits = limits
        self.param = param
        self.steps = steps
        self._lock = threading.Lock()
        self._matched: weakref.WeakKeyDictionary[Budget, set[str]] = weakref.WeakKeyDictionary()
        self._reported: set[str] = set()

    def matched(self, budget: Budget, step: str) -> None:
        if step in self.limits:
            with self._lock:
                self._matched.setdefault(budget, set()).add(step)

    def report_when_done(self, budget: Budget, seen: Callable[[], Iterable[str]]) -> None:
        """Have :meth:`report` run when ``budget``'s block ends (``seen()`` then gives the
        step names that ran, for the "did you mean")."""
        with _pending_lock:
            pending = _pending.setdefault(budget, [])
            if not any(watch is self for watch, _ in pending):
                pending.append((self, seen))
        _watch_exits()

    def report(self, budget: Budget, seen: Iterable[str] = ()) -> list[str]:
        """Warn about the names that matched no step under ``budget``; those names."""
        import warnings

        with self._lock:
            hits = self._matched.get(budget, set())
            missed = [n for n in self.limits if n not in hits and n not in self._reported]
            self._reported.update(missed)
        choices = sorted(set(seen))
        for name in missed:
            close = difflib.get_close_matches(name, choices, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            warnings.warn(
                f"{self.param}[{name!r}] matched no {self.steps} under budget "
                f"{budget.full_name!r}, so its limits applied to nothing{hint}",
                UnmatchedNameWarning,
                stacklevel=3,
            )
        return missed


_pending: weakref.WeakKeyDictionary[Budget, list[tuple[NameWatch, Callable[[], Iterable[str]]]]]
_pending = weakref.WeakKeyDictionary()
_pending_lock = threading.Lock()
_exits_watched = [False]


class _ReportAtExit:
    @hookimpl
    def shekel_budget_exited(self, budget: Budget, error: BaseException | None) -> None:
        with _pending_lock:
            pending = _pending.pop(budget, None)
        for watch, seen in pending or ():
            watch.report(budget, seen())


def _watch_exits() -> None:
    with _pending_lock:
        if _exits_watched[0]:
            return
        _exits_watched[0] = True
    plugin_manager().register(_ReportAtExit(), name="shekel-integration-names")
