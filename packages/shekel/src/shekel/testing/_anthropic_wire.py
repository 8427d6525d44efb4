"""Anthropic wire format: messages (plain and streamed), token counting and errors."""

from __future__ import annotations

from shekel._output_limits import listed_max_output
from shekel.testing._common import (
    JSON,
    Event,
    Rejection,
    Turn,
    content_text,
    dumps,
    int_field,
    is_int,
    last_user_text,
    model_name,
    new_id,
    sse,
)


def max_tokens(body: JSON) -> int | None:
    return int_field(body, "max_tokens")


def check(body: JSON) -> Rejection | None:
    """What the real messages endpoint refuses about ``max_tokens``: leaving it out, a value that
    is not an integer >= 1, one above the model's maximum (for models in shekel's table), or
    one that leaves no room above an extended-thinking budget (itself at least 1024)."""
    if "max_tokens" not in body:
        return Rejection("max_tokens: Field required")
    value = body["max_tokens"]
    if not is_int(value):
        return Rejection("max_tokens: Input should be a valid integer")
    if value < 1:
        return Rejection("max_tokens: Input should be greater than or equal to 1")
    model = model_name(body)
    most = listed_max_output(model) if model is not None else None
    if most is not None and value > most:
        return Rejection(
            f"max_tokens: {value} > {most}, which is the maximum allowed number of output "
            f"tokens for {model}"
        )
    return _check_thinking(body.get("thinking"), value)


_MIN_THINKING_BUDGET = 1024


def _check_thinking(thinking: object, max_tokens: int) -> Rejection | None:
    """Extended thinking's budget counts against ``max_tokens``, which must leave room above it."""
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if not is_int(budget):
        return Rejection("thinking.enabled.budget_tokens: Input should be a valid integer")
    if budget < _MIN_THINKING_BUDGET:
        return Rejection(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to "
            f"{_MIN_THINKING_BUDGET}"
        )
    if max_tokens <= budget:
        return Rejection("`max_tokens` must be greater than `thinking.budget_tokens`.")
    return None


def echo_text(body: JSON) -> str | None:
    return last_user_text(body.get("messages"))


def _model(body: JSON) -> str:
    model = body.get("model")
    return model if isinstance(model, str) else "unknown-model"


def _usage(turn: Turn, output_tokens: int) -> JSON:
    usage: JSON = {
        "input_tokens": turn.input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": turn.cache_write_tokens,
        "cache_read_input_tokens": turn.cached_input_tokens,
    }
    if turn.reasoning_tokens:
        usage["output_tokens_details"] = {"thinking_tokens": turn.reasoning_tokens}
    return usage


def _stop_reason(turn: Turn) -> str:
    if turn.truncated:
        return "max_tokens"
    return "tool_use" if turn.tool_calls else "end_turn"


def _tool_blocks(turn: Turn) -> list[JSON]:
    return [
        {"type": "tool_use", "id": ident, "name": call.name, "input": call.arguments}
        for call, ident in zip(turn.tool_calls, turn.tool_ids("toolu_"), strict=True)
    ]


def message(body: JSON, turn: Turn) -> JSON:
    """A non-streamed ``message`` object."""
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": _model(body),
        "content": [
            *([{"type": "text", "text": turn.text}] if turn.text or not turn.tool_calls else []),
            *_tool_blocks(turn),
        ],
        "stop_reason": _stop_reason(turn),
        "stop_sequence": None,
        "usage": _usage(turn, turn.output_tokens),
    }


def message_stream(body: JSON, turn: Turn) -> list[Event]:
    """Named message events; ``message_start`` reports 1 output token, ``message_delta`` all."""
    start: JSON = {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": _model(body),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _usage(turn, 1),
    }
    block = {"type": "text", "text": ""}
    events = [
        sse("pre", {"type": "message_start", "message": start}, name="message_start"),
        sse(
            "pre",
            {"type": "content_block_start", "index": 0, "content_block": block},
            name="content_block_start",
        ),
        sse("pre", {"type": "ping"}, name="ping"),
    ]
    for piece in turn.chunks:
        delta = {"type": "text_delta", "text": piece}
        data = {"type": "content_block_delta", "index": 0, "delta": delta}
        events.append(sse("content", data, name="content_block_delta"))
    closing = {
        "type": "message_delta",
        "delta": {"stop_reason": _stop_reason(turn), "stop_sequence": None},
        "usage": _usage(turn, turn.output_tokens),
    }
    events.append(
        sse("post", {"type": "content_block_stop", "index": 0}, name="content_block_stop")
    )
    for index, block in enumerate(_tool_blocks(turn), start=1):
        start_block = {**block, "input": {}}
        partial = {"type": "input_json_delta", "partial_json": dumps(block["input"])}
        events += [
            sse(
                "post",
                {"type": "content_block_start", "index": index, "content_block": start_block},
                name="content_block_start",
            ),
            sse(
                "post",
                {"type": "content_block_delta", "index": index, "delta": partial},
                name="content_block_delta",
            ),
            sse("post", {"type": "content_block_stop", "index": index}, name="content_block_stop"),
        ]
    events += [
        sse("post", closing, name="message_delta"),
        sse("post", {"type": "message_stop"}, name="message_stop"),
    ]
    return events


def count_tokens(body: JSON) -> JSON:
    """A rough count: a quarter of the characters of the system prompt and messages."""
    texts = [content_text(body.get("system"))]
    messages = body.get("messages")
    if isinstance(messages, list):
        texts += [content_text(m.get("content")) for m in messages if isinstance(m, dict)]
    return {"input_tokens": max(sum(len(text) for text in texts) // 4, 1)}


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str, rejection: Rejection | None = None) -> JSON:
    """Anthropic's error object (a ``rejection`` adds nothing: the message says it all)."""
    fallback = "api_error" if status >= 500 else "invalid_request_error"
    kind = _ERROR_TYPES.get(status, fallback)
    return {"type": "error", "error": {"type": kind, "message": message}}
