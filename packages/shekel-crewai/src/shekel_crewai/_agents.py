"""Who pays for an agent's work: around ``Agent.execute_task`` (and ``aexecute_task``), where
every way of running an agent ends, the agent's budget is active; CrewAI's threads copy the
context from there, so every call of the run lands in it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from typing import Any, Final, NamedTuple

from crewai.events.stream_context import add_stream_sink, reset_stream_sinks

from shekel import Budget, BudgetExceededError, budget_name, current_budget
from shekel.integration import child_of

from . import _hooks, _usage
from ._crews import SCOPE, applies
from ._errors import AgentBudgetExceededError, agent_error


class Run(NamedTuple):  # the agent run in progress here, and the budget that pays for it
    agent: Any
    task: Any
    budget: Budget


RUN: Final[ContextVar[Run | None]] = ContextVar("shekel_crewai_run", default=None)


def plan(agent: Any, task: Any, active: Budget) -> list[Budget]:
    """The budgets to activate for ``agent`` running ``task``: a child named after its role
    (an agent of a crew, ``agent.crew`` set at kickoff), under it one for a task in ``tasks=``;
    not nested under a budget of the same name (delegating to oneself)."""
    scope = SCOPE.get()
    role, name = getattr(agent, "role", None), getattr(task, "name", None)
    budgets: list[Budget] = []
    if isinstance(role, str) and (scope is not None or getattr(agent, "crew", None) is not None):
        step = scope.limits.agents.limits.get(role) if scope else None
        if scope is not None:
            scope.limits.agents.matched(scope.anchor, role)
        if not _in_chain(active, budget_name(role)):
            budgets.append(child_of(active, budget_name(role), step.options if step else None))
    step = scope.limits.tasks.limits.get(name) if scope and isinstance(name, str) else None
    if scope is not None and step is not None:
        scope.limits.tasks.matched(scope.anchor, step.step)
        payer = budgets[-1] if budgets else active
        if not _in_chain(payer, step.budget_name):
            budgets.append(child_of(payer, step.budget_name, step.options))
    return budgets


def _in_chain(budget: Budget | None, name: str) -> bool:
    return budget is not None and (budget.name == name or _in_chain(budget.parent, name))


def _budget_error(error: BaseException | None) -> BudgetExceededError | None:
    """A budget error in ``error``'s chain (CrewAI wraps it under ``max_execution_time``)."""
    for _ in range(20):  # a short chain; bounded, should it loop
        if error is None or isinstance(error, BudgetExceededError):
            return error
        error = error.__cause__ or error.__context__
    return None


@contextmanager
def agent_run(agent: Any, task: Any, *_: Any, **__: Any) -> Iterator[None]:
    """Its budgets active, a budget error leaving as ``AgentBudgetExceededError``. CrewAI
    retries a failed run from its ``except`` block: refused at once when a budget error made
    the run fail or its budget has no room left, else run in the same budgets."""
    active, outer = current_budget(), RUN.get()
    if outer is not None and outer.agent is agent and outer.task is task:
        error = _budget_error(sys.exc_info()[1])
        try:
            outer.budget.check()
        except BudgetExceededError as refused:
            error = error or refused
        if error is not None:
            raise agent_error(error, agent, task) from error
        yield
        return
    if active is None or not applies():
        yield
        return
    _hooks.register()
    budgets = plan(agent, task, active)
    run = Run(agent, task, budgets[-1] if budgets else active)
    token = RUN.set(run)
    sink = add_stream_sink(_usage.report) if outer is None else None
    try:
        with ExitStack() as stack:
            for budget in budgets:
                stack.enter_context(budget)
            yield
    except Exception as error:
        found = _budget_error(error)
        if found is None or isinstance(error, AgentBudgetExceededError):
            raise
        raise agent_error(found, agent, task) from error
    finally:
        if sink is not None:
            reset_stream_sinks(sink)
        RUN.reset(token)
