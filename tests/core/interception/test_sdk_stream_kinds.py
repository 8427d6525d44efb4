"""What every stream the SDK layer reads guarantees, for each kind it reads: openai's chat
completions and Responses API events, anthropic's messages (beta ones too). A stream is
recorded once, however it ends: read to the end, closed early, left open when its block fails,
over its cap (the error raised in the caller's loop after the text), and in threads and tasks
sharing one parent. Each kind's own cases are in ``test_sdk_streams.py``,
``test_sdk_responses.py`` and ``test_sdk_message_streams.py``."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import anthropic
import openai
import pytest
from sdk_figures import USER, gpt4o_mini, haiku

from shekel import BudgetExceededError, budget
from shekel.testing import FakeProvider, Reply

WORDS = " ".join(f"w{i}" for i in range(40))


@dataclass(frozen=True)
class Kind:
    """One kind of stream: how to ask for it, and how its text deltas look."""

    name: str
    sdk: ModuleType
    create: Callable[[Any], Any]  # a client -> its stream (a coroutine of it, async)
    text: Callable[[Any], str | None]  # an event -> its text, ``None`` for other events
    cost: Callable[[int, int], float]  # input and output tokens -> USD

    def client(self, fake: FakeProvider, *, sync: bool = True) -> Any:
        if self.sdk is openai:
            cls: Any = openai.OpenAI if sync else openai.AsyncOpenAI
            return cls(base_url=fake.openai_base_url, api_key="t")
        cls = anthropic.Anthropic if sync else anthropic.AsyncAnthropic
        return cls(base_url=fake.anthropic_base_url, api_key="t")


def _chat_text(chunk: Any) -> str | None:
    return (chunk.choices[0].delta.content or None) if chunk.choices else None


KINDS = [
    Kind(
        "chat",
        openai,
        lambda c: c.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True),
        _chat_text,
        gpt4o_mini,
    ),
    Kind(
        "responses",
        openai,
        lambda c: c.responses.create(model="gpt-4o-mini", input="hi", stream=True),
        lambda e: e.delta if e.type == "response.output_text.delta" else None,
        gpt4o_mini,
    ),
    Kind(
        "messages",
        anthropic,
        lambda c: c.messages.create(
            model="claude-3-haiku-20240307", max_tokens=200, messages=USER, stream=True
        ),
        lambda e: e.delta.text if e.type == "content_block_delta" else None,
        haiku,
    ),
    Kind(
        "beta-messages",
        anthropic,
        lambda c: c.beta.messages.create(
            model="claude-3-haiku-20240307", max_tokens=200, messages=USER, stream=True
        ),
        lambda e: e.delta.text if e.type == "content_block_delta" else None,
        haiku,
    ),
]
each_kind = pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])


class Boom(Exception):
    pass


@each_kind
def test_a_stream_read_to_its_end_is_recorded_once_as_reported(
    kind: Kind, fake: FakeProvider
) -> None:
    fake.enqueue(Reply(text="one two three", input_tokens=300, output_tokens=3))
    with budget(max_usd=1.0) as b:
        text = "".join(kind.text(event) or "" for event in kind.create(kind.client(fake)))
    assert text == "one two three"
    (call,) = b.history().calls
    assert (call.input_tokens, call.output_tokens, call.estimated) == (300, 3, False)
    assert b.spent == pytest.approx(kind.cost(300, 3), abs=1e-12)


@each_kind
def test_the_stream_is_the_sdks_own_class_and_next_reads_it_too(
    kind: Kind, fake: FakeProvider
) -> None:
    """Code that calls ``next(stream)`` or checks the stream's type sees no difference."""
    fake.enqueue(Reply(text="one two", input_tokens=30, output_tokens=2))
    with budget(max_usd=1.0) as b:
        stream = kind.create(kind.client(fake))
        assert isinstance(stream, kind.sdk.Stream)
        texts = []
        while True:
            try:
                texts.append(kind.text(next(stream)) or "")
            except StopIteration:
                break
    assert "".join(texts) == "one two"
    assert b.spent == pytest.approx(kind.cost(30, 2), abs=1e-12)


@each_kind
def test_a_block_failing_with_its_stream_open_records_the_deltas_read(
    kind: Kind, fake: FakeProvider
) -> None:
    """Neither closed nor dropped: the stream is still referenced when the block ends."""
    fake.enqueue(Reply(text=WORDS, input_tokens=2000, output_tokens=40))
    kept: list[Any] = []
    with pytest.raises(Boom), budget(max_usd=1.0) as b:
        stream = kind.create(kind.client(fake))
        kept.append(stream)
        deltas = 0
        for event in stream:
            deltas += kind.text(event) is not None
            if deltas == 6:
                raise Boom
    (call,) = b.history().calls
    assert call.estimated is True
    assert call.output_tokens == 6
    assert call.input_tokens > 0


@each_kind
@pytest.mark.parametrize("read", [0, 3], ids=["unread", "half-read"])
def test_a_stream_dropped_without_closing_is_recorded_when_collected(
    kind: Kind, read: int, fake: FakeProvider
) -> None:
    """Neither read to the end nor closed: the stream is recorded from what went by when the
    garbage collector takes it, with its prompt estimated."""
    fake.enqueue(Reply(text=WORDS, input_tokens=2000, output_tokens=40))
    client = kind.client(fake)
    with budget(max_usd=1.0) as b:
        stream = kind.create(client)
        deltas = 0
        for event in stream if read else ():
            deltas += kind.text(event) is not None
            if deltas == read:
                del event
                break
        del stream
        gc.collect()
        (call,) = b.history().calls
    assert call.estimated is True
    assert call.output_tokens == read
    assert call.input_tokens > 0
    assert b.spent > 0


_OPEN_AT_EXIT = """
import atexit

def report():  # registered before shekel is imported (and its exit hook): runs after it
    calls = b.history().calls
    print(len(calls), all(call.estimated for call in calls), sorted(c.output_tokens for c in calls))

atexit.register(report)
import anthropic, openai
from shekel import budget
from shekel.testing import FakeProvider, Reply

fake = FakeProvider().__enter__()
for _ in range(2):
    fake.enqueue(Reply(text="a b c", input_tokens=2000, output_tokens=3))
b = budget(max_usd=1.0)
b.__enter__()
user = [{"role": "user", "content": "hi"}]
chat = openai.OpenAI(base_url=fake.openai_base_url, api_key="t").chat.completions.create(
    model="gpt-4o-mini", messages=user, stream=True
)
message = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="t").messages.create(
    model="claude-3-haiku-20240307", max_tokens=10, messages=user, stream=True
)
for _, _chunk in zip(range(3), chat):  # the role, then two words; the message is left unread
    pass
"""


def test_streams_still_open_when_the_interpreter_exits_are_recorded_quietly() -> None:
    """Recorded by shekel's exit hook, while the modules are whole: nothing is printed when
    the streams are collected later, as the interpreter takes its modules apart."""
    done = subprocess.run(
        [sys.executable, "-c", _OPEN_AT_EXIT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "True", "[0,", "2]"]
    assert done.stderr == ""


@each_kind
def test_a_stream_closed_early_records_what_went_by(kind: Kind, fake: FakeProvider) -> None:
    fake.enqueue(Reply(text=WORDS, input_tokens=1000, output_tokens=40))
    with budget(max_usd=1.0) as b:
        stream = kind.create(kind.client(fake))
        deltas = 0
        for event in stream:
            deltas += kind.text(event) is not None
            if deltas == 4:
                break
        stream.close()
        assert stream.response.is_closed
    (call,) = b.history().calls
    assert call.estimated is True
    assert call.output_tokens == 4


@each_kind
def test_async_stream_closed_early_records_what_went_by(kind: Kind, fake: FakeProvider) -> None:
    fake.enqueue(Reply(text=WORDS, input_tokens=1000, output_tokens=40))

    async def run() -> Any:
        client = kind.client(fake, sync=False)
        async with budget(max_usd=1.0) as b:
            stream = await kind.create(client)
            deltas = 0
            async for event in stream:
                deltas += kind.text(event) is not None
                if deltas == 4:
                    break
            await stream.close()
        await client.close()
        return b

    (call,) = asyncio.run(run()).history().calls
    assert call.estimated is True
    assert call.output_tokens == 4


@each_kind
def test_async_stream_over_the_cap_raises_in_the_loop_after_its_text(
    kind: Kind, fake: FakeProvider
) -> None:
    fake.enqueue(Reply(text="a b c", input_tokens=100_000, output_tokens=3))

    async def run() -> tuple[str, Any]:
        client = kind.client(fake, sync=False)
        seen = []
        async with budget(max_usd=0.01) as b:
            stream = await kind.create(client)
            with pytest.raises(BudgetExceededError):
                async for event in stream:
                    seen.append(kind.text(event) or "")
        await client.close()
        return "".join(seen), b

    text, b = asyncio.run(run())
    assert text == "a b c"
    assert b.spent == pytest.approx(kind.cost(100_000, 3), abs=1e-12)


@each_kind
def test_threads_streaming_under_one_parent_lose_no_spend(kind: Kind, fake: FakeProvider) -> None:
    """Eight threads, each in a child of one budget (as a framework's thread pool runs them),
    stream at once: every stream is recorded once, exactly, on its child and on the parent."""
    threads, per_thread = 8, 3
    client = kind.client(fake)
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(parent: Any, i: int) -> None:
        try:
            with parent.child(f"worker{i}", max_usd=1.0):
                start.wait()
                for _ in range(per_thread):
                    for _event in kind.create(client):
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
    _each_stream_recorded_once(kind, parent, [f"worker{i}" for i in range(threads)], per_thread)


@each_kind
def test_tasks_streaming_at_once_under_one_parent_lose_no_spend(
    kind: Kind, fake: FakeProvider
) -> None:
    """Eight asyncio tasks, each in a child of one budget, start their streams together."""
    tasks, per_task = 8, 2

    async def run() -> Any:
        client = kind.client(fake, sync=False)
        start = asyncio.Event()

        async def work(parent: Any, i: int) -> None:
            async with parent.child(f"task{i}", max_usd=1.0):
                await start.wait()
                for _ in range(per_task):
                    async for _event in await kind.create(client):
                        pass

        async with budget(max_usd=10.0, name="pool") as parent:
            running = [asyncio.create_task(work(parent, i)) for i in range(tasks)]
            await asyncio.sleep(0)
            start.set()
            await asyncio.gather(*running)
        await client.close()
        return parent

    parent = asyncio.run(run())
    _each_stream_recorded_once(kind, parent, [f"task{i}" for i in range(tasks)], per_task)


def _each_stream_recorded_once(
    kind: Kind, parent: Any, children: list[str], per_child: int
) -> None:
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
        sum(kind.cost(c.input_tokens, c.output_tokens) for c in calls), abs=1e-12
    )
