"""Anthropic SDK entry points, sync and async, priced with cache reads and writes."""

from __future__ import annotations

import asyncio

import anthropic
import pytest
from sdk_figures import USER, haiku

from shekel import budget
from shekel.testing import FakeProvider, Reply

MODEL = "claude-3-haiku-20240307"


def test_messages_create_with_cache_tokens(fake: FakeProvider, claude: anthropic.Anthropic) -> None:
    fake.enqueue(
        Reply(
            text="hi",
            input_tokens=1000,
            output_tokens=200,
            cached_input_tokens=4000,
            cache_write_tokens=500,
        )
    )
    with budget(max_usd=1.0) as b:
        message = claude.messages.create(model=MODEL, max_tokens=300, messages=USER)
    assert message.content[0].text == "hi"  # type: ignore[union-attr]
    call = b.summary_data()["calls"][0]
    # shekel counts every prompt token as input and says how many were cached
    assert call["input_tokens"] == 1000 + 4000 + 500
    assert (call["cache_read_tokens"], call["cache_write_tokens"]) == (4000, 500)
    assert b.spent == pytest.approx(haiku(1000, 200, read=4000, write=500), abs=1e-9)


def test_messages_stream_helper(fake: FakeProvider, claude: anthropic.Anthropic) -> None:
    # shekel 1.2.0 recorded $0 for this with anthropic 2.x
    fake.enqueue(Reply(text="one two three four", input_tokens=900, output_tokens=4))
    with budget(max_usd=0.50) as b:
        with claude.messages.stream(model=MODEL, max_tokens=1000, messages=USER) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
    assert text == "one two three four"
    assert final.usage.output_tokens == 4
    assert b.spent == pytest.approx(haiku(900, 4), abs=1e-9)
    assert not b.summary_data()["calls"][0]["estimated"]


def test_messages_create_stream_true(fake: FakeProvider, claude: anthropic.Anthropic) -> None:
    fake.enqueue(Reply(text="a b c", input_tokens=100, output_tokens=3, cached_input_tokens=50))
    with budget(max_usd=1.0) as b:
        events = [
            e.type
            for e in claude.messages.create(model=MODEL, max_tokens=100, messages=USER, stream=True)
        ]
    assert events[0] == "message_start"
    assert events[-1] == "message_stop"  # nothing is hidden from Anthropic streams
    assert b.spent == pytest.approx(haiku(100, 3, read=50), abs=1e-9)


def test_with_raw_response(fake: FakeProvider, claude: anthropic.Anthropic) -> None:
    fake.enqueue(Reply(text="raw", input_tokens=10, output_tokens=1))
    with budget(max_usd=1.0) as b:
        raw = claude.messages.with_raw_response.create(model=MODEL, max_tokens=10, messages=USER)
        assert raw.parse().usage.input_tokens == 10
    assert b.spent == pytest.approx(haiku(10, 1), abs=1e-9)


def test_count_tokens_is_not_a_call(fake: FakeProvider, claude: anthropic.Anthropic) -> None:
    with budget(max_usd=1.0) as b:
        counted = claude.messages.count_tokens(model=MODEL, messages=USER)
    assert counted.input_tokens > 0
    assert b.snapshot().llm_calls_used == 0
    assert b.spent == 0


def test_async_create_and_stream(fake: FakeProvider, aclaude: anthropic.AsyncAnthropic) -> None:
    fake.enqueue(
        Reply(text="x", input_tokens=10, output_tokens=1),
        Reply(text="y z", input_tokens=20, output_tokens=2),
    )

    async def run() -> tuple[float, str]:
        async with budget(max_usd=0.50) as b:
            await aclaude.messages.create(model=MODEL, max_tokens=10, messages=USER)
            async with aclaude.messages.stream(
                model=MODEL, max_tokens=1000, messages=USER
            ) as stream:
                text = "".join([t async for t in stream.text_stream])
        await aclaude.close()
        return b.spent, text

    spent, text = asyncio.run(run())
    assert text == "y z"
    assert spent == pytest.approx(haiku(10, 1) + haiku(20, 2), abs=1e-9)
