"""Usage a framework reports (budget.record): call ids count it once with the interceptor."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from types import FrameType

import pytest

from shekel import (
    BudgetConfigError,
    BudgetExceededError,
    BudgetStateError,
    CallRecord,
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


def _engine_steps(report: Callable[[], object]) -> set[str]:
    """The functions of the recording engine (``_spend``) that ``report`` went through."""
    steps: set[str] = set()

    def watch(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code.co_filename.endswith("_spend.py"):
            steps.add(frame.f_code.co_name)

    sys.setprofile(watch)
    try:
        report()
    finally:
        sys.setprofile(None)
    return steps


def _price_looked_up(model: str) -> None:
    """The first report of a model looks its price up on the full path; later ones find it."""
    budget().record(model=model, input_tokens=1, output_tokens=1)


def test_the_one_step_record_records_what_the_full_path_records() -> None:
    """A plain budget books the usual report in one step; a budget under a price table of its
    own (here for another model) takes the full path. Both must record the same call."""
    _price_looked_up("gpt-4o-mini")
    report = {
        "model": "gpt-4o-mini",
        "input_tokens": 1200,
        "output_tokens": 300,
        "cached_input_tokens": 1000,
        "cache_write_tokens": 100,
        "source": "framework",
    }
    quick = budget(max_usd=1.0, name="quick")
    one_step_steps = _engine_steps(lambda: quick.record(**report, call_id="resp-quick"))
    with budget(max_usd=1.0, name="full", prices={"another-model": {"input": 1, "output": 1}}):
        with budget(name="inner") as full:
            full_path_steps = _engine_steps(lambda: full.record(**report, call_id="resp-full"))
    assert "charge" not in one_step_steps
    assert "after_charge" in one_step_steps
    assert "charge" in full_path_steps
    (one_step,) = quick.history().calls
    (full_path,) = full.history().calls
    assert one_step.cost > 0
    unique = {"seq": 0, "budget_path": "", "call_id": ""}
    assert one_step._replace(**unique) == full_path._replace(**unique)
    quick_used, full_used = quick.snapshot(), full.snapshot()
    assert (quick.spent, quick_used.tokens_used, quick_used.llm_calls_used) == (
        full.spent,
        full_used.tokens_used,
        full_used.llm_calls_used,
    )


def test_a_call_id_reported_twice_through_the_one_step_record_is_one_call() -> None:
    _price_looked_up("gpt-4o-mini")
    b = budget(max_usd=1.0)
    first: list[CallRecord] = []
    steps = _engine_steps(
        lambda: first.append(
            b.record(model="gpt-4o-mini", input_tokens=100, output_tokens=10, call_id="resp-twice")
        )
    )
    assert "charge" not in steps
    again = b.record(
        model="gpt-4o-mini", input_tokens=900, output_tokens=90, call_id="resp-twice", source="x"
    )
    assert again is first[0]
    assert list(b.history().calls) == first
    assert b.snapshot().llm_calls_used == 1


def test_a_one_step_report_crossing_the_cap_is_recorded_and_remembered() -> None:
    _price_looked_up("gpt-4o-mini")
    b = budget(max_usd=0.00001)
    with pytest.raises(BudgetExceededError) as caught:
        b.record(model="gpt-4o-mini", input_tokens=10_000, output_tokens=10, call_id="resp-over")
    assert caught.value.call is not None
    assert list(b.history().calls) == [caught.value.call]
    assert b.record(model="gpt-4o-mini", input_tokens=1, call_id="resp-over") is caught.value.call
    assert b.snapshot().llm_calls_used == 1


def test_a_one_step_report_on_a_parent_while_its_child_is_active_is_refused() -> None:
    _price_looked_up("gpt-4o-mini")
    parent = budget(max_usd=1.0, name="parent")
    with parent, budget(name="child"):
        with pytest.raises(BudgetStateError):
            parent.record(model="gpt-4o-mini", input_tokens=10, call_id="resp-locked")
        assert list(parent.history().calls) == []
    call = parent.record(model="gpt-4o-mini", input_tokens=10, call_id="resp-locked")
    assert list(parent.history().calls) == [call]  # the refused report left the id free


def test_one_call_id_reported_by_many_threads_through_the_one_step_record_counts_once() -> None:
    _price_looked_up("gpt-4o-mini")
    b = budget(max_usd=10)
    start = threading.Barrier(8)
    reports: dict[str, list[CallRecord]] = {f"resp-shared-{n}": [] for n in range(50)}

    def report(i: int) -> None:
        start.wait()
        for call_id, got in reports.items():
            got.append(
                b.record(
                    model="gpt-4o-mini",
                    input_tokens=100 + i,
                    output_tokens=10,
                    call_id=call_id,
                    source=f"framework-{i % 2}",
                )
            )

    workers = [threading.Thread(target=report, args=(i,)) for i in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert b.snapshot().llm_calls_used == 50
    assert all(len({id(call) for call in got}) == 1 for got in reports.values())
    assert sorted(call.call_id or "" for call in b.history().calls) == sorted(reports)


def test_cache_counts_above_the_input_they_are_part_of_are_refused_and_nothing_is_recorded() -> (
    None
):
    _price_looked_up("gpt-4o-mini")  # the report would otherwise take the one-step record
    b = budget(max_usd=1.0)
    for read, written in ((20, 0), (6, 5)):
        with pytest.raises(BudgetConfigError, match=r"add up to more than input_tokens \(10\)"):
            b.record(
                model="gpt-4o-mini",
                input_tokens=10,
                output_tokens=1,
                cached_input_tokens=read,
                cache_write_tokens=written,
            )
    assert b.snapshot().llm_calls_used == 0
    call = b.record(
        model="gpt-4o-mini",
        input_tokens=10,
        output_tokens=1,
        cached_input_tokens=5,
        cache_write_tokens=5,
    )
    assert (call.input_tokens, call.cache_read_tokens, call.cache_write_tokens) == (10, 5, 5)
