"""``@with_budget``: a fresh budget around every call of a sync or async function."""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any

import pytest

from shekel import (
    Budget,
    BudgetExceededError,
    UnknownModelError,
    budget,
    current_budget,
    with_budget,
)
from shekel.ledger import InMemoryLedger


def active() -> Budget:
    b = current_budget()
    assert b is not None
    return b


def test_sync_function_runs_inside_a_fresh_budget_each_call() -> None:
    @with_budget(max_usd=0.5)
    def step(cost: float) -> Budget:
        b = active()
        b.record(usd=cost)
        return b

    first = step(0.3)
    second = step(0.3)  # would exceed $0.50 if the budget were shared
    assert first is not second
    assert first.spent == 0.3
    assert second.spent == 0.3
    assert first.limit == 0.5
    assert not first.is_active
    assert current_budget() is None


def test_sync_function_raises_when_its_budget_is_exceeded() -> None:
    @with_budget(max_usd=0.5)
    def greedy() -> None:
        active().record(usd=0.3)
        active().record(usd=0.3)

    with pytest.raises(BudgetExceededError) as info:
        greedy()
    assert info.value.budget_name == "greedy"
    assert current_budget() is None


def test_async_function_runs_inside_a_fresh_budget_each_call() -> None:
    @with_budget(max_usd=0.5)
    async def step(cost: float) -> Budget:
        await asyncio.sleep(0)
        b = active()
        b.record(usd=cost)
        await asyncio.sleep(0)
        assert current_budget() is b
        return b

    async def main() -> list[Budget]:
        return list(await asyncio.gather(*(step(0.3) for _ in range(5))))

    budgets = asyncio.run(main())
    assert len({id(b) for b in budgets}) == 5
    assert all(b.spent == 0.3 for b in budgets)


def test_async_function_raises_when_its_budget_is_exceeded() -> None:
    @with_budget(max_usd=0.5, name="agent")
    async def greedy() -> None:
        active().record(usd=0.6)

    with pytest.raises(BudgetExceededError) as info:
        asyncio.run(greedy())
    assert info.value.budget_name == "agent"


def test_wrapper_keeps_the_function_identity() -> None:
    @with_budget(max_usd=1)
    def documented(x: int) -> int:
        """Doubles x."""
        return 2 * x

    @with_budget(max_usd=1)
    async def coro() -> int:
        return 1

    assert documented(4) == 8
    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Doubles x."
    assert inspect.iscoroutinefunction(coro)
    assert not inspect.iscoroutinefunction(documented)
    assert asyncio.run(coro()) == 1


def test_decorated_calls_nest_under_the_active_budget() -> None:
    @with_budget(max_usd=1)
    def research() -> Budget:
        b = active()
        b.record(usd=0.25)
        return b

    with budget(max_usd=10, name="workflow") as w:
        first = research()
        second = research()
    # Repeats: the same name, rolled up into one entry of the parent instead of a child each.
    assert first is not second
    assert first.full_name == second.full_name == "workflow.research"
    assert w.spent == 0.5
    assert w.spent_by_children == 0.5
    assert w.children == []
    rollup = w._node.rollups["research"]
    assert (rollup.runs, rollup.used[0]) == (2, 500_000_000)
    assert w.tree().splitlines()[1] == "  research ×2: $0.50"


def test_decorated_functions_calling_each_other() -> None:
    @with_budget(max_usd=1)
    def inner() -> str:
        active().record(usd=0.1)
        return active().full_name

    @with_budget(max_usd=5)
    def outer() -> tuple[str, Budget]:
        return inner(), active()

    path, outer_budget = outer()
    assert path == "outer.inner"
    assert outer_budget.spent == 0.1


def test_concurrent_async_calls_under_one_parent() -> None:
    @with_budget(max_usd=1, name="call")
    async def call(i: int) -> str:
        await asyncio.sleep(0)
        active().record(usd=0.01 * (i + 1))
        return active().full_name

    async def main() -> tuple[Budget, list[str]]:
        async with budget(max_usd=10, name="fanout") as parent:
            names = await asyncio.gather(*(call(i) for i in range(10)))
        return parent, list(names)

    parent, names = asyncio.run(main())
    assert names == ["fanout.call"] * 10
    assert parent.spent == 0.55
    assert parent.children == []
    assert parent._node.rollups["call"].runs == 10
    assert parent._node.rollups["call"].used[0] == 550_000_000


def test_decorated_child_is_capped_by_its_parent() -> None:
    @with_budget(max_usd=5)
    def child() -> float | None:
        return active().limit

    with budget(max_usd=1, name="parent") as parent:
        parent.record(usd=0.75)
        assert child() == 0.25


# -- every budget() parameter -------------------------------------------------------------


def parameters_of_budget() -> set[str]:
    sig = inspect.signature(Budget.__init__)
    return {
        name
        for name, p in sig.parameters.items()
        if name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD
    }


def test_with_budget_accepts_every_budget_parameter() -> None:
    warned: list[tuple[float, float]] = []
    switched: list[str] = []
    ledger = InMemoryLedger()
    kwargs: dict[str, Any] = {
        "max_usd": 1.0,
        "max_tokens": 100_000,
        "max_llm_calls": 5,
        "max_tool_calls": 2,
        "name": "everything",
        "warn_at": 0.5,
        "on_warn": lambda s, lim: warned.append((s, lim)),
        "fallback": {"at_pct": 0.7, "model": "cheap"},
        "on_fallback": lambda s, lim, m: switched.append(m),
        "prices": {"house": {"input": 100.0, "output": 100.0}},
        "tool_prices": {"search": 0.05},
        "strict": True,
        "unknown_models": "error",
        "history_size": 2,
        "window": "1d",
        "timezone": "Europe/Paris",
        "loop_guard": 5,
        "store": ledger,
    }
    # if budget() grows a parameter, this test must learn about it (ledger= is store='s older
    # name, and windows= the other way to give limits per period: both tested below)
    assert set(kwargs) | {"ledger", "windows"} == parameters_of_budget()

    @with_budget(**kwargs)
    def use_everything() -> Budget:
        b = active()
        snap = b.snapshot()
        assert b.name == "everything"
        assert b.limit == 1.0
        assert snap.tokens_limit == 100_000
        assert snap.llm_calls_remaining == 5
        assert snap.tool_calls_remaining == 2
        assert b.config.strict
        assert b.config.unknown_models == "error"
        assert b.config.history_size == 2
        assert b.config.loop_guard == 5
        assert b._c.ledger is ledger
        ends = b.snapshot().period_ends_at
        assert ends is not None
        assert 0 < ends - time.time() <= 25 * 3600  # midnight in Paris, within a day
        b.tool_call("search").commit()  # priced by tool_prices
        assert b.spent == 0.05
        b.record(model="house", input_tokens=5_000)  # $0.50 at $100/M: warns
        assert warned == [(0.55, 1.0)]
        b.record(model="house", input_tokens=2_000)  # $0.75: falls back
        assert switched == ["cheap"]
        assert b.model_switched
        with pytest.raises(UnknownModelError):
            b.record(model="nobody-prices-this-model", input_tokens=1)
        return b

    b = use_everything()
    assert b.spent == 0.75
    assert len(b.summary_data()["calls"]) == 2  # history_size
    warned.clear()
    switched.clear()
    second = use_everything()  # a fresh budget: warns and falls back again
    assert second is not b
    assert second.spent == 0.75


OWN_LEDGER = InMemoryLedger()


@pytest.mark.parametrize(
    ("param", "value", "check"),
    [
        ("max_usd", 0.25, lambda b: b.limit == 0.25),
        ("max_tokens", 10, lambda b: b.snapshot().tokens_limit == 10),
        ("max_llm_calls", 3, lambda b: b.snapshot().llm_calls_remaining == 3),
        ("max_tool_calls", 4, lambda b: b.snapshot().tool_calls_remaining == 4),
        ("name", "named", lambda b: b.full_name == "named"),
        ("strict", True, lambda b: b.config.strict),
        ("unknown_models", "error", lambda b: b.config.unknown_models == "error"),
        ("history_size", 7, lambda b: b.config.history_size == 7),
        ("windows", {"1h": 0.5, "1d": 2.0}, lambda b: b.limit == 2.0),
        ("ledger", OWN_LEDGER, lambda b: b._c.ledger is OWN_LEDGER),
    ],
)
def test_each_parameter_reaches_the_budget(param: str, value: Any, check: Any) -> None:
    @with_budget(**{param: value})
    def fn() -> Budget:
        return active()

    assert check(fn())


def test_bad_arguments_fail_at_decoration_time() -> None:
    with pytest.raises(ValueError, match="warn_at"):
        with_budget(max_usd=1, warn_at=2)
    with pytest.raises(ValueError, match="name"):
        with_budget(name="a.b")
    with pytest.raises(TypeError, match="did you mean 'max_tokens'"):
        with_budget(max_token=10)
