"""The active budget is always the right one: a failed enter, exits out of order, generators
closed late, and tasks that outlive their block leave nothing stale."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import pytest

from shekel import BudgetConfigError, BudgetExceededError, BudgetStateError, budget, current_budget
from shekel.plugins import hookimpl, plugin_manager


class FailingEnterHook:
    @hookimpl
    def shekel_budget_entered(self, budget: Any) -> None:
        raise RuntimeError("a plugin failed")


def test_a_failed_enter_leaves_nothing_active() -> None:
    b = budget(max_usd=1, name="b")
    plugin = FailingEnterHook()
    plugin_manager().register(plugin)
    try:
        with pytest.raises(RuntimeError, match="a plugin failed"), b:
            pytest.fail("the block must not run")
    finally:
        plugin_manager().unregister(plugin)
    assert current_budget() is None
    assert b.is_active is False
    b.reset()  # not "while it is active"
    with budget(max_usd=1, name="a") as a:
        assert a.full_name == "a"  # not nested under the failed b


def test_a_failed_enter_of_a_child_leaves_its_parent_current() -> None:
    plugin = FailingEnterHook()
    with budget(max_usd=1, name="parent") as parent:
        plugin_manager().register(plugin)
        try:
            with pytest.raises(RuntimeError), budget(max_usd=1, name="child"):
                pass
        finally:
            plugin_manager().unregister(plugin)
        assert current_budget() is parent
        assert parent.active_child is None


def test_exits_out_of_order_restore_what_was_current_before() -> None:
    outer, inner = budget(max_usd=1, name="outer"), budget(max_usd=1, name="inner")
    outer.__enter__()
    inner.__enter__()
    outer.__exit__(None, None, None)  # out of order: the outer block ends first
    assert current_budget() is None
    inner.__exit__(None, None, None)
    assert current_budget() is None
    assert not outer.is_active
    assert not inner.is_active


def test_a_generator_closed_after_the_outer_block_does_not_revive_it() -> None:
    def steps() -> Any:
        with budget(max_usd=1, name="inner"):
            yield "step1"
            yield "step2"

    outer = budget(max_usd=0.10, name="outer")
    with outer:
        it = steps()
        next(it)
    assert current_budget() is None
    it.close()
    assert current_budget() is None
    assert outer.is_active is False
    with budget(max_usd=1) as later:
        later.record(usd=0.5)  # charged to a new root, not to the ended outer budget
    assert outer.spent == 0


def test_a_task_that_outlives_its_block_still_counts_against_the_budget() -> None:
    async def main() -> tuple[Any, float]:
        gate = asyncio.Event()

        async def late_work() -> Any:
            await gate.wait()
            current = current_budget()
            assert current is not None
            current.record(usd=0.25)
            return current

        async with budget(max_usd=1, name="job") as job:
            task = asyncio.create_task(late_work())
        gate.set()
        return await task, job.spent

    charged, spent = asyncio.run(main())
    assert charged.name == "job"
    assert spent == 0.25


def test_one_budget_entered_in_many_threads_is_active_until_the_last_leaves() -> None:
    shared = budget(max_usd=10, name="shared")
    entered, release = threading.Barrier(9), threading.Event()

    def work() -> None:
        with shared:
            entered.wait()
            release.wait()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    entered.wait()
    assert shared.is_active
    release.set()
    for t in threads:
        t.join()
    assert not shared.is_active


def test_reset_while_active_is_a_state_error() -> None:
    with budget(max_usd=1) as b, pytest.raises(BudgetStateError, match="after its with-block"):
        b.reset()


def test_recording_on_a_parent_under_its_active_child_is_a_state_error() -> None:
    with (
        budget(max_usd=1, name="p") as p,
        budget(max_usd=1, name="c"),
        pytest.raises(BudgetStateError, match="record on the child"),
    ):
        p.record(usd=0.1)


def test_state_errors_are_runtime_errors_and_shekel_errors() -> None:
    assert issubclass(BudgetStateError, RuntimeError)
    assert not issubclass(BudgetStateError, BudgetExceededError)
    assert not issubclass(BudgetStateError, BudgetConfigError)


def test_copied_contexts_see_the_budget_entered_before_the_copy() -> None:
    with budget(max_usd=1, name="root") as root:
        context = contextvars.copy_context()
    assert context.run(current_budget) is root
    assert current_budget() is None
