"""Models no intercepted SDK carries, with the real openai-agents: their usage is recorded from
the SDK's model response once, in the agent's budget; a model that sends through the openai
SDK itself is the interceptor's alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agents import Agent, ModelResponse, Runner, Usage
from agents.models.interface import Model
from oa_support import CALL_USD, LocalModel, chat

from shekel import UsageMissingWarning, budget
from shekel.testing import FakeProvider


class Relay(Model):
    """A model of the user's own that asks another (an SDK one) and passes its answer on."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        return await self.inner.get_response(*args, **kwargs)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.stream_response(*args, **kwargs)


def test_a_model_that_sends_through_the_sdk_is_counted_once(fake: FakeProvider) -> None:
    agent = Agent(name="Relay", model=Relay(chat(fake)))  # chat answers carry no response id
    with budget(max_usd=1, name="app") as app:
        Runner.run_sync(agent, "Hi")
    relay = app.find_child("Relay")
    assert relay is not None
    assert relay.snapshot().llm_calls_used == 1 == len(fake.requests)
    assert relay.spent == pytest.approx(CALL_USD)
    assert [c.source for c in relay.history().calls] == ["sdk"]


def test_reported_usage_is_recorded_as_reported() -> None:
    usage = Usage(requests=1, input_tokens=400, output_tokens=40, total_tokens=440)
    agent = Agent(name="Local", model=LocalModel(usage=usage))
    with budget(max_usd=1, name="app") as app:
        Runner.run_sync(agent, "Hi")
    (call,) = app.find_child("Local").history().calls  # type: ignore[union-attr]
    assert (call.model, call.input_tokens, call.output_tokens) == ("gpt-4o-mini", 400, 40)
    assert (call.source, call.estimated) == ("openai-agents", False)


def test_missing_usage_is_estimated_in_a_streamed_run() -> None:
    async def consume() -> None:
        result = Runner.run_streamed(Agent(name="Local", model=LocalModel()), "y" * 80)
        async for _ in result.stream_events():
            pass

    with budget(max_usd=1, name="app") as app, pytest.warns(UsageMissingWarning):
        asyncio.run(consume())
    (call,) = app.find_child("Local").history().calls  # type: ignore[union-attr]
    assert (call.input_tokens, call.estimated) == (20, True)  # a token per four characters
