"""The span processor that notes LLM-call spans as they start (see ``_spans``).

Imported only to attach it to an SDK tracer provider: the package itself needs only the API.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from ._spans import is_llm_call, note_ended, note_open, note_started


class LlmSpanFinder(SpanProcessor):
    """Notes, in the starting thread's or task's context, every span that is one model call,
    and every open span by its id. Costs a few dictionary operations per span."""

    def __init__(self) -> None:
        self.enabled = True

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if not self.enabled:
            return
        note_open(span)
        attributes = span.attributes
        if attributes and is_llm_call(attributes):
            note_started(span)

    def on_end(self, span: ReadableSpan) -> None:
        note_ended(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def attach(tracer_provider: Any) -> LlmSpanFinder | None:
    """Add a finder to ``tracer_provider`` if it takes span processors (the SDK's does)."""
    add = getattr(tracer_provider, "add_span_processor", None)
    if add is None:
        return None
    finder = LlmSpanFinder()
    add(finder)
    return finder
