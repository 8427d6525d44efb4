"""What the integration puts into LlamaIndex, and takes back: a span and an event handler on
the root dispatcher (which sees every component, even those built before a budget began), a
check before each model call, the agents' tool calls (``_tools``), and the router."""

from __future__ import annotations

import functools
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

from shekel import BudgetExceededError, current_budget
from shekel.integration import framework_error, route_calls, stop_routing

from . import LlamaIndexBudgetExceededError, _spans, _tools, _usage

_GATED = {CBEventType.LLM: "llm", CBEventType.EMBEDDING: "embedding"}
_lock = threading.Lock()
_installed: list[Any] = []  # the two handlers, while installed


class SpanHandler(NullSpanHandler):  # LlamaIndex's span objects are not needed: none are made
    def span_enter(self, id_: str, *args: Any, **kwargs: Any) -> None:
        _spans.enter(id_, kwargs.get("instance"), kwargs.get("parent_id"))

    def span_exit(self, id_: str, *args: Any, **kwargs: Any) -> None:
        _spans.leave(id_, kwargs.get("result"))

    def span_drop(self, id_: str, *args: Any, **kwargs: Any) -> None:
        _spans.drop(id_)


class EventHandler(BaseEventHandler):
    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, LLMChatEndEvent):
            _usage.llm_ended(event.span_id, _usage.messages_text(event.messages), event.response)
        elif isinstance(event, LLMCompletionEndEvent):
            _usage.llm_ended(event.span_id, event.prompt, event.response)
        elif isinstance(event, EmbeddingEndEvent):
            _usage.embedding_ended(event.span_id, event.chunks)


def check_before_call(event: str) -> None:
    """Refuse a model call whose paying budget has no room: before it runs, whatever the model
    (the dispatcher swallows what its handlers raise; ``CallbackManager.on_event_start`` is
    called before every model call and lets errors through)."""
    span = _spans.current_span()
    payer = span.payer if span is not None else current_budget()
    if payer is None:
        return
    try:
        payer.check()
    except BudgetExceededError as refused:
        error = framework_error(refused, LlamaIndexBudgetExceededError)
        error.step = payer.full_name if span is not None and span.step is not None else None
        error.event = event
        raise error from None


def _gate(original: Any) -> Any:
    @functools.wraps(original)
    def on_event_start(self: CallbackManager, event_type: Any, *args: Any, **kwargs: Any) -> str:
        if event_type in _GATED:
            check_before_call(_GATED[event_type])
        return original(self, event_type, *args, **kwargs)  # type: ignore[no-any-return]

    return on_event_start


def install() -> None:
    with _lock:
        if _installed:
            return
        _installed[:] = [SpanHandler(), EventHandler()]
        get_dispatcher().add_span_handler(_installed[0])
        get_dispatcher().add_event_handler(_installed[1])
        CallbackManager.on_event_start = _gate(CallbackManager.on_event_start)  # type: ignore[method-assign]
        _tools.install()
        route_calls(_spans.route)


def uninstall() -> None:
    with _lock:
        if not _installed:
            return
        root = get_dispatcher()
        root.span_handlers = [h for h in root.span_handlers if h is not _installed[0]]
        root.event_handlers = [h for h in root.event_handlers if h is not _installed[1]]
        CallbackManager.on_event_start = CallbackManager.on_event_start.__wrapped__  # type: ignore[attr-defined, method-assign]
        _tools.uninstall()
        stop_routing(_spans.route)
        _installed.clear()
