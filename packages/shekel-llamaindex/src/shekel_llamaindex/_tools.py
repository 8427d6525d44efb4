"""Tool calls of LlamaIndex's workflow agents, counted before the tool runs.

A LlamaIndex tool runs with no span and no callback event of its own, so the dispatcher never
says that one is about to run. Every workflow agent (``FunctionAgent``, ``ReActAgent``,
``CodeActAgent``) and ``AgentWorkflow`` runs a tool through its ``_call_tool(ctx, tool,
tool_input)`` inside the ``call_tool`` step; that method turns the tool's own exceptions into
an error output for the model, while an exception raised around it ends the run. That method
is wrapped, once per process, when its module is imported:

- the budget paying for the ``call_tool`` step (or the active one, outside a step) counts the
  call with ``Budget.tool_call(name)``, which refuses it with ``ToolBudgetExceededError``
  (``sent=False``) before the tool runs when ``max_tool_calls`` or a USD cap (the tool's price,
  ``tool_prices``) would be passed, there or in an ancestor;
- a tool that succeeded is recorded at its price; one that failed (an error output, or an
  exception) is released and not counted, as a failed tool is everywhere in shekel.

Outside a budget the wrapper costs a few context-variable reads per tool call.
"""

from __future__ import annotations

import functools
import inspect
import sys
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, Final

from . import _spans
from ._errors import ShekelLlamaIndexWarning
from ._imports import when_imported

_AGENTS: Final = (
    ("llama_index.core.agent.workflow.base_agent", "BaseWorkflowAgent"),
    ("llama_index.core.agent.workflow.multi_agent_workflow", "AgentWorkflow"),
)
_ORIGINAL: Final = "__shekel_original__"

CallTool = Callable[[Any, Any, Any, dict[str, Any]], Awaitable[Any]]


def install() -> None:
    """Wrap the agents' ``_call_tool`` now, or as soon as their modules are imported."""
    for module, name in _AGENTS:
        when_imported(module, functools.partial(_wrap, module, name))


def _wrap(module: str, name: str) -> None:
    cls: Any = getattr(sys.modules.get(module), name, None)
    original = getattr(cls, "_call_tool", None)
    if getattr(original, _ORIGINAL, None) is not None:
        return
    if not inspect.iscoroutinefunction(original):
        warnings.warn(
            f"shekel-llamaindex cannot count the tool calls of {name}: this LlamaIndex has no "
            "async _call_tool(ctx, tool, tool_input) there. max_tool_calls is not enforced for "
            "its tools; install a llama-index-core that shekel-llamaindex supports",
            ShekelLlamaIndexWarning,
            stacklevel=2,
        )
        return
    cls._call_tool = counted(original)


def counted(original: CallTool) -> CallTool:
    """``original`` (an agent's ``_call_tool``), counting each call against the paying budget."""

    @functools.wraps(original)
    async def _call_tool(self: Any, ctx: Any, tool: Any, tool_input: dict[str, Any]) -> Any:
        payer = _spans.payer_here()
        if payer is None:
            return await original(self, ctx, tool, tool_input)
        held = payer.tool_call(tool_name(tool))
        try:
            output = await original(self, ctx, tool, tool_input)
        except BaseException:
            held.release()
            raise
        if getattr(output, "is_error", False):
            held.release()
        else:
            held.commit()
        return output

    setattr(_call_tool, _ORIGINAL, original)
    return _call_tool


def tool_name(tool: Any) -> str:
    """The name the agent called the tool by (``"tool"`` for a nameless one)."""
    name = getattr(getattr(tool, "metadata", None), "name", None)
    return name if isinstance(name, str) and name else "tool"
