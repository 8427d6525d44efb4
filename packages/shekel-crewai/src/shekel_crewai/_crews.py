"""``crew_budget``: limits for one crew, applied wherever it runs. Wrapped once, a crew pays
at each kickoff into a child of the budget active there, so two users' requests never share a
budget. Limits are kept by crew object, and passed on to CrewAI's copies (``kickoff_for_each``).
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from decimal import Decimal
from typing import Any, Final, NamedTuple, TypeVar

from shekel import Budget, BudgetConfigError, current_budget
from shekel.integration import Limits, NameWatch, StepLimits, child_of, parse_limits

from ._plugin import INTEGRATION

CrewT = TypeVar("CrewT")


class CrewLimits(NamedTuple):
    own: StepLimits | None  # the crew's own budget; None: its agents go under the active one
    agents: NameWatch  # the limits by role, and which roles matched an agent
    tasks: NameWatch


class Scope(NamedTuple):  # a wrapped crew's kickoff, and the budget it started under
    limits: CrewLimits
    anchor: Budget


SCOPE: Final[ContextVar[Scope | None]] = ContextVar("shekel_crewai_scope", default=None)
_limits: weakref.WeakKeyDictionary[Any, CrewLimits] = weakref.WeakKeyDictionary()


def crew_budget(
    crew: CrewT,
    max_usd: float | Decimal | None = None,
    *,
    agents: Mapping[str, Limits] | None = None,
    tasks: Mapping[str, Limits] | None = None,
    name: str | None = "crew",
    **options: Any,
) -> CrewT:
    """Give ``crew`` limits wherever it runs; returns it. At each kickoff inside a budget, the
    crew pays into that budget's child ``name`` (with ``max_usd`` and other ``budget()``
    options; ``None``: no level of its own), each agent into a child named after its role
    under it (``agents``), a task named in ``tasks`` into a child under its agent."""
    from crewai import Crew

    if not isinstance(crew, Crew):
        raise BudgetConfigError(
            "crew_budget() takes the crewai.Crew to budget as its first argument, got "
            f"{type(crew).__name__}: crew_budget(crew, max_usd=...)"
        )
    own = None
    if name is not None:
        spec = {**options, **({} if max_usd is None else {"max_usd": max_usd})}
        own = parse_limits({name: spec}, param="crew_budget", steps="crew names")[name]
    elif max_usd is not None or options:
        raise BudgetConfigError(
            "crew_budget(name=None) puts the agents directly under the active budget, so the "
            "crew has no budget of its own to take max_usd or other options: name it, or "
            "remove them"
        )
    _limits[crew] = CrewLimits(
        own,
        _watch(agents, "agents", "CrewAI agent roles"),
        _watch(tasks, "tasks", "CrewAI task names"),
    )
    from ._patches import patch

    patch()  # explicit use installs even where the automatic install was refused
    return crew


def _watch(limits: Mapping[str, Limits] | None, param: str, steps: str) -> NameWatch:
    return NameWatch(parse_limits(limits, param=param, steps=steps), param=param, steps=steps)


def applies() -> bool:
    """Budgets apply everywhere once installed, else inside wrapped crews only."""
    return INTEGRATION.installed or SCOPE.get() is not None


@contextmanager
def crew_run(crew: Any, *_: Any, **__: Any) -> Iterator[None]:
    """Around a kickoff: for a wrapped crew, its budget active and its limits in scope."""
    limits, anchor = _limits.get(crew), current_budget()
    if limits is None or getattr(crew, "stream", False):  # a stream kicks off again inside
        yield
        return
    if anchor is None:
        INTEGRATION.warn_outside_budget("a crew wrapped with crew_budget()")
        yield
        return
    agents = (*crew.agents, crew.manager_agent)  # the manager of a hierarchical crew
    limits.agents.report_when_done(anchor, lambda: [a.role for a in agents if a is not None])
    limits.tasks.report_when_done(anchor, lambda: [t.name for t in crew.tasks if t.name])
    token = SCOPE.set(Scope(limits, anchor))
    try:
        with ExitStack() as stack:
            if limits.own is not None:
                stack.enter_context(child_of(anchor, limits.own.budget_name, limits.own.options))
            yield
    finally:
        SCOPE.reset(token)


def wrap_copy(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def copy(self: Any) -> Any:
        copied = original(self)
        if self in _limits:
            _limits[copied] = _limits[self]
        return copied

    return copy
