"""strict=True: the cap is never crossed, even by calls racing for the last dollar."""

from __future__ import annotations

import contextvars
import threading

import openai
import pytest
from sdk_figures import USER, gpt4o_mini

from shekel import BudgetExceededError, budget
from shekel.testing import FakeProvider, Reply

LONG = " ".join(f"w{i}" for i in range(2000))


def test_output_limit_lowered_to_what_the_budget_can_pay(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    fake.enqueue(Reply(text=LONG, input_tokens=10))
    with budget(max_usd=0.0003, strict=True) as b:
        response = oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    sent = fake.requests[0].body["max_completion_tokens"]
    assert 0 < sent < 2000
    assert response.choices[0].finish_reason == "length"  # the provider stopped itself
    assert b.spent <= 0.0003
    assert b.snapshot().usd_reserved == 0
    # the limit is close to all the budget allows (the prompt estimate is deliberately high)
    assert sent >= 0.95 * (0.0003 - gpt4o_mini(10, 0)) / (0.60 / 1_000_000)


def test_user_limit_kept_when_it_fits(fake: FakeProvider, oai: openai.OpenAI) -> None:
    with budget(max_usd=1.0, strict=True):
        oai.chat.completions.create(model="gpt-4o-mini", messages=USER, max_tokens=50)
    body = fake.requests[0].body
    assert body["max_tokens"] == 50
    assert "max_completion_tokens" not in body


def test_prompt_that_cannot_fit_is_refused_before_sending(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    big = [{"role": "user", "content": "x" * 30_000}]
    with budget(max_usd=0.000001, strict=True), pytest.raises(BudgetExceededError) as caught:
        oai.chat.completions.create(model="gpt-4o-mini", messages=big)
    assert caught.value.sent is False
    assert fake.requests == []


def test_anthropic_max_tokens_lowered(fake: FakeProvider, claude: object) -> None:
    import anthropic

    assert isinstance(claude, anthropic.Anthropic)
    fake.enqueue(Reply(text=LONG, input_tokens=10))
    with budget(max_usd=0.0005, strict=True) as b:
        message = claude.messages.create(
            model="claude-3-haiku-20240307", max_tokens=4096, messages=USER
        )
    assert fake.requests[0].body["max_tokens"] < 4096
    assert message.stop_reason == "max_tokens"
    assert b.spent <= 0.0005


def test_twenty_callers_racing_never_cross_the_cap(fake: FakeProvider) -> None:
    cap = 0.002
    fake.set_usage(input_tokens=10)
    outcomes: list[str] = []
    lock = threading.Lock()
    shared = budget(max_usd=cap, strict=True, name="shared")
    start = threading.Barrier(20)

    def worker() -> None:
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=0)
        with shared:
            start.wait()
            try:
                client.chat.completions.create(model="gpt-4o-mini", messages=USER, max_tokens=1000)
                result = "ok"
            except BudgetExceededError:
                result = "refused"
        with lock:
            outcomes.append(result)

    fake.enqueue(*[Reply(text=" ".join(["w"] * 1000), input_tokens=10) for _ in range(20)])
    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = shared.snapshot()
    assert snap.usd_used <= cap
    assert snap.usd_reserved == 0
    assert outcomes.count("ok") >= 1
    assert outcomes.count("refused") >= 1  # 20 x 1000 tokens of output do not fit in $0.002
    assert outcomes.count("ok") == len(fake.requests)  # refused callers sent nothing


def test_stream_cut_off_at_the_reservation(fake: FakeProvider, oai: openai.OpenAI) -> None:
    # A gateway that ignores max_tokens would stream 2,000 tokens; the budget pays for ~490.
    fake.enqueue(Reply(text=LONG, input_tokens=10, ignore_max_tokens=True))
    received = 0
    with budget(max_usd=0.0003, strict=True) as b:
        with pytest.raises(BudgetExceededError, match="stopped the stream after about"):
            for chunk in oai.chat.completions.create(
                model="gpt-4o-mini", messages=USER, stream=True
            ):
                received += 1
                assert chunk.choices
    call = b.summary_data()["calls"][0]
    assert call["estimated"] is True
    assert 100 < received < 1000
    assert b.spent <= 0.0003
    assert b.snapshot().usd_reserved == 0


def test_async_stream_cut_off(fake: FakeProvider, aoai: openai.AsyncOpenAI) -> None:
    import asyncio

    fake.enqueue(Reply(text=LONG, input_tokens=10, ignore_max_tokens=True))

    async def run() -> tuple[int, float]:
        received = 0
        async with budget(max_usd=0.0003, strict=True) as b:
            with pytest.raises(BudgetExceededError):
                stream = await aoai.chat.completions.create(
                    model="gpt-4o-mini", messages=USER, stream=True
                )
                async for _chunk in stream:
                    received += 1
        await aoai.close()
        return received, b.spent

    received, spent = asyncio.run(run())
    assert 100 < received < 1000
    assert spent <= 0.0003


# -- strict mode never breaks a good call --------------------------------------------------


def test_no_request_asks_for_more_output_than_the_model_allows(
    fake: FakeProvider, oai: openai.OpenAI, claude: object
) -> None:
    """$5 pays for ~500k gpt-4o output tokens; the model takes at most 16,384 per request."""
    import anthropic

    assert isinstance(claude, anthropic.Anthropic)
    with budget(max_usd=5, strict=True) as b:
        oai.chat.completions.create(model="gpt-4o", messages=USER)
        oai.chat.completions.create(model="gpt-4o-2024-08-06", messages=USER)
        oai.chat.completions.create(model="gpt-4.1-mini", messages=USER)
        with claude.messages.stream(
            model="claude-sonnet-4-6", max_tokens=128_000, messages=USER
        ) as stream:
            stream.until_done()
    sent = [r.body.get("max_completion_tokens", r.body.get("max_tokens")) for r in fake.requests]
    assert sent == [16_384, 16_384, 32_768, 128_000]
    assert b.snapshot().llm_calls_used == 4
    assert b.snapshot().usd_reserved == 0


def test_an_unlisted_model_gets_a_conservative_output_limit(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    prices = {"my-model": {"input": 1.0, "output": 2.0}}
    with budget(max_usd=5, strict=True, prices=prices):
        oai.chat.completions.create(model="my-model", messages=USER)
    assert fake.requests[0].body["max_completion_tokens"] == 4096


def test_a_model_price_can_say_how_much_output_the_model_takes(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    prices = {"my-model": {"input": 1.0, "output": 2.0, "max_output_tokens": 100_000}}
    with budget(max_usd=5, strict=True, prices=prices):
        oai.chat.completions.create(model="my-model", messages=USER)
    assert fake.requests[0].body["max_completion_tokens"] == 100_000


def test_strict_stream_that_stops_at_its_own_max_tokens_is_complete(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    fake.enqueue(Reply(text=" ".join(f"w{i}" for i in range(100)), input_tokens=20))
    words: list[str] = []
    with budget(max_usd=10, strict=True) as b:
        for chunk in oai.chat.completions.create(
            model="gpt-4o", max_tokens=5, stream=True, messages=USER
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                words.append(chunk.choices[0].delta.content)
    assert len(words) == 5
    call = b.history().calls[0]
    assert (call.input_tokens, call.output_tokens, call.estimated) == (20, 5, False)


@pytest.mark.parametrize("max_tokens", [5, 50, 150])
def test_strict_anthropic_stream_that_stops_at_its_own_max_tokens_is_complete(
    fake: FakeProvider, claude: object, max_tokens: int
) -> None:
    import anthropic

    assert isinstance(claude, anthropic.Anthropic)
    fake.enqueue(Reply(text=" ".join(f"w{i}" for i in range(100)), input_tokens=20))
    with budget(max_usd=10, strict=True) as b:
        with claude.messages.stream(
            model="claude-haiku-4-5", max_tokens=max_tokens, messages=USER
        ) as stream:
            texts = list(stream.text_stream)
    assert len(texts) == min(max_tokens, 100)
    call = b.history().calls[0]
    assert (call.output_tokens, call.estimated) == (min(max_tokens, 100), False)


# -- concurrent strict calls share the budget instead of starving each other ---------------


def test_concurrent_strict_calls_wait_for_room_instead_of_being_refused(
    fake: FakeProvider,
) -> None:
    """Each gpt-4o call could write 16,384 tokens ($0.16), more than the whole $0.05 budget,
    but really costs $0.000125: all ten run, one after another where they must."""
    fake.set_usage(input_tokens=10, output_tokens=10)
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=2)
    errors: list[BaseException] = []
    with budget(max_usd=0.05, strict=True) as b:

        def one() -> None:
            try:
                client.chat.completions.create(model="gpt-4o", messages=USER)
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(one,)) for _ in range(10)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert len(fake.requests) == 10
    assert b.snapshot().llm_calls_used == 10
    assert b.spent == pytest.approx(10 * (10 * 2.5e-6 + 10 * 10e-6), abs=1e-12)
    assert b.snapshot().usd_reserved == 0


def test_concurrent_strict_tasks_wait_for_room(fake: FakeProvider) -> None:
    import asyncio

    fake.set_usage(input_tokens=10, output_tokens=10)

    async def run() -> tuple[int, float, list[BaseException]]:
        client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=2)
        async with budget(max_usd=0.05, strict=True) as b:
            results = await asyncio.gather(
                *(client.chat.completions.create(model="gpt-4o", messages=USER) for _ in range(10)),
                return_exceptions=True,
            )
        await client.close()
        return (
            b.snapshot().llm_calls_used,
            b.spent,
            [r for r in results if isinstance(r, BaseException)],
        )

    calls, spent, errors = asyncio.run(run())
    assert errors == []
    assert calls == 10
    assert spent <= 0.05


def test_a_call_waiting_on_its_own_open_stream_does_not_wait(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    """A stream left open by the same thread holds room; the next call takes what is free at
    once (here: too little) instead of waiting for itself."""
    fake.set_usage(input_tokens=10, output_tokens=10)
    with budget(max_usd=0.05, strict=True) as b:
        stream = oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
        with pytest.raises(BudgetExceededError) as caught:
            oai.chat.completions.create(model="gpt-4o", messages=USER)
        assert caught.value.sent is False
        list(stream)
    assert b.snapshot().llm_calls_used == 1
