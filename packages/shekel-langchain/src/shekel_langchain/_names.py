"""The ``budgets={...}`` mapping: the child budget a LangChain run of a given name charges."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from contextvars import ContextVar

from shekel import Budget
from shekel.integration import Limits, NameWatch, child_of, parse_limits


class RunNames:
    """A checked ``budgets`` mapping, and the run names it met (for "did you mean")."""

    __slots__ = ("limits", "scope", "seen", "watch")

    def __init__(self, budgets: Mapping[str, Limits] | None) -> None:
        self.limits = parse_limits(budgets, param="budgets", steps="LangChain run names")
        self.watch = NameWatch(self.limits, param="budgets", steps="LangChain run")
        self.seen: set[str] = set()
        self.scope: weakref.ref[Budget] | None = None  # where names were last watched

    def budget_for(self, anchor: Budget, scope: Budget, name: str, *, outermost: bool) -> Budget:
        """The budget a run named ``name`` charges: the child of ``anchor`` its name maps to,
        else ``anchor``. ``scope``: the budget active where the outermost run started, at the
        end of which the names that matched no run are reported."""
        if outermost and (self.scope is None or self.scope() is not scope):
            self.watch.report_when_done(scope, self.seen.copy)
            self.scope = weakref.ref(scope)
        self.seen.add(name)
        limits = self.limits.get(name)
        if limits is None:
            return anchor
        self.watch.matched(scope, name)
        if anchor.name == limits.budget_name:
            return anchor  # inside a run of its own name: never nest a child into itself
        return child_of(anchor, limits.budget_name, limits.options)


NAMED: ContextVar[RunNames | None] = ContextVar("shekel_langchain_names", default=None)
"""The mapping of the innermost ``run_budgets`` block, for handlers given no ``budgets``."""
