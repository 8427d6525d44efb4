"""Cohere's v2 API (``cohere.ClientV2`` and ``AsyncClientV2``): ``POST /v2/chat``, plain or
streamed, and ``POST /v2/embed``.

Cohere reports two sets of counts: ``tokens`` (everything the model read and wrote, its own
system preamble included) and ``billed_units`` (what the invoice charges). shekel records the
billed units, and falls back to ``tokens`` only when a response has no billed counts (more
than the bill, never less). ``cached_tokens`` counts cache hits among ``tokens``, not among
the billed input, and Cohere lists no cache price: it changes nothing here.

Responses do not name the model, so the requested one is priced. A stream is server-sent
events (``message-start``, ``content-delta``, ``tool-call-delta``... ``message-end``); the last
one, ``message-end``, carries the usage. The output limit is ``max_tokens``; Cohere caps a
limit above the model's maximum instead of refusing it.
"""

from __future__ import annotations

import re
from typing import Any, Final

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

_COHERE_MODELS: Final = ("command", "c4ai-", "aya", "embed-", "rerank-")


def _counts(found: object, keys: tuple[str, ...]) -> list[int | None] | None:
    """``found[key]`` for each key as token counts, or ``None`` when ``found`` has none."""
    if not isinstance(found, dict) or not any(key in found for key in keys):
        return None
    return [token_count(found.get(key)) for key in keys]


def cohere_usage(usage: object) -> TokenUsage | None:
    """A chat ``usage`` object as Cohere bills it: ``billed_units``, else ``tokens``."""
    if not isinstance(usage, dict):
        return None
    keys = ("input_tokens", "output_tokens")
    counts = _counts(usage.get("billed_units"), keys) or _counts(usage.get("tokens"), keys)
    if counts is None or None in counts:
        return None  # absent or malformed: recorded as an estimate, never as $0
    prompt, output = counts
    return TokenUsage(prompt or 0, output or 0)


def embed_usage(meta: object) -> TokenUsage | None:
    """An embedding's ``meta``: its billed input tokens (text and image tokens when the
    response gives them apart), else ``meta.tokens``."""
    if not isinstance(meta, dict):
        return None
    billed = meta.get("billed_units")
    counts = _counts(billed, ("input_tokens",))
    if counts is None:
        counts = _counts(billed, ("text_tokens", "image_tokens"))
    if counts is None:
        counts = _counts(meta.get("tokens"), ("input_tokens",))
    if counts is None or None in counts:
        return None
    return TokenUsage(sum(n or 0 for n in counts), 0)


class _CohereAdapter(ProtocolAdapter):
    provider = "cohere"

    def accepts_model(self, model: str) -> bool:
        name = model.lower()
        return name.startswith(_COHERE_MODELS) or name.endswith("-ft")  # "-ft": fine-tuned

    def model_from_json(self, data: dict[str, Any]) -> str | None:
        return None  # responses do not name the model: the requested one is priced

    def new_tally(self, hide_usage: bool) -> StreamTally:
        return CohereTally()


class CohereChatAdapter(_CohereAdapter):
    """``POST /v2/chat`` (``chat`` and ``chat_stream``)."""

    path_suffixes = ("/v2/chat",)

    def inspect(self, body: dict[str, Any]) -> RequestInfo:
        limit = body.get("max_tokens")
        return RequestInfo(
            body.get("model"), body.get("stream") is True, limit if type(limit) is int else None
        )

    def set_max_output(self, body: dict[str, Any], tokens: int) -> None:
        body["max_tokens"] = tokens

    def usage_from_json(self, data: dict[str, Any]) -> TokenUsage | None:
        return cohere_usage(data.get("usage"))


class CohereEmbedAdapter(_CohereAdapter):
    """``POST /v2/embed``: input only (its ``max_tokens`` truncates the input, left alone)."""

    path_suffixes = ("/v2/embed",)
    operation = "embeddings"

    def inspect(self, body: dict[str, Any]) -> RequestInfo:
        return RequestInfo(body.get("model"), False, 0)

    def usage_from_json(self, data: dict[str, Any]) -> TokenUsage | None:
        return embed_usage(data.get("meta"))


# The text of a content (or thinking), tool-plan or tool-argument delta; the empty ones of
# ``message-start``, ``content-start`` and ``tool-call-start`` carry no tokens.
_DELTA_TEXT: Final = re.compile(rb'"(?:text|thinking|tool_plan|arguments)": ?"((?:[^"\\]|\\.)+)"')
# The type of an event that carries generated tokens: ``"content-delta"``, ``"tool-plan-delta"``,
# ``"tool-call-delta"`` (the ``event:`` line names it unquoted; a delta's text, escaped).
_DELTA_TYPE: Final = b'-delta"'


class CohereTally(StreamTally):
    """``message-start`` names the response; ``message-end``, the last event, has the usage."""

    def events(self, data: bytes) -> bytes:
        if self.precise:
            self.output_estimate += streamed_text_tokens(data, _DELTA_TEXT)
        else:
            self.output_estimate += data.count(_DELTA_TYPE)
        if b'"message-end"' in data or (self.call_id is None and b'"message-start"' in data):
            self._read(data)
        return data

    def _read(self, data: bytes) -> None:
        for event in split_events(data):
            payload = event_json(event)
            if not isinstance(payload, dict):
                continue
            kind = payload.get("type")
            if kind == "message-start" and isinstance(payload.get("id"), str):
                self.call_id = payload["id"]
            elif kind == "message-end":
                self.done = True
                delta = payload.get("delta")
                self.usage = cohere_usage(delta.get("usage") if isinstance(delta, dict) else None)
