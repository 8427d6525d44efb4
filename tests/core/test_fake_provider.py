"""The fake provider (shekel.testing) driven by the real openai and anthropic SDKs."""

from __future__ import annotations

import asyncio
import base64
import inspect
import itertools
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from pydantic import BaseModel

from shekel.testing import DEFAULT_TEXT, STREAM_FRAMINGS, FakeProvider, Fault, Reply, StreamFraming

SRC = Path(__file__).resolve().parents[2] / "packages" / "shekel" / "src"
CHAT: Any = [{"role": "user", "content": "Say something."}]


@pytest.fixture
def oai(fake_llm: FakeProvider) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)
    yield client
    client.close()


@pytest.fixture
def claude(fake_llm: FakeProvider) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(
        base_url=fake_llm.anthropic_base_url, api_key="test", max_retries=0
    )
    yield client
    client.close()


def sse_events(raw: str) -> list[tuple[str | None, str]]:
    """(event name, data) pairs of an SSE body, checking the blank-line framing."""
    assert raw.endswith("\n\n")
    events = []
    for block in raw[:-2].split("\n\n"):
        name = None
        data = []
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            else:
                assert field == "data", line
                data.append(value)
        events.append((name, "\n".join(data)))
    return events


def post_raw(fake: FakeProvider, path: str, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(base_url=fake.url) as client:
        return client.post(path, json=body)


# The oldest SDKs shekel supports lack some entry points; tests of the fake through those skip.
needs_responses = pytest.mark.skipif(
    not hasattr(openai.OpenAI, "responses"), reason="this openai has no Responses API"
)
needs_chat_helpers = pytest.mark.skipif(
    not hasattr(openai.resources.chat.Completions, "parse"),
    reason="this openai has chat.completions.parse/stream only under client.beta",
)
needs_count_tokens = pytest.mark.skipif(
    not hasattr(anthropic.resources.Messages, "count_tokens"),
    reason="this anthropic has messages.count_tokens only under client.beta",
)
needs_models = pytest.mark.skipif(
    not hasattr(anthropic.Anthropic, "models"), reason="this anthropic has no models API"
)
needs_thinking = pytest.mark.skipif(
    "thinking" not in inspect.signature(anthropic.resources.Messages.create).parameters,
    reason="this anthropic has no extended thinking",
)


def body_cut_off(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a response body that ended early. openai 2 lets httpx's
    RemoteProtocolError through; openai 3 wraps httpx2's in an APIConnectionError."""
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ == "RemoteProtocolError" and "incomplete" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# --- lifecycle, scripting ---------------------------------------------------------------------


def test_fixture_gives_running_provider_on_loopback(fake_llm: FakeProvider) -> None:
    assert fake_llm.url == f"http://127.0.0.1:{fake_llm.port}"
    assert fake_llm.port > 0
    assert fake_llm.openai_base_url == fake_llm.url + "/v1"
    assert fake_llm.anthropic_base_url == fake_llm.url
    with socket.create_connection(("127.0.0.1", fake_llm.port), timeout=2):
        pass
    assert fake_llm.running


def test_stop_closes_listener_and_idle_keepalive_connections() -> None:
    fake = FakeProvider()
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
    client.chat.completions.create(model="m", messages=CHAT)  # leaves a pooled connection
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 1.5
    fake.stop()  # idempotent
    assert not fake.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", fake.port), timeout=1).close()
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=CHAT)
    client.close()


def test_requests_are_recorded_with_path_body_and_headers(
    fake_llm: FakeProvider, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    oai.chat.completions.create(model="gpt-x", messages=CHAT, temperature=0.5)
    claude.messages.create(model="claude-x", max_tokens=10, messages=CHAT)
    first, second = fake_llm.requests
    assert first.path == "/v1/chat/completions"
    assert first.method == "POST"
    assert first.body["model"] == "gpt-x"
    assert first.body["temperature"] == 0.5
    assert first.headers["authorization"] == "Bearer test"
    assert second.path == "/v1/messages"
    assert second.headers["user-agent"].startswith("Anthropic/")
    assert "anthropic-version" in second.headers


def test_queue_is_fifo_then_default_and_reset_clears(
    fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    fake_llm.enqueue(Reply(text="first"), Reply(text="second"))
    assert fake_llm.pending == 2
    texts = [
        oai.chat.completions.create(model="m", messages=CHAT).choices[0].message.content
        for _ in range(3)
    ]
    assert texts == ["first", "second", DEFAULT_TEXT]
    assert fake_llm.pending == 0
    fake_llm.enqueue(Reply(text="never served"))
    fake_llm.set_usage(input_tokens=99, output_tokens=9)
    fake_llm.reset()
    assert fake_llm.requests == []
    assert fake_llm.pending == 0
    usage = oai.chat.completions.create(model="m", messages=CHAT).usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (12, 3)


def test_set_usage_and_word_count_defaults(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.set_usage(input_tokens=40, output_tokens=7)
    fake_llm.enqueue(Reply(), Reply(text="five words are in here"), Reply(text="x", input_tokens=1))
    usages = []
    for _ in range(3):
        usage = oai.chat.completions.create(model="m", messages=CHAT).usage
        assert usage is not None
        usages.append((usage.prompt_tokens, usage.completion_tokens, usage.total_tokens))
    assert usages == [(40, 7, 47), (40, 5, 45), (1, 1, 2)]


@needs_responses
def test_echo_mode_repeats_last_user_message() -> None:
    with FakeProvider(echo=True) as fake:
        oai = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
        claude = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="t", max_retries=0)
        messages: Any = [
            {"role": "user", "content": "older"},
            {"role": "assistant", "content": "reply"},
            {"role": "user", "content": [{"type": "text", "text": "echo me please"}]},
        ]
        chat = oai.chat.completions.create(model="m", messages=messages)
        assert chat.choices[0].message.content == "echo me please"
        assert oai.responses.create(model="m", input="ping back").output_text == "ping back"
        message = claude.messages.create(model="c", max_tokens=50, messages=messages)
        assert message.content[0].type == "text"
        assert message.content[0].text == "echo me please"
        fake.enqueue(Reply(text="scripted wins"))
        chat = oai.chat.completions.create(model="m", messages=messages)
        assert chat.choices[0].message.content == "scripted wins"
        oai.close()
        claude.close()


def test_reply_and_fault_validation() -> None:
    with pytest.raises(ValueError, match="output_tokens"):
        Reply(output_tokens=-1)
    with pytest.raises(ValueError, match="4xx or 5xx"):
        Reply.error(200)
    assert Reply.error(429, retry_after=2.0).fault == Fault(429, retry_after=2.0)
    with FakeProvider() as fake, pytest.raises(TypeError):
        fake.enqueue("not a reply")  # type: ignore[arg-type]


# --- OpenAI chat completions ------------------------------------------------------------------


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


# --- OpenAI responses -------------------------------------------------------------------------


@needs_responses
def test_responses_plain(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(
        Reply(
            text="the answer",
            input_tokens=70,
            output_tokens=9,
            cached_input_tokens=30,
            reasoning_tokens=4,
        )
    )
    response = oai.responses.create(model="gpt-r", input="question?")
    assert response.object == "response"
    assert response.model == "gpt-r"
    assert response.status == "completed"
    assert response.output_text == "the answer"
    usage = response.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (70, 9, 79)
    assert usage.input_tokens_details.cached_tokens == 30
    assert usage.output_tokens_details.reasoning_tokens == 4


@needs_responses
def test_responses_truncated_is_incomplete(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(Reply(text="a b c d e f g h", output_tokens=20))
    response = oai.responses.create(model="m", input="q", max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "a b c d e f g h"
    assert response.usage is not None
    assert response.usage.output_tokens == 16


@needs_responses
def test_responses_stream_event_sequence(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(Reply(text="red green blue", input_tokens=11))
    events = list(oai.responses.create(model="m", input="colors", stream=True))
    types = [event.type for event in events]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert deltas == ["red ", "green ", "blue"]
    done = events[-1]
    assert done.type == "response.completed"
    assert done.response.output_text == "red green blue"
    assert done.response.usage is not None
    assert (done.response.usage.input_tokens, done.response.usage.output_tokens) == (11, 3)


def test_responses_stream_wire_layout_and_truncation(fake_llm: FakeProvider) -> None:
    words = [f"w{i}" for i in range(20)]
    fake_llm.enqueue(Reply(text=" ".join(words)))
    body = {"model": "m", "input": "q", "stream": True, "max_output_tokens": 16}
    events = sse_events(post_raw(fake_llm, "/v1/responses", body).text)
    for name, data in events:
        assert json.loads(data)["type"] == name
    assert events[-1][0] == "response.incomplete"
    final = json.loads(events[-1][1])["response"]
    assert final["status"] == "incomplete"
    assert final["usage"]["output_tokens"] == 16
    assert final["output"][0]["content"][0]["text"] == " ".join(words[:16])
    created = json.loads(events[0][1])["response"]
    assert (created["status"], created["usage"]) == ("in_progress", None)


@needs_responses
def test_responses_stream_helper(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(Reply(text="helper text here", input_tokens=21, output_tokens=6))
    with oai.responses.stream(model="m", input="q") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas == ["helper ", "text ", "here"]
    assert final.output_text == "helper text here"
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (21, 6)


# --- OpenAI embeddings ------------------------------------------------------------------------


def test_embeddings_default_base64_and_explicit_float(
    fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    fake_llm.enqueue(Reply(input_tokens=17))
    result = oai.embeddings.create(model="text-embedding-3-small", input=["cat", "dog", "cat"])
    # the SDK asks for base64 by default (older ones only when numpy is installed)
    assert fake_llm.requests[0].body.get("encoding_format") in ("base64", None)
    assert [item.index for item in result.data] == [0, 1, 2]
    vectors = [item.embedding for item in result.data]
    assert all(len(v) == 8 and all(-1 <= x < 1 for x in v) for v in vectors)
    assert vectors[0] == vectors[2] != vectors[1]
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (17, 17)
    assert result.model == "text-embedding-3-small"

    floats = oai.embeddings.create(model="e", input="cat", encoding_format="float")
    assert [item.embedding for item in floats.data] == [vectors[0]]
    assert floats.usage.prompt_tokens == 12

    body = {"model": "e", "input": "cat", "encoding_format": "base64", "dimensions": 3}
    raw = post_raw(fake_llm, "/v1/embeddings", body).json()["data"][0]["embedding"]
    assert isinstance(raw, str)
    assert list(struct.unpack("<3f", base64.b64decode(raw))) == vectors[0][:3]


# --- Anthropic messages -----------------------------------------------------------------------


def test_messages_plain_usage(fake_llm: FakeProvider, claude: anthropic.Anthropic) -> None:
    fake_llm.enqueue(
        Reply(
            text="bonjour",
            input_tokens=200,
            output_tokens=25,
            cached_input_tokens=150,
            cache_write_tokens=60,
        )
    )
    message = claude.messages.create(model="claude-sonnet-x", max_tokens=100, messages=CHAT)
    assert message.type == "message"
    assert message.model == "claude-sonnet-x"
    assert message.content[0].type == "text"
    assert message.content[0].text == "bonjour"
    assert message.stop_reason == "end_turn"
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (200, 25)
    assert usage.cache_read_input_tokens == 150
    assert usage.cache_creation_input_tokens == 60


def test_messages_truncated_by_max_tokens(
    fake_llm: FakeProvider, claude: anthropic.Anthropic
) -> None:
    fake_llm.enqueue(Reply(text="lorem ipsum dolor sit amet", output_tokens=300))
    message = claude.messages.create(model="c", max_tokens=3, messages=CHAT)
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 3
    assert message.content[0].type == "text"
    assert message.content[0].text == "lorem ipsum dolor"


def test_messages_raw_stream_events(fake_llm: FakeProvider, claude: anthropic.Anthropic) -> None:
    fake_llm.enqueue(Reply(text="one two", input_tokens=9, output_tokens=4, cached_input_tokens=5))
    events = list(claude.messages.create(model="c", max_tokens=99, messages=CHAT, stream=True))
    assert [e.type for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start, delta = events[0], events[5]
    assert start.type == "message_start"
    assert (start.message.usage.input_tokens, start.message.usage.output_tokens) == (9, 1)
    assert start.message.usage.cache_read_input_tokens == 5
    assert delta.type == "message_delta"
    assert (delta.usage.input_tokens, delta.usage.output_tokens) == (9, 4)
    assert delta.usage.cache_read_input_tokens == 5
    assert delta.delta.stop_reason == "end_turn"


def test_messages_stream_wire_layout(fake_llm: FakeProvider) -> None:
    body = {"model": "c", "max_tokens": 2, "messages": CHAT, "stream": True}
    events = sse_events(post_raw(fake_llm, "/v1/messages", body).text)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    for name, data in events:
        assert json.loads(data)["type"] == name
    closing = json.loads(events[-2][1])
    assert closing["delta"]["stop_reason"] == "max_tokens"
    assert closing["usage"]["output_tokens"] == 2


def test_messages_stream_helper_sync(fake_llm: FakeProvider, claude: anthropic.Anthropic) -> None:
    fake_llm.enqueue(Reply(text="tick tock clock", input_tokens=44, cache_write_tokens=3))
    with claude.messages.stream(model="c", max_tokens=50, messages=CHAT) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert pieces == ["tick ", "tock ", "clock"]
    assert final.content[0].type == "text"
    assert final.content[0].text == "tick tock clock"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (44, 3)
    assert final.usage.cache_creation_input_tokens == 3


def test_async_clients_stream(fake_llm: FakeProvider) -> None:
    fake_llm.enqueue(Reply(text="async claude"), Reply(text="async gpt", output_tokens=5))

    async def run() -> tuple[list[str], Any, list[Any]]:
        claude = anthropic.AsyncAnthropic(
            base_url=fake_llm.anthropic_base_url, api_key="t", max_retries=0
        )
        oai = openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="t", max_retries=0)
        async with claude.messages.stream(model="c", max_tokens=50, messages=CHAT) as stream:
            pieces = [text async for text in stream.text_stream]
            final = await stream.get_final_message()
        chat = await oai.chat.completions.create(
            model="m", messages=CHAT, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in chat]
        await claude.close()
        await oai.close()
        return pieces, final, chunks

    pieces, final, chunks = asyncio.run(run())
    assert pieces == ["async ", "claude"]
    assert final.usage.output_tokens == 2
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "async gpt"
    assert chunks[-1].usage.completion_tokens == 5


@needs_count_tokens
def test_count_tokens(fake_llm: FakeProvider, claude: anthropic.Anthropic) -> None:
    fake_llm.enqueue(Reply(text="not consumed by count_tokens"))
    count = claude.messages.count_tokens(
        model="c", system="x" * 8, messages=[{"role": "user", "content": "y" * 33}]
    )
    assert count.input_tokens == 10  # (8 + 33) // 4
    tiny = claude.messages.count_tokens(model="c", messages=[{"role": "user", "content": "a"}])
    assert tiny.input_tokens == 1
    assert fake_llm.pending == 1


# --- errors and faults ------------------------------------------------------------------------


@needs_responses
def test_rate_limit_and_server_errors_openai(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(Reply.error(429, retry_after=1.5), Reply.error(500, message="boom"))
    with pytest.raises(openai.RateLimitError) as limited:
        oai.chat.completions.create(model="m", messages=CHAT)
    assert limited.value.status_code == 429
    assert limited.value.response.headers["retry-after"] == "1.5"
    assert limited.value.response.headers["retry-after-ms"] == "1500"
    assert limited.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError) as failed:
        oai.responses.create(model="m", input="q")
    assert failed.value.status_code == 500
    assert isinstance(failed.value.body, dict)
    assert failed.value.body["message"] == "boom"
    assert failed.value.type == "server_error"


def test_rate_limit_and_server_errors_anthropic(
    fake_llm: FakeProvider, claude: anthropic.Anthropic
) -> None:
    fake_llm.enqueue(Reply.error(429, retry_after=2), Reply.error(500))
    with pytest.raises(anthropic.RateLimitError) as limited:
        claude.messages.create(model="c", max_tokens=5, messages=CHAT)
    assert limited.value.response.headers["retry-after"] == "2"
    assert limited.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Fake provider error 429."},
    }
    with (
        pytest.raises(anthropic.InternalServerError) as failed,
        claude.messages.stream(model="c", max_tokens=5, messages=CHAT) as stream,
    ):
        list(stream.text_stream)
    assert failed.value.status_code == 500
    assert isinstance(failed.value.body, dict)
    assert failed.value.body["error"]["type"] == "api_error"


@needs_models
def test_unknown_paths_get_404_in_each_shape(
    fake_llm: FakeProvider, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    with pytest.raises(openai.NotFoundError) as missing_openai:
        oai.models.list()
    assert missing_openai.value.type == "invalid_request_error"
    with pytest.raises(anthropic.NotFoundError) as missing_anthropic:
        claude.models.list()
    assert isinstance(missing_anthropic.value.body, dict)
    assert missing_anthropic.value.body["error"]["type"] == "not_found_error"
    assert [r.method for r in fake_llm.requests] == ["GET", "GET"]


def test_invalid_json_is_a_400(fake_llm: FakeProvider) -> None:
    with httpx.Client(base_url=fake_llm.url) as client:
        response = client.post("/v1/chat/completions", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_drop_mid_stream_openai(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(Reply(text="a b c d e f", drop_after_chunks=2))
    received: list[str] = []

    def consume() -> None:
        for chunk in oai.chat.completions.create(model="m", messages=CHAT, stream=True):
            received.append(chunk.choices[0].delta.content or "")

    with pytest.raises(Exception) as dropped:
        consume()
    assert body_cut_off(dropped.value)
    assert "".join(received) == "a b "
    # the pooled client recovers on a fresh connection
    assert oai.chat.completions.create(model="m", messages=CHAT).choices[0].message.content


def test_drop_mid_stream_anthropic_and_non_stream(
    fake_llm: FakeProvider, claude: anthropic.Anthropic
) -> None:
    fake_llm.enqueue(Reply(text="x y z", drop_after_chunks=1), Reply(drop_after_chunks=0))
    received: list[str] = []
    with (
        pytest.raises(Exception) as dropped,
        claude.messages.stream(model="c", max_tokens=50, messages=CHAT) as stream,
    ):
        received.extend(stream.text_stream)
    assert body_cut_off(dropped.value)
    assert received == ["x "]
    with pytest.raises(anthropic.APIConnectionError):
        claude.messages.create(model="c", max_tokens=50, messages=CHAT)


def test_latency_and_chunk_delay_are_observable(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(Reply(latency=0.15), Reply(text="p q r s", chunk_delay=0.04))
    started = time.monotonic()
    oai.chat.completions.create(model="m", messages=CHAT)
    assert time.monotonic() - started >= 0.15
    arrivals = []
    for chunk in oai.chat.completions.create(model="m", messages=CHAT, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic())
    assert len(arrivals) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.03


# --- stream framing: how events are cut into HTTP chunks -------------------------------------


@dataclass
class RawStream:
    """A streamed response as it came off the socket."""

    reads: list[bytes]  # what each recv() returned, after the headers
    chunks: list[bytes]  # the HTTP chunks of the body, in order (without the final 0-chunk)


def raw_stream(fake: FakeProvider, path: str, body: dict[str, Any]) -> RawStream:
    """POST ``body`` over a bare socket (``Connection: close``) and record reads and chunks."""
    data = json.dumps(body).encode()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {fake.host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode() + data
    reads: list[bytes] = []
    with socket.create_connection((fake.host, fake.port), timeout=10) as sock:
        sock.sendall(request)
        while piece := sock.recv(1 << 20):
            reads.append(piece)
    raw = b"".join(reads)
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"Transfer-Encoding: chunked" in head
    skip = len(head) + 4  # make ``reads`` start where the body does
    while skip:
        taken = min(skip, len(reads[0]))
        reads[0] = reads[0][taken:]
        skip -= taken
        if not reads[0]:
            reads.pop(0)
    chunks: list[bytes] = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert rest == b"\r\n"
            return RawStream(reads, chunks)
        chunks.append(rest[:size])
        assert rest[size : size + 2] == b"\r\n"
        rest = rest[size + 2 :]


def chunk_events(chunk: bytes) -> list[str]:
    """The SSE events in one HTTP chunk (each ends in a blank line, none is split)."""
    assert chunk.endswith(b"\n\n")
    return chunk.decode()[:-2].split("\n\n")


CHAT_STREAM = {
    "model": "gpt-4o-mini",
    "messages": CHAT,
    "stream": True,
    "stream_options": {"include_usage": True},
}


def test_default_framing_sends_usage_and_done_in_one_read(fake_llm: FakeProvider) -> None:
    assert fake_llm.stream_framing == "coalesced"
    fake_llm.enqueue(Reply(text="one two three", input_tokens=7, output_tokens=3))
    stream = raw_stream(fake_llm, "/v1/chat/completions", CHAT_STREAM)
    *leading, last = stream.chunks
    assert [len(chunk_events(chunk)) for chunk in leading] == [1, 1, 1, 1]  # role, 3 words
    finish, usage, done = chunk_events(last)
    assert '"finish_reason":"stop"' in finish
    assert '"usage":{"prompt_tokens":7,' in usage
    assert done == "data: [DONE]"
    # one send carries them and the end of the body, so the client reads them together
    (read,) = [read for read in stream.reads if b"[DONE]" in read]
    assert b'"usage":{"prompt_tokens":7,' in read
    assert read.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")
    # like OpenAI, no usage at all unless the request asked for it
    unasked = raw_stream(fake_llm, "/v1/chat/completions", {**CHAT_STREAM, "stream_options": None})
    finish, done = chunk_events(unasked.chunks[-1])
    assert '"finish_reason":"stop"' in finish
    assert done == "data: [DONE]"
    assert b"usage" not in b"".join(unasked.chunks)


def test_default_framing_closes_anthropic_and_responses_streams_in_one_chunk(
    fake_llm: FakeProvider,
) -> None:
    body = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": CHAT, "stream": True}
    stream = raw_stream(fake_llm, "/v1/messages", body)
    names = [[e.partition("\n")[0] for e in chunk_events(c)] for c in stream.chunks]
    assert names[:3] == [["event: message_start"], ["event: content_block_start"], ["event: ping"]]
    assert all(chunk == ["event: content_block_delta"] for chunk in names[3:-1])
    assert names[-1] == ["event: content_block_stop", "event: message_delta", "event: message_stop"]
    (read,) = [read for read in stream.reads if b"message_stop" in read]
    assert b'"output_tokens":3' in read  # the message_delta usage travels with message_stop

    body = {"model": "gpt-4o", "input": "q", "stream": True}
    stream = raw_stream(fake_llm, "/v1/responses", body)
    last = [e.partition("\n")[0] for e in chunk_events(stream.chunks[-1])]
    assert last == [
        "event: response.output_text.done",
        "event: response.content_part.done",
        "event: response.output_item.done",
        "event: response.completed",
    ]
    assert all(len(chunk_events(chunk)) == 1 for chunk in stream.chunks[:-1])


def test_split_and_single_framings() -> None:
    with FakeProvider(stream_framing="split") as fake:
        fake.enqueue(Reply(text="a b"), Reply(text="a b", stream_framing="single"))
        split = raw_stream(fake, "/v1/chat/completions", CHAT_STREAM)
        single = raw_stream(fake, "/v1/chat/completions", CHAT_STREAM)
        coalesced = Reply(text="a b", stream_framing="coalesced")
        fake.enqueue(coalesced)
        assert len(raw_stream(fake, "/v1/chat/completions", CHAT_STREAM).chunks) == 4
    assert [len(chunk_events(chunk)) for chunk in split.chunks] == [1] * 6
    assert chunk_events(split.chunks[-1]) == ["data: [DONE]"]
    assert len(single.chunks) == 1
    assert b"".join(split.chunks).count(b"data: ") == 6
    assert single.chunks[0].count(b"data: ") == 6
    # the same events either way, but for their ids and timestamps

    def payloads(chunks: list[bytes]) -> list[Any]:
        events = [e.removeprefix("data: ") for c in chunks for e in chunk_events(c)]
        decoded = [json.loads(e) for e in events[:-1]]
        return [{k: v for k, v in e.items() if k not in ("id", "created")} for e in decoded]

    assert payloads(single.chunks) == payloads(split.chunks)
    assert payloads(single.chunks)[-1]["usage"]["completion_tokens"] == 2


def test_framing_is_validated() -> None:
    assert STREAM_FRAMINGS == ("coalesced", "split", "single")
    with pytest.raises(ValueError, match="stream_framing"):
        Reply(stream_framing="lumped")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stream_framing"):
        FakeProvider(stream_framing="lumped")  # type: ignore[arg-type]


@needs_responses
@pytest.mark.parametrize("framing", STREAM_FRAMINGS)
def test_sdks_read_every_framing_alike(fake_llm: FakeProvider, framing: StreamFraming) -> None:
    oai = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="t", max_retries=0)
    claude = anthropic.Anthropic(base_url=fake_llm.anthropic_base_url, api_key="t", max_retries=0)
    text = "every framing gives the same answer"
    fake_llm.enqueue(*(Reply(text=text, input_tokens=21, stream_framing=framing) for _ in range(3)))
    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o", messages=CHAT, stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (21, 6)
    with oai.responses.stream(model="gpt-4o", input="q") as responses:
        deltas = [e.delta for e in responses if e.type == "response.output_text.delta"]
        final = responses.get_final_response()
    assert "".join(deltas) == final.output_text == text
    assert final.usage is not None
    assert final.usage.output_tokens == 6
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=99, messages=CHAT) as msgs:
        pieces = list(msgs.text_stream)
        message = msgs.get_final_message()
    assert "".join(pieces) == text
    assert (message.usage.input_tokens, message.usage.output_tokens) == (21, 6)
    assert message.stop_reason == "end_turn"
    oai.close()
    claude.close()


@pytest.mark.parametrize("framing", STREAM_FRAMINGS)
def test_drop_after_chunks_cuts_inside_any_framing(
    fake_llm: FakeProvider, oai: openai.OpenAI, framing: StreamFraming
) -> None:
    fake_llm.enqueue(Reply(text="a b c d e f", drop_after_chunks=2, stream_framing=framing))
    received: list[str] = []
    with pytest.raises(Exception) as dropped:
        for chunk in oai.chat.completions.create(model="m", messages=CHAT, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert body_cut_off(dropped.value)
    assert "".join(received) == "a b "


def test_drop_after_the_last_delta_loses_the_coalesced_usage(
    fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    fake_llm.enqueue(Reply(text="a b c", drop_after_chunks=3))
    chunks: list[Any] = []
    with pytest.raises(Exception) as dropped:
        chunks.extend(
            oai.chat.completions.create(
                model="m", messages=CHAT, stream=True, stream_options={"include_usage": True}
            )
        )
    assert body_cut_off(dropped.value)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "a b c"
    assert all(c.usage is None for c in chunks)


def test_chunk_delay_with_single_framing_holds_back_the_whole_body(
    fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    fake_llm.enqueue(Reply(text="p q r s", chunk_delay=0.04, stream_framing="single"))
    started = time.monotonic()
    arrivals = []
    for chunk in oai.chat.completions.create(model="m", messages=CHAT, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 4
    assert arrivals[0] >= 0.15  # 4 deltas x 0.04 s before the one chunk is sent
    assert arrivals[-1] - arrivals[0] < 0.03  # then they all arrive at once


# --- requests the real APIs refuse ------------------------------------------------------------


def openai_error(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    return error


def test_chat_limit_above_model_maximum_is_refused_like_openai(
    fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    fake_llm.enqueue(Reply(text="kept for the next valid request", ignore_max_tokens=True))
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(model="gpt-4o-mini", messages=CHAT, max_tokens=499995)
    assert refused.value.status_code == 400
    assert openai_error(refused.value) == {
        "message": "max_tokens is too large: 499995. This model supports at most 16384 "
        "completion tokens, whereas you provided 499995.",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "invalid_value",
    }
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(
            model="gpt-4o-2024-08-06", messages=CHAT, max_completion_tokens=16385, stream=True
        )
    error = openai_error(refused.value)
    assert error["param"] == "max_completion_tokens"
    assert error["message"].startswith("max_completion_tokens is too large: 16385. ")
    # refused requests are recorded but take no scripted reply
    assert len(fake_llm.requests) == 2
    assert fake_llm.pending == 1
    at_limit = oai.chat.completions.create(model="gpt-4o-mini", messages=CHAT, max_tokens=16384)
    assert at_limit.choices[0].message.content == "kept for the next valid request"
    # the table has no output maximum for this model, so the fake cannot refuse any limit
    unknown = oai.chat.completions.create(model="my-local-llm", messages=CHAT, max_tokens=10**7)
    assert unknown.choices[0].finish_reason == "stop"


def test_chat_limit_combination_type_and_minimum_are_checked(
    fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as both:
        oai.chat.completions.create(
            model="m", messages=CHAT, max_tokens=10, max_completion_tokens=10
        )
    assert openai_error(both.value) == {
        "message": "Setting 'max_tokens' and 'max_completion_tokens' at the same time is not "
        "supported.",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "invalid_parameter_combination",
    }
    with pytest.raises(openai.BadRequestError) as zero:
        oai.chat.completions.create(model="m", messages=CHAT, max_completion_tokens=0)
    assert openai_error(zero.value)["message"] == (
        "Invalid 'max_completion_tokens': integer below minimum value. "
        "Expected a value >= 1, but got 0 instead."
    )
    assert openai_error(zero.value)["code"] == "integer_below_min_value"
    text = post_raw(fake_llm, "/v1/chat/completions", {"messages": CHAT, "max_tokens": "64"})
    assert text.status_code == 400
    assert text.json()["error"]["code"] == "invalid_type"
    assert text.json()["error"]["message"] == (
        "Invalid type for 'max_tokens': expected an integer, but got a string instead."
    )
    # null means "no limit", as in the real API
    assert post_raw(fake_llm, "/v1/chat/completions", {"max_tokens": None}).status_code == 200


def test_chat_stream_options_need_a_stream(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(
            model="m", messages=CHAT, stream_options={"include_usage": True}
        )
    assert openai_error(refused.value)["param"] == "stream_options"
    assert openai_error(refused.value)["message"] == (
        "The 'stream_options' parameter is only allowed when 'stream' is enabled."
    )
    body = {"model": "m", "stream": False, "stream_options": None}
    assert post_raw(fake_llm, "/v1/chat/completions", body).status_code == 200


@needs_responses
def test_responses_limit_outside_range_is_refused(
    fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as low:
        oai.responses.create(model="gpt-4o", input="q", max_output_tokens=15)
    assert openai_error(low.value) == {
        "message": "Invalid 'max_output_tokens': integer below minimum value. "
        "Expected a value >= 16, but got 15 instead.",
        "type": "invalid_request_error",
        "param": "max_output_tokens",
        "code": "integer_below_min_value",
    }
    with pytest.raises(openai.BadRequestError) as high:
        oai.responses.create(model="gpt-4.1-mini", input="q", max_output_tokens=40000, stream=True)
    assert openai_error(high.value) == {
        "message": "Invalid 'max_output_tokens': integer above maximum value. "
        "Expected a value <= 32768, but got 40000 instead.",
        "type": "invalid_request_error",
        "param": "max_output_tokens",
        "code": "integer_above_max_value",
    }
    assert oai.responses.create(model="gpt-4.1-mini", input="q", max_output_tokens=16).usage
    assert oai.responses.create(model="gpt-4.1-mini", input="q", max_output_tokens=32768).usage


def test_messages_limit_above_model_maximum_is_refused_like_anthropic(
    fake_llm: FakeProvider, claude: anthropic.Anthropic
) -> None:
    model = "claude-haiku-4-5-20251001"
    fake_llm.enqueue(Reply(text="still queued"))
    with pytest.raises(anthropic.BadRequestError) as refused:
        # an explicit timeout turns off the SDK's own "use streaming for long requests" check
        claude.messages.create(model=model, max_tokens=100000, messages=CHAT, timeout=30)
    assert refused.value.status_code == 400
    assert refused.value.response.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "max_tokens: 100000 > 64000, which is the maximum allowed number of "
            "output tokens for claude-haiku-4-5-20251001",
        },
    }
    with (
        pytest.raises(anthropic.BadRequestError) as streamed,
        claude.messages.stream(model="claude-opus-4-1-20250805", max_tokens=32001, messages=CHAT),
    ):
        pass
    assert "max_tokens: 32001 > 32000, which" in str(streamed.value)
    assert fake_llm.pending == 1
    message = claude.messages.create(model=model, max_tokens=64000, messages=CHAT, timeout=30)
    assert message.content[0].type == "text"
    assert message.content[0].text == "still queued"
    unknown = claude.messages.create(model="local", max_tokens=10**7, messages=CHAT, timeout=30)
    assert unknown.stop_reason == "end_turn"


def test_messages_need_a_positive_integer_max_tokens(fake_llm: FakeProvider) -> None:
    expected = {
        "max_tokens: Field required": {"model": "c", "messages": CHAT},
        "max_tokens: Input should be greater than or equal to 1": {
            "model": "c",
            "messages": CHAT,
            "max_tokens": 0,
        },
        "max_tokens: Input should be a valid integer": {
            "model": "c",
            "messages": CHAT,
            "max_tokens": None,
            "stream": True,
        },
    }
    for message, body in expected.items():
        response = post_raw(fake_llm, "/v1/messages", body)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"] == {"type": "invalid_request_error", "message": message}
    # counting tokens takes no max_tokens
    count = post_raw(fake_llm, "/v1/messages/count_tokens", {"model": "c", "messages": CHAT})
    assert count.status_code == 200


@needs_thinking
def test_messages_max_tokens_must_leave_room_above_the_thinking_budget(
    fake_llm: FakeProvider, claude: anthropic.Anthropic
) -> None:
    def think(max_tokens: int, budget: int) -> anthropic.types.Message:
        return claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=max_tokens,
            messages=CHAT,
            thinking={"type": "enabled", "budget_tokens": budget},
        )

    with pytest.raises(anthropic.BadRequestError) as tight:
        think(2000, 2000)
    assert tight.value.response.json()["error"] == {
        "type": "invalid_request_error",
        "message": "`max_tokens` must be greater than `thinking.budget_tokens`.",
    }
    with pytest.raises(anthropic.BadRequestError) as small:
        think(5000, 1023)
    assert "budget_tokens: Input should be greater than or equal to 1024" in str(small.value)
    assert think(2001, 2000).stop_reason == "end_turn"
    disabled = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=10, messages=CHAT, thinking={"type": "disabled"}
    )
    assert disabled.stop_reason == "end_turn"


@needs_responses
def test_reply_reports_another_model(
    fake_llm: FakeProvider, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    snapshot = "gpt-4o-mini-2024-07-18"
    fake_llm.enqueue(*(Reply(model=snapshot) for _ in range(4)))
    assert oai.chat.completions.create(model="gpt-4o-mini", messages=CHAT).model == snapshot
    chunks = list(oai.chat.completions.create(model="gpt-4o-mini", messages=CHAT, stream=True))
    assert {chunk.model for chunk in chunks} == {snapshot}
    assert oai.responses.create(model="gpt-4o-mini", input="q").model == snapshot
    assert oai.embeddings.create(model="e", input="x").model == snapshot
    fake_llm.enqueue(Reply(model="claude-haiku-4-5-20251001"))
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=9, messages=CHAT) as stream:
        assert stream.get_final_message().model == "claude-haiku-4-5-20251001"
    # the limit is checked against the model asked for, not the one reported
    fake_llm.enqueue(Reply(model="gpt-5"))
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="gpt-4o", messages=CHAT, max_tokens=20000)
    assert oai.chat.completions.create(model="gpt-4o", messages=CHAT).model == "gpt-5"


# --- connections and concurrency --------------------------------------------------------------


def test_keepalive_reuses_one_connection(
    fake_llm: FakeProvider, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    for _ in range(4):
        oai.chat.completions.create(model="m", messages=CHAT)
        oai.embeddings.create(model="e", input="x")
    assert len(fake_llm.requests) == 8
    assert fake_llm.connections_accepted == 1
    # anthropic's stream reads the body to its end, so its connection goes back to the pool
    for _ in range(3):
        with claude.messages.stream(model="c", max_tokens=9, messages=CHAT) as stream:
            stream.get_final_message()
        claude.messages.create(model="c", max_tokens=9, messages=CHAT)
    assert fake_llm.connections_accepted == 2


def test_twenty_concurrent_requests(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(*(Reply(text=f"reply {i}", chunk_delay=0.01) for i in range(20)))
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(20)
    lock = threading.Lock()

    def worker(index: int) -> None:
        try:
            barrier.wait()
            if index % 2:
                text = oai.chat.completions.create(model="m", messages=CHAT).choices[0].message
                content = text.content or ""
            else:
                stream = oai.chat.completions.create(model="m", messages=CHAT, stream=True)
                content = "".join(c.choices[0].delta.content or "" for c in stream)
            with lock:
                results.append(content)
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert errors == []
    assert sorted(results) == sorted(f"reply {i}" for i in range(20))
    assert len(fake_llm.requests) == 20
    assert fake_llm.pending == 0


# --- packaging: plugin, CLI -------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


def test_plugin_and_package_import_no_sdk() -> None:
    code = (
        "import sys, shekel.testing, shekel.testing._pytest_plugin; "
        "print(sorted(m for m in ('openai', 'anthropic') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_cli_serves_until_interrupted() -> None:
    command = [sys.executable, "-m", "shekel.testing", "--port", "0"]
    with subprocess.Popen(
        command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline().strip() for _ in range(3)]
            url = lines[0].rsplit(" ", 1)[-1]
            assert url.startswith("http://127.0.0.1:")
            assert lines[1:] == [f"OPENAI_BASE_URL={url}/v1", f"ANTHROPIC_BASE_URL={url}"]
            response = httpx.post(url + "/v1/embeddings", json={"model": "e", "input": "z"})
            assert response.json()["usage"]["prompt_tokens"] == 12
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
