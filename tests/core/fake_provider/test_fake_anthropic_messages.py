"""The fake provider's Anthropic messages, plain and streamed, through the real anthropic SDK."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import openai
from fake_support import CHAT, needs_count_tokens, post_raw, sse_events

from shekel.testing import FakeProvider, Reply


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
