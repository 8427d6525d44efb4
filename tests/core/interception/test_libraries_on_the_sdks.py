"""Libraries built on the official SDKs are recorded with no change: LangChain's chat models."""

from __future__ import annotations

import asyncio

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI
from sdk_figures import gpt4o_mini, haiku

from shekel import BudgetExceededError, budget
from shekel.testing import FakeProvider, Reply


def test_chat_openai_invoke_and_stream(fake: FakeProvider) -> None:
    fake.enqueue(
        Reply(text="plain", input_tokens=1000, output_tokens=100),
        Reply(text="one two three", input_tokens=2000, output_tokens=3),
    )
    model = ChatOpenAI(model="gpt-4o-mini", base_url=fake.openai_base_url, api_key="t")
    with budget(max_usd=1.0) as b:
        assert model.invoke("hi").content == "plain"
        # With a custom base_url LangChain does not ask for streamed usage; shekel does.
        text = "".join(str(chunk.content) for chunk in model.stream("hi"))
    assert text == "one two three"
    assert b.spent == pytest.approx(gpt4o_mini(1000, 100) + gpt4o_mini(2000, 3), abs=1e-9)
    assert b.summary_data()["estimated_calls"] == 0


def test_chat_anthropic_invoke_and_async_stream(fake: FakeProvider) -> None:
    fake.enqueue(
        Reply(text="plain", input_tokens=500, output_tokens=50),
        Reply(text="a b", input_tokens=600, output_tokens=2),
    )
    model = ChatAnthropic(
        model="claude-3-haiku-20240307", base_url=fake.anthropic_base_url, api_key="t"
    )

    async def run() -> float:
        async with budget(max_usd=1.0) as b:
            await model.ainvoke("hi")
            async for _chunk in model.astream("hi"):
                pass
        return b.spent

    assert asyncio.run(run()) == pytest.approx(haiku(500, 50) + haiku(600, 2), abs=1e-9)


def test_exhausted_budget_stops_a_langchain_model(fake: FakeProvider) -> None:
    fake.set_usage(input_tokens=100_000, output_tokens=10_000)
    model = ChatOpenAI(
        model="gpt-4o-mini", base_url=fake.openai_base_url, api_key="t", max_retries=0
    )
    with budget(max_usd=0.01), pytest.raises(BudgetExceededError):
        for _ in range(5):
            model.invoke("again")
    assert len(fake.requests) == 1  # the crossing call was paid; nothing was sent after it
