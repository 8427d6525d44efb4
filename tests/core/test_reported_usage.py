"""Usage a framework reports (budget.record): call ids count it once with the interceptor."""

from __future__ import annotations

import threading

import pytest

from shekel import (
    BudgetConfigError,
    BudgetExceededError,
    budget,
)


def test_a_report_with_a_call_id_is_idempotent() -> None:
    b = budget(max_usd=1)
    first = b.record(model="gpt-4o-mini", input_tokens=100, output_tokens=10, call_id="run-1")
    again = b.record(model="gpt-4o-mini", input_tokens=100, output_tokens=10, call_id="run-1")
    assert again is first
    assert b.snapshot().llm_calls_used == 1
    assert first.source == "manual"
    b.record(model="gpt-4o-mini", input_tokens=100, output_tokens=10, call_id="run-2", source="x")
    assert b.snapshot().llm_calls_used == 2
    assert b.history().calls[-1].source == "x"


def test_one_call_id_reported_by_many_threads_at_once_counts_once() -> None:
    b = budget(max_usd=10)
    start = threading.Barrier(16)
    reports: list[object] = []

    def report(i: int) -> None:
        start.wait()
        for n in range(50):
            reports.append(b.record(usd=0.001, call_id=f"shared-{n}", source=f"framework-{i % 2}"))

    workers = [threading.Thread(target=report, args=(i,)) for i in range(16)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert b.snapshot().llm_calls_used == 50
    assert b.spent == pytest.approx(0.05)
    assert len({id(r) for r in reports}) == 50  # every report got the call as first recorded


def test_a_report_that_crosses_the_cap_is_remembered_too() -> None:
    b = budget(max_usd=0.0001)
    with pytest.raises(BudgetExceededError) as caught:
        b.record(usd=0.001, call_id="over")
    assert caught.value.call is not None
    assert b.record(usd=0.001, call_id="over") is caught.value.call
    assert b.spent == 0.001


def test_reported_usage_can_be_an_estimate_with_cache_writes() -> None:
    b = budget(max_usd=10, prices={"m": {"input": 1.0, "output": 2.0, "cache_write": 1.25}})
    call = b.record(
        model="m", input_tokens=1000, cache_write_tokens=400, output_tokens=10, estimated=True
    )
    assert call.estimated is True
    assert call.cache_write_tokens == 400
    assert call.cost == round((600 * 1.0 + 400 * 1.25 + 10 * 2.0) * 1000)
    assert b.summary_data()["estimated_calls"] == 1
    with pytest.raises(BudgetConfigError, match="estimated"):
        b.record(usd=0.1, estimated="yes")  # type: ignore[arg-type]
