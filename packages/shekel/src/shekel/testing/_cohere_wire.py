"""Cohere's v2 wire format: /v2/chat (JSON, or server-sent events with ``"stream": true``),
/v2/embed and Cohere's error object.

Usage comes twice, as Cohere sends it: ``billed_units`` (the reply's ``input_tokens`` and
``output_tokens``, what is charged) and ``tokens`` (the same plus the model's own system
preamble on the input side, which Cohere does not charge). A ``max_tokens`` above the model's
maximum is capped at it, not refused, as the real API does; one that is not an integer >= 1 is
refused (the real API's exact wording is not reproduced).
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from shekel._output_limits import listed_max_output
from shekel.testing._common import (
    JSON,
    Event,
    Rejection,
    Turn,
    dumps,
    is_int,
    last_user_text,
    model_name,
    new_id,
    sse,
    vector_of,
)

PREAMBLE_TOKENS = 160
"""Input tokens of the system preamble Cohere adds to every chat: in ``tokens``, not billed."""


def max_tokens(body: JSON) -> int | None:
    """The output limit the model works to: the request's, capped at the model's maximum."""
    value = body.get("max_tokens")
    if not is_int(value):
        return None
    model = model_name(body)
    most = listed_max_output(model) if model is not None else None
    return value if most is None else min(value, most)


def check(body: JSON) -> Rejection | None:
    if not model_name(body):
        return Rejection("invalid request: model must be specified")
    value = body.get("max_tokens")
    if value is not None and (not is_int(value) or value < 1):
        return Rejection(f"invalid request: max_tokens must be a positive integer, got {value}")
    return None


def embed_check(body: JSON) -> Rejection | None:
    if not model_name(body):
        return Rejection("invalid request: model must be specified")
    return None


def echo_text(body: JSON) -> str | None:
    return last_user_text(body.get("messages"))


def _usage(turn: Turn) -> JSON:
    usage: JSON = {
        "billed_units": {"input_tokens": turn.input_tokens, "output_tokens": turn.output_tokens},
        "tokens": {
            "input_tokens": turn.input_tokens + PREAMBLE_TOKENS,
            "output_tokens": turn.output_tokens,
        },
    }
    if turn.cached_input_tokens:
        usage["cached_tokens"] = turn.cached_input_tokens
    return usage


def _finish_reason(turn: Turn) -> str:
    if turn.truncated:
        return "MAX_TOKENS"
    return "TOOL_CALL" if turn.tool_calls else "COMPLETE"


def _tool_calls(turn: Turn) -> list[JSON]:
    return [
        {
            "id": ident,
            "type": "function",
            "function": {"name": call.name, "arguments": dumps(call.arguments)},
        }
        for call, ident in zip(turn.tool_calls, turn.tool_ids(""), strict=True)
    ]


def chat(body: JSON, turn: Turn) -> JSON:
    """A ``V2ChatResponse``: the text as content, or (asking for tools) as the tool plan."""
    message: JSON = {"role": "assistant"}
    if turn.tool_calls:
        if turn.text:
            message["tool_plan"] = turn.text
        message["tool_calls"] = _tool_calls(turn)
    else:
        message["content"] = [{"type": "text", "text": turn.text}]
    return {
        "id": new_id(""),
        "message": message,
        "finish_reason": _finish_reason(turn),
        "usage": _usage(turn),
    }


def _event(kind: Any, data: JSON) -> Event:
    return sse(kind, data, name=data["type"])


def chat_stream(body: JSON, turn: Turn) -> list[Event]:
    """``message-start``, the text as content (or tool-plan) deltas, the tool calls,
    ``message-end`` with the usage, and ``[DONE]``."""
    start = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
    events = [
        _event("pre", {"id": new_id(""), "type": "message-start", "delta": {"message": start}})
    ]
    if turn.tool_calls:
        events += [
            _event("content", {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": p}}})
            for p in turn.chunks
        ]
        for index, call in enumerate(_tool_calls(turn)):
            arguments = call["function"]["arguments"]
            opened = {**call, "function": {**call["function"], "arguments": ""}}
            for kind, delta in (
                ("tool-call-start", {"message": {"tool_calls": opened}}),
                (
                    "tool-call-delta",
                    {"message": {"tool_calls": {"function": {"arguments": arguments}}}},
                ),
                ("tool-call-end", None),
            ):
                data: JSON = {"type": kind, "index": index}
                if delta is not None:
                    data["delta"] = delta
                events.append(_event("post", data))
    else:
        content = {"message": {"content": {"type": "text", "text": ""}}}
        events.append(_event("pre", {"type": "content-start", "index": 0, "delta": content}))
        events += [
            _event(
                "content",
                {
                    "type": "content-delta",
                    "index": 0,
                    "delta": {"message": {"content": {"text": piece}}},
                },
            )
            for piece in turn.chunks
        ]
        events.append(_event("post", {"type": "content-end", "index": 0}))
    end = {"finish_reason": _finish_reason(turn), "usage": _usage(turn)}
    events.append(_event("post", {"type": "message-end", "delta": end}))
    events.append(sse("post", "[DONE]"))
    return events


def _inputs(body: JSON) -> list[Any]:
    for key in ("texts", "images", "inputs"):
        found = body.get(key)
        if isinstance(found, list):
            return found
    return []


def _embedding(kind: str, vector: list[float]) -> Any:
    if kind == "int8":
        return [round(v * 127) for v in vector]
    if kind == "uint8":
        return [round((v + 1) * 127.5) for v in vector]
    if kind in ("binary", "ubinary"):
        bits = [int(v >= 0) for v in vector]
        packed = [int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8)]
        return packed if kind == "ubinary" else [b - 128 for b in packed]
    if kind == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


def embed(body: JSON, turn: Turn) -> JSON:
    """An ``EmbedByTypeResponse``: one vector per input for each of ``embedding_types``."""
    items = _inputs(body)
    kinds = body.get("embedding_types") or ["float"]
    vectors = [vector_of(repr(item), 8) for item in items]
    response: JSON = {
        "id": new_id(""),
        "embeddings": {kind: [_embedding(kind, v) for v in vectors] for kind in kinds},
        "meta": {
            "api_version": {"version": "2"},
            "billed_units": {"input_tokens": turn.input_tokens},
        },
        "response_type": "embeddings_by_type",
    }
    if isinstance(body.get("texts"), list):
        response["texts"] = body["texts"]
    return response


def error_body(status: int, message: str, rejection: Rejection | None = None) -> JSON:
    """Cohere's error object: an id and the message."""
    return {"id": new_id(""), "message": message}
