"""Streams whatever way their bytes arrive: usage and the last event in one read (as proxies and
many servers deliver them), one event per read, or a body the transport had already read."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest
from wire import (
    USER,
    anthropic_client,
    async_anthropic_client,
    async_openai_client,
    async_sse_handler,
    chat_chunk,
    event,
    http_library,
    message_events,
    openai_client,
    sse_handler,
)

from shekel import BudgetExceededError, UsageMissingError, UsageMissingWarning, budget

USAGE = {"prompt_tokens": 100, "completion_tokens": 200, "total_tokens": 300}
GPT4O_COST = 100 * 2.5e-6 + 200 * 10e-6  # $0.00225
HAIKU_COST = 100 * 1e-6 + 200 * 5e-6  # claude-haiku-4-5: $0.0011


def openai_framings() -> dict[str, tuple[list[bytes], bool]]:
    content, usage, done = chat_chunk("hi"), chat_chunk(usage=USAGE), b"data: [DONE]\n\n"
    return {
        "usage and [DONE] in one read": ([content, usage + done], False),
        "one event per read": ([content, usage, done], False),
        "everything in one read": ([content + usage + done], False),
        "a keep-alive comment after [DONE]": ([content, usage + done + b": ping\n\n"], False),
        "body already read": ([content, usage, done], True),
    }


FRAMINGS = list(openai_framings())


def _sync_stream(client: openai.OpenAI, mode: str) -> None:
    if mode == "create":
        for _ in client.chat.completions.create(model="gpt-4o", messages=USER, stream=True):
            pass
    else:
        with client.chat.completions.stream(model="gpt-4o", messages=USER) as stream:
            for _ in stream:
                pass


async def _async_stream(client: openai.AsyncOpenAI, mode: str) -> None:
    if mode == "create":
        stream = await client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
        async for _ in stream:
            pass
    else:
        async with client.chat.completions.stream(model="gpt-4o", messages=USER) as managed:
            async for _ in managed:
                pass


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("mode", ["create", "stream"])
def test_openai_stream_over_the_cap_raises_in_the_callers_loop(framing: str, mode: str) -> None:
    parts, whole = openai_framings()[framing]
    client = openai_client(sse_handler(http_library(openai), parts, whole=whole), max_retries=2)
    with budget(max_usd=0.001) as b, pytest.raises(BudgetExceededError) as caught:
        _sync_stream(client, mode)
    assert caught.value.sent is True
    assert b.spent == pytest.approx(GPT4O_COST, abs=1e-12)
    assert b.history().calls[0].estimated is False


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("mode", ["create", "stream"])
def test_async_openai_stream_over_the_cap_raises(framing: str, mode: str) -> None:
    parts, whole = openai_framings()[framing]

    async def run() -> tuple[float, bool]:
        handler = async_sse_handler(http_library(openai), parts, whole=whole)
        client = async_openai_client(handler, max_retries=2)
        b = budget(max_usd=0.001)
        raised = False
        try:
            async with b:
                await _async_stream(client, mode)
        except BudgetExceededError:
            raised = True
        return b.spent, raised

    spent, raised = asyncio.run(run())
    assert raised
    assert spent == pytest.approx(GPT4O_COST, abs=1e-12)


@pytest.mark.parametrize("framing", FRAMINGS)
def test_openai_stream_under_the_cap_is_recorded_exactly(framing: str) -> None:
    parts, whole = openai_framings()[framing]
    client = openai_client(sse_handler(http_library(openai), parts, whole=whole))
    with budget(max_usd=1.0) as b:
        chunks = list(client.chat.completions.create(model="gpt-4o", messages=USER, stream=True))
    # The usage chunk shekel asked for is not the caller's: only the content chunk reaches them.
    assert [c.choices[0].delta.content for c in chunks] == ["hi"]
    assert b.spent == pytest.approx(GPT4O_COST, abs=1e-12)
    assert b.history().calls[0].estimated is False


def anthropic_framings() -> dict[str, tuple[list[bytes], bool]]:
    events = message_events(100, 200)
    return {
        "message_delta and message_stop in one read": ([*events[:4], events[4] + events[5]], False),
        "one event per read": (events, False),
        "body already read": (events, True),
    }


@pytest.mark.parametrize("framing", list(anthropic_framings()))
@pytest.mark.parametrize("mode", ["create", "stream"])
def test_anthropic_stream_over_the_cap_raises(framing: str, mode: str) -> None:
    parts, whole = anthropic_framings()[framing]
    client = anthropic_client(sse_handler(http_library(anthropic), parts, whole=whole))
    kwargs: dict[str, Any] = {"model": "claude-haiku-4-5", "max_tokens": 500, "messages": USER}
    with budget(max_usd=0.0005) as b, pytest.raises(BudgetExceededError):
        if mode == "create":
            for _ in client.messages.create(stream=True, **kwargs):
                pass
        else:
            with client.messages.stream(**kwargs) as stream:
                for _ in stream:
                    pass
    assert b.spent == pytest.approx(HAIKU_COST, abs=1e-12)


@pytest.mark.parametrize("framing", list(anthropic_framings()))
def test_async_anthropic_stream_over_the_cap_raises(framing: str) -> None:
    parts, whole = anthropic_framings()[framing]

    async def run() -> tuple[float, bool]:
        handler = async_sse_handler(http_library(anthropic), parts, whole=whole)
        client = async_anthropic_client(handler)
        b = budget(max_usd=0.0005)
        try:
            async with (
                b,
                client.messages.stream(
                    model="claude-haiku-4-5", max_tokens=500, messages=USER
                ) as stream,
            ):
                async for _ in stream:
                    pass
        except BudgetExceededError:
            return b.spent, True
        return b.spent, False

    spent, raised = asyncio.run(run())
    assert raised
    assert spent == pytest.approx(HAIKU_COST, abs=1e-12)


def _no_usage_stream(strict: bool, whole: bool) -> tuple[Any, list[str], type | None]:
    """A server that ignores ``stream_options.include_usage``: the role chunk's empty content,
    three deltas, then ``[DONE]``."""
    parts = [chat_chunk(""), chat_chunk("a"), chat_chunk("b"), chat_chunk("c"), b"data: [DONE]\n\n"]
    client = openai_client(sse_handler(http_library(openai), parts, whole=whole))
    b = budget(max_usd=1.0, strict=strict)
    error: type | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with b:
                for _ in client.chat.completions.create(
                    model="gpt-4o", messages=USER, stream=True, max_tokens=50
                ):
                    pass
        except Exception as exc:
            error = type(exc)
    return b, [type(w.message).__name__ for w in caught], error


@pytest.mark.parametrize("whole", [False, True], ids=["streamed", "body already read"])
def test_a_stream_without_usage_is_an_estimate_with_a_warning(whole: bool) -> None:
    b, warned, error = _no_usage_stream(strict=False, whole=whole)
    assert error is None
    assert warned == ["UsageMissingWarning"]
    call = b.history().calls[0]
    assert call.estimated is True
    assert call.output_tokens == 3  # the three content chunks that went by
    assert b.spent > 0


@pytest.mark.parametrize("whole", [False, True], ids=["streamed", "body already read"])
def test_a_strict_budget_refuses_to_guess_a_streams_usage(whole: bool) -> None:
    b, warned, error = _no_usage_stream(strict=True, whole=whole)
    assert error is not None
    assert issubclass(error, UsageMissingError)
    assert warned == []
    assert b.history().calls[0].estimated is True  # recorded before raising
    assert b.spent > 0


def test_usage_missing_warning_is_the_public_class() -> None:
    assert issubclass(UsageMissingWarning, UserWarning)


Drive = Callable[[openai.OpenAI], None]


def test_a_caller_that_breaks_out_after_the_usage_is_not_raised_at() -> None:
    """Leaving the loop early is the caller's choice: no error from close(), spend recorded."""
    parts = [chat_chunk("hi"), chat_chunk("there"), chat_chunk(usage=USAGE) + b"data: [DONE]\n\n"]
    client = openai_client(sse_handler(http_library(openai), parts))
    with budget(max_usd=1.0) as b:
        stream = client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
        for _ in stream:
            break
        stream.close()
    assert b.snapshot().llm_calls_used == 1
    assert b.history().calls[0].estimated is True


def test_event_helper_frames_one_event() -> None:
    assert event({"a": 1}, "x") == b'event: x\ndata: {"a": 1}\n\n'


# A delta whose text names the stream's last event must not pass for it: the stream would be
# recorded before its usage arrived, as an estimate.
MENTIONS = [
    "[DONE]",
    "data: [DONE]",
    "message_stop",
    '"type": "message_stop"',
    "response.completed",
]


def _recorded_without_warnings(run: Callable[[], None]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run()


@pytest.mark.parametrize("text", MENTIONS)
def test_an_openai_delta_naming_the_last_event_does_not_end_the_stream(text: str) -> None:
    parts = [chat_chunk(text), chat_chunk(usage=USAGE), b"data: [DONE]\n\n"]
    client = openai_client(sse_handler(http_library(openai), parts))
    b = budget(max_usd=1.0)

    def run() -> None:
        with b:
            _sync_stream(client, "create")

    _recorded_without_warnings(run)
    assert b.spent == pytest.approx(GPT4O_COST, abs=1e-12)
    assert b.history().calls[0].estimated is False


@pytest.mark.parametrize("text", MENTIONS)
def test_an_anthropic_delta_naming_the_last_event_does_not_end_the_stream(text: str) -> None:
    events = message_events(100, 200)
    mention = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": text},
    }
    parts = [*events[:3], event(mention, "content_block_delta"), *events[3:]]
    client = anthropic_client(sse_handler(http_library(anthropic), parts))
    b = budget(max_usd=1.0)

    def run() -> None:
        with (
            b,
            client.messages.stream(
                model="claude-haiku-4-5", max_tokens=500, messages=USER
            ) as stream,
        ):
            for _ in stream:
                pass

    _recorded_without_warnings(run)
    assert b.spent == pytest.approx(HAIKU_COST, abs=1e-12)
    assert b.history().calls[0].estimated is False


def _responses_events(text: str) -> list[bytes]:
    response = {
        "id": "resp_1",
        "object": "response",
        "model": "gpt-4o",
        "status": "in_progress",
        "output": [],
    }
    done = {
        **response,
        "status": "completed",
        "usage": {"input_tokens": 100, "output_tokens": 200, "total_tokens": 300},
    }
    delta = {
        "type": "response.output_text.delta",
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "delta": text,
    }
    return [
        event({"type": "response.created", "response": response}, "response.created"),
        event(delta, "response.output_text.delta"),
        event({"type": "response.completed", "response": done}, "response.completed"),
    ]


@pytest.mark.parametrize("text", MENTIONS)
def test_a_responses_delta_naming_the_last_event_does_not_end_the_stream(text: str) -> None:
    # The handler answers every request with this stream; the SDK is not used to parse it,
    # so that the test depends only on the bytes shekel reads.
    import httpx

    parts = _responses_events(text)
    client = httpx.Client(transport=httpx.MockTransport(sse_handler(httpx, parts)))
    b = budget(max_usd=1.0)

    def run() -> None:
        with (
            b,
            client.stream(
                "POST",
                "https://api.openai.com/v1/responses",
                json={"model": "gpt-4o", "input": "hi", "stream": True},
            ) as response,
        ):
            for _ in response.iter_bytes():
                pass

    _recorded_without_warnings(run)
    assert b.spent == pytest.approx(GPT4O_COST, abs=1e-12)
    assert b.history().calls[0].estimated is False
