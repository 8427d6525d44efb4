"""Every OpenAI SDK entry point, sync and async, is priced and recorded with no code change."""

from __future__ import annotations

import asyncio

import anthropic
import openai
import pydantic
import pytest
from sdk_figures import USER
from sdk_figures import gpt4o_mini as expected

from shekel import budget
from shekel.testing import FakeProvider, Reply


def test_chat_completion_recorded_and_priced(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.enqueue(Reply(text="hi", input_tokens=1200, output_tokens=300))
    with budget(max_usd=1.0) as b:
        oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    call = b.summary_data()["calls"][0]
    assert (call["model"], call["input_tokens"], call["output_tokens"]) == (
        "gpt-4o-mini",
        1200,
        300,
    )
    assert b.spent == pytest.approx(expected(1200, 300), abs=1e-9)
    assert b.snapshot().llm_calls_used == 1


def test_cached_and_reasoning_tokens_priced(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.enqueue(
        Reply(
            text="ok",
            input_tokens=10_000,
            output_tokens=2_000,
            cached_input_tokens=8_000,
            reasoning_tokens=1_500,
        )
    )
    with budget(max_usd=1.0) as b:
        oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    call = b.summary_data()["calls"][0]
    assert call["cache_read_tokens"] == 8_000
    assert call["reasoning_tokens"] == 1_500
    assert b.spent == pytest.approx(expected(10_000, 2_000, cached=8_000), abs=1e-9)


def test_no_budget_no_recording(fake: FakeProvider, oai: openai.OpenAI) -> None:
    outside = budget(max_usd=1.0, name="outside")
    with outside:
        pass
    oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert outside.spent == 0
    assert "stream_options" not in fake.requests[-1].body


def test_stream_usage_added_and_hidden(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.enqueue(Reply(text="one two three", input_tokens=50, output_tokens=3))
    with budget(max_usd=1.0) as b:
        stream = oai.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
        # Seed 001's loop: it indexes choices[0] on every chunk, so the extra usage chunk
        # that shekel asked for must not reach it.
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == "one two three"
    assert fake.requests[0].body["stream_options"] == {"include_usage": True}
    assert b.spent == pytest.approx(expected(50, 3), abs=1e-9)
    assert not b.summary_data()["calls"][0]["estimated"]


def test_stream_usage_kept_when_user_asked(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.enqueue(Reply(text="a b", input_tokens=20, output_tokens=2))
    with budget(max_usd=1.0) as b:
        chunks = list(
            oai.chat.completions.create(
                model="gpt-4o-mini",
                messages=USER,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 20
    # the null usage of the other chunks is the caller's too: left as OpenAI sent it
    assert all("usage" in chunk.model_fields_set for chunk in chunks[:-1])
    assert b.spent == pytest.approx(expected(20, 2), abs=1e-9)


def test_stream_helper_and_final_completion(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.enqueue(Reply(text="x y z", input_tokens=40, output_tokens=3))
    with (
        budget(max_usd=1.0) as b,
        oai.chat.completions.stream(model="gpt-4o-mini", messages=USER) as stream,
    ):
        for _event in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "x y z"
    assert b.spent == pytest.approx(expected(40, 3), abs=1e-9)


class Answer(pydantic.BaseModel):
    city: str


def test_parse(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.enqueue(Reply(text='{"city": "Paris"}', input_tokens=30, output_tokens=5))
    with budget(max_usd=1.0) as b:
        parsed = oai.chat.completions.parse(
            model="gpt-4o-mini", messages=USER, response_format=Answer
        )
    assert parsed.choices[0].message.parsed == Answer(city="Paris")
    assert b.spent == pytest.approx(expected(30, 5), abs=1e-9)


def test_with_raw_response(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.enqueue(Reply(text="raw", input_tokens=70, output_tokens=1))
    with budget(max_usd=1.0) as b:
        raw = oai.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER)
        completion = raw.parse()
    assert completion.usage is not None
    assert b.spent == pytest.approx(expected(70, 1), abs=1e-9)


def test_with_streaming_response(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.enqueue(Reply(text="streamed raw", input_tokens=80, output_tokens=2))
    with budget(max_usd=1.0) as b:
        with oai.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=USER
        ) as response:
            body = response.read()
        assert b"streamed raw" in body
    assert b.spent == pytest.approx(expected(80, 2), abs=1e-9)


def test_responses_create_and_stream(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.enqueue(
        Reply(text="plain", input_tokens=100, output_tokens=10),
        Reply(text="streamed answer", input_tokens=200, output_tokens=20),
        Reply(text="helper", input_tokens=300, output_tokens=30),
    )
    with budget(max_usd=1.0) as b:
        assert oai.responses.create(model="gpt-4o-mini", input="hi").output_text == "plain"
        events = list(oai.responses.create(model="gpt-4o-mini", input="hi", stream=True))
        assert events[-1].type == "response.completed"
        with oai.responses.stream(model="gpt-4o-mini", input="hi") as stream:
            final = stream.get_final_response()
        assert final.output_text == "helper"
    spent = expected(100, 10) + expected(200, 20) + expected(300, 30)
    assert b.spent == pytest.approx(spent, abs=1e-9)
    assert b.snapshot().llm_calls_used == 3
    assert b.summary_data()["estimated_calls"] == 0


def test_embeddings(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.set_usage(input_tokens=1_000_000)
    with budget(max_usd=1.0) as b:
        result = oai.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(result.data) == 2
    # text-embedding-3-small: $0.02 per 1M tokens
    assert b.spent == pytest.approx(0.02, abs=1e-9)
    assert b.summary_data()["calls"][0]["output_tokens"] == 0


def test_async_entry_points(fake: FakeProvider, aoai: openai.AsyncOpenAI) -> None:
    fake.enqueue(
        Reply(text="a", input_tokens=10, output_tokens=1),
        Reply(text="b c", input_tokens=20, output_tokens=2),
        Reply(text="d", input_tokens=30, output_tokens=1),
        Reply(text="e", input_tokens=40, output_tokens=1),
    )

    async def run() -> float:
        async with budget(max_usd=1.0) as b:
            await aoai.chat.completions.create(model="gpt-4o-mini", messages=USER)
            stream = await aoai.chat.completions.create(
                model="gpt-4o-mini", messages=USER, stream=True
            )
            async for chunk in stream:
                assert chunk.choices  # the hidden usage chunk never shows up
            await aoai.responses.create(model="gpt-4o-mini", input="hi")
            async with aoai.responses.stream(model="gpt-4o-mini", input="hi") as events:
                await events.get_final_response()
        await aoai.close()
        return b.spent

    spent = asyncio.run(run())
    total = expected(10, 1) + expected(20, 2) + expected(30, 1) + expected(40, 1)
    assert spent == pytest.approx(total, abs=1e-9)


def test_calls_name_their_operation_and_the_response_model(
    fake: FakeProvider, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    # A real API answers an alias with a dated snapshot: the call is priced as the alias it
    # asked for, and says which model answered.
    fake.enqueue(
        Reply(text="a", model="gpt-4o-mini-2024-07-18"),
        Reply(text="b c", model="gpt-4o-mini-2024-07-18"),
        Reply(text="d"),
        Reply(text="e", model="claude-3-haiku-20240307"),
    )
    with budget(max_usd=1.0) as b:
        oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
        list(oai.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True))
        oai.embeddings.create(model="text-embedding-3-small", input="a")
        claude.messages.create(model="claude-3-haiku-latest", max_tokens=10, messages=USER)
        b.record(model="gpt-4o-mini", input_tokens=1, output_tokens=1)
    seen = [(c.model, c.response_model, c.operation) for c in b.history().recent()]
    assert seen == [
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "chat"),
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "chat"),
        ("text-embedding-3-small", "text-embedding-3-small", "embeddings"),
        ("claude-3-haiku-latest", "claude-3-haiku-20240307", "chat"),
        ("gpt-4o-mini", None, None),  # record(): nobody said
    ]
    assert b.summary_data()["calls"][0]["response_model"] == "gpt-4o-mini-2024-07-18"
    assert b.summary_data()["calls"][2]["operation"] == "embeddings"
