"""Gemini wire format (Gemini API and Vertex AI): generateContent, streamGenerateContent,
embeddings, countTokens and Google's error object.

The model is named in the URL path; the server puts it in the body under ``"model"`` before
these functions see it.
"""

from __future__ import annotations

from typing import Any

from shekel._output_limits import listed_max_output
from shekel.testing._common import (
    JSON,
    Event,
    Rejection,
    Turn,
    content_text,
    dumps,
    is_int,
    model_name,
    new_id,
    vector_of,
)


def _config(body: JSON) -> JSON:
    config = body.get("generationConfig")
    return config if isinstance(config, dict) else {}


def max_tokens(body: JSON) -> int | None:
    value = _config(body).get("maxOutputTokens")
    return value if is_int(value) else None


def check(body: JSON) -> Rejection | None:
    """What the real API refuses about ``maxOutputTokens``: not an integer, below 1, or above
    the model's maximum (for models in shekel's table)."""
    value = _config(body).get("maxOutputTokens")
    if value is None:
        return None
    if not is_int(value):
        return Rejection(
            f"Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), {dumps(value)}"
        )
    model = model_name(body) or "the model"
    most = listed_max_output(model)
    if value < 1 or (most is not None and value > most):
        top = most + 1 if most is not None else "the model's limit"
        return Rejection(
            f"The value of maxOutputTokens ({value}) for {model} is outside the supported "
            f"range, from 1 (inclusive) to {top} (exclusive). Lower it and try again."
        )
    return None


def echo_text(body: JSON) -> str | None:
    contents = body.get("contents")
    if not isinstance(contents, list):
        return None
    for content in reversed(contents):
        if isinstance(content, dict) and content.get("role", "user") == "user":
            return content_text(content.get("parts"))
    return None


def _usage(turn: Turn, output: int | None = None) -> JSON:
    done = output is None
    thoughts = turn.reasoning_tokens if done else 0
    candidates = (turn.output_tokens - thoughts) if done else output
    usage: JSON = {
        "promptTokenCount": turn.input_tokens,
        "candidatesTokenCount": candidates,
        "totalTokenCount": turn.input_tokens + (candidates or 0) + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": turn.input_tokens}],
    }
    if turn.cached_input_tokens:
        usage["cachedContentTokenCount"] = turn.cached_input_tokens
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def _finish_reason(turn: Turn) -> str:
    return "MAX_TOKENS" if turn.truncated else "STOP"


def _tool_parts(turn: Turn) -> list[JSON]:
    return [
        {"functionCall": {"id": ident, "name": call.name, "args": call.arguments}}
        for call, ident in zip(turn.tool_calls, turn.tool_ids("call_"), strict=True)
    ]


def _response(body: JSON, parts: list[JSON], usage: JSON, finish: str | None, ident: str) -> JSON:
    candidate: JSON = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model_name(body) or "unknown-model",
        "responseId": ident,
    }


def generate(body: JSON, turn: Turn) -> JSON:
    """A ``GenerateContentResponse``."""
    parts: list[JSON] = [{"text": turn.text}] if turn.text or not turn.tool_calls else []
    return _response(
        body, parts + _tool_parts(turn), _usage(turn), _finish_reason(turn), new_id("")
    )


def _sse(kind: Any, data: JSON) -> Event:
    return Event(kind, f"data: {dumps(data)}\r\n\r\n".encode())


def generate_stream(body: JSON, turn: Turn) -> list[Event]:
    """``streamGenerateContent?alt=sse``: a response per text piece, each with the usage so
    far; the last one says why generation stopped and carries the final figures."""
    ident = new_id("")
    events = []
    for index, piece in enumerate(turn.chunks, start=1):
        chunk = _response(body, [{"text": piece}], _usage(turn, index), None, ident)
        events.append(_sse("content", chunk))
    last = _response(body, _tool_parts(turn), _usage(turn), _finish_reason(turn), ident)
    if not last["candidates"][0]["content"]["parts"]:
        last["candidates"][0]["content"]["parts"] = [{"text": ""}]
    events.append(_sse("post", last))
    return events


def _texts(body: JSON) -> list[Any]:
    requests = body.get("requests")
    if isinstance(requests, list):
        return [r.get("content") if isinstance(r, dict) else r for r in requests]
    return [body.get("content")]


def embed(body: JSON, turn: Turn) -> JSON:
    """``embedContent`` (one ``embedding``) or ``batchEmbedContents`` (``embeddings``)."""
    found = [{"values": vector_of(repr(text), 8)} for text in _texts(body)]
    usage = {"promptTokenCount": turn.input_tokens, "totalTokenCount": turn.input_tokens}
    if "requests" in body:
        return {"embeddings": found, "usageMetadata": usage}
    return {"embedding": found[0], "usageMetadata": usage}


def count_tokens(body: JSON) -> JSON:
    texts = [content_text(c.get("parts")) for c in body.get("contents", []) if isinstance(c, dict)]
    return {"totalTokens": max(sum(len(t) for t in texts) // 4, 1)}


_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_body(status: int, message: str, rejection: Rejection | None = None) -> JSON:
    """Google's error object."""
    kind = _STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    return {"error": {"code": status, "message": message, "status": kind}}
