"""CrewAI hooks: stop an agent before an LLM call its budget cannot take, count tool calls.

Both are global hooks (CrewAI's ``register_hook``), run synchronously in the thread about to
call the model or the tool, where the agent's budget is the active one. With no budget active
they return at once. Only ``HookAborted`` leaves a CrewAI hook (anything else is swallowed),
hence the errors of ``_errors``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from crewai.hooks import InterceptionPoint, get_hooks, register_hook

from shekel import BudgetExceededError, ToolBudgetExceededError, current_budget

from ._errors import AgentBudgetExceededError, ToolRefusedError
from ._runs import RUN

logger = logging.getLogger("shekel_crewai")


def before_model_call(context: Any) -> None:
    """Refuse the LLM call when the active budget (the agent's) or an ancestor is exhausted,
    as shekel's interceptor would, but as an error CrewAI lets through."""
    budget = current_budget()
    if budget is None:
        return
    try:
        budget.check()
    except BudgetExceededError as error:
        role, task = _names(context)
        raise AgentBudgetExceededError.from_error(error, agent_role=role, task_name=task) from error


def before_tool_call(context: Any) -> None:
    """Count the tool call on the active budget before the tool runs (``max_tool_calls``,
    ``tool_prices``); when the budget refuses it, CrewAI does not run the tool."""
    budget = current_budget()
    if budget is None:
        return
    try:
        budget.record_tool_call(_tool_name(context))
    except ToolBudgetExceededError as error:
        logger.warning("tool call refused, the agent is told it was blocked: %s", error)
        raise ToolRefusedError(error) from error


def register() -> None:
    """Register both hooks globally, unless they already are (cheap: a short list scan).
    Called again before each agent run, so that ``crewai.hooks.clear_all_global_hooks()``
    does not silently remove the budget stop."""
    with _lock:
        for point, hook in _HOOKS:
            if hook not in get_hooks(point):
                register_hook(point, hook)


_lock = threading.Lock()


_HOOKS = (
    (InterceptionPoint.PRE_MODEL_CALL, before_model_call),
    (InterceptionPoint.PRE_TOOL_CALL, before_tool_call),
)


def _names(context: Any) -> tuple[str | None, str | None]:
    """The role and task name for the error: from the hook context, else the agent run."""
    agent, task = getattr(context, "agent", None), getattr(context, "task", None)
    run = RUN.get()
    if agent is None and run is not None:
        agent, task = run.agent, run.task
    role = getattr(agent, "role", None)
    name = getattr(task, "name", None)
    return (role if isinstance(role, str) else None, name if isinstance(name, str) else None)


def _tool_name(context: Any) -> str:
    """The tool's own name (``tool_prices`` keys), not CrewAI's sanitised one."""
    name = getattr(getattr(context, "tool", None), "name", None)
    if isinstance(name, str) and name:
        return name
    fallback = getattr(context, "tool_name", None)
    return fallback if isinstance(fallback, str) and fallback else "tool"
