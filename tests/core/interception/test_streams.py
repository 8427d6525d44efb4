"""A stream is never $0: interrupted, failed or abandoned streams still record their spend."""

from __future__ import annotations

import asyncio
import gc
import warnings

import anthropic
import openai
import pytest
from sdk_figures import USER, gpt4o_mini

from shekel import BudgetExceededError, budget
from shekel.testing import FakeProvider, Reply

WORDS = " ".join(f"w{i}" for i in range(40))


def _only_call(b: object) -> dict[str, object]:
    calls = b.summary_data()["calls"]  # type: ignore[attr-defined]
    assert len(calls) == 1
    return calls[0]  # type: ignore[no-any-return]


def test_break_and_close_records_partial(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.enqueue(Reply(text=WORDS, input_tokens=5000, output_tokens=40))
    with budget(max_usd=1.0) as b:
        stream = oai.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
        for i, _chunk in enumerate(stream):
            if i == 5:
                break
        stream.close()
    call = _only_call(b)
    assert call["estimated"] is True
    assert 5 <= call["output_tokens"] <= 40
    assert call["input_tokens"] > 0
    assert b.spent > 0
    assert b.snapshot().llm_calls_used == 1


def test_abandoned_stream_recorded_on_garbage_collection(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    fake.enqueue(Reply(text=WORDS, input_tokens=5000, output_tokens=40))
    b = budget(max_usd=1.0)
    with b:
        stream = oai.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
        next(iter(stream))
    del stream
    gc.collect()
    assert b.spent > 0
    assert _only_call(b)["estimated"] is True


def test_stream_consumed_after_the_block_charges_its_own_budget(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    fake.enqueue(Reply(text="a b", input_tokens=100, output_tokens=2))
    with budget(max_usd=1.0, name="inner") as b:
        stream = oai.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
    with budget(max_usd=1.0, name="other") as other:
        list(stream)
    assert b.spent == pytest.approx(gpt4o_mini(100, 2), abs=1e-9)
    assert other.spent == 0


def test_exception_in_consumer_records_partial(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.enqueue(Reply(text=WORDS, input_tokens=5000, output_tokens=40))
    with pytest.raises(KeyboardInterrupt), budget(max_usd=1.0) as b:
        with oai.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True) as s:
            for i, _chunk in enumerate(s):
                if i == 3:
                    raise KeyboardInterrupt
    assert b.spent > 0
    assert _only_call(b)["estimated"] is True


def test_connection_dropped_mid_stream_records_partial(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    fake.enqueue(Reply(text=WORDS, input_tokens=5000, output_tokens=40, drop_after_chunks=4))
    with budget(max_usd=1.0) as b:
        with pytest.raises(Exception) as caught:  # the transport's error, passed through
            for _chunk in oai.chat.completions.create(
                model="gpt-4o-mini", messages=USER, stream=True
            ):
                pass
    assert not isinstance(caught.value, BudgetExceededError)
    call = _only_call(b)
    assert call["estimated"] is True
    assert call["output_tokens"] >= 4
    assert b.snapshot().usd_reserved == 0


def test_anthropic_interrupted_stream_uses_reported_input(
    fake: FakeProvider, claude: anthropic.Anthropic
) -> None:
    fake.enqueue(Reply(text=WORDS, input_tokens=7777, output_tokens=40))
    with (
        budget(max_usd=1.0) as b,
        claude.messages.stream(
            model="claude-3-haiku-20240307", max_tokens=100, messages=USER
        ) as stream,
    ):
        for i, _text in enumerate(stream.text_stream):
            if i == 2:
                break
    call = _only_call(b)
    assert call["input_tokens"] == 7777  # from message_start, not a guess
    assert call["estimated"] is True
    assert 1 <= call["output_tokens"] < 40


def test_exceeding_stream_raises_after_its_content(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.enqueue(Reply(text="a b c d", input_tokens=100_000, output_tokens=4))
    seen: list[str] = []
    with pytest.raises(BudgetExceededError), budget(max_usd=0.01) as b:
        for chunk in oai.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True):
            seen.append(chunk.choices[0].delta.content or "")
    assert "".join(seen) == "a b c d"
    assert b.spent == pytest.approx(gpt4o_mini(100_000, 4), abs=1e-9)


def test_async_cancelled_stream_records_partial(
    fake: FakeProvider, aoai: openai.AsyncOpenAI
) -> None:
    fake.enqueue(Reply(text=WORDS, input_tokens=3000, output_tokens=40, chunk_delay=0.05))

    async def consume() -> None:
        stream = await aoai.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
        async for _chunk in stream:
            pass

    async def run() -> float:
        async with budget(max_usd=1.0) as b:
            task = asyncio.create_task(consume())
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        await aoai.close()
        return b.spent

    assert asyncio.run(run()) > 0


def test_cancelled_non_streamed_call_records_its_prompt(
    fake: FakeProvider, aoai: openai.AsyncOpenAI
) -> None:
    fake.enqueue(Reply(text="late", input_tokens=100, output_tokens=1, latency=2.0))

    async def run() -> tuple[float, list[dict[str, object]]]:
        async with budget(max_usd=1.0) as b:
            task = asyncio.create_task(
                aoai.chat.completions.create(model="gpt-4o-mini", messages=USER)
            )
            await asyncio.sleep(0.3)  # the request is at the provider
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        await aoai.close()
        return b.spent, b.summary_data()["calls"]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a cancelled call is not a response without usage
        spent, calls = asyncio.run(run())
    assert spent > 0
    assert len(calls) == 1
    assert calls[0]["estimated"] is True
    assert calls[0]["output_tokens"] == 0
