"""A callback, plugin hook or warnings filter that raises while a call is recorded never makes
the SDK send the paid request again: the error reaches the caller once, wrapped in
``CallbackError``, with the original as its cause and ``sent`` saying whether the request had
been sent."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from sdk_figures import USER

from shekel import CallbackError, ShekelError, budget
from shekel.plugins import hookimpl, plugin_manager
from shekel.testing import FakeProvider, Reply


class Stop(Exception):
    """What a user's callback raises."""


def refuse(*args: object) -> None:
    raise Stop("the callback said stop")


@pytest.fixture
def retrying_openai(fake: FakeProvider) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=2)
    yield client
    client.close()


def test_a_raising_on_warn_is_not_retried_by_openai(
    fake: FakeProvider, retrying_openai: openai.OpenAI
) -> None:
    fake.set_usage(input_tokens=1000, output_tokens=1000)
    with budget(max_usd=0.001, warn_at=0.1, on_warn=refuse) as b:
        with pytest.raises(CallbackError) as caught:
            retrying_openai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert isinstance(caught.value.__cause__, Stop)
    assert isinstance(caught.value, RuntimeError)
    assert caught.value.sent is True
    assert "after the call was sent (its spend was recorded)" in str(caught.value)
    assert len(fake.requests) == 1
    assert b.snapshot().llm_calls_used == 1  # recorded before the callback ran


def test_a_raising_on_fallback_is_not_retried_by_anthropic(fake: FakeProvider) -> None:
    client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="t", max_retries=2)
    fake.set_usage(input_tokens=10_000, output_tokens=1000)
    session = budget(
        max_usd=1.0, fallback={"at_pct": 0.001, "model": "claude-haiku-4-5"}, on_fallback=refuse
    )
    with session, pytest.raises(CallbackError) as caught:
        client.messages.create(model="claude-sonnet-4-6", max_tokens=100, messages=USER)
    assert isinstance(caught.value.__cause__, Stop)
    assert len(fake.requests) == 1
    assert session.snapshot().llm_calls_used == 1


class RaisingPlugin:
    @hookimpl
    def shekel_spend_recorded(self, budget: Any, call: Any) -> None:
        raise Stop("a plugin failed")


def test_a_raising_plugin_hook_is_not_retried(
    fake: FakeProvider, retrying_openai: openai.OpenAI
) -> None:
    plugin = RaisingPlugin()
    plugin_manager().register(plugin)
    try:
        with budget(max_usd=1.0) as b, pytest.raises(CallbackError) as caught:
            retrying_openai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    finally:
        plugin_manager().unregister(plugin)
    assert isinstance(caught.value.__cause__, Stop)
    assert len(fake.requests) == 1
    assert b.snapshot().llm_calls_used == 1


class BrokenPrices:
    @hookimpl
    def shekel_model_price(self, model: str, provider: str | None) -> None:
        raise Stop("the price service is down")


@pytest.fixture
def broken_prices() -> Iterator[None]:
    plugin = BrokenPrices()
    plugin_manager().register(plugin)
    yield
    plugin_manager().unregister(plugin)


@pytest.mark.usefixtures("broken_prices")
def test_a_price_plugin_raising_before_sending_says_the_request_was_not_sent(
    fake: FakeProvider, retrying_openai: openai.OpenAI
) -> None:
    """A strict budget prices the request before sending it: a plugin failing there stops
    the call, and the error says so."""
    b = budget(max_usd=1.0, name="strict", strict=True)
    with b, pytest.raises(CallbackError) as caught:
        retrying_openai.chat.completions.create(model=f"private-{uuid.uuid4().hex}", messages=USER)
    assert isinstance(caught.value.__cause__, Stop)
    assert caught.value.sent is False
    message = str(caught.value)
    assert "before sending it (the request was not sent)" in message
    assert "spend was recorded" not in message
    assert fake.requests == []
    assert (b.snapshot().llm_calls_used, b.spent) == (0, 0)


@pytest.mark.usefixtures("broken_prices")
def test_a_price_plugin_raising_after_sending_still_counts_the_call(
    fake: FakeProvider, retrying_openai: openai.OpenAI
) -> None:
    """A plain budget prices the call once its usage is back: a plugin failing then cannot
    undo the call. Its tokens and the call are recorded (unpriced), then the error says so."""
    fake.set_usage(input_tokens=40, output_tokens=7)
    b = budget(max_usd=1.0, name="plain")
    with b, pytest.raises(CallbackError) as caught:
        retrying_openai.chat.completions.create(model=f"private-{uuid.uuid4().hex}", messages=USER)
    assert isinstance(caught.value.__cause__, Stop)
    assert caught.value.sent is True
    assert len(fake.requests) == 1  # and not sent again
    assert (b.snapshot().llm_calls_used, b.snapshot().tokens_used) == (1, 47)
    assert b.history().calls[-1].priced is False


@pytest.mark.usefixtures("broken_prices")
def test_a_price_plugin_raising_before_an_async_anthropic_call_says_it_was_not_sent(
    fake: FakeProvider,
) -> None:
    async def run() -> CallbackError:
        client = anthropic.AsyncAnthropic(
            base_url=fake.anthropic_base_url, api_key="t", max_retries=2
        )
        try:
            async with budget(max_usd=1.0, unknown_models="error"):
                await client.messages.create(
                    model=f"private-{uuid.uuid4().hex}", max_tokens=10, messages=USER
                )
        except CallbackError as exc:
            return exc
        finally:
            await client.close()
        raise AssertionError("the call was not refused")

    error = asyncio.run(run())
    assert error.sent is False
    assert "the request was not sent" in str(error)
    assert fake.requests == []


def test_warnings_turned_into_errors_are_not_retried(
    fake: FakeProvider, retrying_openai: openai.OpenAI
) -> None:
    """``-W error`` or pytest's ``filterwarnings = error`` turn shekel's warnings into
    exceptions raised inside the SDK's HTTP call."""
    fake.set_usage(input_tokens=1000, output_tokens=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with budget(max_usd=0.001, warn_at=0.1) as b, pytest.raises(CallbackError) as caught:
            retrying_openai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert type(caught.value.__cause__).__name__ == "BudgetWarning"
    assert len(fake.requests) == 1
    assert b.snapshot().llm_calls_used == 1


def test_a_raising_callback_in_async_code_is_not_retried(fake: FakeProvider) -> None:
    fake.set_usage(input_tokens=1000, output_tokens=1000)

    async def run() -> tuple[BaseException | None, int]:
        client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=2)
        error: BaseException | None = None
        b = budget(max_usd=0.001, warn_at=0.1, on_warn=refuse)
        try:
            async with b:
                await client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        except ShekelError as exc:
            error = exc
        await client.close()
        return error, b.snapshot().llm_calls_used

    error, calls = asyncio.run(run())
    assert isinstance(error, CallbackError)
    assert isinstance(error.__cause__, Stop)
    assert calls == 1
    assert len(fake.requests) == 1


def test_a_raising_callback_during_a_stream_reaches_the_loop_once(
    fake: FakeProvider, retrying_openai: openai.OpenAI
) -> None:
    fake.enqueue(Reply(text="a b c", input_tokens=1000, output_tokens=1000))
    with budget(max_usd=0.001, warn_at=0.1, on_warn=refuse) as b:
        with pytest.raises(CallbackError) as caught:
            for _ in retrying_openai.chat.completions.create(
                model="gpt-4o-mini", messages=USER, stream=True
            ):
                pass
    assert isinstance(caught.value.__cause__, Stop)
    assert caught.value.sent is True
    assert len(fake.requests) == 1
    assert b.snapshot().llm_calls_used == 1


def test_a_raising_callback_outside_any_sdk_call_is_not_wrapped() -> None:
    """``record()`` is the caller's own call: their exception comes back as it is."""
    with budget(max_usd=1.0, warn_at=0.1, on_warn=refuse) as b, pytest.raises(Stop):
        b.record(usd=0.5)
