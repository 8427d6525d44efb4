"""Budget stops as errors CrewAI lets through: it re-runs a failed task (``max_retry_limit``)
and wraps errors in ``RuntimeError`` under ``max_execution_time``, but not a ``HookAborted``."""

from __future__ import annotations

from typing import Any

from crewai.hooks import HookAborted

from shekel import BudgetExceededError, LoopGuardError
from shekel.integration import framework_error


class AgentBudgetExceededError(BudgetExceededError, HookAborted):
    """A CrewAI agent (or direct LLM call) stopped by its budget or an enclosing one, before its
    next LLM call (``sent=False``) or for a call that went over (``sent=True``); it ends
    ``kickoff()``. ``agent_role`` and ``task_name`` name the run; the rest is the core's."""

    agent_role: str | None = None
    task_name: str | None = None


def agent_error(error: BudgetExceededError, agent: Any, task: Any) -> AgentBudgetExceededError:
    if isinstance(error, AgentBudgetExceededError):
        return error
    made = framework_error(error, AgentBudgetExceededError)
    role, name = getattr(agent, "role", None), getattr(task, "name", None)
    made.agent_role = role = role if isinstance(role, str) else None
    made.task_name = name = name if isinstance(name, str) else None
    who = "CrewAI's LLM call" if role is None else f"agent {role!r}"
    who += f" (task {name!r})" if role is not None and name is not None else ""
    made.args = (f"{who} was stopped: {error}",)
    made.reason, made.source = made.args[0], "shekel"
    return made


def tool_refusal(error: BudgetExceededError, tool: str) -> HookAborted:
    """Keeps ``tool`` from running; CrewAI tells the agent it was blocked, and goes on."""
    who = f"budget {error.budget_name!r}" if error.budget_name else "the budget"
    if isinstance(error, LoopGuardError):
        seen = error.count - 1
        why = f"{who} already saw this exact call {seen} time{'s' if seen != 1 else ''}"
        fix = "give the agent another way forward, or raise loop_guard"
    else:
        unit = "USD" if error.axis == "usd" else "tool calls"
        why = f"{who} has no room left for it under its {unit} limit"
        fix = "raise max_tool_calls or the USD limit (set_limits() on that budget)"
    reason = (
        f"tool {tool!r} was not run: {why}. CrewAI tells the agent that the tool was blocked, "
        f"and the agent goes on; to let such calls run, {fix}"
    )
    return HookAborted(reason, source="shekel")
