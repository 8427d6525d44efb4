"""strict=True: the cap is never crossed, even by calls racing for the last dollar."""

from __future__ import annotations

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
