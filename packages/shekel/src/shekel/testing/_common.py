"""Pieces shared by both wire dialects: resolving a reply, word chunks, SSE framing."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard

from shekel.testing._model import Reply, ToolCall

JSON = dict[str, Any]

# A word together with the whitespace around it; the leading part only matters for the
# first word, since every later match starts right where the previous one's spaces ended.
_WORD = re.compile(r"\s*\S+\s*")


def split_chunks(text: str) -> list[str]:
    """Split ``text`` into stream chunks, one word each with its following whitespace."""
    return _WORD.findall(text)


@dataclass(frozen=True, slots=True)
class Turn:
    """What one generation request gets, once defaults and ``max_tokens`` are applied."""

    text: str
    chunks: list[str]
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    truncated: bool
    tool_calls: tuple[ToolCall, ...] = ()

    def tool_ids(self, prefix: str) -> list[str]:
        """Each tool call's id, made up (with ``prefix``) where the reply left it out."""
        return [call.id or new_id(prefix) for call in self.tool_calls]


def resolve_turn(
    reply: Reply,
    *,
    fallback_text: str,
    default_input_tokens: int,
    default_output_tokens: int,
    max_tokens: int | None,
) -> Turn:
    """Fill in a reply's open fields and cut it down to ``max_tokens`` if it is too long."""
    # a reply that only asks for tools says nothing
    silent = "" if reply.tool_calls else fallback_text
    text = silent if reply.text is None else reply.text
    chunks = split_chunks(text)
    if reply.output_tokens is not None:
        output_tokens = reply.output_tokens
    elif reply.text is not None:
        output_tokens = len(chunks)
    else:
        output_tokens = default_output_tokens
    input_tokens = default_input_tokens if reply.input_tokens is None else reply.input_tokens
    reasoning_tokens = reply.reasoning_tokens
    truncated = (
        not reply.ignore_max_tokens and max_tokens is not None and output_tokens > max_tokens
    )
    if truncated:
        assert max_tokens is not None
        output_tokens = max(max_tokens, 0)
        text = "".join(chunks[:output_tokens]).rstrip()
        chunks = split_chunks(text)
        reasoning_tokens = min(reasoning_tokens, output_tokens)
    return Turn(
        text=text,
        chunks=chunks,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cached_input_tokens=reply.cached_input_tokens,
        cache_write_tokens=reply.cache_write_tokens,
        reasoning_tokens=reasoning_tokens,
        truncated=truncated,
        tool_calls=() if truncated else reply.tool_calls,
    )


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why the real API would refuse a request (HTTP 400), worded as that API words it.

    ``param`` and ``code`` fill OpenAI's error fields of those names; Anthropic's error
    body has only the message.
    """

    message: str
    param: str | None = None
    code: str | None = None


def is_int(value: object) -> TypeGuard[int]:
    """A JSON integer (``true`` and ``false`` are not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def model_name(body: JSON) -> str | None:
    model = body.get("model")
    return model if isinstance(model, str) else None


def int_field(body: JSON, *names: str) -> int | None:
    """The smallest integer among ``body[name]`` for the given names (bools are ignored)."""
    values = [value for name in names if is_int(value := body.get(name))]
    return min(values) if values else None


def content_text(content: object) -> str:
    """Plain text of a message ``content``: a string, or a list of text-bearing parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
        return " ".join(texts)
    return ""


def last_user_text(messages: object) -> str | None:
    """Text of the last ``role == "user"`` item of a message list, if there is one."""
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return None


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


EventKind = Literal["pre", "content", "post"]


@dataclass(frozen=True, slots=True)
class Event:
    """One server-sent event, already framed (``event:`` line, ``data:`` line, blank line).

    ``kind`` tells the server where the event sits: before the text (``pre``), a text
    delta (``content``), or after the text (``post``); delays and drops key off it.
    """

    kind: EventKind
    payload: bytes


def sse(kind: EventKind, data: object, *, name: str | None = None) -> Event:
    """Frame ``data`` (a JSON value or a raw string) as one SSE event."""
    text = data if isinstance(data, str) else dumps(data)
    head = f"event: {name}\n" if name is not None else ""
    return Event(kind, f"{head}data: {text}\n\n".encode())


def vector_of(item: object, dimensions: int) -> list[float]:
    """A deterministic vector in [-1, 1); each value k/128 - 1 is exact in float32."""
    seed = content_text(item) if isinstance(item, str) else repr(item)
    raw = b""
    counter = 0
    while len(raw) < dimensions:
        raw += hashlib.sha256(f"{counter}:{seed}".encode()).digest()
        counter += 1
    return [byte / 128 - 1 for byte in raw[:dimensions]]
