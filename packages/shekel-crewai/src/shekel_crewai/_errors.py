"""Errors that CrewAI lets through: budget errors that are also ``HookAborted``.

CrewAI re-runs a failed task (``max_retry_limit``) and, under ``max_execution_time``, turns
errors into ``RuntimeError("Task execution failed: ...")``; a ``HookAborted`` is exempt from
both. These errors are therefore both a shekel ``BudgetExceededError`` (``except
BudgetExceededError`` catches them) and a crewai ``HookAborted``.
"""

from __future__ import annotations

from typing import Any

from crewai.hooks import HookAborted

from shekel import BudgetExceededError, ToolBudgetExceededError

_SOURCE = "shekel"

_AGENT_ADVICE = (
    "Raise the limit (crew_budget(max_usd=..., agents={role: ...}), or set_limits() on the "
    "budget named above), or catch BudgetExceededError around kickoff() to end the crew cleanly"
)


class AgentBudgetExceededError(BudgetExceededError, HookAborted):
    """A CrewAI agent was stopped because its budget, or an enclosing one, has no room left.

    Raised before the agent's next LLM call is sent (``sent`` is ``False``), or in place of
    the error of the call that took a budget over its limit (``sent`` is ``True``; that call
    was recorded). CrewAI neither retries it nor wraps it, so it leaves ``kickoff()`` (and
    ``kickoff_async()``, ``akickoff()``) as it is and ends the crew.

    Besides ``BudgetExceededError``'s attributes (``budget_name``, ``axis``, ``spent``,
    ``limit``, ``sent``, ``call``): ``agent_role`` and ``task_name`` of the agent run that
    was stopped (``None`` when unknown).
    """

    def __init__(
        self,
        spent: float,
        limit: float,
        *,
        agent_role: str | None = None,
        task_name: str | None = None,
        axis: Any = "usd",
        budget_name: str | None = None,
        model: str | None = None,
        tokens: dict[str, int] | None = None,
        sent: bool = False,
    ) -> None:
        self.agent_role = agent_role
        self.task_name = task_name
        if agent_role:
            who = f"agent {agent_role!r}" + (f" (task {task_name!r})" if task_name else "")
            stop = "stopped" if sent else "stopped before its next LLM call"
        else:
            who, stop = "CrewAI's LLM call", "stopped" if sent else "stopped before it was sent"
        BudgetExceededError.__init__(
            self,
            spent,
            limit,
            axis=axis,
            budget_name=budget_name,
            model=model,
            tokens=tokens,
            sent=sent,
            detail=f"{who} {stop}",
            advice=_AGENT_ADVICE,
        )
        # HookAborted's attributes (its __init__ would set the message a second time).
        self.reason = str(self)
        self.source: Any = _SOURCE

    @classmethod
    def from_error(
        cls, error: BudgetExceededError, *, agent_role: str | None, task_name: str | None
    ) -> AgentBudgetExceededError:
        """The agent's error for a refusal or overrun shekel raised (kept as ``__cause__``
        by the caller)."""
        made = cls(
            error.spent,
            error.limit,
            agent_role=agent_role,
            task_name=task_name,
            axis=error.axis,
            budget_name=error.budget_name,
            model=error.model,
            tokens=error.tokens,
            sent=error.sent,
        )
        made.call = error.call
        return made


class ToolRefusedError(ToolBudgetExceededError, HookAborted):
    """A tool call refused by a budget (``max_tool_calls``, or a tool price over the USD limit).

    Raised from CrewAI's ``before_tool_call`` hook: CrewAI does not run the tool and gives the
    agent "Tool execution blocked by hook" as the tool's result; the agent and the crew go on.
    It never reaches the caller of ``kickoff()``.
    """

    def __init__(self, error: ToolBudgetExceededError) -> None:
        ToolBudgetExceededError.__init__(
            self,
            error.spent,
            error.limit,
            tool_name=error.tool_name,
            axis=error.axis,
            budget_name=error.budget_name,
            sent=False,
        )
        self.reason = str(self)
        self.source: Any = _SOURCE
