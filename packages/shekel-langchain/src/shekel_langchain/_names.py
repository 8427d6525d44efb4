"""The ``budgets={...}`` mapping: LangChain run names to the options of child budgets."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, TypeAlias

from shekel import Budget, BudgetConfigError, budget_name

BudgetSpec: TypeAlias = "float | int | Decimal | str | Mapping[str, Any] | None"
"""What a run name maps to: a USD limit, a dict of ``budget()`` options, or ``None`` (a child
that only tracks)."""

_NOT_OPTIONS = ("name", "ledger")


class Target:
    """One mapped run name: the child's budget name and the options it is created with."""

    __slots__ = ("budget_name", "options", "run_name")

    def __init__(self, run_name: str, options: Mapping[str, Any]) -> None:
        self.run_name = run_name
        self.budget_name = budget_name(run_name)
        self.options = options


class RunNames:
    """A validated ``budgets`` mapping, and the children it made under each parent budget."""

    __slots__ = ("_children", "_lock", "targets")

    def __init__(self, budgets: Mapping[str, BudgetSpec] | None) -> None:
        self.targets: Mapping[str, Target] = MappingProxyType(_parse(budgets))
        # parent budget -> {budget name: child}; weak, so that budgets made per request die
        self._children: weakref.WeakKeyDictionary[Budget, dict[str, Budget]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.targets)

    def child(self, parent: Budget, target: Target) -> Budget:
        """The child of ``parent`` for ``target``: found if it exists (made by an earlier run,
        by ``parent.child()`` or by a ``with budget(name=...)`` block, its limits as they are
        now), else created with the target's options."""
        known = self._children.get(parent)
        if known is not None:
            found = known.get(target.budget_name)
            if found is not None:
                return found
        with self._lock:
            name = target.budget_name
            found = parent.find_child(name)
            if found is None:
                try:
                    found = parent.child(name, **target.options)
                except BudgetConfigError as exc:
                    raise BudgetConfigError(
                        f"cannot charge LangChain run {target.run_name!r} to a child of "
                        f"{parent.full_name!r}: {exc}"
                    ) from None
            self._children.setdefault(parent, {})[name] = found
            return found


def _parse(budgets: Mapping[str, BudgetSpec] | None) -> dict[str, Target]:
    if budgets is None:
        return {}
    if not isinstance(budgets, Mapping):
        raise BudgetConfigError(
            "budgets must map LangChain run names to limits, e.g. "
            f"{{'summarize': 1.00}}; got {type(budgets).__name__}"
        )
    parsed: dict[str, Target] = {}
    for run_name, spec in budgets.items():
        if not isinstance(run_name, str) or not run_name:
            raise BudgetConfigError(
                f"budgets keys are LangChain run names (non-empty strings); got {run_name!r}"
            )
        options = _options(run_name, spec)
        _validate(run_name, options)
        parsed[run_name] = Target(run_name, MappingProxyType(options))
    return parsed


def _options(run_name: str, spec: BudgetSpec) -> dict[str, Any]:
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        options = dict(spec)
        for key in options:
            if not isinstance(key, str):
                raise BudgetConfigError(
                    f"budgets[{run_name!r}] options must be budget() keyword names; got {key!r}"
                )
        for key in _NOT_OPTIONS:
            if key in options:
                raise BudgetConfigError(
                    f"budgets[{run_name!r}] may not set {key!r}: the child budget is named "
                    "after the run and kept in its parent's ledger; remove it"
                )
        return options
    if isinstance(spec, bool) or not isinstance(spec, int | float | Decimal | str):
        raise BudgetConfigError(
            f"budgets[{run_name!r}] must be a USD limit (e.g. 0.50), a dict of budget() "
            f"options (e.g. {{'max_usd': 1.0, 'max_tokens': 20000}}) or None; got {spec!r}"
        )
    return {"max_usd": spec}


def _validate(run_name: str, options: Mapping[str, Any]) -> None:
    """Check the options now, as ``budget()`` would when the child is made later."""
    try:
        Budget(name=budget_name(run_name), **options)
    except BudgetConfigError as exc:
        raise BudgetConfigError(f"budgets[{run_name!r}]: {exc}") from None
