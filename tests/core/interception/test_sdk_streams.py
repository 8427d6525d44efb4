"""Streamed chat completions at the SDK layer: their own cases (the usage chunk shekel asks
for and hides, a gateway's running totals, a retried first attempt); what every kind of stream
guarantees is in ``test_sdk_stream_kinds.py``."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from sdk_figures import USER
from wire import chat_chunk, http_library, openai_client, sse_handler

from shekel import budget
from shekel.testing import FakeProvider, Reply

WORDS = " ".join(f"w{i}" for i in range(40))


class Boom(Exception):
    pass


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


@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
@pytest.mark.parametrize("sync", [True, False])
def test_the_usage_chunk_shekel_asked_for_is_dropped_before_the_sdk_builds_it(
    fake: FakeProvider, sync: bool, padded: bool
) -> None:
    """The SDK builds an object of every event it is handed (about 40 µs for a usage chunk);
    the one the caller never asked for must not be handed over at all. OpenAI pads every
    chunk with an ``obfuscation`` field after its usage unless the request turns it off."""
    options: Any = {} if padded else {"stream_options": {"include_obfuscation": False}}
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
            model="gpt-4o-mini", messages=USER, stream=True, **options
        )
        return [chunk async for chunk in stream]

    with budget(max_usd=1.0) as b:
        if sync:
            chunks = list(
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=USER, stream=True, **options
                )
            )
        else:
            chunks = asyncio.run(read_async())
    assert len(built) == len(chunks) > 0
    # as OpenAI sends them to a request that asks for no usage: no usage field at all
    assert all("usage" not in data and data["choices"] for data in built)
    assert all(("obfuscation" in data) is padded for data in built)
    (call,) = b.history().calls
    assert (call.input_tokens, call.output_tokens, call.estimated) == (300, 3, False)
