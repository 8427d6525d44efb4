"""Streamed chat completions are read as the openai SDK's chunk objects: what a stream costs is
recorded however it ends, with no byte of it scanned by shekel."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import openai
import pytest
from sdk_figures import USER, gpt4o_mini
from wire import chat_chunk, http_library, openai_client, sse_handler

from shekel import BudgetExceededError, budget
from shekel.testing import FakeProvider, Reply

WORDS = " ".join(f"w{i}" for i in range(40))


class Boom(Exception):
    pass


def test_a_block_failing_with_its_stream_open_records_the_chunks_read(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    """Neither closed nor dropped: the stream is still referenced when the block ends."""
    fake.enqueue(Reply(text=WORDS, input_tokens=2000, output_tokens=40))
    kept: list[Any] = []
    with pytest.raises(Boom), budget(max_usd=1.0) as b:
        stream = oai.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
        kept.append(stream)
        for i, _chunk in enumerate(stream):
            if i == 6:
                raise Boom
    calls = b.history().calls
    assert len(calls) == 1
    assert calls[0].estimated is True
    assert calls[0].output_tokens == 6  # seven chunks read, the first only the role
    assert calls[0].input_tokens > 0


def test_a_stream_whose_first_attempt_timed_out_is_charged_for_both(fake: FakeProvider) -> None:
    fake.enqueue(
        Reply(text="late", input_tokens=100, output_tokens=1, latency=1.0),
        Reply(text="a b", input_tokens=100, output_tokens=2),
    )
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="t", timeout=0.25, max_retries=1)
    with budget(max_usd=1.0) as b:
        text = "".join(
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
        )
    assert text == "a b"
    calls = b.history().calls
    assert [c.estimated for c in calls] == [True, False]
    assert calls[1].input_tokens == 100
    assert calls[1].output_tokens == 2


def test_a_gateway_repeating_a_running_total_is_recorded_once_at_its_last() -> None:
    """Usage on chunks that also carry text is a running total, not the end."""
    parts = [
        chat_chunk("a", usage={"prompt_tokens": 100, "completion_tokens": 1, "total_tokens": 101}),
        chat_chunk("b", usage={"prompt_tokens": 100, "completion_tokens": 2, "total_tokens": 102}),
        chat_chunk("c", usage={"prompt_tokens": 100, "completion_tokens": 3, "total_tokens": 103}),
        b"data: [DONE]\n\n",
    ]
    client = openai_client(sse_handler(http_library(openai), parts))
    with budget(max_usd=1.0) as b:
        seen = [
            c.choices[0].delta.content
            for c in client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
        ]
    assert seen == ["a", "b", "c"]
    calls = b.history().calls
    assert [(c.input_tokens, c.output_tokens, c.estimated) for c in calls] == [(100, 3, False)]


def test_the_stream_is_the_sdks_own_class_and_next_reads_it_too(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    """Code that calls ``next(stream)`` or checks the stream's type sees no difference."""
    fake.enqueue(Reply(text="one two", input_tokens=30, output_tokens=2))
    with budget(max_usd=1.0) as b:
        stream = oai.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
        assert isinstance(stream, openai.Stream)
        texts = []
        while True:
            try:
                chunk = next(stream)
            except StopIteration:
                break
            texts.append(chunk.choices[0].delta.content or "")
    assert "".join(texts) == "one two"
    assert b.spent == pytest.approx(gpt4o_mini(30, 2), abs=1e-12)


def test_async_stream_closed_early_records_what_went_by(fake: FakeProvider) -> None:
    fake.enqueue(Reply(text=WORDS, input_tokens=1000, output_tokens=40))

    async def run() -> Any:
        client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="t")
        async with budget(max_usd=1.0) as b:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=USER, stream=True
            )
            n = 0
            async for _chunk in stream:
                n += 1
                if n == 5:
                    break
            await stream.close()
        await client.close()
        return b

    b = asyncio.run(run())
    calls = b.history().calls
    assert len(calls) == 1
    assert calls[0].estimated is True
    assert calls[0].output_tokens == 4


def test_async_stream_over_the_cap_raises_in_the_loop_after_its_text(fake: FakeProvider) -> None:
    fake.enqueue(Reply(text="a b c", input_tokens=100_000, output_tokens=3))

    async def run() -> tuple[str, Any]:
        client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="t")
        seen = []
        async with budget(max_usd=0.01) as b:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=USER, stream=True
            )
            with pytest.raises(BudgetExceededError):
                async for chunk in stream:
                    seen.append(chunk.choices[0].delta.content or "")
        await client.close()
        return "".join(seen), b

    text, b = asyncio.run(run())
    assert text == "a b c"
    assert b.spent == pytest.approx(gpt4o_mini(100_000, 3), abs=1e-12)


def test_threads_streaming_under_one_parent_lose_no_spend(fake: FakeProvider) -> None:
    """Eight threads, each in a child of one budget (as a framework's thread pool runs them),
    stream at once: every stream is recorded once, exactly, on its child and on the parent."""
    threads, per_thread = 8, 3
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="t")
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(parent: Any, i: int) -> None:
        try:
            with parent.child(f"worker{i}", max_usd=1.0):
                start.wait()
                for _ in range(per_thread):
                    for _chunk in client.chat.completions.create(
                        model="gpt-4o-mini", messages=USER, stream=True
                    ):
                        pass
        except BaseException as exc:  # reported below: a thread's error would be lost
            errors.append(exc)

    with budget(max_usd=10.0, name="pool") as parent:
        pool = [
            threading.Thread(target=contextvars.copy_context().run, args=(work, parent, i))
            for i in range(threads)
        ]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(30)
    assert errors == []
    _each_stream_recorded_once(parent, [f"worker{i}" for i in range(threads)], per_thread)


def test_tasks_streaming_at_once_under_one_parent_lose_no_spend(fake: FakeProvider) -> None:
    """Eight asyncio tasks, each in a child of one budget, start their streams together."""
    tasks, per_task = 8, 2

    async def run() -> Any:
        client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="t")
        start = asyncio.Event()

        async def work(parent: Any, i: int) -> None:
            async with parent.child(f"task{i}", max_usd=1.0):
                await start.wait()
                for _ in range(per_task):
                    stream = await client.chat.completions.create(
                        model="gpt-4o-mini", messages=USER, stream=True
                    )
                    async for _chunk in stream:
                        pass

        async with budget(max_usd=10.0, name="pool") as parent:
            running = [asyncio.create_task(work(parent, i)) for i in range(tasks)]
            await asyncio.sleep(0)
            start.set()
            await asyncio.gather(*running)
        await client.close()
        return parent

    parent = asyncio.run(run())
    _each_stream_recorded_once(parent, [f"task{i}" for i in range(tasks)], per_task)


def _each_stream_recorded_once(parent: Any, children: list[str], per_child: int) -> None:
    """Every child recorded its streams exactly (none estimated), and the parent all of them."""
    calls = []
    for name in children:
        child = parent.find_child(name)
        assert child is not None
        assert child.snapshot().llm_calls_used == per_child
        calls += child.history().calls
    assert len(calls) == len(children) * per_child
    assert all(not c.estimated for c in calls)
    assert parent.snapshot().llm_calls_used == len(calls)
    assert parent.spent == pytest.approx(
        sum(gpt4o_mini(c.input_tokens, c.output_tokens) for c in calls), abs=1e-12
    )


@pytest.mark.parametrize("sync", [True, False])
def test_the_usage_chunk_shekel_asked_for_is_dropped_before_the_sdk_builds_it(
    fake: FakeProvider, sync: bool
) -> None:
    """The SDK builds an object of every event it is handed (about 40 µs for a usage chunk);
    the one the caller never asked for must not be handed over at all."""
    fake.enqueue(Reply(text="a b c", input_tokens=300, output_tokens=3))
    client: Any = (openai.OpenAI if sync else openai.AsyncOpenAI)(
        base_url=fake.openai_base_url, api_key="t"
    )
    built: list[dict[str, Any]] = []
    build = client._process_response_data

    def counting(*, data: Any, cast_to: Any, response: Any) -> Any:
        built.append(data)
        return build(data=data, cast_to=cast_to, response=response)

    client._process_response_data = counting  # the SDK's own builder, watched

    async def read_async() -> list[Any]:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=USER, stream=True
        )
        return [chunk async for chunk in stream]

    with budget(max_usd=1.0) as b:
        if sync:
            chunks = list(
                client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
            )
        else:
            chunks = asyncio.run(read_async())
    assert len(built) == len(chunks) > 0
    assert all(data.get("usage") is None and data["choices"] for data in built)
    (call,) = b.history().calls
    assert (call.input_tokens, call.output_tokens, call.estimated) == (300, 3, False)
