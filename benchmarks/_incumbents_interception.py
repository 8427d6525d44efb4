"""SDK workloads of ``bench_interception.py``, and its incumbent runner.

Both sides import the workloads from here, so shekel (working tree) and shekel 1.2.0 (PyPI) run
exactly the same calls: the real ``openai`` and ``anthropic`` SDKs over an in-process mock
transport (``httpx.MockTransport``; ``httpx2.MockTransport`` for the anthropic SDK), timed in
interleaved repeats without and with a ``budget`` around them.

Run as a script inside the throwaway virtual environment that holds ``shekel==1.2.0`` (whose
import name clashes with ours) and the same SDK versions as the workspace, it measures that
shekel and prints one JSON document: ``{"version": ..., "<key>": {"with": [...], "without":
[...]}, ...}`` or ``{"error": ...}`` per key. Argument: a JSON object with the sizes.

Standard library and the SDKs only (no shekel import at module level).
"""

from __future__ import annotations

import itertools
import json
import sys
import traceback
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import _harness as h

OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-3-haiku-20240307"
PROMPT = [
    {"role": "system", "content": "You are a concise assistant. Answer in one short sentence."},
    {"role": "user", "content": "Say hello to the benchmark."},
]
ANTHROPIC_PROMPT = PROMPT[1:]

# What the providers send back for that prompt (shapes copied from real responses).
CHAT_COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-BENCH0123456789abcdefghijklmno",
    "object": "chat.completion",
    "created": 1_732_000_000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello, benchmark! How can I help you today?",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 31,
        "completion_tokens": 12,
        "total_tokens": 43,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_0123456789",
}
ANTHROPIC_MESSAGE: dict[str, Any] = {
    "id": "msg_01BENCH0123456789abcdefgh",
    "type": "message",
    "role": "assistant",
    "model": ANTHROPIC_MODEL,
    "content": [{"type": "text", "text": "Hello, benchmark! How can I help you today?"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 24,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 14,
        "service_tier": "standard",
    },
}
RESPONSE: dict[str, Any] = {  # the Responses API's answer to the same prompt
    "id": "resp_BENCH0123456789abcdefghijklmnopq",
    "object": "response",
    "created_at": 1_732_000_000,
    "status": "completed",
    "background": False,
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "model": "gpt-4o-mini-2024-07-18",
    "output": [
        {
            "id": "msg_BENCH0123456789abcdefghijklmno",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {
                    "type": "output_text",
                    "text": "Hello, benchmark! How can I help you today?",
                    "annotations": [],
                    "logprobs": [],
                }
            ],
        }
    ],
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None},
    "service_tier": "default",
    "store": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "usage": {
        "input_tokens": 31,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 12,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 43,
    },
    "user": None,
}
STREAM_USAGE = {"prompt_tokens": 31, "completion_tokens": 0, "total_tokens": 31}
JSON_HEADERS = {"content-type": "application/json"}
SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8"}


# -- what the mock server sends ---------------------------------------------------------------


_PADDING = "abcdefghijklmnopqrstuvwxyz0123456789"


def _chunk(choices: list[dict[str, Any]], usage: Any, *, with_usage: bool, seed: int) -> bytes:
    """One chunk as OpenAI sends it: ``usage`` only when the request asked for it, then the
    ``obfuscation`` padding it adds by default (1 to 16 characters, varying)."""
    payload: dict[str, Any] = {
        "id": "chatcmpl-BENCH0123456789abcdefghijklmno",
        "object": "chat.completion.chunk",
        "created": 1_732_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_0123456789",
        "choices": choices,
    }
    if with_usage:
        payload["usage"] = usage
    payload["obfuscation"] = _PADDING[seed % 20 :][: 1 + seed * 7 % 16]
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def chat_stream_events(chunks: int, include_usage: bool) -> list[bytes]:
    """The SSE events of a streamed chat completion with ``chunks`` content chunks (the first
    carries the role), then the finish chunk, the usage chunk if asked for, and ``[DONE]``.
    One event per element: the transport hands them on one at a time, as a network does."""
    events = []
    for i in range(chunks):
        delta: dict[str, Any] = {"content": f" tok{i % 100}"}
        if i == 0:
            delta = {"role": "assistant", "content": "", "refusal": None}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        events.append(_chunk([choice], None, with_usage=include_usage, seed=i))
    finish = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    events.append(_chunk([finish], None, with_usage=include_usage, seed=chunks))
    if include_usage:
        usage = {**STREAM_USAGE, "completion_tokens": chunks, "total_tokens": 31 + chunks}
        events.append(_chunk([], usage, with_usage=True, seed=chunks + 1))
    events.append(b"data: [DONE]\n\n")
    return events


def _message_event(kind: str, payload: dict[str, Any]) -> bytes:
    data = json.dumps({"type": kind, **payload}, separators=(",", ":"))
    return f"event: {kind}\ndata: {data}\n\n".encode()


def message_stream_events(deltas: int) -> list[bytes]:
    """The SSE events of a streamed anthropic message with ``deltas`` text deltas, one event
    per element, as the Messages API sends them."""
    message = {
        **{k: v for k, v in ANTHROPIC_MESSAGE.items() if k != "usage"},
        "content": [],
        "stop_reason": None,
        "usage": {**ANTHROPIC_MESSAGE["usage"], "output_tokens": 1},
    }
    block = {"type": "text", "text": ""}
    events = [
        _message_event("message_start", {"message": message}),
        _message_event("content_block_start", {"index": 0, "content_block": block}),
        _message_event("ping", {}),
    ]
    for i in range(deltas):
        delta = {"type": "text_delta", "text": f" tok{i % 100}"}
        events.append(_message_event("content_block_delta", {"index": 0, "delta": delta}))
    events.append(_message_event("content_block_stop", {"index": 0}))
    stop = {"stop_reason": "end_turn", "stop_sequence": None}
    events.append(
        _message_event("message_delta", {"delta": stop, "usage": {"output_tokens": deltas}})
    )
    events.append(_message_event("message_stop", {}))
    return events


def _asks_for_usage(content: bytes) -> bool:
    body = json.loads(content)
    options = body.get("stream_options") or {}
    return bool(options.get("include_usage"))


# -- clients ------------------------------------------------------------------------------------


def _numbered(body: dict[str, Any]) -> Callable[[], bytes]:
    """``body`` as JSON with a new ``id`` each time, as a provider sends: shekel remembers the
    ids it recorded, and one id repeated would never grow or trim that registry."""
    head, tail = json.dumps(body).encode().split(body["id"].encode())
    numbers = itertools.count()
    return lambda: b"%s%s-%d%s" % (head, body["id"].encode(), next(numbers), tail)


def openai_client(stream_chunks: int = 0) -> Any:
    """An ``openai.OpenAI`` whose requests never leave the process. With ``stream_chunks``,
    every response is an event stream of that many content chunks; its usage chunk is sent
    only when the request asks for it (``stream_options.include_usage``), like the real API."""
    import httpx
    import openai

    completion = _numbered(CHAT_COMPLETION)
    response = _numbered(RESPONSE)
    with_usage = chat_stream_events(stream_chunks, True) if stream_chunks else []
    without_usage = chat_stream_events(stream_chunks, False) if stream_chunks else []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/responses"):
            return httpx.Response(200, headers=JSON_HEADERS, content=response())
        if not stream_chunks:
            return httpx.Response(200, headers=JSON_HEADERS, content=completion())
        events = with_usage if _asks_for_usage(request.content) else without_usage
        return httpx.Response(200, headers=SSE_HEADERS, content=iter(events))

    return openai.OpenAI(
        api_key="bench",
        base_url="http://bench/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        max_retries=0,
    )


def anthropic_client(stream_deltas: int = 0) -> Any:
    """An ``anthropic.Anthropic`` over ``httpx2.MockTransport`` (the SDK sends through httpx2).
    With ``stream_deltas``, every response is a message stream of that many text deltas."""
    import anthropic
    import httpx2

    message = _numbered(ANTHROPIC_MESSAGE)
    events = message_stream_events(stream_deltas)

    def handler(request: httpx2.Request) -> httpx2.Response:
        if stream_deltas:
            return httpx2.Response(200, headers=SSE_HEADERS, content=iter(events))
        return httpx2.Response(200, headers=JSON_HEADERS, content=message())

    return anthropic.Anthropic(
        api_key="bench",
        base_url="http://bench",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        max_retries=0,
    )


# The workloads look ``create`` up on every call, as applications do: shekel 1.2.0 patches the
# SDK's resource classes when a budget is entered, so a bound method kept from before would
# bypass it.


def openai_calls(client: Any) -> Callable[[int], None]:
    def run(n: int) -> None:
        for _ in range(n):
            client.chat.completions.create(model=OPENAI_MODEL, messages=PROMPT)

    return run


def openai_responses(client: Any) -> Callable[[int], None]:
    def run(n: int) -> None:
        for _ in range(n):
            client.responses.create(model=OPENAI_MODEL, input=PROMPT)

    return run


def anthropic_calls(client: Any) -> Callable[[int], None]:
    def run(n: int) -> None:
        for _ in range(n):
            client.messages.create(model=ANTHROPIC_MODEL, max_tokens=256, messages=ANTHROPIC_PROMPT)

    return run


def openai_streams(client: Any, expect: int) -> Callable[[int], None]:
    """``n`` streamed calls, each read to the end (checks every call saw ``expect`` content
    chunks, so a broken stream cannot pass for a fast one)."""

    def run(n: int) -> None:
        for _ in range(n):
            seen = 0
            stream = client.chat.completions.create(
                model=OPENAI_MODEL, messages=PROMPT, stream=True
            )
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content is not None:
                    seen += 1
            if seen != expect:
                raise RuntimeError(f"stream delivered {seen} content chunks, expected {expect}")

    return run


def anthropic_streams(client: Any, expect: int) -> Callable[[int], None]:
    """``n`` streamed messages, each read to the end (checks each saw ``expect`` text deltas)."""

    def run(n: int) -> None:
        for _ in range(n):
            seen = 0
            stream = client.messages.create(
                model=ANTHROPIC_MODEL, max_tokens=256, messages=ANTHROPIC_PROMPT, stream=True
            )
            for event in stream:
                if event.type == "content_block_delta":
                    seen += 1
            if seen != expect:
                raise RuntimeError(f"stream delivered {seen} text deltas, expected {expect}")

    return run


# -- interleaved timing ---------------------------------------------------------------------------


def interleaved(
    run: Callable[[int], object],
    budget: Callable[[], AbstractContextManager[Any]],
    n: int,
    repeats: int,
    warmup: int,
) -> dict[str, Any]:
    """µs per call of ``run(n)`` with no budget active and inside ``with budget():``, one
    sample of each per repeat, alternating which goes first (without, with; with, without; ...)
    so that slow drifts of the machine hit both sides alike. The clock runs inside the ``with``
    block: entering and leaving the budget is not part of the figure."""
    run(warmup)
    with budget():
        run(warmup)
    out: dict[str, Any] = {"without": [], "with": []}
    for i in range(repeats):
        for inside in (False, True) if i % 2 == 0 else (True, False):
            if inside:
                with budget():
                    out["with"] += h.time_per_op_us(run, n, 1, warmup=0)
            else:
                out["without"] += h.time_per_op_us(run, n, 1, warmup=0)
    out["calls_with_budget"] = warmup + repeats * n
    return out


def measure_sdk_calls(
    new_budget: Callable[[], AbstractContextManager[Any]], sizes: dict[str, Any]
) -> dict[str, Any]:
    """Raw with/without samples of every SDK workload, keyed like the figures. ``new_budget``
    makes a fresh budget; one is made per workload and entered around each timed block."""
    repeats, warmup = sizes["repeats"], sizes["warmup"]
    raw: dict[str, Any] = {}

    def measure(key: str, run: Callable[[int], object], n: int, reps: int) -> None:
        b = new_budget()
        try:
            raw[key] = interleaved(run, lambda: b, n, reps, warmup)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            raw[key] = {"error": f"{type(exc).__name__}: {exc}"}
            return
        raw[key]["budget_spent_usd"] = getattr(b, "spent", None)
        raw[key]["calls_recorded"] = getattr(b, "calls_used", None)  # shekel 1.2.0 has none

    measure("openai_call", openai_calls(openai_client()), sizes["call_n"], repeats)
    measure("anthropic_call", anthropic_calls(anthropic_client()), sizes["call_n"], repeats)
    for chunks in sizes["stream_chunks"]:
        # Long streams: one per sample and fewer repeats (the same number of chunks in all).
        n = 1 if chunks >= 50 else sizes["call_n"]
        reps = min(max(sizes["stream_chunk_total"] // chunks, sizes["stream_min_repeats"]), repeats)
        client = openai_client(stream_chunks=chunks)
        measure(f"openai_stream_{chunks}", openai_streams(client, chunks), n, reps)
    return raw


# -- the incumbent runner ------------------------------------------------------------------------


def main() -> None:
    sizes = json.loads(sys.argv[1])
    warnings.simplefilter("ignore")
    try:
        import importlib.metadata

        import shekel

        result: dict[str, Any] = {"version": importlib.metadata.version("shekel")}
        result.update(measure_sdk_calls(lambda: shekel.budget(max_usd=1e9), sizes))
    except Exception as exc:  # e.g. the package is missing
        traceback.print_exc(file=sys.stderr)
        result = {"error": f"{type(exc).__name__}: {exc}"}
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
