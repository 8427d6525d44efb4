"""Live limits: set_limits on an active budget, and auto-capping to what the parent has left."""

from __future__ import annotations

import threading

import pytest

from shekel import (
    BudgetConfigError,
    BudgetExceededError,
    budget,
)


def test_raising_a_limit_lets_an_exhausted_budget_go_on() -> None:
    root = budget(max_usd=1, name="root")
    step = root.child("step", max_usd=1)
    step.record(usd=1)
    with pytest.raises(BudgetExceededError):
        step.check()
    root.set_limits(max_usd=3)
    step.set_limits(max_usd=2)
    step.check()
    assert (root.limit, step.limit, step.config.max_usd) == (3, 2, 2)
    step.record(usd=0.5)
    assert root.spent == 1.5


def test_a_childs_auto_cap_follows_its_parents_new_limit() -> None:
    root = budget(max_usd=1, name="root")
    step = root.child("step", max_usd=5)
    assert step.limit == 1
    root.set_limits(max_usd=4)
    assert step.limit == 4
    root.set_limits(max_usd=None)
    assert step.limit == 5


def test_lowering_a_limit_below_the_spend_exhausts_the_budget() -> None:
    b = budget(max_usd=1, max_llm_calls=10)
    b.record(usd=0.5)
    b.set_limits(max_usd=0.25, max_llm_calls=None)
    with pytest.raises(BudgetExceededError):
        b.check()
    assert b.snapshot().llm_calls_remaining is None


def test_set_limits_validates_like_budget() -> None:
    b = budget(max_usd=1, fallback={"at_pct": 0.5, "model": "gpt-4o-mini"})
    with pytest.raises(BudgetConfigError, match="max_usd"):
        b.set_limits(max_usd=-1)
    with pytest.raises(BudgetConfigError, match="fallback"):
        b.set_limits(max_usd=None)
    assert b.limit == 1


def test_limits_change_atomically_with_concurrent_spend() -> None:
    b = budget(max_usd=1000)
    stop = threading.Event()

    def spend() -> None:
        while not stop.is_set():
            b.record(usd=0.001)

    workers = [threading.Thread(target=spend) for _ in range(4)]
    for w in workers:
        w.start()
    for limit in range(500, 1000, 10):
        b.set_limits(max_usd=limit)
    stop.set()
    for w in workers:
        w.join()
    assert b.limit == 990
    assert b.spent == pytest.approx(b.history().total_calls * 0.001)
