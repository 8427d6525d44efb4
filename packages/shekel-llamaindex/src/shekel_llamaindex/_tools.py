"""Tool calls of LlamaIndex's workflow agents, counted before the tool runs.

A LlamaIndex tool runs with no span or callback event of its own. Every workflow agent and
``AgentWorkflow`` runs one through ``_call_tool(ctx, tool, tool_input)``, which turns the tool's
exceptions into an error output for the model. That method is wrapped once its module is
imported: ``Budget.tool_call`` on the budget paying there counts the call before the tool runs,
and it is released when the tool failed.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from shekel.integration import when_imported

from . import _spans, _steps

_active = [False]

CallTool = Callable[[Any, Any, Any, dict[str, Any]], Awaitable[Any]]


def install() -> None:
    _active[0] = True
    for path in _steps.AGENTS:
        module = "llama_index.core." + path.rpartition(".")[0]
        when_imported(module, functools.partial(_wrap, path))


def uninstall() -> None:
    _active[0] = False
    for path in _steps.AGENTS:
        cls = _steps.loaded(path)
        original = getattr(getattr(cls, "_call_tool", None), "__shekel_original__", None)
        if original is not None:
            cls._call_tool = original


def _wrap(path: str) -> None:
    cls = _steps.loaded(path)
    original = getattr(cls, "_call_tool", None)
    wrapped = hasattr(original, "__shekel_original__")
    # Another shape is not a LlamaIndex this package supports (the kit warns of those): left.
    if _active[0] and inspect.iscoroutinefunction(original) and not wrapped:
        cls._call_tool = counted(original)


def counted(original: CallTool) -> CallTool:
    @functools.wraps(original)
    async def _call_tool(self: Any, ctx: Any, tool: Any, tool_input: dict[str, Any]) -> Any:
        payer = _spans.payer_here()
        if payer is None:
            return await original(self, ctx, tool, tool_input)
        name = getattr(tool.metadata, "name", None) or "tool"
        with payer.tool_call(name, arguments=tool_input) as call:
            output = await original(self, ctx, tool, tool_input)
            if getattr(output, "is_error", False):
                call.release()  # the tool failed: LlamaIndex gives the model its error
        return output

    _call_tool.__shekel_original__ = original  # type: ignore[attr-defined]
    return _call_tool
