"""Hand-made provider responses served through the SDKs' own mock transports.

The fake provider covers the usual wire; these cover what a proxy or gateway may do to it:
events coalesced into one read, a body handed over already read, hostile usage figures. Each
SDK generation sends through its own httpx flavour (``httpx`` for openai 1.x/2.x and anthropic
before 2.0, ``httpx2`` after), so the transport is taken from the SDK itself.
"""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from types import ModuleType
from typing import Any

import anthropic
import openai

USER = [{"role": "user", "content": "hi"}]


def http_library(sdk: ModuleType) -> ModuleType:
    """The httpx flavour ``sdk`` (openai or anthropic) sends through."""
    base = importlib.import_module(f"{sdk.__name__}._base_client")
    return importlib.import_module("httpx2" if "httpx2" in vars(base) else "httpx")


def event(data: object, name: str | None = None) -> bytes:
    head = f"event: {name}\n" if name else ""
    text = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {text}\n\n".encode()


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def chat_chunk(
    content: str | None = None, usage: dict[str, Any] | None = None, call_id: str = "chatcmpl-1"
) -> bytes:
    chunk: dict[str, Any] = {
        "id": call_id,
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": []
        if content is None
        else [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
    }
    if usage is not None:
        chunk["usage"] = usage
    return event(chunk)


def chat_completion(usage: object, **extra: Any) -> dict[str, Any]:
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "x"},
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
        **extra,
    }


def message_events(input_tokens: object, output_tokens: object) -> list[bytes]:
    """An Anthropic message stream, one read per event."""
    start = {
        "type": "message_start",
        "message": {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5-20251001",
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        },
    }
    block = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "hi"},
    }
    return [
        event(start, "message_start"),
        event(block, "content_block_start"),
        event(delta, "content_block_delta"),
        event({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": output_tokens},
            },
            "message_delta",
        ),
        event({"type": "message_stop"}, "message_stop"),
    ]


Handler = Callable[[Any], Any]


def sse_handler(library: ModuleType, parts: list[bytes], *, whole: bool = False) -> Handler:
    """Answer every request with an event stream: ``parts`` as separate reads, or the whole
    body handed over already read (``whole``)."""

    def handle(request: Any) -> Any:
        headers = {"content-type": "text/event-stream"}
        if whole:
            return library.Response(200, headers=headers, content=b"".join(parts))
        return library.Response(200, headers=headers, content=iter(parts))

    return handle


def async_sse_handler(library: ModuleType, parts: list[bytes], *, whole: bool = False) -> Handler:
    def handle(request: Any) -> Any:
        headers = {"content-type": "text/event-stream"}
        if whole:
            return library.Response(200, headers=headers, content=b"".join(parts))

        async def body() -> AsyncIterator[bytes]:
            for part in parts:
                yield part

        return library.Response(200, headers=headers, content=body())

    return handle


def json_handler(library: ModuleType, data: object) -> Handler:
    def handle(request: Any) -> Any:
        return library.Response(200, json=data)

    return handle


def openai_client(handler: Handler, **options: Any) -> openai.OpenAI:
    library = http_library(openai)
    http = library.Client(transport=library.MockTransport(handler))
    return openai.OpenAI(api_key="t", base_url="http://mock/v1", http_client=http, **options)


def async_openai_client(handler: Handler, **options: Any) -> openai.AsyncOpenAI:
    library = http_library(openai)
    http = library.AsyncClient(transport=library.MockTransport(handler))
    return openai.AsyncOpenAI(api_key="t", base_url="http://mock/v1", http_client=http, **options)


def anthropic_client(handler: Handler, **options: Any) -> anthropic.Anthropic:
    library = http_library(anthropic)
    http = library.Client(transport=library.MockTransport(handler))
    return anthropic.Anthropic(api_key="t", base_url="http://mock", http_client=http, **options)


def async_anthropic_client(handler: Handler, **options: Any) -> anthropic.AsyncAnthropic:
    library = http_library(anthropic)
    http = library.AsyncClient(transport=library.MockTransport(handler))
    return anthropic.AsyncAnthropic(
        api_key="t", base_url="http://mock", http_client=http, **options
    )


def drain(stream: Iterator[Any]) -> int:
    return sum(1 for _ in stream)
