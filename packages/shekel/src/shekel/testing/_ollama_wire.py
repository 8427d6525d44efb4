"""Ollama's native wire format: /api/chat, /api/generate (JSON, or newline-delimited JSON when
streamed, which is the default) and /api/embed."""

from __future__ import annotations

from datetime import UTC, datetime

from shekel.testing._common import (
    JSON,
    Event,
    EventKind,
    Rejection,
    Turn,
    dumps,
    is_int,
    last_user_text,
    model_name,
    vector_of,
)

NDJSON = "application/x-ndjson"


def streams(body: JSON) -> bool:
    return body.get("stream", True) is not False


def max_tokens(body: JSON) -> int | None:
    options = body.get("options")
    value = options.get("num_predict") if isinstance(options, dict) else None
    return value if is_int(value) and value >= 0 else None


def check(body: JSON) -> Rejection | None:
    if not model_name(body):
        return Rejection("model is required")
    return None


def chat_echo_text(body: JSON) -> str | None:
    return last_user_text(body.get("messages"))


def generate_echo_text(body: JSON) -> str | None:
    prompt = body.get("prompt")
    return prompt if isinstance(prompt, str) else None


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _final(body: JSON, turn: Turn) -> JSON:
    return {
        "done": True,
        "done_reason": "length" if turn.truncated else "stop",
        "total_duration": 1_000_000,
        "load_duration": 100_000,
        "prompt_eval_count": turn.input_tokens,
        "prompt_eval_duration": 200_000,
        "eval_count": turn.output_tokens,
        "eval_duration": 700_000,
    }


def _tool_calls(turn: Turn) -> list[JSON]:
    return [
        {"function": {"name": call.name, "arguments": call.arguments}} for call in turn.tool_calls
    ]


def _message(content: str, turn: Turn | None = None) -> JSON:
    message: JSON = {"role": "assistant", "content": content}
    if turn is not None and turn.tool_calls:
        message["tool_calls"] = _tool_calls(turn)
    return message


def chat(body: JSON, turn: Turn) -> JSON:
    return {
        "model": model_name(body),
        "created_at": _now(),
        "message": _message(turn.text, turn),
        **_final(body, turn),
    }


def _line(kind: EventKind, data: JSON) -> Event:
    return Event(kind, (dumps(data) + "\n").encode())


def chat_stream(body: JSON, turn: Turn) -> list[Event]:
    model = model_name(body)
    events = [
        _line(
            "content",
            {"model": model, "created_at": _now(), "message": _message(piece), "done": False},
        )
        for piece in turn.chunks
    ]
    if turn.tool_calls:
        tools = {"model": model, "created_at": _now(), "message": _message("", turn), "done": False}
        events.append(_line("post", tools))
    events.append(
        _line(
            "post",
            {"model": model, "created_at": _now(), "message": _message(""), **_final(body, turn)},
        )
    )
    return events


def generate(body: JSON, turn: Turn) -> JSON:
    return {
        "model": model_name(body),
        "created_at": _now(),
        "response": turn.text,
        **_final(body, turn),
    }


def generate_stream(body: JSON, turn: Turn) -> list[Event]:
    model = model_name(body)
    events = [
        _line("content", {"model": model, "created_at": _now(), "response": piece, "done": False})
        for piece in turn.chunks
    ]
    events.append(
        _line("post", {"model": model, "created_at": _now(), "response": "", **_final(body, turn)})
    )
    return events


def embed(body: JSON, turn: Turn) -> JSON:
    source = body.get("input")
    items = source if isinstance(source, list) else [source]
    return {
        "model": model_name(body),
        "embeddings": [vector_of(repr(item), 8) for item in items],
        "total_duration": 1_000_000,
        "load_duration": 100_000,
        "prompt_eval_count": turn.input_tokens,
    }


def error_body(status: int, message: str, rejection: Rejection | None = None) -> JSON:
    """Ollama's error object: just the message."""
    return {"error": message}
