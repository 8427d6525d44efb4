"""Limits hold before and after every call; failed calls cost nothing; fallback switches models."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator

import anthropic
import openai
import pytest
from sdk_figures import USER, gpt4o_mini

from shekel import BudgetConfigError, BudgetExceededError, budget
from shekel.testing import FakeProvider, Reply


def test_crossing_call_recorded_then_raises(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.enqueue(Reply(text="big", input_tokens=100_000, output_tokens=10_000))
    with pytest.raises(BudgetExceededError) as caught, budget(max_usd=0.01, name="job") as b:
        oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert b.spent == pytest.approx(gpt4o_mini(100_000, 10_000), abs=1e-9)
    error = caught.value
    assert error.axis == "usd"
    assert error.budget_name == "job"
    assert error.model == "gpt-4o-mini"
    assert error.spent == pytest.approx(b.spent)
    assert error.limit == pytest.approx(0.01)
    assert isinstance(error, openai.OpenAIError)  # the SDK let it through unwrapped


def test_exhausted_budget_refuses_before_sending(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.enqueue(Reply(text="big", input_tokens=100_000, output_tokens=10_000))
    b = budget(max_usd=0.01, name="job")
    with b:
        with pytest.raises(BudgetExceededError):
            oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
        sent = len(fake.requests)
        for _ in range(3):  # a caller that catches the error and keeps trying pays nothing more
            with pytest.raises(BudgetExceededError) as caught:
                oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
            assert caught.value.sent is False
    assert len(fake.requests) == sent
    assert b.snapshot().llm_calls_used == 1


def test_call_cap_refuses_the_next_call(fake: FakeProvider, oai: openai.OpenAI) -> None:
    with budget(max_llm_calls=3) as b:
        for _ in range(3):
            oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
        with pytest.raises(BudgetExceededError) as caught:
            oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert caught.value.axis == "llm_calls"
    assert len(fake.requests) == 3
    assert b.snapshot().llm_calls_used == 3


def test_parent_cap_refuses_child_call(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.enqueue(Reply(text="x", input_tokens=200_000, output_tokens=0))
    with budget(max_usd=0.03, name="workflow") as parent:  # the first call uses it all
        with budget(max_usd=None, name="research"):
            oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
        with budget(max_usd=None, name="writing"), pytest.raises(BudgetExceededError) as caught:
            oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert caught.value.budget_name == "workflow"
    assert len(fake.requests) == 1
    assert parent.spent == pytest.approx(gpt4o_mini(200_000, 0), abs=1e-9)


def test_failed_requests_cost_nothing(fake: FakeProvider, oai: openai.OpenAI) -> None:
    # The fixture's client retries twice: three failed attempts per call, at once.
    fake.enqueue(
        *[Reply.error(429, retry_after=0.001)] * 3, *[Reply.error(500, retry_after=0.001)] * 3
    )
    with budget(max_usd=1.0, max_llm_calls=5) as b:
        with pytest.raises(openai.RateLimitError):
            oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
        with pytest.raises(openai.InternalServerError):
            oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
        snap = b.snapshot()
    assert len(fake.requests) == 6
    assert (snap.usd_used, snap.llm_calls_used) == (0, 0)
    assert snap.llm_calls_remaining == 5  # the holds were released


def test_sdk_retries_each_pass_the_gate(fake: FakeProvider) -> None:
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=2)
    fake.enqueue(
        Reply.error(429, retry_after=0.001), Reply(text="ok", input_tokens=10, output_tokens=1)
    )
    with budget(max_usd=1.0) as b:
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert len(fake.requests) == 2
    assert b.snapshot().llm_calls_used == 1
    assert b.spent == pytest.approx(gpt4o_mini(10, 1), abs=1e-9)


def test_fallback_switches_model_once(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fired: list[tuple[float, float, str]] = []
    session = budget(
        max_usd=0.10,
        name="session",
        fallback={"at_pct": 0.5, "model": "gpt-4o-mini"},
        on_fallback=lambda spent, limit, model: fired.append((spent, limit, model)),
    )
    # gpt-4o: $2.50 / $10 per 1M tokens -> 10k in + 3k out = $0.055, past 50% of $0.10
    fake.enqueue(Reply(text="a", input_tokens=10_000, output_tokens=3_000))
    with session:
        oai.chat.completions.create(model="gpt-4o", messages=USER)
    assert session.model_switched
    with session:
        oai.chat.completions.create(model="gpt-4o", messages=USER)
        oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True).close()
    assert [r.body["model"] for r in fake.requests] == ["gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]
    assert len(fired) == 1
    assert fired[0][2] == "gpt-4o-mini"
    assert session.switched_at_usd == pytest.approx(0.055, abs=1e-9)
    assert session.fallback_spent == pytest.approx(session.spent - 0.055, abs=1e-9)
    assert session.fallback_spent > 0


def test_fallback_to_another_provider_is_rejected(
    fake: FakeProvider, claude: anthropic.Anthropic
) -> None:
    fake.enqueue(Reply(text="a", input_tokens=100_000, output_tokens=10_000))
    with budget(max_usd=0.10, fallback={"at_pct": 0.1, "model": "gpt-4o-mini"}) as b:
        claude.messages.create(model="claude-3-haiku-20240307", max_tokens=10, messages=USER)
        assert b.model_switched
        with pytest.raises(BudgetConfigError, match="same provider"):
            claude.messages.create(model="claude-3-haiku-20240307", max_tokens=10, messages=USER)
    assert len(fake.requests) == 1


def test_unknown_model_warns_and_counts_tokens(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.enqueue(Reply(text="a", input_tokens=500, output_tokens=50))
    with pytest.warns(UserWarning, match="no price for model 'my-private-llm'"):
        with budget(max_tokens=10_000) as b:
            oai.chat.completions.create(model="my-private-llm", messages=USER)
    assert b.snapshot().tokens_used == 550
    data = b.summary_data()
    assert data["incomplete"] is True
    assert "no known price" in b.summary()


def test_unknown_model_error_mode_refuses_before_sending(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    from shekel import UnknownModelError

    with budget(max_usd=1.0, unknown_models="error"), pytest.raises(UnknownModelError):
        oai.chat.completions.create(model="my-private-llm", messages=USER)
    assert fake.requests == []


def test_budget_prices_override(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.enqueue(Reply(text="a", input_tokens=1_000_000, output_tokens=1_000_000))
    with budget(max_usd=100, prices={"my-private-llm": {"input": 1.0, "output": 2.0}}) as b:
        oai.chat.completions.create(model="my-private-llm", messages=USER)
    assert b.spent == pytest.approx(3.0)


def test_odd_request_bodies_are_still_counted(fake: FakeProvider) -> None:
    import httpx

    def body() -> Iterator[bytes]:
        yield b'{"model": "gpt-4o-mini", '
        yield b'"messages": [{"role": "user", "content": "hi"}]}'

    with budget(max_usd=1.0) as b, httpx.Client() as client:
        streamed = client.post(f"{fake.openai_base_url}/chat/completions", content=body())
        broken = client.post(f"{fake.openai_base_url}/chat/completions", content=b'{"stream": ')
    assert streamed.status_code == 200
    assert broken.status_code == 400  # the provider's answer, not a shekel crash
    assert b.snapshot().llm_calls_used == 1
    assert b.spent == pytest.approx(gpt4o_mini(12, 3), abs=1e-9)


def _calls_in_flight(
    oai: openai.OpenAI, n: int, until: Callable[[], bool]
) -> list[threading.Thread]:
    """Start ``n`` chat calls in threads (with this context's budgets) and wait until ``until()``
    says they are in flight; join the threads returned."""
    workers = [
        threading.Thread(
            target=contextvars.copy_context().run,
            args=(oai.chat.completions.create,),
            kwargs={"model": "gpt-4o-mini", "messages": USER},
        )
        for _ in range(n)
    ]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 10
    while not until():
        assert time.monotonic() < deadline, "the calls never got in flight"
        time.sleep(0.005)
    return workers


def test_a_refusal_says_what_calls_in_flight_hold(fake: FakeProvider, oai: openai.OpenAI) -> None:
    fake.enqueue(*[Reply(latency=0.6) for _ in range(3)])
    b = budget(max_llm_calls=8, name="pool")
    for _ in range(5):
        b.record(usd=0.01)
    with b:
        workers = _calls_in_flight(oai, 3, lambda: b.snapshot().llm_calls_remaining == 0)
        with pytest.raises(BudgetExceededError) as caught:
            b.check()
        for w in workers:
            w.join()
    message = str(caught.value)
    assert "limit of 8 LLM calls (5 LLM calls used)" in message
    assert "calls in flight hold 3 LLM calls more" in message
    assert b.snapshot().llm_calls_used == 8


def test_a_call_cap_up_the_chain_holds_the_calls_in_flight(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    """A budget without a call cap of its own holds each call it sends while an ancestor has
    one: otherwise concurrent calls would all pass the ancestor's check."""
    fake.enqueue(*[Reply(latency=1.0) for _ in range(2)])
    with budget(max_llm_calls=2, name="parent") as parent, budget(max_usd=1.0, name="child"):
        # Both calls reached the provider, which is still answering.
        workers = _calls_in_flight(oai, 2, lambda: len(fake.requests) == 2)
        with pytest.raises(BudgetExceededError) as caught:
            oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
        for w in workers:
            w.join()
    assert (caught.value.axis, caught.value.sent) == ("llm_calls", False)
    assert len(fake.requests) == 2
    assert parent.snapshot().llm_calls_used == 2
