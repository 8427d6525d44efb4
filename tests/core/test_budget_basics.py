"""Seed 000: accumulating budgets, reset, warnings, fallback, limits and the error they raise."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

import shekel
from shekel import (
    BudgetConfigError,
    BudgetExceededError,
    BudgetWarning,
    ShekelError,
    ToolBudgetExceededError,
    budget,
    current_budget,
)

# -- accumulation ---------------------------------------------------------------------------


def test_spend_accumulates_across_with_blocks_of_the_same_object() -> None:
    session = budget(max_usd=5.00, name="session")
    with session:
        session.record(usd=0.30)
    assert session.spent == 0.30
    with session:
        session.record(usd=0.35)
    assert session.spent == 0.65
    with session:
        session.record(usd=0.40)
    assert session.spent == 1.05
    assert session.snapshot().llm_calls_used == 3
    assert session.remaining == 3.95
    assert session.limit == 5.0


def test_a_fresh_instance_starts_at_zero() -> None:
    first = budget(max_usd=10.00)
    with first:
        first.record(usd=2.0)
    second = budget(max_usd=10.00)
    assert second.spent == 0.0
    assert second.remaining == 10.0
    with second:
        second.record(usd=2.0)
    assert first.spent == 2.0
    assert second.spent == 2.0


def test_the_active_budget_is_visible_inside_its_block_only() -> None:
    b = budget(max_usd=1, name="b")
    assert current_budget() is None
    with b as entered:
        assert entered is b
        assert current_budget() is b
        assert b.is_active
    assert current_budget() is None
    assert not b.is_active


def test_multi_turn_conversation_accumulates() -> None:
    user_session = budget(max_usd=2.00, name="user_chat")
    seen = []

    def handle_user_message(message: str) -> str:
        with user_session:
            user_session.record(usd=0.0125, model="gpt-4o-mini", input_tokens=10, output_tokens=5)
            return message.upper()

    for msg in ("Hello!", "Tell me about Python", "Thanks!"):
        assert handle_user_message(msg) == msg.upper()
        seen.append(user_session.spent)
    assert seen == [0.0125, 0.025, 0.0375]
    assert user_session.snapshot().tokens_used == 45


def test_batch_processing_stops_when_the_budget_is_exhausted() -> None:
    def process_all_items(items: list[int], budget_usd: float) -> tuple[list[int], shekel.Budget]:
        session = budget(max_usd=budget_usd, name="batch_job")
        results: list[int] = []
        for i in range(0, len(items), 10):
            batch = items[i : i + 10]
            try:
                with session:
                    for item in batch:
                        session.record(usd=0.75)  # what processing one item costs
                        results.append(item)
            except BudgetExceededError:
                break
        return results, session

    results, session = process_all_items(list(range(100)), budget_usd=10.00)
    # 13 items cost $9.75; the 14th pushes the total to $10.50 and raises.
    assert results == list(range(13))
    assert session.spent == 10.5
    assert session.remaining == 0.0


def test_per_user_daily_limits_keep_users_apart() -> None:
    class UserBudgetManager:
        def __init__(self) -> None:
            self.user_budgets: dict[str, tuple[shekel.Budget, date]] = {}

        def get_budget(self, user_id: str, today: date, daily_limit: float = 5.00) -> shekel.Budget:
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
    day1, day2 = date(2025, 1, 1), date(2025, 1, 2)

    def handle_request(user_id: str, today: date) -> shekel.Budget:
        user_budget = manager.get_budget(user_id, today)
        with user_budget:
            user_budget.record(usd=1.25)
        return user_budget

    a1 = handle_request("user_123", day1)
    b1 = handle_request("user_456", day1)
    a2 = handle_request("user_123", day1)
    assert a1 is a2
    assert a1.spent == 2.5
    assert b1.spent == 1.25
    a3 = handle_request("user_123", day2)
    assert a3 is not a1
    assert a3.spent == 1.25
    assert a1.spent == 2.5


# -- reset ----------------------------------------------------------------------------------


def test_reset_returns_to_zero_and_the_budget_can_be_used_again() -> None:
    session = budget(max_usd=10.00, name="session")
    with session:
        session.record(usd=3.0, tokens=100)
    session.reset()
    assert session.spent == 0.0
    assert session.snapshot().tokens_used == 0
    assert session.snapshot().llm_calls_used == 0
    assert session.remaining == 10.0
    assert session.summary_data()["calls"] == []
    with session:
        session.record(usd=1.0)
    assert session.spent == 1.0


def test_reset_inside_the_block_raises_runtime_error_and_changes_nothing() -> None:
    session = budget(max_usd=10.00, name="session")
    with session:
        session.record(usd=3.0)
        with pytest.raises(RuntimeError, match="reset"):
            session.reset()
        assert session.spent == 3.0
    session.reset()
    assert session.spent == 0.0


def test_reset_of_a_parent_clears_its_children_too() -> None:
    with budget(max_usd=10, name="root") as root, budget(max_usd=5, name="kid") as kid:
        kid.record(usd=2.0)
    root.reset()
    assert root.spent == 0.0
    assert kid.spent == 0.0
    assert root.spent_by_children == 0.0
    assert root.spent_direct == 0.0


def test_reset_rearms_warning_and_fallback() -> None:
    warned: list[tuple[float, float]] = []
    switched: list[tuple[float, float, str]] = []
    b = budget(
        max_usd=10,
        name="b",
        warn_at=0.5,
        on_warn=lambda s, lim: warned.append((s, lim)),
        fallback={"at_pct": 0.8, "model": "gpt-4o-mini"},
        on_fallback=lambda s, lim, m: switched.append((s, lim, m)),
    )
    with b:
        b.record(usd=9.0)
    assert b.model_switched
    b.reset()
    assert not b.model_switched
    assert b.switched_at_usd is None
    assert b.fallback_spent == 0.0
    with b:
        b.record(usd=9.0)
    assert warned == [(9.0, 10.0), (9.0, 10.0)]
    assert switched == [(9.0, 10.0, "gpt-4o-mini"), (9.0, 10.0, "gpt-4o-mini")]


# -- limits ---------------------------------------------------------------------------------


def test_remaining_never_goes_below_zero_and_overspend_is_recorded() -> None:
    b = budget(max_usd=0.50, name="small")
    with b, pytest.raises(BudgetExceededError):
        b.record(usd=0.60)
    assert b.spent == 0.6  # the spend already happened; it is recorded
    assert b.remaining == 0.0


def test_track_only_budget_has_no_limit() -> None:
    b = budget(name="tracker")
    with b:
        b.record(usd=1_000.0)
    assert b.limit is None
    assert b.remaining is None
    assert b.spent == 1_000.0


def test_budget_exceeded_error_carries_the_details() -> None:
    b = budget(max_usd=0.001, name="tiny")
    with b, pytest.raises(BudgetExceededError) as info:
        b.record(usd=0.0015, model="gpt-4o-mini", input_tokens=1_200, output_tokens=300)
    err = info.value
    assert isinstance(err, RuntimeError)
    assert isinstance(err, ShekelError)
    assert err.spent == 0.0015
    assert err.limit == 0.001
    assert err.axis == "usd"
    assert err.budget_name == "tiny"
    assert err.full_name == "tiny"
    assert err.model == "gpt-4o-mini"
    assert err.tokens == {"input_tokens": 1_200, "output_tokens": 300}
    message = str(err)
    assert "'tiny'" in message
    assert "$0.0015" in message
    assert "limit of $0.001:" in message
    assert "gpt-4o-mini" in message
    assert "Raise the limit" in message


def test_token_limit() -> None:
    b = budget(max_tokens=1_000, name="tok")
    with b:
        b.record(input_tokens=600, output_tokens=300)
        with pytest.raises(BudgetExceededError) as info:
            b.record(input_tokens=100, output_tokens=50)
    assert info.value.axis == "tokens"
    assert info.value.spent == 1_050
    assert info.value.limit == 1_000
    assert "tokens" in str(info.value)
    assert b.snapshot().tokens_used == 1_050
    assert b.snapshot().tokens_remaining == 0


def test_llm_call_limit() -> None:
    b = budget(max_llm_calls=2, name="calls")
    with b:
        b.record(usd=0.01)
        b.record(usd=0.01)
        with pytest.raises(BudgetExceededError) as info:
            b.record(usd=0.01)
    assert info.value.axis == "llm_calls"
    assert info.value.limit == 2
    assert b.snapshot().llm_calls_used == 3


def test_tool_call_limit_refuses_before_the_tool_runs() -> None:
    b = budget(max_tool_calls=2, name="tools", tool_prices={"search": 0.01})
    with b:
        b.tool_call("search").commit()
        b.tool_call("fetch", usd=0.05).commit()
        with pytest.raises(ToolBudgetExceededError) as info:
            b.tool_call("search").commit()
    err = info.value
    assert isinstance(err, BudgetExceededError)
    assert err.axis == "tool_calls"
    assert err.tool_name == "search"
    assert err.sent is False
    assert err.limit == 2
    assert b.snapshot().tool_calls_used == 2  # the refused call was not counted
    assert b.spent == 0.06


def test_tool_price_pushing_usd_over_is_a_tool_budget_error() -> None:
    b = budget(max_usd=0.05, name="tools", tool_prices={"search": 0.03})
    with b:
        b.tool_call("search").commit()
        with pytest.raises(ToolBudgetExceededError) as info:
            b.tool_call("search").commit()
    assert info.value.axis == "usd"
    assert b.spent == 0.03


def test_tool_prices_of_a_parent_apply_in_a_child() -> None:
    with (
        budget(max_usd=1, name="p", tool_prices={"search": 0.02}) as p,
        budget(max_usd=1, name="c") as c,
    ):
        c.tool_call("search").commit()
    assert c.spent == 0.02
    assert p.spent == 0.02


# -- warnings -------------------------------------------------------------------------------


def test_warning_fires_once_when_crossing_warn_at() -> None:
    calls: list[tuple[float, float]] = []

    def warn_user(spent: float, limit: float) -> None:
        calls.append((spent, limit))

    session = budget(max_usd=10.00, warn_at=0.8, on_warn=warn_user, name="session")
    with session:
        session.record(usd=2.0)
    assert calls == []
    with session:
        session.record(usd=2.0)
    assert calls == []
    with session:
        session.record(usd=5.0)
    assert calls == [(9.0, 10.0)]
    with session:
        session.record(usd=0.5)
    with session:
        session.record(usd=0.1)
    assert calls == [(9.0, 10.0)]


def test_warning_at_exactly_the_threshold_fires() -> None:
    calls: list[tuple[float, float]] = []
    b = budget(max_usd=10, warn_at=0.8, on_warn=lambda s, lim: calls.append((s, lim)), name="b")
    b.record(usd=7.99)
    assert calls == []
    b.record(usd=0.01)
    assert calls == [(8.0, 10.0)]


def test_warning_and_fallback_follow_limits_that_change() -> None:
    """The thresholds move with the cap: lowered by set_limits, or by a parent's spend that
    auto-caps a child."""
    calls: list[tuple[float, float]] = []
    b = budget(max_usd=10, warn_at=0.5, on_warn=lambda s, lim: calls.append((s, lim)), name="b")
    b.record(usd=3.0)
    assert calls == []
    b.set_limits(max_usd=5)
    b.record(usd=0.01)
    assert calls == [(3.01, 5.0)]

    switched: list[str] = []
    with budget(max_usd=10, name="parent") as parent:
        child = budget(
            max_usd=8,
            name="child",
            fallback={"at_pct": 0.5, "model": "cheap"},
            on_fallback=lambda s, lim, m: switched.append(m),
        )
        with child:
            child.record(usd=2.0)  # 2 of 8: below the switch at 4
        parent.record(usd=6.0)
        with child:  # re-entered: auto-capped to 2 + (10 - 8) = 4, switching at 2
            child.record(usd=0.01)
    assert switched == ["cheap"]


def test_warning_without_callback_emits_budget_warning_once() -> None:
    b = budget(max_usd=1.0, warn_at=0.5, name="plain")
    with b:
        b.record(usd=0.4)
        with pytest.warns(BudgetWarning, match="plain"):
            b.record(usd=0.2)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b.record(usd=0.1)  # no second warning


def test_on_warn_gets_dollars_when_there_is_a_usd_limit() -> None:
    calls: list[tuple[float, float]] = []
    b = budget(
        max_usd=10,
        max_tool_calls=4,
        max_tokens=100,
        warn_at=0.5,
        on_warn=lambda s, lim: calls.append((s, lim)),
        name="b",
    )
    for _ in range(3):
        b.tool_call("search").commit()  # 75% of the tool calls: not a money warning
    b.record(usd=1.0, tokens=90)  # 90% of the tokens: not a money warning either
    assert calls == []
    b.record(usd=4.0)
    assert calls == [(5.0, 10.0)]


def test_warning_on_the_token_axis() -> None:
    calls: list[tuple[float, float]] = []
    b = budget(max_tokens=1_000, warn_at=0.5, on_warn=lambda s, lim: calls.append((s, lim)))
    b.record(tokens=499)
    assert calls == []
    b.record(tokens=1)
    assert calls == [(500.0, 1_000.0)]


# -- fallback -------------------------------------------------------------------------------


def test_fallback_activates_once_at_the_threshold() -> None:
    events: list[tuple[float, float, str]] = []
    session = budget(
        max_usd=5.00,
        fallback={"at_pct": 0.8, "model": "gpt-4o-mini"},
        on_fallback=lambda s, lim, m: events.append((s, lim, m)),
        name="session",
    )
    with session:
        session.record(usd=3.0, model="gpt-4o")
    assert not session.model_switched
    assert session.switched_at_usd is None
    with session:
        session.record(usd=1.5, model="gpt-4o")
    assert session.model_switched
    assert session.switched_at_usd == 4.5
    assert session.fallback_spent == 0.0
    with session:
        session.record(usd=0.2, model="gpt-4o-mini")
        session.record(usd=0.1, model="gpt-4o-mini")
    assert session.fallback_spent == 0.3
    assert events == [(4.5, 5.0, "gpt-4o-mini")]
    assert session.spent == 4.8


def test_fallback_of_a_parent_is_seen_by_its_children() -> None:
    with budget(max_usd=10, name="p", fallback={"at_pct": 0.5, "model": "cheap"}) as p:
        p.record(usd=6.0)
        with budget(max_usd=3, name="c") as c:
            c.record(usd=1.0)
    assert p.fallback_spent == 1.0


# -- async ----------------------------------------------------------------------------------


def test_async_with_accumulates() -> None:
    async def process_items() -> shekel.Budget:
        session = budget(max_usd=10.00, name="session")
        async with session:
            assert current_budget() is session
            await asyncio.sleep(0)
            session.record(usd=1.25)
        async with session:
            await asyncio.sleep(0)
            session.record(usd=0.5)
        assert current_budget() is None
        return session

    session = asyncio.run(process_items())
    assert session.spent == 1.75


def test_async_exceeding_raises_inside_the_block() -> None:
    async def run() -> shekel.Budget:
        b = budget(max_usd=1.0, name="a")
        with pytest.raises(BudgetExceededError):
            async with b:
                b.record(usd=0.6)
                b.record(usd=0.6)
        return b

    b = asyncio.run(run())
    assert b.spent == 1.2
    assert not b.is_active


def test_record_returns_the_call_record() -> None:
    b = budget(name="rec")
    call = b.record(usd=0.5, model="m1", input_tokens=3, output_tokens=4)
    assert call.model == "m1"
    assert call.cost_usd == 0.5
    assert call.input_tokens == 3
    assert call.output_tokens == 4
    assert call.tokens == 7
    assert call.budget_path == "rec"


def test_every_exception_derives_from_shekel_error() -> None:
    for exc in (
        shekel.BudgetConfigError,
        shekel.BudgetExceededError,
        shekel.ToolBudgetExceededError,
        shekel.UnknownModelError,
        shekel.UsageMissingError,
    ):
        assert issubclass(exc, ShekelError), exc
    assert issubclass(shekel.BudgetExceededError, RuntimeError)
    assert issubclass(shekel.ToolBudgetExceededError, shekel.BudgetExceededError)
    assert issubclass(shekel.BudgetConfigError, ValueError)


@pytest.mark.parametrize(
    "counts",
    [
        {"input_tokens": -1},
        {"output_tokens": 10**15},
        {"cached_input_tokens": 1.5},
        {"llm_calls": True},
        {"cache_write_tokens": -3},
    ],
)
def test_record_refuses_counts_that_are_not_whole_numbers_in_range(
    counts: dict[str, object],
) -> None:
    b = budget(name="b")
    with pytest.raises(BudgetConfigError, match="must be a whole number"):
        b.record(usd=0.01, **counts)  # type: ignore[arg-type]
    assert b.spent == 0


def test_record_takes_counts_beyond_the_quick_test_exactly() -> None:
    call = budget(name="b").record(model="gpt-4o-mini", input_tokens=2**49 + 1, output_tokens=7)
    assert (call.input_tokens, call.output_tokens, call.tokens) == (2**49 + 1, 7, 2**49 + 8)


@pytest.mark.parametrize("source", ["", "  ", 5])
def test_record_refuses_a_source_that_is_not_a_name(source: object) -> None:
    with pytest.raises(BudgetConfigError, match="source must be"):
        budget(name="b").record(usd=0.01, source=source)  # type: ignore[arg-type]
