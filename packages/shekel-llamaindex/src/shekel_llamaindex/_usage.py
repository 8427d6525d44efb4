"""Usage of models the HTTP interception does not see, recorded from LlamaIndex's end events.

A call is recorded once: not at all when one of its requests went out through the intercepted
SDKs (the interceptor recorded it), else at the first end event of its call (the innermost of
the nested events a ``CustomLLM`` fires), with the provider's response id when the response
carries one, so that the core counts it once even if the interceptor saw it after all.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Final

from shekel import (
    Budget,
    BudgetExceededError,
    BudgetStateError,
    CallRecord,
    UsageMissingWarning,
    current_budget,
)

from . import _spans

SOURCE: Final = "llamaindex"

_INPUT: Final = ("prompt_tokens", "input_tokens", "prompt_token_count")
_OUTPUT: Final = ("completion_tokens", "output_tokens", "candidates_token_count")
_CACHED: Final = ("cached_tokens", "cache_read_input_tokens", "cached_content_token_count")


def llm_ended(span_id: str | None, text_in: str, response: Any) -> None:
    """An LLM call's end event: record its usage unless the interceptor did, or it was
    recorded already at a nested event of the same call."""
    span = _spans.find(span_id)
    streamed = _spans.stream_done(span_id)
    if span is None or span.call is None or span.call.sdk or span.call.reported:
        return
    span.call.reported = True
    if streamed and _seen(response):
        return
    payer = _payer(span)
    raw = getattr(response, "raw", None)
    usage = read_usage(raw, getattr(response, "additional_kwargs", None))
    model = _text_field(raw, "model") or span.model or "unknown"
    call_id = _text_field(raw, "id")
    if usage is not None:
        _record(payer, model, *usage, call_id=call_id)
        return
    output = _response_text(response)
    record = _record(
        payer,
        model,
        count_tokens(text_in),
        count_tokens(output),
        0,
        call_id=call_id,
        estimated=True,
    )
    if record is not None and record.source == SOURCE:
        _warn_estimated(
            f"LlamaIndex model {model!r} reported no token usage: its call was recorded with "
            "token counts estimated by LlamaIndex's tokenizer. A model that returns "
            "raw={'usage': {'prompt_tokens': ..., 'completion_tokens': ...}} is recorded exactly"
        )


def embedding_ended(span_id: str | None, chunks: Iterable[str]) -> None:
    """An embedding batch's end event: embedding models report no usage in LlamaIndex's
    events, so a batch the interceptor did not see is recorded from its input tokens,
    estimated."""
    span = _spans.find(span_id)
    if span is None or span.call is None or span.call.sdk:
        return
    model = span.model or "unknown"
    tokens = sum(count_tokens(chunk) for chunk in chunks)
    if _record(_payer(span), model, tokens, 0, 0, call_id=None, estimated=True) is not None:
        _warn_estimated(
            f"LlamaIndex embedding model {model!r} does not go through the openai or "
            "anthropic SDK, and LlamaIndex reports no token counts for embeddings: its input "
            "tokens were estimated with LlamaIndex's tokenizer"
        )


_RECENT_LIMIT: Final = 256
_recent: OrderedDict[int, object] = OrderedDict()
_recent_lock = threading.Lock()


def _seen(response: Any) -> bool:
    """True if this last response of a stream (or its ``raw``) was recorded already. A
    ``CustomLLM``'s ``astream_chat`` starts its ``stream_chat`` only when the stream is read,
    outside the span that would link the two calls: both end with the same response object.
    The newest responses are held (not just their ids), so an id cannot be reused meanwhile.
    """
    keys = [obj for obj in (response, getattr(response, "raw", None)) if obj is not None]
    with _recent_lock:
        if any(_recent.get(id(obj)) is obj for obj in keys):
            return True
        for obj in keys:
            _recent[id(obj)] = obj
        while len(_recent) > _RECENT_LIMIT:
            _recent.popitem(last=False)
    return False


def _payer(span: _spans.Span) -> Budget:
    streaming = _spans.STREAM_PAYER.get()
    return streaming.payer if streaming is not None else span.payer


def _record(
    payer: Budget,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cached: int,
    *,
    call_id: str | None,
    estimated: bool = False,
) -> CallRecord | None:
    """Record on ``payer``; spend is never dropped: if a child of ``payer`` is active here,
    it is recorded on that child (it reaches ``payer`` as its ancestor)."""
    kwargs: dict[str, Any] = {
        "model": model,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cached_input_tokens": cached,
        "call_id": call_id,
        "source": SOURCE,
        "estimated": estimated,
    }
    try:
        return payer.record(**kwargs)
    except BudgetExceededError as exceeded:  # recorded; the next call is stopped before it runs
        return exceeded.call
    except BudgetStateError:
        here = current_budget()
        if here is None or here is payer:
            raise
        try:
            return here.record(**kwargs)
        except BudgetExceededError as exceeded:
            return exceeded.call


def read_usage(raw: Any, extra: Any = None) -> tuple[int, int, int] | None:
    """``(input, output, cached input)`` tokens from a response's ``raw`` (its ``usage`` or
    ``usage_metadata``, a mapping or an object) or ``additional_kwargs``; ``None`` unless the
    input and output counts are whole numbers >= 0."""
    for source in (_field(raw, "usage"), _field(raw, "usage_metadata"), extra):
        if source is None:
            continue
        found_in = _count(source, _INPUT)
        found_out = _count(source, _OUTPUT)
        if found_in is None or found_out is None:
            continue
        cached = _count(source, _CACHED)
        if cached is None:
            cached = _count(_field(source, "prompt_tokens_details"), _CACHED)
        return found_in, found_out, min(cached or 0, found_in)
    return None


def _field(source: Any, name: str) -> Any:
    if source is None:
        return None
    if isinstance(source, Mapping):
        return source.get(name)
    return getattr(source, name, None)


def _count(source: Any, names: tuple[str, ...]) -> int | None:
    for name in names:
        value = _field(source, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if value < 0 or value != int(value):
            return None
        return int(value)
    return None


def _text_field(source: Any, name: str) -> str | None:
    value = _field(source, name)
    return value if isinstance(value, str) and value else None


def _response_text(response: Any) -> str:
    text = getattr(response, "text", None)
    if isinstance(text, str):
        return text
    message = getattr(response, "message", None)
    content = getattr(message, "content", None)
    return content if isinstance(content, str) else ""


def messages_text(messages: Iterable[Any]) -> str:
    """The text of chat messages, as the estimate counts it."""
    parts = []
    for message in messages:
        content = getattr(message, "content", None)
        parts.append(
            f"{getattr(message, 'role', '')}: {content if isinstance(content, str) else ''}"
        )
    return "\n".join(parts)


def count_tokens(text: str) -> int:
    """Tokens of ``text`` by LlamaIndex's tokenizer (``Settings.tokenizer``: tiktoken's
    ``cl100k_base`` unless the user set another)."""
    if not text:
        return 0
    from llama_index.core import Settings

    return len(Settings.tokenizer(text))


def _warn_estimated(message: str) -> None:
    warnings.warn(message, UsageMissingWarning, stacklevel=3)
