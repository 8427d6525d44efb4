"""Usage of models the HTTP interception did not see, from LlamaIndex's end events: once per
call (at its first end event, the innermost of a ``CustomLLM``'s nested ones; under the
response's id if any), as the model reports it, else as the kit estimates it."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from typing import Any, Final

from shekel import Budget, BudgetExceededError, BudgetStateError, current_budget
from shekel.integration import record_unreported

from . import _spans

SOURCE: Final = "llamaindex"
_SDKS: Final = ("openai.", "anthropic.")  # the modules of the intercepted SDKs' responses
_COUNTS: Final = (  # input, output, cached input: OpenAI, Anthropic, Gemini names
    ("prompt_tokens", "completion_tokens", "cached_tokens"),
    ("input_tokens", "output_tokens", "cache_read_input_tokens"),
    ("prompt_token_count", "candidates_token_count", "cached_content_token_count"),
)


def llm_ended(span_id: str | None, prompt: str, response: Any) -> None:
    span = _spans.find(span_id)
    streamed = _spans.stream_done(span_id)
    if span is None or span.call is None or span.call.sdk or span.call.reported:
        return
    span.call.reported = True
    raw = getattr(response, "raw", None)
    if type(raw).__module__.startswith(_SDKS) or (streamed and _seen(response)):
        return  # an SDK stream sends its request once read, after the span ended
    model = _text(raw, "model") or span.model or "unknown"
    call_id = _text(raw, "id")
    usage = read_usage(raw, getattr(response, "additional_kwargs", None))
    if usage is not None:
        _report(span, Budget.record, model=model, **usage, call_id=call_id, source=SOURCE)
        return
    reply = getattr(response, "text", None) or getattr(response, "message", None)
    reply = reply if isinstance(reply, str) else getattr(reply, "content", None) or ""
    _report(span, record_unreported, model, prompt, reply, source=SOURCE, call_id=call_id)


def embedding_ended(span_id: str | None, chunks: Iterable[str]) -> None:
    span = _spans.find(span_id)
    if span is not None and span.call is not None and not span.call.sdk:
        text, model = "\n".join(chunks), span.model or "unknown"
        _report(span, record_unreported, model, text, "", source=SOURCE)


def _report(span: _spans.Span, record: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    """Spend is never dropped: over a cap it stands (the next call is refused); on a payer
    locked by a child active here, it goes to that child."""
    payer = (_spans.STREAM_PAYER.get() or span).payer
    try:
        record(payer, *args, **kwargs)
    except BudgetExceededError:
        pass
    except BudgetStateError:
        here = current_budget()
        if here is None or here is payer:
            raise
        with suppress(BudgetExceededError):
            record(here, *args, **kwargs)


_streamed: OrderedDict[int, object] = OrderedDict()  # the newest, held: their ids stay theirs
_streamed_lock = threading.Lock()


def _seen(response: Any) -> bool:
    """True if this last response of a stream (or its ``raw``) was recorded already: a
    ``CustomLLM``'s ``astream_chat`` runs its ``stream_chat`` outside its span; both end so."""
    keys = [obj for obj in (response, getattr(response, "raw", None)) if obj is not None]
    with _streamed_lock:
        if any(_streamed.get(id(obj)) is obj for obj in keys):
            return True
        _streamed.update((id(obj), obj) for obj in keys)
        while len(_streamed) > 256:
            _streamed.popitem(last=False)
    return False


def read_usage(raw: Any, extra: Any = None) -> dict[str, Any] | None:
    """The token counts in a response's ``raw`` (``usage`` or ``usage_metadata``) or
    ``additional_kwargs``, as ``Budget.record`` takes them; ``None`` without whole counts."""
    for source in (_field(raw, "usage"), _field(raw, "usage_metadata"), extra):
        for names in _COUNTS:
            inp, out, cached = (_field(source, name) for name in names)
            if _whole(inp) and _whole(out):
                cached = min(cached, inp) if _whole(cached) else 0
                return {"input_tokens": inp, "output_tokens": out, "cached_input_tokens": cached}
    return None


def _whole(count: object) -> bool:
    return type(count) is int and count >= 0


def _field(source: Any, name: str) -> Any:
    return source.get(name) if isinstance(source, Mapping) else getattr(source, name, None)


def _text(source: Any, name: str) -> str | None:
    value = _field(source, name)
    return value if isinstance(value, str) and value else None
