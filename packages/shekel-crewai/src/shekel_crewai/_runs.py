"""The agent run in progress in this thread or task: which agent, which task, who pays.

Kept free of crewai imports: the plugin module (loaded in every process that uses shekel)
reads it when shekel stops a call.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final

from shekel import Budget, BudgetExceededError


@dataclass(slots=True, eq=False)
class AgentRun:
    """One ``Agent.execute_task`` (or ``aexecute_task``) call running under a budget.

    ``budget`` pays for the run's LLM calls: the agent's (or task's) child, or the budget that
    was active when no child could be made. ``stopped`` is the first refusal or overrun shekel
    raised for ``budget`` or one of its ancestors while the run went on (in any of the threads
    CrewAI runs it in): a retry of the run is then refused at once.
    """

    agent: Any
    task: Any
    budget: Budget
    stopped: BudgetExceededError | None = None

    @property
    def role(self) -> str | None:
        role = getattr(self.agent, "role", None)
        return role if isinstance(role, str) else None

    @property
    def task_name(self) -> str | None:
        name = getattr(self.task, "name", None)
        return name if isinstance(name, str) else None


RUN: Final[ContextVar[AgentRun | None]] = ContextVar("shekel_crewai_run", default=None)


def note_stop(budget: Budget, error: BaseException) -> None:
    """Remember that shekel stopped a call of the current agent run (``shekel_limit_exceeded``).

    Only limits of the run's own budget or its ancestors count: a budget the user opened
    inside a tool, and caught, says nothing about the agent.
    """
    run = RUN.get()
    if run is None or run.stopped is not None or not isinstance(error, BudgetExceededError):
        return
    payer: Budget | None = run.budget
    while payer is not None:
        if payer is budget:
            run.stopped = error
            return
        payer = payer.parent
