"""Repeated same-name children (``@with_budget`` calls, budgets a ``shekel run`` script makes in
a loop) cost constant time and memory each, and totals and ``tree()`` stay right."""

from __future__ import annotations

import asyncio
import gc
import sys
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from shekel import budget, current_budget, with_budget


@with_budget(max_usd=1)
def handle() -> None:
    active = current_budget()
    assert active is not None
    active.record(usd=0.00001, tokens=3)


def _retained_after(calls: int) -> int:
    with budget(max_usd=1e6, name="service") as service:
        handle()  # warm up: first-use caches are not the repeats' cost
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(calls):
            handle()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    assert service.children == []
    assert service._node.rollups["handle"].runs == calls + 1
    return after - before


@pytest.mark.slow
def test_memory_kept_per_repeat_does_not_grow_with_the_number_of_calls() -> None:
    small, large = _retained_after(500), _retained_after(5_000)
    # Constant memory: ten times the calls keep the same few hundred bytes (the rollup),
    # where one child per call kept ~3 KB each.
    assert large < 20_000
    assert large < small + 5_000


def test_ten_thousand_repeats_add_up_exactly() -> None:
    with budget(max_usd=1e6, name="service") as service:
        for _ in range(10_000):
            handle()
    assert service.spent == pytest.approx(0.1, abs=1e-12)
    assert service.snapshot().tokens_used == 30_000
    assert service.snapshot().llm_calls_used == 10_000
    assert service.spent_direct == 0
    assert service.spent_by_children == pytest.approx(0.1, abs=1e-12)
    assert (
        service.tree() == "service: $0.10 / $1,000,000.00 (direct: $0.00)\n  handle ×10000: $0.10"
    )
    data = service.summary_data()
    assert data["total_calls"] == 10_000
    assert data["by_model"]["(manual)"]["calls"] == 10_000


def test_a_repeat_reused_across_blocks_is_counted_once() -> None:
    with budget(max_usd=10, name="run") as run:
        run._node.adopts_repeats = True  # what `shekel run` does for its own budget
        step = budget(max_usd=1)  # unnamed: a repeat named "budget"
        for _ in range(3):
            with step:
                step.record(usd=0.1)
    assert step.full_name == "run.budget"
    rollup = run._node.rollups["budget"]
    assert rollup.runs == 1
    assert rollup.used[0] == 300_000_000  # 3 x $0.10, not 1 + 2 + 3 blocks' worth
    assert run.spent == pytest.approx(0.3)


def test_fresh_same_name_budgets_under_shekel_runs_budget_share_one_rollup() -> None:
    with budget(max_usd=10, name="run") as run:
        run._node.adopts_repeats = True
        with budget(max_usd=1, name="step") as first:
            first.record(usd=0.1)
        for _ in range(100):
            with budget(max_usd=1, name="step") as again:
                again.record(usd=0.01)
    assert [c.name for c in run.children] == ["step"]  # the first keeps its place
    assert run._node.rollups["step"].runs == 100
    assert run.spent == pytest.approx(1.1)
    assert run.tree().splitlines()[1:] == [
        "  step: $0.10 / $1.00 (direct: $0.10)",
        "  step ×100: $1.00",
    ]


def test_outside_those_parents_a_second_child_of_the_same_name_is_refused() -> None:
    from shekel import BudgetConfigError

    with budget(max_usd=10, name="p"):
        with budget(max_usd=1, name="x"):
            pass
        with (
            pytest.raises(BudgetConfigError, match="already has a child named 'x'"),
            budget(max_usd=1, name="x"),
        ):
            pass


# -- @with_budget on generators ---------------------------------------------------------------


def test_a_decorated_generator_is_metered_while_its_body_runs() -> None:
    seen: list[str | None] = []

    @with_budget(max_usd=1, name="producer")
    def produce() -> Iterator[int]:
        for i in range(3):
            active = current_budget()
            seen.append(None if active is None else active.full_name)
            assert active is not None
            active.record(usd=0.1)
            yield i

    with budget(max_usd=5, name="app") as app:
        items = []
        for item in produce():
            assert current_budget() is app  # the caller's code between steps is not metered
            items.append(item)
    assert items == [0, 1, 2]
    assert seen == ["app.producer"] * 3
    assert app.spent == pytest.approx(0.3)
    assert app._node.rollups["producer"].runs == 1


def test_a_decorated_generator_is_stopped_by_its_cap() -> None:
    from shekel import BudgetExceededError

    @with_budget(max_usd=0.25, name="producer")
    def produce() -> Iterator[int]:
        while True:
            active = current_budget()
            assert active is not None
            active.record(usd=0.1)
            yield 1

    with budget(max_usd=5, name="app") as app, pytest.raises(BudgetExceededError):
        for _ in produce():
            pass
    assert app.spent == pytest.approx(0.3)


def test_a_decorated_generator_keeps_send_and_return() -> None:
    @with_budget(max_usd=1, name="echo")
    def echo() -> Iterator[int]:
        total = 0
        while True:
            got = yield total
            if got is None:
                return
            total += got

    gen = echo()
    assert next(gen) == 0
    assert gen.send(2) == 2
    assert gen.send(3) == 5
    with pytest.raises(StopIteration):
        gen.send(None)


def test_a_decorated_async_generator_is_metered() -> None:
    @with_budget(max_usd=1, name="stream")
    async def stream() -> AsyncIterator[str]:
        for word in ("a", "b"):
            active = current_budget()
            assert active is not None
            active.record(usd=0.2)
            yield f"{active.full_name}:{word}"

    async def main() -> tuple[list[str], float]:
        async with budget(max_usd=5, name="app") as app:
            words = [w async for w in stream()]
            assert current_budget() is app
        return words, app.spent

    words, spent = asyncio.run(main())
    assert words == ["app.stream:a", "app.stream:b"]
    assert spent == pytest.approx(0.4)


def _producer(cleanup: list[str | None]) -> Callable[[], Iterator[int]]:
    """A decorated generator whose ``finally`` records spend on its own budget, as closing a
    stream it holds does, and notes which budget was active there."""

    @with_budget(max_usd=1, name="producer")
    def produce() -> Iterator[int]:
        own = current_budget()
        assert own is not None
        try:
            own.record(usd=0.1)
            yield 1
            yield 2
        finally:
            active = current_budget()
            cleanup.append(None if active is None else active.full_name)
            own.record(usd=0.05)

    return produce


def test_a_decorated_generator_closed_in_its_block_cleans_up_inside_its_budget() -> None:
    cleanup: list[str | None] = []
    with budget(max_usd=5, name="app") as app:
        it = _producer(cleanup)()
        next(it)
        it.close()
    assert cleanup == ["app.producer"]
    assert app.spent == pytest.approx(0.15)
    assert app._node.rollups["producer"].used[0] == 150_000_000


def test_a_decorated_generator_closed_after_its_block_cleans_up_outside_it() -> None:
    cleanup: list[str | None] = []
    with budget(max_usd=5, name="app") as app:
        first, second = _producer(cleanup)(), _producer(cleanup)()
        next(first)
        next(second)
    first.close()  # its budget belongs to 'app', whose block has ended: no BudgetConfigError
    with budget(max_usd=5, name="other") as other:
        second.close()  # nor inside another budget's block
    assert cleanup == [None, "other"]
    # What the cleanups recorded on their own budgets still counts there and in 'app'.
    assert app.spent == pytest.approx(0.3)
    assert app._node.rollups["producer"].used[0] == 300_000_000
    assert app.tree().splitlines()[1] == "  producer ×2: $0.30"
    assert other.spent == 0
    assert current_budget() is None


def test_a_decorated_generator_dropped_after_its_block_closes_without_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    cleanup: list[str | None] = []
    with budget(max_usd=5, name="app") as app:
        it = _producer(cleanup)()
        next(it)
    del it
    gc.collect()
    assert unraisable == []
    assert cleanup == [None]
    assert app.spent == pytest.approx(0.15)


def test_a_decorated_async_generator_closed_after_its_block_cleans_up_outside_it() -> None:
    cleanup: list[str | None] = []

    @with_budget(max_usd=1, name="stream")
    async def stream() -> AsyncIterator[str]:
        own = current_budget()
        assert own is not None
        try:
            own.record(usd=0.1)
            yield "a"
            yield "b"
        finally:
            active = current_budget()
            cleanup.append(None if active is None else active.full_name)
            own.record(usd=0.05)

    async def main() -> float:
        async with budget(max_usd=5, name="app") as app:
            it = stream()
            await it.__anext__()
        await it.aclose()
        assert current_budget() is None
        return app.spent

    assert asyncio.run(main()) == pytest.approx(0.15)
    assert cleanup == [None]
