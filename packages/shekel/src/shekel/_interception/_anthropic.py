"""Anthropic's Messages protocol."""

from __future__ import annotations

import re
from typing import Any, Final

from .._config import SURELY_A_COUNT
from .._pricing import TokenUsage
from ._adapter import (
    ProtocolAdapter,
    RequestInfo,
    StreamTally,
    event_json,
    split_events,
    streamed_text_tokens,
    token_count,
)

# The type of the last event (a delta's text cannot match: its quotes would be escaped).
_STOP_EVENT: Final = re.compile(rb'"type": ?"message_stop"')
# The text of a text, tool-input or thinking delta.
_DELTA_TEXT: Final = re.compile(rb'"(?:text|partial_json|thinking)": ?"((?:[^"\\]|\\.)+)"')


def messages_usage(usage: object) -> TokenUsage | None:
    """Anthropic reports uncached input apart from cache reads and writes; shekel counts all
    prompt tokens as input, and says how many were cached."""
    if not isinstance(usage, dict):
        return None
    if "input_tokens" not in usage and "output_tokens" not in usage:
        return None
    return message_counts(
        usage.get("input_tokens"),
        usage.get("output_tokens"),
        usage.get("cache_read_input_tokens"),
        usage.get("cache_creation_input_tokens"),
    )


def message_counts(plain: object, output: object, read: object, write: object) -> TokenUsage | None:
    """A message's usage from its four counts (``None`` where the response has none): all
    prompt tokens as input; ``None`` when they are not token counts."""
    if read is None:
        read = 0
    if write is None:
        write = 0
    # The usual case (plain ints) without a call per field: this runs on every call.
    if (
        type(plain) is int
        and type(output) is int
        and type(read) is int
        and type(write) is int
        and 0 <= plain | output | read | write < SURELY_A_COUNT
    ):
        return TokenUsage(plain + read + write, output, read, write)
    counts = [token_count(value) for value in (plain, output, read, write)]
    if None in counts:
        return None  # malformed: recorded as an estimate, never as $0
    p, o, r, w = (n or 0 for n in counts)
    return TokenUsage(p + r + w, o, r, w)


class MessagesAdapter(ProtocolAdapter):
    """``POST .../v1/messages``."""

    provider = "anthropic"
    path_suffixes = ("/v1/messages",)
    sdk_error = ("anthropic", "AnthropicError")

    def inspect(self, body: dict[str, Any]) -> RequestInfo:
        limit = body.get("max_tokens")
        return RequestInfo(
            body.get("model"), bool(body.get("stream")), limit if type(limit) is int else None
        )

    def set_max_output(self, body: dict[str, Any], tokens: int) -> None:
        body["max_tokens"] = tokens

    def usage_from_json(self, data: dict[str, Any]) -> TokenUsage | None:
        return messages_usage(data.get("usage"))

    def accepts_model(self, model: str) -> bool:
        return model.lower().startswith("claude") or "anthropic" in model.lower()

    def new_tally(self, hide_usage: bool) -> StreamTally:
        return MessagesTally()


class MessagesTally(StreamTally):
    """message_start carries input usage; message_delta carries cumulative usage (which
    replaces, never adds to, what came before)."""

    # The events by name, for a reader that has them decoded (the SDK layer).
    EVENT_DELTA: Final = "content_block_delta"
    EVENTS_READ: Final = frozenset({"message_start", "message_delta"})
    EVENTS_FINAL: Final = frozenset({"message_stop"})

    def __init__(self) -> None:
        self._start: dict[str, Any] = {}

    def events(self, data: bytes) -> bytes:
        if self.precise:
            self.output_estimate += streamed_text_tokens(data, _DELTA_TEXT)
        else:
            self.output_estimate += data.count(b'"content_block_delta"')
        # ``message_start``, ``message_delta`` or ``message_stop`` anywhere: one pass over the
        # bytes for all three (a content delta, most chunks, has none).
        at = data.find(b"message_")
        read = False
        while at >= 0:
            at += 8
            if data.startswith(b"stop", at) and _STOP_EVENT.search(data) is not None:
                self.done = True  # the event itself, not a delta's text that mentions it
            elif data.startswith((b"start", b"delta"), at):
                read = True
            at = data.find(b"message_", at)
        if read:
            self._read(data)
        return data

    def _read(self, data: bytes) -> None:
        for event in split_events(data):
            payload = event_json(event)
            if isinstance(payload, dict):
                self.read_event(payload)

    def read_event(self, payload: dict[str, Any]) -> None:
        """Take in a decoded ``message_start`` or ``message_delta`` event (others are ignored):
        the SDK layer hands the events it sees here too."""
        kind = payload.get("type")
        if kind == "message_start":
            message = payload.get("message")
            if message.__class__ is not dict:
                return
            model, call_id, usage = message.get("model"), message.get("id"), message.get("usage")
            if model.__class__ is str:
                self.model = model
            if call_id.__class__ is str:
                self.call_id = call_id
            if usage.__class__ is dict:
                self._start = dict(usage)
        elif kind == "message_delta":
            usage = payload.get("usage")
            if usage.__class__ is dict:
                merged = {**self._start, **{k: v for k, v in usage.items() if v}}
                self.usage = messages_usage(merged)

    def reported_so_far(self) -> TokenUsage | None:
        # Read only when the stream ends before its final usage: never on the usual path.
        return messages_usage(self._start) if self._start else None
