"""A child asked for by name (parent.child): created once, found afterwards, options checked."""

from __future__ import annotations

import asyncio
import threading

import pytest

from shekel import (
    Budget,
    BudgetConfigError,
    BudgetExceededError,
    budget,
    current_budget,
)


def test_child_is_created_once_and_attached_without_being_entered() -> None:
    root = budget(max_usd=10, name="root")
    child = root.child("research", max_usd=2)
    assert root.child("research") is child
    assert root.child("research", max_usd=2) is child
    assert root.children == [child]
    assert child.full_name == "root.research"
    assert child.parent is root
    assert not child.is_active
    with root, child:
        assert current_budget() is child


def test_a_child_made_by_with_is_found_by_child() -> None:
    with budget(max_usd=10, name="root") as root:
        with budget(max_usd=1, name="step") as step:
            pass
        assert root.child("step") is step


def test_a_child_asked_for_with_other_options_is_refused() -> None:
    root = budget(max_usd=10, name="root")
    root.child("research", max_usd=2, warn_at=0.5)
    with pytest.raises(BudgetConfigError, match="other max_usd") as caught:
        root.child("research", max_usd=3)
    assert "set_limits()" in str(caught.value)
    with pytest.raises(BudgetConfigError, match="warn_at"):
        root.child("research", warn_at=0.9)
    with pytest.raises(BudgetConfigError, match="did you mean 'max_usd'"):
        root.child("other", max_usdd=1)


def test_a_child_is_auto_capped_to_what_its_parent_has_left() -> None:
    with budget(max_usd=10, name="root") as root:
        root.record(usd=7)
    child = root.child("late", max_usd=5)
    assert child.limit == 3
    assert child.config.max_usd == 5


def test_spend_of_a_child_reaches_its_parent_without_entering_either() -> None:
    root = budget(max_usd=1, name="root")
    child = root.child("step")
    child.record(usd=0.25)
    assert (root.spent, root.spent_by_children) == (0.25, 0.25)
    with pytest.raises(BudgetExceededError) as caught:
        child.record(usd=1)
    assert caught.value.budget_name == "root"


def test_a_hundred_threads_creating_one_child_get_the_same_one() -> None:
    root = budget(max_usd=1000, name="root")
    start = threading.Barrier(100)
    seen: list[Budget] = []
    lock = threading.Lock()

    def work() -> None:
        start.wait()
        child = root.child("worker", max_usd=500)
        child.record(usd=0.5, tokens=1)
        with lock:
            seen.append(child)

    threads = [threading.Thread(target=work) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in seen}) == 1
    assert root.children == [seen[0]]
    assert (seen[0].spent, seen[0].snapshot().tokens_used) == (50, 100)
    assert root.spent == 50


def test_a_hundred_tasks_creating_one_child_get_the_same_one() -> None:
    async def main() -> tuple[Budget, list[Budget]]:
        root = budget(max_usd=1000, name="root")

        async def work() -> Budget:
            await asyncio.sleep(0)
            child = root.child("worker")
            async with root, child:
                current = current_budget()
                assert current is child
                current.record(usd=0.5)
            return child

        return root, list(await asyncio.gather(*(work() for _ in range(100))))

    root, seen = asyncio.run(main())
    assert len({id(c) for c in seen}) == 1
    assert root.children == [seen[0]]
    assert seen[0].spent == 50


def test_a_child_asked_for_again_after_set_limits_is_the_same_child() -> None:
    """Resuming a paused step asks for its budget with the options it was made with."""
    root = budget(max_usd=10, name="root")
    step = root.child("step", max_usd=1)
    step.set_limits(max_usd=3)
    assert root.child("step", max_usd=1) is step
    assert step.limit == 3
    with pytest.raises(BudgetConfigError, match="other max_usd"):
        root.child("step", max_usd=2)


def test_find_child_looks_up_without_creating() -> None:
    root = budget(max_usd=10, name="root")
    assert root.find_child("step") is None
    assert root.children == []
    step = root.child("step")
    assert root.find_child("step") is step


def test_a_child_of_an_unnamed_budget_by_name() -> None:
    with budget(max_usd=1) as root:
        step = root.child("retrieve", max_usd=0.5)
        step.record(usd=0.25)
    assert step.full_name == "budget.retrieve"
    assert root.spent == 0.25
    with (
        pytest.raises(BudgetConfigError, match="nested budgets need names"),
        budget(max_usd=1),
        budget(max_usd=1, name="x"),
    ):
        pass
