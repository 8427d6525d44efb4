"""The contract between the HTTP interceptor and one wire protocol.

An adapter recognises a request path, reads what it needs from the JSON request body, may
rewrite the body (fallback model, lowered output limit, streamed usage), and turns the
response, JSON or server-sent events, into a :class:`~shekel.TokenUsage`.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Final

from .._pricing import TokenUsage


@dataclass(frozen=True, slots=True)
class PathInfo:
    """What a protocol that names the model in the URL (Gemini, Bedrock) reads from the path."""

    model: str | None
    stream: bool


@dataclass(slots=True)
class RequestInfo:
    """What an adapter read from a request body."""

    model: str | None
    stream: bool
    max_output_tokens: int | None


class StreamTally(ABC):
    """Reads a server-sent-event stream as it passes, one batch of complete events at a time.

    ``events`` receives bytes holding one or more whole events and returns the bytes to hand
    on to the SDK (normally the same bytes). It must be cheap: it runs on every chunk.
    """

    usage: TokenUsage | None = None
    """The final usage, once the stream reported it (normally just before it ends)."""
    partial: TokenUsage | None = None
    """Usage reported before the end (Gemini's running counts), for interrupted streams; see
    :meth:`reported_so_far`."""
    model: str | None = None
    call_id: str | None = None
    """The provider's id of the response, once an event carried it."""
    output_estimate: int = 0
    """Output tokens seen so far, estimated from the events that went by."""
    precise: bool = False
    """True when a strict budget may cut the stream off on :attr:`output_estimate`: the tally
    then reads the deltas' text (a token per four characters) rather than counting deltas,
    which is cheaper but blind to gateways that send many tokens per delta."""
    done: bool = False
    """True once the stream's terminal event went by (``[DONE]``, ``message_stop``...): a
    stream that ends without usage after it was complete, not interrupted."""

    @abstractmethod
    def events(self, data: bytes) -> bytes: ...

    def reported_so_far(self) -> TokenUsage | None:
        """Usage the stream reported before its end (:attr:`partial`), for one that ended
        before its final usage."""
        return self.partial

    def frame_end(self, data: bytes) -> int:
        """Where the last whole event of ``data`` ends (``-1``: no whole event yet). Events are
        separated by a blank line (server-sent events); other framings override this."""
        if data.endswith(b"\n\n"):
            return len(data)
        end = data.rfind(b"\n\n")
        if end >= 0:
            return end + 2
        end = data.rfind(b"\r\n\r\n")
        return end + 4 if end >= 0 else -1

    def read_whole(self, body: bytes) -> bytes:
        """Read an event stream that arrived in one piece; return it as the caller gets it."""
        if self.frame_end(body) != len(body):
            body += b"\n\n"
        return self.events(body)


class ProtocolAdapter(ABC):
    """One wire protocol (an API endpoint family) of one provider.

    Subclass it and return instances from a plugin's ``shekel_protocol_adapters`` hook to teach
    shekel a new provider or gateway path.
    """

    provider: str = ""
    """Provider id used for price lookups (genai-prices ids: ``openai``, ``anthropic``...)."""

    path_suffixes: tuple[str, ...] = ()
    """Request paths this adapter handles, matched at the end of the URL path."""

    operation: str = "chat"
    """The kind of request, as OpenTelemetry's ``gen_ai.operation.name`` says it (``chat``,
    ``embeddings``, ``text_completion``...): ``CallRecord.operation`` of its calls."""

    priced_by_host: bool = False
    """True for a protocol many providers serve (OpenAI's chat completions): a call to a known
    provider's host (``api.groq.com``...) is priced with that provider's prices."""

    sdk_error: tuple[str, str] | None = None
    """``(module, class)`` of the base error of the SDK that usually sends this protocol, when
    that SDK retries any other exception raised inside its HTTP call as a connection error:
    shekel's errors raised there then subclass it too, so the SDK lets them through."""

    model_in_path: bool = False
    """True when the URL path names the model and whether the response streams (then
    :meth:`path_info` reads them and :meth:`set_path_model` changes the model)."""

    def matches(self, path: str) -> bool:
        return path.endswith(self.path_suffixes)

    def path_info(self, path: str) -> PathInfo | None:
        """The model and the stream flag as the URL path gives them (``model_in_path``)."""
        return None

    def set_path_model(self, path: str, model: str) -> str:
        """``path`` asking for ``model`` instead (``model_in_path``)."""
        return path

    @abstractmethod
    def inspect(self, body: dict[str, Any]) -> RequestInfo:
        """Read the model, the stream flag and the output limit from a request body."""

    def set_model(self, body: dict[str, Any], model: str) -> None:
        body["model"] = model

    def set_max_output(self, body: dict[str, Any], tokens: int) -> None:  # noqa: B027
        """Lower the request's output limit to ``tokens`` (strict mode). Protocols without an
        output limit (embeddings) keep the default, which does nothing."""

    def ask_for_stream_usage(self, body: dict[str, Any]) -> bool:
        """Make a streamed request report usage; return True if the body had to change and
        the extra usage event should be hidden from the caller."""
        return False

    @abstractmethod
    def usage_from_json(self, data: dict[str, Any]) -> TokenUsage | None:
        """Usage of a complete (non-streamed) JSON response, or ``None`` if it has none."""

    stream_content_types: tuple[str, ...] = ("text/event-stream",)
    """Content types of this protocol's streamed responses (read with :meth:`new_tally`)."""

    def is_stream(self, content_type: str) -> bool:
        """Whether a response of ``content_type`` is one of this protocol's streams."""
        return any(kind in content_type for kind in self.stream_content_types)

    def id_from_json(self, data: dict[str, Any]) -> str | None:
        """The provider's id of a decoded JSON response, or ``None``."""
        found = data.get("id")
        return found if isinstance(found, str) else None

    def response_id(self, content: bytes) -> str | None:
        """The provider's id of a JSON response (its first ``"id"``, at the top in every
        provider's layout), or ``None``."""
        return peek_string(content, b'"id"')

    usage_layout: re.Pattern[bytes] | None = None
    """The usual layout of this protocol's ``usage`` object, as a pattern matched at its key:
    read with one match instead of decoding the object (see :meth:`usage_from_layout`)."""

    def usage_from_layout(self, found: re.Match[bytes]) -> TokenUsage | None:
        """Usage from a match of :attr:`usage_layout` (``None``: decode the object instead)."""
        return None

    reads_decoded_json: bool = True
    """Set for each subclass: whether a JSON body decoded anyway can be read with
    :meth:`usage_from_json` and :meth:`model_from_json` (false when :meth:`read_response` is
    overridden, so that the adapter's own reading decides)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.reads_decoded_json = cls.read_response is ProtocolAdapter.read_response

    def read_response(self, content: bytes) -> tuple[TokenUsage | None, str | None]:
        """Usage and model of a JSON response body, decoding only the parts needed when the
        body has the usual shape (one ``usage`` and one ``model`` key; the whole body
        otherwise, so that a nested object of the same name never decides the charge)."""
        at = content.find(b'"usage"')
        if at >= 0 and content.find(b'"usage"', at + 7) < 0 and content.count(b'"model"') <= 1:
            layout = self.usage_layout
            found = None if layout is None else layout.match(content, at)
            usage = None if found is None else self.usage_from_layout(found)
            if usage is not None:
                return usage, peek_string(content, b'"model"')
            parsed = peek_object(content, b'"usage"')
            if parsed is not None:
                return self.usage_from_json({"usage": parsed}), peek_string(content, b'"model"')
        try:
            data = json.loads(content) if content else None
        except ValueError:
            return None, None
        if not isinstance(data, dict):
            return None, None
        return self.usage_from_json(data), self.model_from_json(data)

    def model_from_json(self, data: dict[str, Any]) -> str | None:
        model = data.get("model")
        return model if isinstance(model, str) else None

    @abstractmethod
    def new_tally(self, hide_usage: bool) -> StreamTally:
        """A fresh reader for one streamed response."""

    def estimate_input_tokens(self, body: bytes) -> int:
        """A conservative guess of the prompt's tokens: one per three bytes of request body."""
        return max(len(body) // 3, 1)

    def accepts_model(self, model: str) -> bool:
        """False when ``model`` plainly belongs to another provider (used to reject a fallback
        to another provider's model)."""
        return True


def split_events(data: bytes) -> list[bytes]:
    """Whole SSE events of ``data`` (separated by a blank line), without the separator."""
    if b"\r\n" in data:
        data = data.replace(b"\r\n", b"\n")
    return [e for e in data.split(b"\n\n") if e]


def event_json(event: bytes) -> Any:
    """The JSON payload of one SSE event (its ``data:`` lines), or None."""
    parts = [line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:")]
    if not parts:
        return None
    payload = b"\n".join(parts)
    if payload == b"[DONE]":
        return None
    try:
        return json.loads(payload)
    except ValueError:
        return None


def streamed_text_tokens(data: bytes, pattern: re.Pattern[bytes]) -> int:
    """Output tokens in the text deltas of ``data``, estimated: one per four characters of
    each delta's text (as JSON), at least one per delta."""
    tokens = 0
    for found in pattern.finditer(data):
        size = found.end(1) - found.start(1)
        tokens += size >> 2 or 1
    return tokens


MAX_TOKEN_COUNT: Final = 10**15


def token_count(value: object) -> int | None:
    """A token count as reported: a whole number >= 0 (JSON may spell it ``1000.0`` or
    ``1e3``), ``0`` when absent, ``None`` when it is something else (negative, fractional, a
    string...), which makes the whole usage unusable rather than silently $0."""
    if type(value) is int:
        return value if 0 <= value < MAX_TOKEN_COUNT else None
    if value is None:
        return 0
    if type(value) is float and value.is_integer() and 0 <= value < MAX_TOKEN_COUNT:
        return int(value)
    return None


_DECODER = json.JSONDecoder()
_OPEN_BRACE: Final = ord("{")
_STRING_AFTER: dict[bytes, re.Pattern[bytes]] = {}


def peek_string(data: bytes, key: bytes, start: int = 0) -> str | None:
    """The first string value of ``key`` (a quoted JSON key) in a JSON document, found without
    decoding the rest. Keys inside string values cannot match: their quotes are escaped.
    ``start``: where to look from, when the caller knows ``key`` does not occur before it."""
    # The usual shapes (``"model":"gpt-4o"``, ``"model": "gpt-4o"``, no escapes) with plain
    # byte searches; anything else through the regular expression, which defines the answer.
    at = data.find(key, start) if start >= 0 else -1
    if at < 0:
        return None
    start = at + len(key)
    if data.startswith(b':"', start):
        start += 2
    elif data.startswith(b': "', start):
        start += 3
    else:
        return _peek_string_slow(data, key)
    end = data.find(b'"', start)
    if end < 0:
        return None
    raw = data[start:end]
    if b"\\" in raw:
        return _peek_string_slow(data, key)
    try:
        return raw.decode()
    except ValueError:
        return None


def _peek_string_slow(data: bytes, key: bytes) -> str | None:
    pattern = _STRING_AFTER.get(key)
    if pattern is None:
        pattern = _STRING_AFTER[key] = re.compile(re.escape(key) + rb'\s*:\s*"((?:[^"\\]|\\.)*)"')
    found = pattern.search(data)
    if found is None:
        return None
    raw = found.group(1)
    try:
        return raw.decode() if b"\\" not in raw else str(json.loads(b'"' + raw + b'"'))
    except ValueError:
        return None


_LONG_BODY: Final = 2048
_STREAM_OR_MODEL: Final = re.compile(rb'"(?:stream|model)(?=")')


def find_stream_and_model(body: bytes) -> tuple[bool, int]:
    """Whether ``"stream"`` occurs in a request body, and where the first ``"model"`` does
    (0 when that is left to :func:`peek_string`, -1 when it does not occur).

    Both take a pass over the whole body (a streamed request can put ``"stream"`` anywhere,
    and the SDKs put ``"model"`` after the messages): one regular-expression pass over a long
    body costs half of two byte searches, a short body is quicker with the byte search."""
    if len(body) <= _LONG_BODY:
        return b'"stream"' in body, 0
    model_at = -1
    # The look-ahead leaves the closing quote unread, so no occurrence can hide another.
    for found in _STREAM_OR_MODEL.finditer(body):
        if found.end() - found.start() == 7:  # '"stream'
            return True, model_at
        if model_at < 0:
            model_at = found.start()
    return False, model_at


def peek_object(data: bytes, key: bytes) -> dict[str, Any] | None:
    """The object value of the last ``key`` in a JSON document (usage sits at the end of
    provider responses), or None when it is absent, null or not where expected."""
    at = data.rfind(key)
    if at < 0:
        return None
    start, size = at + len(key), len(data)
    while start < size and data[start] in b" \t\r\n:":
        start += 1
    if start >= size or data[start] != _OPEN_BRACE:
        return None
    try:
        value, _ = _DECODER.raw_decode(data[start:].decode())
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
