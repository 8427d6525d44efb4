"""The seed documents' examples that make LLM calls, run as written against the fake provider.

The seeds build clients with ``openai.OpenAI()`` / ``anthropic.Anthropic()``; the environment
points those at the fake provider, exactly as a user would point them at a proxy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime

import anthropic
import openai
import pytest
from sdk_figures import gpt4o_mini

from shekel import BudgetExceededError, budget
from shekel.testing import FakeProvider, Reply


@pytest.fixture
def client(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> Iterator[openai.OpenAI]:
    monkeypatch.setenv("OPENAI_BASE_URL", fake.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.anthropic_base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test")
    c = openai.OpenAI()
    yield c
    c.close()


# -- seed 000: accumulating budgets ----------------------------------------------------------


def test_multi_turn_conversation_accumulates(fake: FakeProvider, client: openai.OpenAI) -> None:
    fake.set_usage(input_tokens=1000, output_tokens=200)
    user_session = budget(max_usd=2.00, name="user_chat")

    def handle_user_message(message: str) -> str | None:
        with user_session:
            response = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": message}],
            )
            return response.choices[0].message.content

    after: list[float] = []
    for message in ("Hello!", "Tell me about Python", "Thanks!"):
        assert handle_user_message(message) == "Hello from the fake provider."
        after.append(user_session.spent)
    one = gpt4o_mini(1000, 200)
    assert after == pytest.approx([one, 2 * one, 3 * one], abs=1e-9)


def test_batch_processing_stops_when_exhausted(fake: FakeProvider, client: openai.OpenAI) -> None:
    fake.set_usage(input_tokens=10_000, output_tokens=1_000)  # $0.0021 per item

    def process_item(item: str) -> str | None:
        r = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": item}]
        )
        return r.choices[0].message.content

    def process_all_items(items: list[str], budget_usd: float) -> list[str | None]:
        session = budget(max_usd=budget_usd, name="batch_job")
        results = []
        for i in range(0, len(items), 10):
            batch = items[i : i + 10]
            try:
                with session:
                    for item in batch:
                        results.append(process_item(item))
            except BudgetExceededError:
                break
        return results

    results = process_all_items([f"item {n}" for n in range(100)], budget_usd=0.05)
    # $0.05 / $0.0021 = 23.8: the 24th call crosses the cap, is recorded, then raises
    assert len(results) == 23
    assert len(fake.requests) == 24


def test_per_user_daily_limits(fake: FakeProvider, client: openai.OpenAI) -> None:
    fake.set_usage(input_tokens=1000, output_tokens=100)

    class UserBudgetManager:
        def __init__(self) -> None:
            self.user_budgets: dict[str, tuple] = {}  # type: ignore[type-arg]

        def get_budget(self, user_id: str, daily_limit: float = 5.00):  # type: ignore[no-untyped-def]
            today = datetime.now().date()
            if user_id in self.user_budgets:
                budget_obj, budget_date = self.user_budgets[user_id]
                if budget_date != today:
                    budget_obj = budget(max_usd=daily_limit, name=f"user_{user_id}")
                    self.user_budgets[user_id] = (budget_obj, today)
            else:
                budget_obj = budget(max_usd=daily_limit, name=f"user_{user_id}")
                self.user_budgets[user_id] = (budget_obj, today)
            return budget_obj

    manager = UserBudgetManager()

    def handle_request(user_id: str, prompt: str) -> str | None:
        user_budget = manager.get_budget(user_id, daily_limit=5.00)
        with user_budget:
            response = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
            )
            return response.choices[0].message.content

    handle_request("user_123", "Hello")
    handle_request("user_456", "Hi there")
    handle_request("user_123", "Another message")
    one = gpt4o_mini(1000, 100)
    assert manager.get_budget("user_123").spent == pytest.approx(2 * one, abs=1e-9)
    assert manager.get_budget("user_456").spent == pytest.approx(one, abs=1e-9)


def test_accumulation_with_fallback_and_warning(fake: FakeProvider, client: openai.OpenAI) -> None:
    fake.set_usage(input_tokens=1_000_000, output_tokens=100_000)  # gpt-4o: $3.50 a call
    warned: list[tuple[float, float]] = []
    session = budget(
        max_usd=5.00,
        fallback={"at_pct": 0.6, "model": "gpt-4o-mini"},
        warn_at=0.6,
        on_warn=lambda spent, limit: warned.append((spent, limit)),
        name="session",
    )
    for prompt in ("First", "Second", "Third"):
        with session:
            client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": prompt}]
            )
    assert [r.body["model"] for r in fake.requests] == ["gpt-4o", "gpt-4o-mini", "gpt-4o-mini"]
    assert session.model_switched
    assert session.switched_at_usd == pytest.approx(3.50)
    assert session.fallback_spent == pytest.approx(2 * gpt4o_mini(1_000_000, 100_000))
    assert warned == [(pytest.approx(3.50), pytest.approx(5.00))]


def test_complete_example_conversation_manager(fake: FakeProvider, client: openai.OpenAI) -> None:
    fake.set_usage(input_tokens=400_000, output_tokens=100_000)  # gpt-4o: $2.00 a call
    log: list[str] = []

    class ConversationManager:
        def __init__(self, user_id: str, daily_limit: float = 5.00) -> None:
            self.user_id = user_id
            self.session = budget(
                max_usd=daily_limit,
                warn_at=0.8,
                fallback={"at_pct": 0.8, "model": "gpt-4o-mini"},
                on_warn=self._warn_user,
                on_fallback=self._notify_fallback,
                name=f"user_{user_id}",
            )

        def _warn_user(self, spent: float, limit: float) -> None:
            log.append(f"{self.user_id}: 80% budget used (${spent:.2f}/${limit:.2f})")

        def _notify_fallback(self, spent: float, limit: float, fallback: str) -> None:
            log.append(f"{self.user_id}: Switched to {fallback} at ${spent:.2f}")

        def send_message(self, message: str) -> str | None:
            try:
                with self.session:
                    response = client.chat.completions.create(
                        model="gpt-4o",
                        messages=[{"role": "user", "content": message}],
                    )
                    return response.choices[0].message.content
            except BudgetExceededError:
                return "Daily budget exceeded. Please try again tomorrow."

        def get_stats(self) -> dict[str, object]:
            return {
                "spent": self.session.spent,
                "limit": self.session.limit,
                "remaining": self.session.remaining,
                "switched": self.session.model_switched,
            }

        def reset_daily(self) -> None:
            self.session.reset()

    user = ConversationManager("user_123", daily_limit=5.00)
    replies = [user.send_message(m) for m in ("Hello!", "What's the weather?", "Tell me a joke")]
    assert replies == ["Hello from the fake provider."] * 3
    assert log == [
        "user_123: 80% budget used ($4.00/$5.00)",
        "user_123: Switched to gpt-4o-mini at $4.00",
    ]
    stats = user.get_stats()
    assert stats["switched"] is True
    assert stats["spent"] == pytest.approx(4.0 + gpt4o_mini(400_000, 100_000))

    # On the fallback model a message costs $0.12: the 8th more crosses $5 and is refused after
    # it was paid; the next one is refused before it is sent.
    more = [user.send_message(f"message {n}") for n in range(9)]
    exceeded = "Daily budget exceeded. Please try again tomorrow."
    assert more == ["Hello from the fake provider."] * 7 + [exceeded, exceeded]
    assert len(fake.requests) == 3 + 8
    assert user.get_stats()["remaining"] == 0.0
    user.reset_daily()
    assert user.get_stats() == {"spent": 0.0, "limit": 5.0, "remaining": 5.0, "switched": False}


# -- seed 001: streaming -----------------------------------------------------------------------


def test_openai_and_anthropic_streaming_examples(fake: FakeProvider, client: openai.OpenAI) -> None:
    with budget(max_usd=0.50) as b:
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Count from 1 to 10"}],
            stream=True,
        )
        out = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert out == "Hello from the fake provider."
    assert b.spent == pytest.approx(gpt4o_mini(12, 3), abs=1e-9)

    claude = anthropic.Anthropic()
    with budget(max_usd=0.50) as b2:
        with claude.messages.stream(
            model="claude-3-haiku-20240307",
            max_tokens=1000,
            messages=[{"role": "user", "content": "Write a haiku"}],
        ) as stream2:
            text = "".join(stream2.text_stream)
    assert text == "Hello from the fake provider."
    assert b2.spent > 0


def test_enforcement_after_stream(fake: FakeProvider, client: openai.OpenAI) -> None:
    fake.set_usage(input_tokens=2000, output_tokens=2000)
    caught: list[BudgetExceededError] = []
    try:
        with budget(max_usd=0.01):
            stream = client.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": "Write a long essay"}],
                stream=True,
            )
            for chunk in stream:
                print(chunk.choices[0].delta.content or "", end="")
    except BudgetExceededError as e:
        caught.append(e)
    assert caught
    assert caught[0].spent == pytest.approx(0.025)  # 2000 x $2.50/M + 2000 x $10/M


def test_async_streaming_examples(fake: FakeProvider, client: openai.OpenAI) -> None:
    async def stream_openai() -> float:
        aclient = openai.AsyncOpenAI()
        async with budget(max_usd=0.50) as b:
            stream = await aclient.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Count to 10"}],
                stream=True,
            )
            async for chunk in stream:
                _ = chunk.choices[0].delta.content or ""
        await aclient.close()
        return b.spent

    async def stream_anthropic() -> float:
        aclient = anthropic.AsyncAnthropic()
        async with budget(max_usd=0.50) as b:
            async with aclient.messages.stream(
                model="claude-3-haiku-20240307",
                max_tokens=1000,
                messages=[{"role": "user", "content": "Write a poem"}],
            ) as stream:
                async for _text in stream.text_stream:
                    pass
        await aclient.close()
        return b.spent

    assert asyncio.run(stream_openai()) == pytest.approx(gpt4o_mini(12, 3), abs=1e-9)
    assert asyncio.run(stream_anthropic()) > 0


def test_multiple_streams_and_token_tracking(fake: FakeProvider, client: openai.OpenAI) -> None:
    totals = []
    with budget(max_usd=1.00) as b:
        for question in ["What is Python?", "What is JavaScript?", "What is Rust?"]:
            stream = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": question}],
                stream=True,
            )
            for _chunk in stream:
                pass
            totals.append(b.spent)
    one = gpt4o_mini(12, 3)
    assert totals == pytest.approx([one, 2 * one, 3 * one], abs=1e-9)

    with budget() as tracker:
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Explain quantum computing"}],
            stream=True,
        )
        full_response = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    last_call = tracker.summary_data()["calls"][-1]
    assert full_response
    assert (last_call["input_tokens"], last_call["output_tokens"]) == (12, 3)
    assert last_call["cost"] == pytest.approx(one, abs=1e-9)


def test_cost_recorded_on_interruption(fake: FakeProvider, client: openai.OpenAI) -> None:
    fake.enqueue(Reply(text=" ".join(["word"] * 100), input_tokens=300, chunk_delay=0.0))
    b = None
    try:
        with budget(max_usd=0.50) as b:
            stream = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Write a very long story"}],
                stream=True,
            )
            for n, _chunk in enumerate(stream):
                if n == 10:
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert b is not None
    assert b.spent > 0


# -- seed 004: nested budgets ------------------------------------------------------------------


def test_nested_quick_example(fake: FakeProvider, client: openai.OpenAI) -> None:
    fake.set_usage(input_tokens=100_000, output_tokens=10_000)  # $0.021 per call

    def agent_call(prompt: str) -> None:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}]
        )

    with budget(max_usd=10.00, name="workflow") as workflow:
        with budget(max_usd=2.00, name="research"):
            agent_call("research")
            agent_call("more research")
        with budget(max_usd=5.00, name="analysis"):
            agent_call("analyse")
        agent_call("final report")
    one = gpt4o_mini(100_000, 10_000)
    assert workflow.spent == pytest.approx(4 * one, abs=1e-9)
    assert workflow.spent_direct == pytest.approx(one, abs=1e-9)
    assert workflow.spent_by_children == pytest.approx(3 * one, abs=1e-9)
    assert workflow.tree().splitlines() == [
        "workflow: $0.084 / $10.00 (direct: $0.021)",
        "  research: $0.042 / $2.00 (direct: $0.042)",
        "  analysis: $0.021 / $5.00 (direct: $0.021)",
    ]
