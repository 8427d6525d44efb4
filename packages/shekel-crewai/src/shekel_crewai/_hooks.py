"""CrewAI's global hooks, run where the agent's budget is active: stop an agent before an LLM
call its budget cannot take; count a tool call before the tool runs, release it if the tool
fails or does not run. Only a ``HookAborted`` leaves a hook (CrewAI swallows anything else)."""

from __future__ import annotations

import logging
import threading
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any, Final

from crewai.events.stream_context import add_stream_sink, reset_stream_sinks
from crewai.events.types.tool_usage_events import ToolUsageErrorEvent, ToolUsageFinishedEvent
from crewai.hooks import InterceptionPoint, get_hooks, register_hook, unregister_hook

from shekel import BudgetExceededError, ToolCall, current_budget

from ._crews import applies
from ._errors import agent_error, tool_refusal

logger = logging.getLogger("shekel_crewai")
_BLOCKED: Final = "Tool execution blocked by hook"  # CrewAI's answer when a hook stopped a tool


def before_model_call(context: Any) -> None:
    budget = current_budget()
    if budget is None or not applies():
        return
    try:
        budget.check()  # the interception's question, answered where CrewAI lets the error out
    except BudgetExceededError as error:
        agent, task = getattr(context, "agent", None), getattr(context, "task", None)
        raise agent_error(error, agent, task) from error


@dataclass(slots=True, eq=False)
class _Open:  # a tool call counted before the tool runs, settled after it
    call: ToolCall
    tool: str
    arguments: Any
    sink: Token[Any]
    failed: bool = False


_OPEN: Final[ContextVar[tuple[_Open, ...]]] = ContextVar("shekel_crewai_tools", default=())


def before_tool_call(context: Any) -> None:
    budget = current_budget()
    if budget is None or not applies():
        return
    tool = getattr(getattr(context, "tool", None), "name", None)  # tool_prices use its own name
    name = tool if isinstance(tool, str) and tool else str(context.tool_name)
    try:
        call = budget.tool_call(name, arguments=context.tool_input)
    except BudgetExceededError as error:
        refusal = tool_refusal(error, name)
        logger.warning("%s", refusal.reason)
        raise refusal from error
    # CrewAI reports a failure of the tool (an event, in this thread) before the after hooks.
    opened = _Open(call, context.tool_name, context.tool_input, add_stream_sink(_observe))
    _OPEN.set((*_OPEN.get(), opened))


def _observe(source: Any, event: Any) -> None:
    if isinstance(event, ToolUsageErrorEvent | ToolUsageFinishedEvent) and _OPEN.get():
        _OPEN.get()[-1].failed = isinstance(event, ToolUsageErrorEvent)  # a retry may succeed


def after_tool_call(context: Any) -> None:
    opened = _OPEN.get()
    if not opened or opened[-1].tool != context.tool_name:
        return  # refused here, or stopped by an earlier hook: nothing was counted
    done = opened[-1]
    # Older CrewAI releases give this hook a new empty dict for a call without arguments.
    if done.arguments is not context.tool_input and done.arguments != context.tool_input:
        return
    _OPEN.set(opened[:-1])
    reset_stream_sinks(done.sink)
    if done.failed or str(context.raw_tool_result).startswith(_BLOCKED):
        done.call.release()
    else:
        done.call.commit()


_HOOKS: Final = (
    (InterceptionPoint.PRE_MODEL_CALL, before_model_call),
    (InterceptionPoint.PRE_TOOL_CALL, before_tool_call),
    (InterceptionPoint.POST_TOOL_CALL, after_tool_call),
)
_lock = threading.Lock()


def register() -> None:
    """Register the hooks unless they are (before each agent run too: a
    ``crewai.hooks.clear_all_global_hooks()`` must not silently remove the budget stop)."""
    with _lock:
        for point, hook in _HOOKS:
            if hook not in get_hooks(point):
                register_hook(point, hook)


def unregister() -> None:
    with _lock:
        for point, hook in _HOOKS:
            if hook in get_hooks(point):
                unregister_hook(point, hook)
