"""What shekel-llamaindex puts into LlamaIndex, once per process, when LlamaIndex is imported.

- a span handler and an event handler on the root instrumentation dispatcher, which sees
  every component, including those built before a budget was entered;
- a check before every LLM and embedding call, in ``CallbackManager.on_event_start``: the
  one place LlamaIndex calls for every model call, before it runs, whose exceptions reach the
  caller (the dispatcher swallows whatever its handlers raise);
- a count before every tool call of a workflow agent (``_tools``).

Outside a budget each of them costs a context-variable read and a dictionary lookup.
"""

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
from llama_index.core.instrumentation.span import BaseSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index_instrumentation import get_dispatcher

from shekel import BudgetExceededError, current_budget

from . import _spans, _tools, _usage
from ._errors import LlamaIndexBudgetExceededError

_lock = threading.Lock()
_installed = False
_GATED = {CBEventType.LLM: "llm", CBEventType.EMBEDDING: "embedding"}


class ShekelSpanHandler(BaseSpanHandler[BaseSpan]):
    """Keeps the map from open spans to the budgets paying for them (see ``_spans``)."""

    @classmethod
    def class_name(cls) -> str:
        return "ShekelSpanHandler"

    def span_enter(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        parent_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        _spans.enter(id_, instance, parent_id)

    def span_exit(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        result: Any | None = None,
        **kwargs: Any,
    ) -> None:
        _spans.leave(id_, result)

    def span_drop(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> None:
        _spans.drop(id_)

    # LlamaIndex's span objects are not needed: the three methods above replace the ones
    # that would create and store them.
    def new_span(self, *args: Any, **kwargs: Any) -> BaseSpan | None:
        return None

    def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> BaseSpan | None:
        return None

    def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> BaseSpan | None:
        return None


class ShekelEventHandler(BaseEventHandler):
    """Records the usage of LLM and embedding calls the interceptor did not see."""

    @classmethod
    def class_name(cls) -> str:
        return "ShekelEventHandler"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, LLMChatEndEvent):
            text = _usage.messages_text(event.messages)
            _usage.llm_ended(event.span_id, text, event.response)
        elif isinstance(event, LLMCompletionEndEvent):
            _usage.llm_ended(event.span_id, event.prompt, event.response)
        elif isinstance(event, EmbeddingEndEvent):
            _usage.embedding_ended(event.span_id, event.chunks)


def check_before_call(event: str) -> None:
    """Raise ``LlamaIndexBudgetExceededError`` if the budget paying for a model call made
    here has no room for it."""
    span = _spans.current_span()
    payer = span.payer if span is not None else current_budget()
    if payer is None:
        return
    try:
        payer.check()
    except BudgetExceededError as refused:
        step = payer.full_name if span is not None and span.step is not None else None
        raise LlamaIndexBudgetExceededError(refused, step=step, event=event) from refused


def _gate(original: Any) -> Any:
    @functools.wraps(original)
    def on_event_start(
        self: CallbackManager,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str | None = None,
        parent_id: str | None = None,
        **kwargs: Any,
    ) -> str:
        event = _GATED.get(event_type)
        if event is not None:
            check_before_call(event)
        return original(self, event_type, payload, event_id, parent_id, **kwargs)  # type: ignore[no-any-return]

    on_event_start.__shekel_original__ = original  # type: ignore[attr-defined]
    return on_event_start


def install() -> None:
    """Register the handlers and the check (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        root = get_dispatcher()
        root.add_span_handler(ShekelSpanHandler())
        root.add_event_handler(ShekelEventHandler())
        if not hasattr(CallbackManager.on_event_start, "__shekel_original__"):
            CallbackManager.on_event_start = _gate(CallbackManager.on_event_start)  # type: ignore[method-assign]
        _tools.install()
        _installed = True
