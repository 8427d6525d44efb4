"""The fake provider's OpenAI chat completions, plain and streamed, through the real openai SDK."""

from __future__ import annotations

import json

import openai
from fake_support import CHAT, needs_chat_helpers, post_raw, sse_events
from pydantic import BaseModel

from shekel.testing import DEFAULT_TEXT, FakeProvider, Reply


def test_chat_completion_reports_scripted_usage(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(
        Reply(
            text="pong pong",
            input_tokens=100,
            output_tokens=50,
            cached_input_tokens=20,
            reasoning_tokens=7,
        )
    )
    completion = oai.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    choice = completion.choices[0]
    assert choice.message.content == "pong pong"
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (100, 50, 150)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 20
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 7


def test_chat_truncated_by_max_tokens(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(Reply(text="one two three four five"), Reply(text="a b c d", output_tokens=40))
    completion = oai.chat.completions.create(model="m", messages=CHAT, max_tokens=2)
    assert completion.choices[0].message.content == "one two"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 2
    completion = oai.chat.completions.create(model="m", messages=CHAT, max_completion_tokens=30)
    assert completion.choices[0].message.content == "a b c d"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 30


def test_chat_stream_chunks_words_and_usage_only_when_asked(
    fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    fake_llm.enqueue(Reply(text="alpha beta gamma", input_tokens=30, output_tokens=9))
    chunks = list(
        oai.chat.completions.create(
            model="m", messages=CHAT, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks[1:] if c.choices]
    assert pieces[:3] == ["alpha ", "beta ", "gamma"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (30, 9)
    assert all(c.usage is None for c in chunks[:-1])

    plain = list(oai.chat.completions.create(model="m", messages=CHAT, stream=True))
    assert all(c.choices for c in plain)
    assert all(c.usage is None for c in plain)
    assert "".join(c.choices[0].delta.content or "" for c in plain) == DEFAULT_TEXT


def test_chat_stream_wire_layout(fake_llm: FakeProvider) -> None:
    fake_llm.enqueue(Reply(text="x y", input_tokens=5, output_tokens=2))
    body = {
        "model": "m",
        "messages": CHAT,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = post_raw(fake_llm, "/v1/chat/completions", body)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["transfer-encoding"] == "chunked"
    events = sse_events(response.text)
    assert all(name is None for name, _ in events)
    assert events[-1][1] == "[DONE]"
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert all("usage" in chunk for chunk in chunks)
    assert [chunk["usage"] for chunk in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 7
    # OpenAI's default: every chunk padded last, after its usage, by a varying amount
    assert all(list(chunk)[-2:] == ["usage", "obfuscation"] for chunk in chunks)
    assert len({len(chunk["obfuscation"]) for chunk in chunks}) > 1

    body["stream_options"] = {"include_usage": True, "include_obfuscation": False}
    events = sse_events(post_raw(fake_llm, "/v1/chat/completions", body).text)
    assert all(data.endswith('"usage":null}') for _, data in events[:-2])

    for options in ({"include_usage": False}, None):
        body["stream_options"] = options
        events = sse_events(post_raw(fake_llm, "/v1/chat/completions", body).text)
        assert all("usage" not in json.loads(data) for _, data in events[:-1])
        assert events[-2][1].count('"finish_reason":"stop"') == 1


def test_chat_stream_truncated(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(Reply(text="w1 w2 w3 w4 w5 w6"))
    stream = oai.chat.completions.create(
        model="m",
        messages=CHAT,
        max_tokens=3,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "w1 w2 w3"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3


@needs_chat_helpers
def test_chat_stream_helper(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(Reply(text="streamed by helper", input_tokens=8))
    with oai.chat.completions.stream(
        model="m", messages=CHAT, stream_options={"include_usage": True}
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta" and e.delta]
        final = stream.get_final_completion()
    assert deltas == ["streamed ", "by ", "helper"]
    assert final.choices[0].message.content == "streamed by helper"
    assert final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (8, 3)


class Weather(BaseModel):
    city: str
    celsius: int


@needs_chat_helpers
def test_chat_parse_structured_output(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(Reply(text='{"city": "Oslo", "celsius": -3}'))
    completion = oai.chat.completions.parse(model="m", messages=CHAT, response_format=Weather)
    assert completion.choices[0].message.parsed == Weather(city="Oslo", celsius=-3)
    assert fake_llm.requests[0].body["response_format"]["type"] == "json_schema"
