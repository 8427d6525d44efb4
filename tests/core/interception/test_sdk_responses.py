"""The Responses API at the SDK layer: a response's usage read from the SDK's object, and a
stream read as the SDK's events (``response.created`` and the final event by name, text deltas
counted), recorded however it ends, on both openai generations."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from sdk_figures import gpt4o_mini

from shekel import BudgetExceededError, budget
from shekel.testing import FakeProvider, Reply

WORDS = " ".join(f"w{i}" for i in range(40))


class Boom(Exception):
    pass


def test_a_response_records_its_cached_and_reasoning_tokens(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    fake.enqueue(
        Reply(
            text="plain",
            input_tokens=1000,
            output_tokens=50,
            cached_input_tokens=600,
            reasoning_tokens=20,
        )
    )
    with budget(max_usd=1.0) as b:
        response = oai.responses.create(model="gpt-4o-mini", input="hi")
    (call,) = b.history().calls
    assert (call.input_tokens, call.output_tokens) == (1000, 50)
    assert (call.cache_read_tokens, call.reasoning_tokens) == (600, 20)
    assert call.estimated is False
    assert call.call_id == response.id
    assert b.spent == pytest.approx(gpt4o_mini(1000, 50, cached=600), abs=1e-12)


def test_a_stream_read_to_its_end_records_the_usage_of_its_final_event(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    fake.enqueue(Reply(text="one two three", input_tokens=300, output_tokens=3))
    with budget(max_usd=1.0) as b:
        stream = oai.responses.create(model="gpt-4o-mini", input="hi", stream=True)
        assert isinstance(stream, openai.Stream)
        kinds = []
        while True:  # next() reads through the same loop as a for loop
            try:
                kinds.append(next(stream).type)
            except StopIteration:
                break
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    (call,) = b.history().calls
    assert (call.input_tokens, call.output_tokens, call.estimated) == (300, 3, False)
    assert str(call.call_id).startswith("resp")


def test_a_block_failing_with_its_stream_open_records_the_deltas_read(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    """The prompt is estimated from the request (no event before the last carries usage)."""
    fake.enqueue(Reply(text=WORDS, input_tokens=2000, output_tokens=40))
    kept: list[Any] = []
    with pytest.raises(Boom), budget(max_usd=1.0) as b:
        stream = oai.responses.create(model="gpt-4o-mini", input="hi", stream=True)
        kept.append(stream)
        deltas = 0
        for event in stream:
            deltas += event.type == "response.output_text.delta"
            if deltas == 6:
                raise Boom
    (call,) = b.history().calls
    assert call.estimated is True
    assert call.output_tokens == 6
    assert 0 < call.input_tokens < 2000


def test_async_stream_over_the_cap_raises_in_the_loop_after_its_text(fake: FakeProvider) -> None:
    fake.enqueue(Reply(text="a b c", input_tokens=100_000, output_tokens=3))

    async def run() -> tuple[str, Any]:
        client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="t")
        seen = []
        async with budget(max_usd=0.01) as b:
            stream = await client.responses.create(model="gpt-4o-mini", input="hi", stream=True)
            with pytest.raises(BudgetExceededError):
                async for event in stream:
                    if event.type == "response.output_text.delta":
                        seen.append(event.delta)
        await client.close()
        return "".join(seen), b

    text, b = asyncio.run(run())
    assert text == "a b c"
    assert b.spent == pytest.approx(gpt4o_mini(100_000, 3), abs=1e-12)


def test_async_stream_closed_early_records_what_went_by(fake: FakeProvider) -> None:
    fake.enqueue(Reply(text=WORDS, input_tokens=1000, output_tokens=40))

    async def run() -> Any:
        client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="t")
        async with budget(max_usd=1.0) as b:
            stream = await client.responses.create(model="gpt-4o-mini", input="hi", stream=True)
            deltas = 0
            async for event in stream:
                deltas += event.type == "response.output_text.delta"
                if deltas == 4:
                    break
            await stream.close()
        await client.close()
        return b

    (call,) = asyncio.run(run()).history().calls
    assert call.estimated is True
    assert call.output_tokens == 4
