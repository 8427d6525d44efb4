"""Amazon Bedrock runtime wire format: Converse (JSON), ConverseStream (AWS's binary event
stream), InvokeModel with Anthropic's Messages body, and Bedrock's errors.

The model id is in the URL path; the server puts it in the body under ``"model"`` before these
functions see it (and botocore never sends a ``"model"`` key of its own).
"""

from __future__ import annotations

import json
import struct
import zlib

from shekel._output_limits import UNKNOWN_MODEL_MAX_OUTPUT, listed_max_output
from shekel.testing._common import (
    JSON,
    Event,
    EventKind,
    Rejection,
    Turn,
    content_text,
    is_int,
    model_name,
    new_id,
)

EVENT_STREAM = "application/vnd.amazon.eventstream"


def _config(body: JSON) -> JSON:
    config = body.get("inferenceConfig")
    return config if isinstance(config, dict) else {}


def converse_max_tokens(body: JSON) -> int | None:
    value = _config(body).get("maxTokens")
    return value if is_int(value) else None


def _limit_check(value: object, body: JSON) -> Rejection | None:
    if not is_int(value) or value < 1:
        return Rejection("The value of maxTokens must be an integer of at least 1.")
    model = model_name(body) or ""
    most = listed_max_output(model) or UNKNOWN_MODEL_MAX_OUTPUT
    if value > most:
        return Rejection(
            f"The maximum tokens you requested ({value}) is above the limit of {model}, "
            f"{most}. Ask for {most} or fewer and try again."
        )
    return None


def converse_check(body: JSON) -> Rejection | None:
    """What Bedrock refuses: no messages, or a ``maxTokens`` out of the model's range."""
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return Rejection("A conversation must start with a user message.")
    value = _config(body).get("maxTokens")
    return None if value is None else _limit_check(value, body)


def converse_echo_text(body: JSON) -> str | None:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return None


def _usage(turn: Turn) -> JSON:
    usage: JSON = {
        "inputTokens": turn.input_tokens,
        "outputTokens": turn.output_tokens,
        "totalTokens": turn.input_tokens
        + turn.output_tokens
        + turn.cached_input_tokens
        + turn.cache_write_tokens,
    }
    if turn.cached_input_tokens or turn.cache_write_tokens:
        usage["cacheReadInputTokens"] = turn.cached_input_tokens
        usage["cacheWriteInputTokens"] = turn.cache_write_tokens
    return usage


def _stop_reason(turn: Turn) -> str:
    if turn.truncated:
        return "max_tokens"
    return "tool_use" if turn.tool_calls else "end_turn"


def _tool_blocks(turn: Turn) -> list[JSON]:
    return [
        {"toolUse": {"toolUseId": ident, "name": call.name, "input": call.arguments}}
        for call, ident in zip(turn.tool_calls, turn.tool_ids("tooluse_"), strict=True)
    ]


def converse(body: JSON, turn: Turn) -> JSON:
    """A Converse response."""
    content: list[JSON] = [{"text": turn.text}] if turn.text or not turn.tool_calls else []
    return {
        "output": {"message": {"role": "assistant", "content": content + _tool_blocks(turn)}},
        "stopReason": _stop_reason(turn),
        "usage": _usage(turn),
        "metrics": {"latencyMs": 42},
    }


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return (
        bytes([len(raw_name)]) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value
    )


def event_message(event_type: str, payload: JSON, message_type: str = "event") -> bytes:
    """One message of AWS's event stream: prelude (lengths and their CRC32), string headers,
    the JSON payload, and the CRC32 of all that."""
    headers = (
        _header(":event-type", event_type)
        + _header(":content-type", "application/json")
        + _header(":message-type", message_type)
    )
    data = json.dumps(payload, separators=(",", ":")).encode()
    total = 12 + len(headers) + len(data) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + headers + data
    return message + struct.pack(">I", zlib.crc32(message))


def _event(kind: EventKind, event_type: str, payload: JSON) -> Event:
    return Event(kind, event_message(event_type, payload))


def converse_stream(body: JSON, turn: Turn) -> list[Event]:
    """ConverseStream events: messageStart, a delta per text piece, the tool calls, then
    messageStop and the metadata event with the usage."""
    events = [_event("pre", "messageStart", {"role": "assistant"})]
    for piece in turn.chunks:
        delta = {"delta": {"text": piece}, "contentBlockIndex": 0}
        events.append(_event("content", "contentBlockDelta", delta))
    if turn.chunks:
        events.append(_event("post", "contentBlockStop", {"contentBlockIndex": 0}))
    for index, block in enumerate(_tool_blocks(turn), start=1):
        use = block["toolUse"]
        start = {"toolUseId": use["toolUseId"], "name": use["name"]}
        events += [
            _event(
                "post",
                "contentBlockStart",
                {"start": {"toolUse": start}, "contentBlockIndex": index},
            ),
            _event(
                "post",
                "contentBlockDelta",
                {
                    "delta": {"toolUse": {"input": json.dumps(use["input"])}},
                    "contentBlockIndex": index,
                },
            ),
            _event("post", "contentBlockStop", {"contentBlockIndex": index}),
        ]
    events.append(_event("post", "messageStop", {"stopReason": _stop_reason(turn)}))
    metadata = {"usage": _usage(turn), "metrics": {"latencyMs": 42}}
    events.append(_event("post", "metadata", metadata))
    return events


def invoke_max_tokens(body: JSON) -> int | None:
    value = body.get("max_tokens")
    return value if is_int(value) else None


def invoke_check(body: JSON) -> Rejection | None:
    """InvokeModel with an Anthropic body: ``anthropic_version`` and ``max_tokens`` required."""
    if body.get("anthropic_version") != "bedrock-2023-05-31":
        return Rejection("Malformed input request: anthropic_version must be bedrock-2023-05-31.")
    if "max_tokens" not in body:
        return Rejection("Malformed input request: #: required key [max_tokens] not found.")
    return _limit_check(body["max_tokens"], body)


def invoke_echo_text(body: JSON) -> str | None:
    return converse_echo_text(body)


def invoke(body: JSON, turn: Turn) -> JSON:
    """An Anthropic message, as Bedrock returns it (the model id is the one invoked)."""
    content: list[JSON] = [{"type": "text", "text": turn.text}] if turn.text else []
    content += [
        {"type": "tool_use", "id": ident, "name": call.name, "input": call.arguments}
        for call, ident in zip(turn.tool_calls, turn.tool_ids("toolu_"), strict=True)
    ]
    return {
        "id": new_id("msg_bdrk_"),
        "type": "message",
        "role": "assistant",
        "model": (model_name(body) or "").rpartition(".")[2],
        "content": content,
        "stop_reason": _stop_reason(turn),
        "stop_sequence": None,
        "usage": {
            "input_tokens": turn.input_tokens,
            "output_tokens": turn.output_tokens,
            "cache_creation_input_tokens": turn.cache_write_tokens,
            "cache_read_input_tokens": turn.cached_input_tokens,
        },
    }


_ERRORS = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def error_type(status: int) -> str:
    return _ERRORS.get(
        status, "InternalServerException" if status >= 500 else "ValidationException"
    )


def error_body(status: int, message: str, rejection: Rejection | None = None) -> JSON:
    """Bedrock's error body (its type also goes in the ``x-amzn-ErrorType`` header)."""
    return {"message": message}
