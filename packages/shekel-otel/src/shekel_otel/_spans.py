"""Spend on spans: the span of the call when an LLM instrumentation made one, else the current
span.

shekel-otel makes no span of its own. LLM instrumentations (OpenLLMetry, OpenInference, the
OpenTelemetry GenAI ones) start a span for each SDK call before the request goes out, but not
all of them make it the current span (the Anthropic ones do not). So a span processor on the
tracer provider notes every LLM-call span started in a thread or task, in a context variable
of that thread or task; when shekel records the call, which happens in the code that made it,
the newest of those spans still open there is the call's span. Without one, the current span
gets the figures, if it is recording. A current span that is not recording but stands for one
that is (a library tracing through the API's placeholder provider makes its span current with
its parent's identity) is looked up among the open spans the processor saw.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import trace

from . import _names as n

if TYPE_CHECKING:
    from shekel import CallRecord

_OPEN: Final[ContextVar[tuple[weakref.ref[Any], ...]]] = ContextVar(
    "shekel_otel_open_llm_spans", default=()
)
"""LLM-call spans started in this context, oldest first (weak: ended spans go away)."""

_KEPT: Final = 8
"""At most this many spans are remembered per context (the newest ones)."""

_BY_ID: Final[dict[int, weakref.ref[Any]]] = {}
"""Every open span the processor saw, by span id."""

_SWEEP_AT: Final = 65_536
"""Past this many, spans that were never ended and are gone are dropped from ``_BY_ID``."""

_LLM_OPERATIONS: Final = frozenset(
    {"chat", "text_completion", "embeddings", "generate_content", "completion", "embedding"}
)
_LLM_KINDS: Final = frozenset({"LLM", "EMBEDDING"})

_MODEL_KEYS: Final = (n.REQUEST_MODEL, "llm.model_name", "llm.request.model")


def is_llm_call(attributes: Mapping[str, object]) -> bool:
    """Whether a span's attributes at its start say it is one call to a model.

    The GenAI conventions' ``gen_ai.operation.name`` (agent and tool operations are not
    calls), OpenInference's ``openinference.span.kind``, and OpenLLMetry's older
    ``llm.request.type``.
    """
    operation = attributes.get(n.OPERATION)
    if operation is not None:
        return operation in _LLM_OPERATIONS
    kind = attributes.get("openinference.span.kind")
    if kind is not None:
        return kind in _LLM_KINDS
    return "llm.request.type" in attributes or "gen_ai.system" in attributes


def note_started(span: Any) -> None:
    """Remember an LLM-call span started in the current context (called by the processor)."""
    kept = [ref for ref in _OPEN.get()[-(_KEPT - 1) :] if _is_open(ref())]
    kept.append(weakref.ref(span))
    _OPEN.set(tuple(kept))


def note_open(span: Any) -> None:
    """Remember a span of the processor's provider until it ends."""
    _BY_ID[span.get_span_context().span_id] = weakref.ref(span)
    if len(_BY_ID) > _SWEEP_AT:
        for span_id, ref in list(_BY_ID.items()):
            if ref() is None:
                _BY_ID.pop(span_id, None)


def note_ended(span: Any) -> None:
    context = span.get_span_context()
    if context is not None:
        _BY_ID.pop(context.span_id, None)


def _is_open(span: Any) -> bool:
    return span is not None and span.is_recording()


def span_for(model: str | None) -> Any | None:
    """The span to write on: the newest open LLM-call span of this context (one that asked
    for ``model`` first), else the current span if it is recording."""
    newest = None
    for ref in reversed(_OPEN.get()):
        span = ref()
        if not _is_open(span):
            continue
        if model is None:
            return span
        attributes = getattr(span, "attributes", None) or {}
        if any(attributes.get(key) == model for key in _MODEL_KEYS):
            return span
        if newest is None:
            newest = span
    if newest is not None:
        return newest
    current = trace.get_current_span()
    if current.is_recording():
        return current
    ref = _BY_ID.get(current.get_span_context().span_id)
    stands_for = None if ref is None else ref()
    return stands_for if _is_open(stands_for) else None


class Spans:
    """Writes calls, refusals, warnings and fallbacks on spans. ``enabled`` turns it off."""

    def __init__(self) -> None:
        self.enabled = True
        self._lock = threading.Lock()

    def record_call(self, call: CallRecord) -> None:
        span = span_for(call.model)
        if span is None:
            return
        # Totals of the calls recorded while this span was theirs: one call on an LLM
        # instrumentation's span, any number on a span of the application.
        with self._lock:
            before = getattr(span, "attributes", None) or {}
            cost = before.get(n.SPAN_COST, 0.0)
            calls = before.get(n.SPAN_CALLS, 0)
            figures: dict[str, Any] = {
                n.SPAN_COST: (cost if isinstance(cost, float) else 0.0) + call.cost_usd,
                n.SPAN_CALLS: (calls if isinstance(calls, int) else 0) + 1,
            }
            if before.get(n.BUDGET_PATH) != call.budget_path:
                figures[n.BUDGET_PATH] = call.budget_path
            if call.estimated:
                figures[n.SPAN_ESTIMATED] = True
            if not call.priced:
                figures[n.SPAN_PRICED] = False
            span.set_attributes(figures)

    def event(self, name: str, attributes: Mapping[str, Any], model: str | None = None) -> None:
        span = span_for(model)
        if span is not None:
            span.add_event(name, dict(attributes))
