"""OpenAI wire protocols: chat completions, responses and embeddings."""

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

_OTHER_PROVIDERS = ("claude", "gemini", "mistral", "command", "llama")


def chat_usage_of(usage: object) -> TokenUsage | None:
    """Usage of the chat completions and responses wires; ``None`` when absent or malformed."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    if prompt is None and completion is None:
        return None
    in_details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    out_details = usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
    cached = in_details.get("cached_tokens") if isinstance(in_details, dict) else None
    reasoning = out_details.get("reasoning_tokens") if isinstance(out_details, dict) else None
    return chat_counts(prompt, completion, cached, reasoning)


def chat_usage(usage: Any) -> TokenUsage | None:
    """A parsed chat completion's or Responses API response's ``usage`` object as shekel counts
    it, read field by field, whatever it lacks (``None``: unusable): :func:`chat_usage_of` of
    an object."""
    prompt_details = getattr(usage, "prompt_tokens_details", None) or getattr(
        usage, "input_tokens_details", None
    )
    output_details = getattr(usage, "completion_tokens_details", None) or getattr(
        usage, "output_tokens_details", None
    )
    prompt = getattr(usage, "prompt_tokens", None)
    output = getattr(usage, "completion_tokens", None)
    return chat_counts(
        getattr(usage, "input_tokens", None) if prompt is None else prompt,
        getattr(usage, "output_tokens", None) if output is None else output,
        None if prompt_details is None else getattr(prompt_details, "cached_tokens", None),
        None if output_details is None else getattr(output_details, "reasoning_tokens", None),
    )


def chat_counts(
    prompt: object, completion: object, cached: object, reasoning: object
) -> TokenUsage | None:
    """A chat completion's usage from its four counts (``None`` where the response has none);
    ``None`` when they are not token counts."""
    if prompt is None and completion is None:
        return None
    if cached is None:
        cached = 0
    if reasoning is None:
        reasoning = 0
    # The usual case (plain ints) without a call per field: this runs on every call.
    if (
        type(prompt) is int
        and type(completion) is int
        and type(cached) is int
        and type(reasoning) is int
        and 0 <= prompt | completion | cached | reasoning < SURELY_A_COUNT
        and cached <= prompt
        and reasoning <= completion
    ):
        return TokenUsage(prompt, completion, cached, 0, reasoning)
    counts = [token_count(v) for v in (prompt, completion, cached, reasoning)]
    if None in counts:
        return None
    p, c, ca, r = (n or 0 for n in counts)
    return TokenUsage(p, c, min(ca, p), 0, min(r, c))


class _OpenAIAdapter(ProtocolAdapter):
    provider = "openai"
    priced_by_host = True  # Groq, DeepSeek, Mistral, OpenRouter... speak it too
    sdk_error = ("openai", "OpenAIError")

    def accepts_model(self, model: str) -> bool:
        # Gateways serve every family; OpenAI itself serves none of these.
        return self.provider != "openai" or not model.lower().startswith(_OTHER_PROVIDERS)

    def usage_from_json(self, data: dict[str, Any]) -> TokenUsage | None:
        return chat_usage_of(data.get("usage"))


# OpenAI's own layout of a chat completion's usage: the counts, then the details objects.
_CHAT_USAGE: Final = re.compile(
    rb'"usage":\s*\{\s*"prompt_tokens":\s*(\d{1,15}),\s*"completion_tokens":\s*(\d{1,15}),'
    rb'\s*"total_tokens":\s*\d+'
    rb'(?:,\s*"prompt_tokens_details":\s*\{\s*"cached_tokens":\s*(\d{1,15})[^{}]*\})?'
    rb'(?:,\s*"completion_tokens_details":\s*\{\s*"reasoning_tokens":\s*(\d{1,15})[^{}]*\})?'
    rb"\s*[,}]"
)


class ChatCompletionsAdapter(_OpenAIAdapter):
    """``POST .../chat/completions`` (also used by most OpenAI-compatible gateways)."""

    path_suffixes = ("/chat/completions",)
    usage_layout = _CHAT_USAGE

    def usage_from_layout(self, found: re.Match[bytes]) -> TokenUsage | None:
        prompt, completion, cached, reasoning = found.groups()
        usage = TokenUsage(
            int(prompt),
            int(completion),
            int(cached) if cached else 0,
            0,
            int(reasoning) if reasoning else 0,
        )
        if usage.cache_read_tokens > usage.input_tokens:
            return None
        if usage.reasoning_tokens > usage.output_tokens:
            return None
        return usage

    def inspect(self, body: dict[str, Any]) -> RequestInfo:
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        return RequestInfo(
            body.get("model"), bool(body.get("stream")), limit if type(limit) is int else None
        )

    def set_max_output(self, body: dict[str, Any], tokens: int) -> None:
        if "max_tokens" in body and "max_completion_tokens" not in body:
            body["max_tokens"] = tokens
        else:
            body["max_completion_tokens"] = tokens

    def ask_for_stream_usage(self, body: dict[str, Any]) -> bool:
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            return False
        body["stream_options"] = {**(options or {}), "include_usage": True}
        return True

    def new_tally(self, hide_usage: bool) -> StreamTally:
        return ChatTally(hide_usage)


# A non-empty content or tool-argument delta (the role chunk's empty one carries no tokens).
_DELTA_TEXT: Final = re.compile(rb'"(?:content|arguments)": ?"((?:[^"\\]|\\.)+)"')


# A usage object (``"usage":null``, in every chunk of a stream that asked for usage, is not one).
_USAGE_OBJECT: Final = re.compile(rb'"usage": ?\{')
_DONE: Final = (b"[DONE]\n\n", b"[DONE]\r\n\r\n")
# ``[DONE]`` followed by something else in the same read (a keep-alive comment): searched for
# only once usage went by, as a line of its own (a delta's text holds no raw line break).
_DONE_LINE: Final = re.compile(rb"^data: ?\[DONE\]\r?$", re.MULTILINE)


class ChatTally(StreamTally):
    """Chat completion chunks: one ``data:`` event per chunk, usage on a last extra chunk.

    ``events`` runs on every chunk, so it looks at each chunk with as few passes over the bytes
    as it can: one to count deltas, one for a usage object, and a look at the end for
    ``[DONE]`` (the stream's last event, so it normally ends the bytes it arrives in; once usage
    went by, it is looked for anywhere)."""

    def __init__(self, hide_usage: bool) -> None:
        self.hide_usage = hide_usage

    def events(self, data: bytes) -> bytes:
        if self.precise:
            self.output_estimate += streamed_text_tokens(data, _DELTA_TEXT)
        else:
            # A delta per content field; the role chunk's empty one is taken off in _inspect.
            self.output_estimate += data.count(b'"content":')
        out = data
        if self.model is None or _USAGE_OBJECT.search(data) is not None:
            out = self._inspect(data)
        if data.endswith(_DONE) or (self.usage is not None and _DONE_LINE.search(data) is not None):
            self.done = True
        return out

    def _inspect(self, data: bytes) -> bytes:
        kept: list[bytes] = []
        dropped = False
        for event in split_events(data):
            payload = event_json(event)
            if isinstance(payload, dict):
                if self.model is None and isinstance(payload.get("model"), str):
                    self.model = payload["model"]
                if self.call_id is None and isinstance(payload.get("id"), str):
                    self.call_id = payload["id"]
                if not self.precise:
                    self.output_estimate -= _empty_deltas(payload.get("choices"))
                usage = chat_usage_of(payload.get("usage"))
                if usage is not None:
                    self.usage = usage
                    if self.hide_usage and not payload.get("choices"):
                        dropped = True
                        continue
            kept.append(event)
        if not dropped:
            return data
        return b"".join(e + b"\n\n" for e in kept)


def _empty_deltas(choices: object) -> int:
    """Deltas whose content is empty or null (the role chunk's), which the count took as text."""
    if not isinstance(choices, list):
        return 0
    empty = 0
    for choice in choices:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and "content" in delta and not delta["content"]:
            empty += 1
    return empty


class ResponsesAdapter(_OpenAIAdapter):
    """``POST .../responses`` (the Responses API)."""

    path_suffixes = ("/responses",)

    def inspect(self, body: dict[str, Any]) -> RequestInfo:
        limit = body.get("max_output_tokens")
        return RequestInfo(
            body.get("model"), bool(body.get("stream")), limit if type(limit) is int else None
        )

    def set_max_output(self, body: dict[str, Any], tokens: int) -> None:
        body["max_output_tokens"] = tokens

    def new_tally(self, hide_usage: bool) -> StreamTally:
        return ResponsesTally()


_RESPONSES_DELTA: Final = re.compile(rb'"delta": ?"((?:[^"\\]|\\.)+)"')
# The type of a final event (a delta's text cannot match: its quotes would be escaped).
_FINAL_EVENT: Final = re.compile(rb'"type": ?"response\.(?:completed|incomplete|failed)"')


class ResponsesTally(StreamTally):
    """Responses events: text deltas, then a final event carrying the whole response."""

    # The events by name, for a reader that has them decoded (the SDK layer).
    EVENT_DELTA: Final = "response.output_text.delta"
    EVENTS_FINAL: Final = frozenset(
        {"response.completed", "response.incomplete", "response.failed"}
    )
    EVENTS_READ: Final = EVENTS_FINAL | {"response.created"}

    def events(self, data: bytes) -> bytes:
        if self.precise:
            self.output_estimate += streamed_text_tokens(data, _RESPONSES_DELTA)
        else:
            self.output_estimate += data.count(b'"response.output_text.delta"')
        final = _FINAL_EVENT.search(data) is not None
        if final or (self.model is None and data.find(b"response.created") >= 0):
            self._read(data)
        if final:
            self.done = True
        return data

    def _read(self, data: bytes) -> None:
        for event in split_events(data):
            payload = event_json(event)
            if isinstance(payload, dict):
                self.read_event(payload)

    def read_event(self, payload: dict[str, Any]) -> None:
        """Take in a decoded event that carries the response (others are ignored): the SDK
        layer hands the events it sees here too."""
        response = payload.get("response")
        if not isinstance(response, dict):
            return
        if isinstance(response.get("model"), str):
            self.model = response["model"]
        if isinstance(response.get("id"), str):
            self.call_id = response["id"]
        usage = chat_usage_of(response.get("usage"))
        if usage is not None:
            self.usage = usage


class EmbeddingsAdapter(_OpenAIAdapter):
    """``POST .../embeddings``: input tokens only."""

    path_suffixes = ("/embeddings",)
    operation = "embeddings"

    def inspect(self, body: dict[str, Any]) -> RequestInfo:
        return RequestInfo(body.get("model"), False, 0)

    def new_tally(self, hide_usage: bool) -> StreamTally:
        return ResponsesTally()  # embeddings never stream; a server that does is read as events
