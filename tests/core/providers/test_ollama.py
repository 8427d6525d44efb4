"""The ollama client against the fake Ollama server: local models cost nothing, but every call
and token counts, so max_llm_calls and max_tokens cap a local agent."""

from __future__ import annotations

import asyncio

import ollama
import pytest

from shekel import BudgetExceededError, budget
from shekel.testing import FakeProvider, Reply, ToolCall

MODEL = "llama3.2"
USER = [{"role": "user", "content": "Say hello"}]


def test_chat_counts_tokens_at_no_cost(fake: FakeProvider) -> None:
    fake.enqueue(Reply(text="hi there", input_tokens=30, output_tokens=2))
    with budget(max_usd=0.01) as b:
        response = ollama.Client(host=fake.url).chat(model=MODEL, messages=USER)
    assert response.message.content == "hi there"
    assert fake.requests[0].body["stream"] is False
    call = b.summary_data()["calls"][0]
    assert (call["model"], call["input_tokens"], call["output_tokens"]) == (MODEL, 30, 2)
    assert not call["estimated"]
    assert b.spent == 0
    assert b.snapshot().llm_calls_used == 1


def test_streamed_chat_and_generate(fake: FakeProvider) -> None:
    fake.enqueue(
        Reply(text="one two three", input_tokens=40, output_tokens=3),
        Reply(text="four five", input_tokens=50, output_tokens=2),
    )
    client = ollama.Client(host=fake.url)
    with budget(max_tokens=1000) as b:
        chat = [
            part.message.content for part in client.chat(model=MODEL, messages=USER, stream=True)
        ]
        generated = [
            part.response for part in client.generate(model=MODEL, prompt="go", stream=True)
        ]
    assert "".join(chat) == "one two three"
    assert "".join(generated) == "four five"
    assert b.snapshot().tokens_used == 40 + 3 + 50 + 2
    assert [c["estimated"] for c in b.summary_data()["calls"]] == [False, False]


def test_async_client(fake: FakeProvider) -> None:
    async def calls() -> str:
        async with ollama.AsyncClient(host=fake.url) as client:
            first = await client.chat(model=MODEL, messages=USER)
            parts = [
                p.message.content
                async for p in await client.chat(model=MODEL, messages=USER, stream=True)
            ]
        return (first.message.content or "") + "|" + "".join(parts)

    fake.enqueue(
        Reply(text="a", input_tokens=5, output_tokens=1),
        Reply(text="b c", input_tokens=6, output_tokens=2),
    )
    with budget(max_llm_calls=5) as b:
        assert asyncio.run(calls()) == "a|b c"
    assert b.snapshot().llm_calls_used == 2
    assert b.snapshot().tokens_used == 14


def test_embed(fake: FakeProvider) -> None:
    fake.enqueue(Reply(input_tokens=7))
    with budget(max_tokens=100) as b:
        result = ollama.Client(host=fake.url).embed(model="nomic-embed-text", input=["a", "b"])
    assert len(result.embeddings) == 2
    assert b.snapshot().tokens_used == 7


def test_max_llm_calls_stops_a_local_agent(fake: FakeProvider) -> None:
    client = ollama.Client(host=fake.url)
    with budget(max_llm_calls=3) as b:
        with pytest.raises(BudgetExceededError) as refused:
            for _ in range(10):
                client.chat(model=MODEL, messages=USER)
    assert refused.value.sent is False
    assert len(fake.requests) == 3
    assert b.snapshot().llm_calls_used == 3


def test_max_tokens_in_strict_mode_sets_num_predict(fake: FakeProvider) -> None:
    fake.enqueue(Reply(text="word " * 300, input_tokens=10))
    with budget(max_tokens=200, strict=True) as b:
        response = ollama.Client(host=fake.url).chat(model=MODEL, messages=USER)
    allowed = fake.requests[0].body["options"]["num_predict"]
    assert 1 <= allowed < 200
    assert response.done_reason == "length"
    assert b.snapshot().tokens_used <= 200


def test_a_tool_call(fake: FakeProvider) -> None:
    fake.enqueue(Reply(tool_calls=[ToolCall("get_time", {"zone": "UTC"})], output_tokens=6))
    with budget(max_llm_calls=1):
        response = ollama.Client(host=fake.url).chat(model=MODEL, messages=USER)
    assert response.message.tool_calls is not None
    call = response.message.tool_calls[0].function
    assert (call.name, call.arguments) == ("get_time", {"zone": "UTC"})


def test_a_missing_model_costs_nothing(fake: FakeProvider) -> None:
    fake.enqueue(Reply.error(404, message="model 'llama9' not found, try pulling it first"))
    with budget(max_llm_calls=1) as b:
        with pytest.raises(ollama.ResponseError, match="try pulling it first") as failed:
            ollama.Client(host=fake.url).chat(model="llama9", messages=USER)
    assert failed.value.status_code == 404
    assert b.snapshot().llm_calls_used == 0
