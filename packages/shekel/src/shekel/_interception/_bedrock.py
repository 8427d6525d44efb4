"""Amazon Bedrock's runtime protocol (boto3's ``bedrock-runtime`` client, LiteLLM's
``bedrock/`` models): ``converse``, ``converse_stream`` and ``invoke_model``.

The model is named in the URL path (``/model/{modelId}/converse``, the id percent-encoded).
``converse`` reports ``usage`` with the uncached prompt apart from cache reads and writes;
``converse_stream`` answers with AWS's binary event stream (``application/vnd.amazon.
eventstream``), whose ``metadata`` event carries the usage. ``invoke_model`` takes and returns
the model family's own body: Anthropic's Messages shape for Claude models (what shekel reads),
``prompt_token_count``/``generation_token_count`` for Llama, ``inputTextTokenCount`` for Titan.
"""

from __future__ import annotations

import json
import re
import struct
from typing import Any, Final
from urllib.parse import quote, unquote

from .._pricing import TokenUsage
from ._adapter import PathInfo, ProtocolAdapter, RequestInfo, StreamTally, token_count
from ._anthropic import messages_usage

_PATH: Final = re.compile(
    r"/model/([^/]+)/(converse|converse-stream|invoke|invoke-with-response-stream)$"
)
_BEDROCK_ID: Final = re.compile(r"[a-z]+(?:-[a-z]+)*\.(?:[a-z]+\.)?[a-z]")
_STREAMED: Final = frozenset({"converse-stream", "invoke-with-response-stream"})


def converse_usage(usage: object) -> TokenUsage | None:
    """Converse's ``usage``: input without cache reads and writes, which come apart."""
    if not isinstance(usage, dict) or "inputTokens" not in usage:
        return None
    counts = [
        token_count(usage.get(key))
        for key in ("inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens")
    ]
    if None in counts:
        return None
    plain, output, read, write = (n or 0 for n in counts)
    return TokenUsage(plain + read + write, output, read, write)


class _BedrockAdapter(ProtocolAdapter):
    provider = "aws"
    model_in_path = True
    operations: frozenset[str] = frozenset()

    def matches(self, path: str) -> bool:
        found = _PATH.search(path)
        return found is not None and found.group(2) in self.operations

    def path_info(self, path: str) -> PathInfo | None:
        found = _PATH.search(path)
        if found is None:
            return None
        return PathInfo(unquote(found.group(1)), found.group(2) in _STREAMED)

    def set_path_model(self, path: str, model: str) -> str:
        return _PATH.sub(lambda m: f"/model/{quote(model, safe='')}/{m.group(2)}", path)

    def accepts_model(self, model: str) -> bool:
        # Bedrock ids name their vendor ("anthropic.claude-...", "us.amazon.nova-...") or are ARNs
        return _BEDROCK_ID.match(model) is not None or model.startswith("arn:")

    def model_from_json(self, data: dict[str, Any]) -> str | None:
        return None  # the response does not name it: the requested model is priced

    def id_from_json(self, data: dict[str, Any]) -> str | None:
        return None

    def response_id(self, content: bytes) -> str | None:
        return None

    def new_tally(self, hide_usage: bool) -> StreamTally:
        return EventStreamTally()


class ConverseAdapter(_BedrockAdapter):
    """``POST /model/{modelId}/converse`` and ``/converse-stream``."""

    operations = frozenset({"converse", "converse-stream"})
    stream_content_types = ("application/vnd.amazon.eventstream",)

    def inspect(self, body: dict[str, Any]) -> RequestInfo:
        config = body.get("inferenceConfig")
        limit = config.get("maxTokens") if isinstance(config, dict) else None
        return RequestInfo(None, False, limit if type(limit) is int else None)

    def set_max_output(self, body: dict[str, Any], tokens: int) -> None:
        config = body.get("inferenceConfig")
        if not isinstance(config, dict):
            config = body["inferenceConfig"] = {}
        config["maxTokens"] = tokens

    def usage_from_json(self, data: dict[str, Any]) -> TokenUsage | None:
        return converse_usage(data.get("usage"))

    def read_response(self, content: bytes) -> tuple[TokenUsage | None, str | None]:
        try:
            data = json.loads(content)
        except ValueError:
            return None, None
        return (self.usage_from_json(data) if isinstance(data, dict) else None), None


class InvokeModelAdapter(_BedrockAdapter):
    """``POST /model/{modelId}/invoke``: the model family's own body."""

    operations = frozenset({"invoke"})

    def inspect(self, body: dict[str, Any]) -> RequestInfo:
        limit = body.get("max_tokens", body.get("max_gen_len"))
        return RequestInfo(None, False, limit if type(limit) is int else None)

    def set_max_output(self, body: dict[str, Any], tokens: int) -> None:
        if "max_gen_len" in body:  # Llama
            body["max_gen_len"] = tokens
        else:  # Anthropic, which requires it
            body["max_tokens"] = tokens

    def usage_from_json(self, data: dict[str, Any]) -> TokenUsage | None:
        if isinstance(data.get("usage"), dict):
            return messages_usage(data["usage"])  # Anthropic
        if "prompt_token_count" in data:  # Llama
            counts = [
                token_count(data.get(k)) for k in ("prompt_token_count", "generation_token_count")
            ]
            return None if None in counts else TokenUsage(counts[0] or 0, counts[1] or 0)
        if "inputTextTokenCount" in data:  # Titan
            results = data.get("results")
            output = (
                sum(r.get("tokenCount", 0) for r in results if isinstance(r, dict))
                if isinstance(results, list)
                else 0
            )
            prompt = token_count(data["inputTextTokenCount"])
            out = token_count(output)
            return None if prompt is None or out is None else TokenUsage(prompt, out)
        return None

    def read_response(self, content: bytes) -> tuple[TokenUsage | None, str | None]:
        try:
            data = json.loads(content)
        except ValueError:
            return None, None
        if not isinstance(data, dict):
            return None, None
        return self.usage_from_json(data), None


# The prelude of an event-stream message: total length, headers length (big-endian), CRC.
_PRELUDE: Final = struct.Struct(">II")
_PRELUDE_SIZE: Final = 12
_TRAILER_SIZE: Final = 4
_MAX_MESSAGE: Final = 16 * 1024 * 1024


def event_stream_messages(data: bytes) -> tuple[list[tuple[dict[str, str], bytes]], int]:
    """The whole messages at the start of ``data`` (string headers and payload each), and how
    many bytes they took. CRCs are left to the SDK, which checks them."""
    messages: list[tuple[dict[str, str], bytes]] = []
    at, size = 0, len(data)
    while size - at >= _PRELUDE_SIZE:
        total, headers_size = _PRELUDE.unpack_from(data, at)
        if total < _PRELUDE_SIZE + _TRAILER_SIZE or total > _MAX_MESSAGE:
            return messages, size  # not an event stream: nothing more to read in it
        if size - at < total:
            break
        start = at + _PRELUDE_SIZE
        headers = _headers(data[start : start + headers_size])
        payload = data[start + headers_size : at + total - _TRAILER_SIZE]
        messages.append((headers, payload))
        at += total
    return messages, at


def _headers(raw: bytes) -> dict[str, str]:
    """String-valued headers (type 7) of an event-stream message; other types are skipped."""
    found: dict[str, str] = {}
    at, size = 0, len(raw)
    fixed = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}
    while at < size:
        name_size = raw[at]
        name = raw[at + 1 : at + 1 + name_size].decode(errors="replace")
        at += 1 + name_size
        if at >= size:
            break
        kind = raw[at]
        at += 1
        if kind in (6, 7):
            (length,) = struct.unpack_from(">H", raw, at)
            value = raw[at + 2 : at + 2 + length]
            at += 2 + length
            if kind == 7:
                found[name] = value.decode(errors="replace")
        elif kind in fixed:
            at += fixed[kind]
        else:
            break
    return found


class EventStreamTally(StreamTally):
    """AWS's binary event stream: length-prefixed messages, each naming its event in the
    ``:event-type`` header. ``metadata`` carries the usage, after ``messageStop``."""

    stopped = False

    def frame_end(self, data: bytes) -> int:
        messages, end = event_stream_messages(data)
        return end if messages or end else -1

    def read_whole(self, body: bytes) -> bytes:
        return self.events(body)

    def events(self, data: bytes) -> bytes:
        messages, _ = event_stream_messages(data)
        for headers, payload in messages:
            kind = headers.get(":event-type", "")
            if kind == "contentBlockDelta":
                self.output_estimate += max(len(payload) >> 2, 1) if self.precise else 1
            elif kind == "messageStop":
                self.stopped = True
            elif kind == "metadata":
                try:
                    event = json.loads(payload)
                except ValueError:
                    event = None
                usage = converse_usage(event.get("usage")) if isinstance(event, dict) else None
                if usage is not None:
                    self.usage = usage
                self.done = True
        return data
