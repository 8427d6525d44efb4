"""What the integration puts into LlamaIndex, and takes back: a span and an event handler on
the root dispatcher (it sees every component, but swallows their errors); a check before model
calls, where LlamaIndex lets errors through; a count before agents' tool calls; the router."""

from __future__ import annotations

import functools
import inspect
import threading
from typing import Any

from llama_index.core.callbacks.base import CallbackManager
from llama_index.core.callbacks.schema import CBEventType
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.embedding import EmbeddingEndEvent
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent, LLMCompletionEndEvent
from llama_index.core.instrumentation.span_handlers import NullSpanHandler
from llama_index_instrumentation import get_dispatcher

from shekel import BudgetExceededError
from shekel.integration import framework_error, route_calls, stop_routing, when_imported

from . import LlamaIndexBudgetExceededError, _spans, _usage

_GATED = {CBEventType.LLM: "llm", CBEventType.EMBEDDING: "embedding"}
_lock = threading.Lock()
_installed: list[Any] = []  # the two handlers, while installed


class SpanHandler(NullSpanHandler):  # it makes no span objects: LlamaIndex's are not needed
    def span_enter(self, id_: str, *args: Any, **kwargs: Any) -> None:
        _spans.enter(id_, kwargs.get("instance"), kwargs.get("parent_id"))

    def span_exit(self, id_: str, *args: Any, **kwargs: Any) -> None:
        _spans.leave(id_, kwargs.get("result"))

    def span_drop(self, id_: str, *args: Any, **kwargs: Any) -> None:
        _spans.leave(id_, None)


class EventHandler(BaseEventHandler):
    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, LLMChatEndEvent):
            text = "\n".join(m.content for m in event.messages if isinstance(m.content, str))
            _usage.llm_ended(event.span_id, text, event.response)
        elif isinstance(event, LLMCompletionEndEvent):
            _usage.llm_ended(event.span_id, event.prompt, event.response)
        elif isinstance(event, EmbeddingEndEvent):
            _usage.embedding_ended(event.span_id, event.chunks)


def _gated(original: Any) -> Any:
    @functools.wraps(original)
    def on_event_start(self: CallbackManager, event_type: Any, *args: Any, **kwargs: Any) -> str:
        if event_type in _GATED and (payer := _spans.payer_here()) is not None:
            try:  # a model call: refused before it runs if the budget paying has no room
                payer.check()
            except BudgetExceededError as refused:
                error = framework_error(refused, LlamaIndexBudgetExceededError)
                error.step, error.event = payer.full_name, _GATED[event_type]
                raise error from None
        return original(self, event_type, *args, **kwargs)  # type: ignore[no-any-return]

    return on_event_start


def _count_tools(path: str) -> None:
    """A tool has no span or event: every agent runs one through ``_call_tool``, which turns
    its errors into an error output for the model."""
    cls = _spans.loaded(path)
    original = getattr(cls, "_call_tool", None)
    fits = inspect.iscoroutinefunction(original) and not hasattr(original, "__shekel_original__")
    if _installed and fits:  # another shape is no LlamaIndex this package supports: left alone
        cls._call_tool = _counted(original)


def _counted(original: Any) -> Any:
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


def install() -> None:
    with _lock:
        if _installed:
            return
        _installed[:] = [SpanHandler(), EventHandler()]
        get_dispatcher().add_span_handler(_installed[0])
        get_dispatcher().add_event_handler(_installed[1])
        CallbackManager.on_event_start = _gated(CallbackManager.on_event_start)  # type: ignore[method-assign]
        for path in _spans.AGENTS:
            module = "llama_index.core." + path.rpartition(".")[0]
            when_imported(module, functools.partial(_count_tools, path))
        route_calls(_spans.route, live=_spans.live)


def uninstall() -> None:
    with _lock:
        if not _installed:
            return
        root = get_dispatcher()
        root.span_handlers = [h for h in root.span_handlers if h is not _installed[0]]
        root.event_handlers = [h for h in root.event_handlers if h is not _installed[1]]
        CallbackManager.on_event_start = CallbackManager.on_event_start.__wrapped__  # type: ignore[attr-defined, method-assign]
        for cls in map(_spans.loaded, _spans.AGENTS):
            original = getattr(getattr(cls, "_call_tool", None), "__shekel_original__", None)
            if original is not None:
                cls._call_tool = original
        stop_routing(_spans.route)
        _installed.clear()
