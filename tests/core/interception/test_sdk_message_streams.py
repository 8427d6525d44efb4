"""Streamed anthropic messages are read as the SDK's events (``message_start`` and
``message_delta`` by name, content deltas counted): what a stream costs is recorded however it
ends, on both SDK generations (``tests_core_lowest`` runs anthropic 0.98)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import anthropic
import pytest
from sdk_figures import USER, haiku
from wire import anthropic_client, event, http_library, message_events, sse_handler

from shekel import BudgetExceededError, budget
from shekel.testing import FakeProvider, Reply

HAIKU = "claude-3-haiku-20240307"
WORDS = " ".join(f"w{i}" for i in range(40))


class Boom(Exception):
    pass


def _create(client: Any, **extra: Any) -> Any:
    return client.messages.create(model=HAIKU, max_tokens=200, messages=USER, stream=True, **extra)


def test_a_stream_read_to_its_end_records_the_usage_it_reported(
    fake: FakeProvider, claude: anthropic.Anthropic
) -> None:
    fake.enqueue(
        Reply(
            text="one two three",
            input_tokens=1200,
            output_tokens=3,
            cached_input_tokens=1000,
            cache_write_tokens=100,
        )
    )
    with budget(max_usd=1.0) as b:
        kinds = [event.type for event in _create(claude)]
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    (call,) = b.history().calls
    # Anthropic's input_tokens leaves the cache out; shekel's input is every prompt token.
    assert (call.input_tokens, call.output_tokens) == (2300, 3)
    assert (call.cache_read_tokens, call.cache_write_tokens) == (1000, 100)
    assert call.estimated is False
    assert str(call.call_id).startswith("msg_")
    assert b.spent == pytest.approx(haiku(1200, 3, read=1000, write=100), abs=1e-12)


def test_the_stream_is_the_sdks_own_class_and_next_reads_it_too(
    fake: FakeProvider, claude: anthropic.Anthropic
) -> None:
    fake.enqueue(Reply(text="one two", input_tokens=30, output_tokens=2))
    with budget(max_usd=1.0) as b:
        stream = _create(claude)
        assert isinstance(stream, anthropic.Stream)
        kinds = []
        while True:
            try:
                kinds.append(next(stream).type)
            except StopIteration:
                break
    assert kinds[-1] == "message_stop"
    assert b.spent == pytest.approx(haiku(30, 2), abs=1e-12)


def test_the_stream_helper_records_the_message_once(
    fake: FakeProvider, claude: anthropic.Anthropic
) -> None:
    fake.enqueue(Reply(text="hello there", input_tokens=50, output_tokens=2))
    with budget(max_usd=1.0) as b:
        with claude.messages.stream(model=HAIKU, max_tokens=200, messages=USER) as stream:
            text = stream.get_final_text()
    assert text == "hello there"
    assert [(c.input_tokens, c.output_tokens) for c in b.history().calls] == [(50, 2)]


def test_a_block_failing_with_its_stream_open_records_the_prompt_and_the_deltas_read(
    fake: FakeProvider, claude: anthropic.Anthropic
) -> None:
    """The prompt's tokens come from ``message_start``; the output is a token per content
    delta read (the stream is still referenced when the block ends)."""
    fake.enqueue(Reply(text=WORDS, input_tokens=2000, output_tokens=40))
    kept: list[Any] = []
    with pytest.raises(Boom), budget(max_usd=1.0) as b:
        stream = _create(claude)
        kept.append(stream)
        deltas = 0
        for event in stream:
            deltas += event.type == "content_block_delta"
            if deltas == 6:
                raise Boom
    (call,) = b.history().calls
    assert call.estimated is True
    assert (call.input_tokens, call.output_tokens) == (2000, 6)


def test_a_connection_dropped_mid_stream_records_what_went_by(
    fake: FakeProvider, claude: anthropic.Anthropic
) -> None:
    fake.enqueue(Reply(text=WORDS, input_tokens=500, output_tokens=40, drop_after_chunks=5))
    with budget(max_usd=1.0) as b:
        with pytest.raises(Exception) as caught:  # the transport's error, passed through
            for _event in _create(claude):
                pass
    assert not isinstance(caught.value, BudgetExceededError)
    (call,) = b.history().calls
    assert call.estimated is True
    assert call.input_tokens == 500
    assert 0 < call.output_tokens < 40


def test_an_error_event_mid_stream_raises_the_sdks_error_and_records_what_went_by() -> None:
    """Anthropic sends ``overloaded_error`` as an event once a stream has begun."""
    parts = message_events(3000, 9)[:3]  # message_start, a block, one text delta
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    parts.append(event(overloaded, "error"))
    client = anthropic_client(sse_handler(http_library(anthropic), parts))
    with budget(max_usd=1.0) as b:
        with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
            for _event in _create(client):
                pass
    (call,) = b.history().calls
    assert call.estimated is True
    assert (call.input_tokens, call.output_tokens) == (3000, 1)


def test_async_stream_closed_early_records_what_went_by(fake: FakeProvider) -> None:
    fake.enqueue(Reply(text=WORDS, input_tokens=1000, output_tokens=40))

    async def run() -> Any:
        client = anthropic.AsyncAnthropic(base_url=fake.anthropic_base_url, api_key="t")
        async with budget(max_usd=1.0) as b:
            stream = await _create(client)
            deltas = 0
            async for event in stream:
                deltas += event.type == "content_block_delta"
                if deltas == 4:
                    break
            await stream.close()
        await client.close()
        return b

    (call,) = asyncio.run(run()).history().calls
    assert call.estimated is True
    assert (call.input_tokens, call.output_tokens) == (1000, 4)


def test_async_stream_over_the_cap_raises_in_the_loop_after_its_text(fake: FakeProvider) -> None:
    fake.enqueue(Reply(text="a b c", input_tokens=100_000, output_tokens=3))

    async def run() -> tuple[str, Any]:
        client = anthropic.AsyncAnthropic(base_url=fake.anthropic_base_url, api_key="t")
        seen = []
        async with budget(max_usd=0.01) as b:
            stream = await _create(client)
            with pytest.raises(BudgetExceededError):
                async for event in stream:
                    if event.type == "content_block_delta":
                        seen.append(event.delta.text)
        await client.close()
        return "".join(seen), b

    text, b = asyncio.run(run())
    assert text == "a b c"
    assert b.spent == pytest.approx(haiku(100_000, 3), abs=1e-12)


def test_threads_streaming_under_one_parent_lose_no_spend(fake: FakeProvider) -> None:
    """Six threads, each in a child of one budget, stream at once: every stream is recorded
    once, exactly, on its child and on the parent."""
    threads, per_thread = 6, 3
    client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="t")
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(parent: Any, i: int) -> None:
        try:
            with parent.child(f"worker{i}", max_usd=1.0):
                start.wait()
                for _ in range(per_thread):
                    for _event in _create(client):
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
    calls = []
    for i in range(threads):
        child = parent.find_child(f"worker{i}")
        assert child is not None
        assert child.snapshot().llm_calls_used == per_thread
        calls += child.history().calls
    assert all(not c.estimated for c in calls)
    assert parent.snapshot().llm_calls_used == threads * per_thread
    assert parent.spent == pytest.approx(
        sum(haiku(c.input_tokens, c.output_tokens) for c in calls), abs=1e-12
    )
