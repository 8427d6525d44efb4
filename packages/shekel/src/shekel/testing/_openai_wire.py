"""OpenAI wire format: chat completions, responses, embeddings and errors."""

from __future__ import annotations

import base64
import string
import struct
import time
from typing import Any

from shekel._output_limits import listed_max_output
from shekel.testing._common import (
    JSON,
    Event,
    EventKind,
    Rejection,
    Turn,
    dumps,
    int_field,
    is_int,
    last_user_text,
    model_name,
    new_id,
    sse,
    vector_of,
)

# ---------------------------------------------------------------------------------------------
# request helpers


_PADDING_ALPHABET = string.ascii_letters + string.digits


def _padding(seed: int) -> str:
    """What OpenAI puts in a streamed event's ``obfuscation`` field, to even out the sizes of
    events: 1 to 16 letters and digits, varying from event to event (deterministic here)."""
    length = 1 + seed * 7 % 16
    return "".join(_PADDING_ALPHABET[(seed * 31 + i * 17) % 62] for i in range(length))


def _obfuscates(body: JSON) -> bool:
    """Streamed events carry ``obfuscation`` padding unless the request turns it off with
    ``stream_options.include_obfuscation: false`` (OpenAI's default is on)."""
    options = body.get("stream_options")
    return not (isinstance(options, dict) and options.get("include_obfuscation") is False)


def chat_max_tokens(body: JSON) -> int | None:
    return int_field(body, "max_tokens", "max_completion_tokens")


def responses_max_tokens(body: JSON) -> int | None:
    return int_field(body, "max_output_tokens")


# The smallest output limit each endpoint accepts.
_CHAT_MIN_OUTPUT = 1
_RESPONSES_MIN_OUTPUT = 16


def _json_kind(value: object) -> str:
    """How OpenAI's validation errors name the JSON type of a value."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _check_integer(name: str, value: object, minimum: int) -> Rejection | None:
    if not is_int(value):
        message = f"Invalid type for '{name}': expected an integer, but got {_json_kind(value)}"
        return Rejection(f"{message} instead.", name, "invalid_type")
    if value < minimum:
        return Rejection(
            f"Invalid '{name}': integer below minimum value. "
            f"Expected a value >= {minimum}, but got {value} instead.",
            name,
            "integer_below_min_value",
        )
    return None


def chat_check(body: JSON) -> Rejection | None:
    """What the real chat completions endpoint refuses about the output limit and streaming.

    Both limits at once, a limit that is not an integer >= 1 or above the model's maximum
    (for models in shekel's table), and ``stream_options`` on a request that does not stream.
    """
    given = [name for name in ("max_tokens", "max_completion_tokens") if body.get(name) is not None]
    if len(given) == 2:
        return Rejection(
            "Setting 'max_tokens' and 'max_completion_tokens' at the same time is not supported.",
            "max_tokens",
            "invalid_parameter_combination",
        )
    if body.get("stream_options") is not None and body.get("stream") is not True:
        return Rejection(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    if not given:
        return None
    name = given[0]
    value = body[name]
    rejection = _check_integer(name, value, _CHAT_MIN_OUTPUT)
    if rejection is not None:
        return rejection
    model = model_name(body)
    most = listed_max_output(model) if model is not None else None
    if most is not None and value > most:
        return Rejection(
            f"{name} is too large: {value}. This model supports at most {most} completion "
            f"tokens, whereas you provided {value}.",
            name,
            "invalid_value",
        )
    return None


def responses_check(body: JSON) -> Rejection | None:
    """What the real Responses endpoint refuses about ``max_output_tokens``: a value that is not
    an integer >= 16, or one above the model's maximum (for models in shekel's table)."""
    value = body.get("max_output_tokens")
    if value is None:
        return None
    rejection = _check_integer("max_output_tokens", value, _RESPONSES_MIN_OUTPUT)
    if rejection is not None:
        return rejection
    model = model_name(body)
    most = listed_max_output(model) if model is not None else None
    if most is not None and value > most:
        return Rejection(
            "Invalid 'max_output_tokens': integer above maximum value. "
            f"Expected a value <= {most}, but got {value} instead.",
            "max_output_tokens",
            "integer_above_max_value",
        )
    return None


def chat_echo_text(body: JSON) -> str | None:
    return last_user_text(body.get("messages"))


def responses_echo_text(body: JSON) -> str | None:
    source = body.get("input")
    if isinstance(source, str):
        return source
    return last_user_text(source)


def _model(body: JSON) -> str:
    model = body.get("model")
    return model if isinstance(model, str) else "unknown-model"


# ---------------------------------------------------------------------------------------------
# chat completions


def _chat_usage(turn: Turn) -> JSON:
    prompt_details: JSON = {"cached_tokens": turn.cached_input_tokens, "audio_tokens": 0}
    if turn.cache_write_tokens:
        prompt_details["cache_write_tokens"] = turn.cache_write_tokens
    return {
        "prompt_tokens": turn.input_tokens,
        "completion_tokens": turn.output_tokens,
        "total_tokens": turn.input_tokens + turn.output_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": turn.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _finish_reason(turn: Turn) -> str:
    if turn.truncated:
        return "length"
    return "tool_calls" if turn.tool_calls else "stop"


def _chat_tool_calls(turn: Turn, ids: list[str]) -> list[JSON]:
    return [
        {
            "id": ident,
            "type": "function",
            "function": {"name": call.name, "arguments": dumps(call.arguments)},
        }
        for call, ident in zip(turn.tool_calls, ids, strict=True)
    ]


def _chat_message(turn: Turn) -> JSON:
    message: JSON = {
        "role": "assistant",
        "content": turn.text if turn.text or not turn.tool_calls else None,
        "refusal": None,
        "annotations": [],
    }
    if turn.tool_calls:
        message["tool_calls"] = _chat_tool_calls(turn, turn.tool_ids("call_"))
    return message


def chat_completion(body: JSON, turn: Turn) -> JSON:
    """A non-streamed ``chat.completion`` object."""
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": _model(body),
        "choices": [
            {
                "index": 0,
                "message": _chat_message(turn),
                "logprobs": None,
                "finish_reason": _finish_reason(turn),
            }
        ],
        "usage": _chat_usage(turn),
        "service_tier": "default",
        "system_fingerprint": None,
    }


def chat_stream(body: JSON, turn: Turn) -> list[Event]:
    """``chat.completion.chunk`` events; usage only when ``stream_options.include_usage``; the
    ``obfuscation`` padding last in each, as OpenAI sends it by default."""
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    frame: JSON = {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": _model(body),
        "service_tier": "default",
        "system_fingerprint": None,
    }

    def chunk(delta: JSON, finish_reason: str | None = None) -> JSON:
        data: JSON = {
            **frame,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if include_usage:
            data["usage"] = None
        return padded(data)

    def padded(data: JSON) -> JSON:  # the padding comes last, after the usage
        if obfuscate:
            data["obfuscation"] = _padding(len(events))
        return data

    obfuscate = _obfuscates(body)
    events: list[Event] = []
    events.append(sse("pre", chunk({"role": "assistant", "content": "", "refusal": None})))
    for piece in turn.chunks:
        events.append(sse("content", chunk({"content": piece})))
    for index, call in enumerate(_chat_tool_calls(turn, turn.tool_ids("call_"))):
        events.append(sse("post", chunk({"tool_calls": [{"index": index, **call}]})))
    events.append(sse("post", chunk({}, _finish_reason(turn))))
    if include_usage:
        usage_chunk = padded({**frame, "choices": [], "usage": _chat_usage(turn)})
        events.append(sse("post", usage_chunk))
    events.append(sse("post", "[DONE]"))
    return events


# ---------------------------------------------------------------------------------------------
# responses


def _responses_usage(turn: Turn) -> JSON:
    input_details: JSON = {"cached_tokens": turn.cached_input_tokens}
    if turn.cache_write_tokens:
        input_details["cache_write_tokens"] = turn.cache_write_tokens
    return {
        "input_tokens": turn.input_tokens,
        "input_tokens_details": input_details,
        "output_tokens": turn.output_tokens,
        "output_tokens_details": {"reasoning_tokens": turn.reasoning_tokens},
        "total_tokens": turn.input_tokens + turn.output_tokens,
    }


def _text_part(text: str) -> JSON:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(item_id: str, status: str, parts: list[JSON]) -> JSON:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": parts,
    }


def _response_shell(body: JSON, response_id: str, created: int) -> JSON:
    """The fields of a ``response`` object that do not depend on how generation went."""
    text_config = body.get("text")
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "model": _model(body),
        "output": [],
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": text_config if isinstance(text_config, dict) else {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": None,
        "user": None,
    }


def _function_calls(turn: Turn) -> list[JSON]:
    return [
        {
            "id": new_id("fc_"),
            "type": "function_call",
            "status": "completed",
            "call_id": ident,
            "name": call.name,
            "arguments": dumps(call.arguments),
        }
        for call, ident in zip(turn.tool_calls, turn.tool_ids("call_"), strict=True)
    ]


def _response_final(shell: JSON, turn: Turn, item_id: str) -> JSON:
    status = "incomplete" if turn.truncated else "completed"
    return {
        **shell,
        "status": status,
        "incomplete_details": {"reason": "max_output_tokens"} if turn.truncated else None,
        "output": [_message_item(item_id, status, [_text_part(turn.text)]), *_function_calls(turn)],
        "usage": _responses_usage(turn),
    }


def response_object(body: JSON, turn: Turn) -> JSON:
    """A non-streamed ``response`` object (status ``completed`` or ``incomplete``)."""
    shell = _response_shell(body, new_id("resp_"), int(time.time()))
    return _response_final(shell, turn, new_id("msg_"))


def responses_stream(body: JSON, turn: Turn) -> list[Event]:
    """The Responses event sequence, ending in ``response.completed`` or ``.incomplete``."""
    shell = _response_shell(body, new_id("resp_"), int(time.time()))
    item_id = new_id("msg_")
    final = _response_final(shell, turn, item_id)
    item_status = final["status"]
    where: JSON = {"item_id": item_id, "output_index": 0, "content_index": 0}
    events: list[Event] = []

    def emit(kind: EventKind, event_type: str, **fields: Any) -> None:
        data = {"type": event_type, "sequence_number": len(events), **fields}
        events.append(sse(kind, data, name=event_type))

    emit("pre", "response.created", response=shell)
    emit("pre", "response.in_progress", response=shell)
    emit(
        "pre",
        "response.output_item.added",
        output_index=0,
        item=_message_item(item_id, "in_progress", []),
    )
    emit("pre", "response.content_part.added", **where, part=_text_part(""))
    obfuscate = _obfuscates(body)
    for piece in turn.chunks:
        padding = {"obfuscation": _padding(len(events))} if obfuscate else {}
        emit("content", "response.output_text.delta", **where, delta=piece, logprobs=[], **padding)
    emit("post", "response.output_text.done", **where, text=turn.text, logprobs=[])
    emit("post", "response.content_part.done", **where, part=_text_part(turn.text))
    emit(
        "post",
        "response.output_item.done",
        output_index=0,
        item=_message_item(item_id, item_status, [_text_part(turn.text)]),
    )
    for index, item in enumerate(final["output"][1:], start=1):
        emit("post", "response.output_item.added", output_index=index, item=item)
        emit("post", "response.output_item.done", output_index=index, item=item)
    emit("post", f"response.{item_status}", response=final)
    return events


# ---------------------------------------------------------------------------------------------
# embeddings


def _embedding_inputs(source: object) -> list[object]:
    if isinstance(source, list) and source and all(isinstance(x, int) for x in source):
        return [source]  # a single input given as token ids
    if isinstance(source, list):
        return list(source)
    return [source]


def embeddings(body: JSON, input_tokens: int) -> JSON:
    """An embeddings ``list``; base64 float32 little-endian when ``encoding_format`` asks."""
    dimensions = int_field(body, "dimensions") or 8
    as_base64 = body.get("encoding_format") == "base64"
    data: list[JSON] = []
    for index, item in enumerate(_embedding_inputs(body.get("input"))):
        vector = vector_of(item, max(dimensions, 1))
        encoded: object = vector
        if as_base64:
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    return {
        "object": "list",
        "data": data,
        "model": _model(body),
        "usage": {"prompt_tokens": input_tokens, "total_tokens": input_tokens},
    }


# ---------------------------------------------------------------------------------------------
# errors

_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "not_found"),
    409: ("invalid_request_error", "conflict"),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}


def error_body(status: int, message: str, rejection: Rejection | None = None) -> JSON:
    """OpenAI's error object; a ``rejection`` supplies its own ``param`` and ``code``."""
    kind, code = _ERROR_KINDS.get(status, ("server_error", None))
    if status < 500 and status not in _ERROR_KINDS:
        kind = "invalid_request_error"
    param = None
    if rejection is not None:
        param, code = rejection.param, rejection.code
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
