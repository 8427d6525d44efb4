"""Which budget pays for an agent's work: ``Agent.execute_task`` and ``aexecute_task`` wrapped.

Every entry point of a crew (``kickoff``, ``kickoff_async``, ``akickoff``, tasks with
``async_execution=True``, ``max_execution_time``, delegation, seed-style direct calls) ends in
one of these two methods, in the thread or task that runs the agent; CrewAI's own threads copy
the context from there. The wrapper activates the agent's child (and the task's, when
``crew_budget(tasks=...)`` names it) around the original method, so every LLM call, tool call
and nested budget of the run lands there.

- An agent that belongs to a crew (CrewAI sets ``agent.crew`` at kickoff), or whose role a
  ``crew_budget`` above names, gets the child ``budget_name(role)`` of the budget active where
  it starts: one per (parent, role), reused across tasks, retries, threads and kickoffs. Other
  agents (``agent.execute_task(task)`` inside a budget of the caller's own) charge the active
  budget, which is then the agent's budget.
- A budget already named after the role (or the task) in the active chain is never nested
  again: CrewAI's retry calls ``execute_task`` from inside the failed attempt.
- A retry of a run that shekel stopped is refused at once with ``AgentBudgetExceededError``,
  and a budget error leaving the run (raw, or wrapped by CrewAI in ``RuntimeError``) is
  raised as one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from typing import Any, Final

from crewai.agent.core import Agent

from shekel import Budget, BudgetExceededError, budget_name, current_budget

from . import _hooks, _usage
from ._crew_budget import CrewBudget, child_of
from ._errors import AgentBudgetExceededError
from ._runs import RUN, AgentRun

_ORIGINAL: Final = "__shekel_original__"


@dataclass(slots=True)
class _Plan:
    """The budgets to activate for one agent run (outermost first) and the run's record."""

    budgets: list[Budget]
    run: AgentRun


def plan(agent: Any, task: Any, active: Budget) -> _Plan:
    """Decide who pays for ``agent`` running ``task`` while ``active`` is the active budget."""
    scope = _crew_scope(active)
    role = agent.role if isinstance(getattr(agent, "role", None), str) else None
    payer, budgets = active, []
    if role is not None and payer.name is not None:
        options = scope.agent_options.get(role) if scope is not None else None
        belongs = getattr(agent, "crew", None) is not None or options is not None
        name = budget_name(role)
        if belongs and not _in_chain(payer, name):
            payer = child_of(payer, name, options or {})
            budgets.append(payer)
    task_name = getattr(task, "name", None)
    if scope is not None and isinstance(task_name, str) and payer.name is not None:
        options = scope.task_options.get(task_name)
        name = budget_name(task_name)
        if options is not None and not _in_chain(payer, name):
            payer = child_of(payer, name, options)
            budgets.append(payer)
    return _Plan(budgets, AgentRun(agent, task, payer))


def _crew_scope(budget: Budget) -> CrewBudget | None:
    """The nearest ``crew_budget`` at or above ``budget``."""
    current: Budget | None = budget
    while current is not None:
        if isinstance(current, CrewBudget):
            return current
        current = current.parent
    return None


def _in_chain(budget: Budget, name: str) -> bool:
    current: Budget | None = budget
    while current is not None:
        if current.name == name:
            return True
        current = current.parent
    return False


def _retrying(agent: Any, task: Any) -> AgentRun | None:
    """The run this call retries (CrewAI's retry calls execute_task from inside the run)."""
    run = RUN.get()
    if run is not None and run.agent is agent and run.task is task:
        return run
    return None


def _stop_retry(run: AgentRun) -> None:
    """Refuse a retry when shekel stopped the run, or its budget cannot take an LLM call."""
    if run.stopped is not None:
        raise _agent_error(run.stopped, run) from run.stopped
    try:
        run.budget.check()
    except BudgetExceededError as error:
        raise _agent_error(error, run) from error


def _agent_error(error: BudgetExceededError, run: AgentRun) -> AgentBudgetExceededError:
    if isinstance(error, AgentBudgetExceededError):
        return error
    return AgentBudgetExceededError.from_error(error, agent_role=run.role, task_name=run.task_name)


def _budget_error(error: BaseException) -> BudgetExceededError | None:
    """A budget error in ``error``'s chain (CrewAI wraps it under ``max_execution_time``)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, BudgetExceededError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _execute_task(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def execute_task(self: Any, task: Any, *args: Any, **kwargs: Any) -> Any:
        active = current_budget()
        if active is None:
            return original(self, task, *args, **kwargs)
        retried = _retrying(self, task)
        if retried is not None:
            _stop_retry(retried)
            return original(self, task, *args, **kwargs)
        _hooks.register()
        chosen = plan(self, task, active)
        outermost = RUN.get() is None
        token = RUN.set(chosen.run)
        sink = _usage.add_sink() if outermost else None
        try:
            with ExitStack() as stack:
                for budget in chosen.budgets:
                    stack.enter_context(budget)
                return original(self, task, *args, **kwargs)
        except Exception as error:
            found = _budget_error(error)
            if found is None or isinstance(error, AgentBudgetExceededError):
                raise
            raise _agent_error(found, chosen.run) from error
        finally:
            _usage.remove_sink(sink)
            RUN.reset(token)

    return execute_task


def _aexecute_task(
    original: Callable[..., Coroutine[Any, Any, Any]],
) -> Callable[..., Coroutine[Any, Any, Any]]:
    @functools.wraps(original)
    async def aexecute_task(self: Any, task: Any, *args: Any, **kwargs: Any) -> Any:
        active = current_budget()
        if active is None:
            return await original(self, task, *args, **kwargs)
        retried = _retrying(self, task)
        if retried is not None:
            _stop_retry(retried)
            return await original(self, task, *args, **kwargs)
        _hooks.register()
        chosen = plan(self, task, active)
        outermost = RUN.get() is None
        token = RUN.set(chosen.run)
        sink = _usage.add_sink() if outermost else None
        try:
            async with AsyncExitStack() as stack:
                for budget in chosen.budgets:
                    await stack.enter_async_context(budget)
                return await original(self, task, *args, **kwargs)
        except Exception as error:
            found = _budget_error(error)
            if found is None or isinstance(error, AgentBudgetExceededError):
                raise
            raise _agent_error(found, chosen.run) from error
        finally:
            _usage.remove_sink(sink)
            RUN.reset(token)

    return aexecute_task


def patch() -> None:
    """Wrap ``Agent.execute_task`` and ``Agent.aexecute_task`` (once)."""
    for name, wrap in (("execute_task", _execute_task), ("aexecute_task", _aexecute_task)):
        current = getattr(Agent, name)
        if getattr(current, _ORIGINAL, None) is None:
            wrapped = wrap(current)
            setattr(wrapped, _ORIGINAL, current)
            setattr(Agent, name, wrapped)
