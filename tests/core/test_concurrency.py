"""Thread and asyncio safety: no lost updates, parallel children, caps that hold under fan-out.

Threads started with ``threading.Thread`` begin with an empty context, so a worker that should
run inside the caller's budget is started with ``contextvars.copy_context().run`` (what
``asyncio.to_thread``, LangGraph and most executors wrappers do).
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shekel import Budget, BudgetExceededError, BudgetPool, budget, current_budget

THREADS = 8
PER_THREAD = 10_000
AMOUNT = 0.0001  # 100,000 nano-dollars


@pytest.fixture(autouse=True)
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads far more often than the default 5 ms, so races have a chance to show."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def run_threads(target: Callable[..., Any], n: int = THREADS, *, inherit: bool = True) -> None:
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:  # surfaced in the test thread below
            errors.append(exc)

    threads = []
    for i in range(n):
        if inherit:
            ctx = contextvars.copy_context()
            t = threading.Thread(target=ctx.run, args=(guarded, i))
        else:
            t = threading.Thread(target=guarded, args=(i,))
        threads.append(t)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_no_lost_updates_with_8_threads_recording_into_one_budget() -> None:
    b = budget(max_usd=1_000, max_tokens=10**9, name="shared")

    def worker(i: int) -> None:
        for _ in range(PER_THREAD):
            b.record(usd=AMOUNT, model=f"m{i % 2}", input_tokens=2, output_tokens=1)

    run_threads(worker, inherit=False)
    total = THREADS * PER_THREAD
    assert b.spent == 8.0  # 80,000 x $0.0001, exactly
    assert b.snapshot().tokens_used == 3 * total
    assert b.snapshot().llm_calls_used == total
    data = b.summary_data()
    assert data["total_calls"] == total
    assert data["by_model"]["m0"]["calls"] == total // 2
    assert data["by_model"]["m1"]["calls"] == total // 2
    assert data["by_model"]["m0"]["input_tokens"] == total
    assert data["by_model"]["m0"]["cost"] + data["by_model"]["m1"]["cost"] == 8.0
    assert b.spent_direct == 8.0
    assert len(data["calls"]) == 1_000


def test_no_lost_updates_through_a_shared_child_in_8_threads() -> None:
    with budget(max_usd=1_000, name="root") as root:
        child = budget(max_usd=500, name="child")

        def worker(i: int) -> None:
            with child:
                assert current_budget() is child
                for _ in range(PER_THREAD):
                    child.record(usd=AMOUNT, tokens=1)

        run_threads(worker)
    assert child.spent == 8.0
    assert root.spent == 8.0
    assert root.snapshot().tokens_used == THREADS * PER_THREAD
    assert root.spent_by_children == 8.0
    assert root.spent_direct == 0.0
    assert child.summary_data()["total_calls"] == THREADS * PER_THREAD
    assert not child.is_active
    assert root.active_child is None


def test_several_children_of_one_parent_active_at_once_in_threads() -> None:
    entered = threading.Barrier(THREADS)
    recorded = threading.Barrier(THREADS + 1)
    checked = threading.Barrier(THREADS + 1)
    kids: dict[int, Budget] = {}

    with budget(max_usd=100, name="parent") as parent:

        def worker(i: int) -> None:
            with budget(max_usd=2, name=f"w{i}") as mine:
                kids[i] = mine
                entered.wait()
                assert current_budget() is mine
                assert mine.parent is parent
                mine.record(usd=0.25 * (i + 1))
                recorded.wait()  # every child has recorded and none has exited
                checked.wait()

        threads = []
        for i in range(THREADS):
            ctx = contextvars.copy_context()
            threads.append(threading.Thread(target=ctx.run, args=(worker, i)))
        for t in threads:
            t.start()
        recorded.wait()
        try:
            # spend reached the parent while all children are still running
            assert parent.spent == sum(0.25 * (i + 1) for i in range(THREADS))
            assert sum(c.is_active for c in parent.children) == THREADS
            assert current_budget() is parent
            # the parent may record here: none of its children is active in this thread
            parent.record(usd=1.0)
        finally:
            checked.wait()
            for t in threads:
                t.join()
    assert parent.spent == 10.0
    assert parent.spent_direct == 1.0
    assert parent.spent_by_children == 9.0
    assert sorted(c.name or "" for c in parent.children) == [f"w{i}" for i in range(THREADS)]
    assert not any(c.is_active for c in parent.children)
    assert parent.active_child is None


def test_parent_is_locked_only_in_the_thread_where_its_child_is_active() -> None:
    with budget(max_usd=10, name="parent") as parent:
        ready = threading.Event()
        done = threading.Event()
        outcome: list[str] = []

        def worker() -> None:
            with budget(max_usd=1, name="child"):
                try:
                    parent.record(usd=0.5)
                except RuntimeError:
                    outcome.append("locked")
                ready.set()
                done.wait()

        t = threading.Thread(target=contextvars.copy_context().run, args=(worker,))
        t.start()
        ready.wait()
        parent.record(usd=0.5)  # this thread has no child active
        done.set()
        t.join()
    assert outcome == ["locked"]
    assert parent.spent == 0.5


def test_parent_cap_holds_under_parallel_reservations() -> None:
    gate = threading.Barrier(THREADS)
    outcomes: list[bool] = []
    lock = threading.Lock()

    with budget(max_usd=1.0, name="parent") as parent:

        def worker(i: int) -> None:
            with budget(max_usd=1.0, name=f"w{i}") as mine:
                gate.wait()
                for _ in range(5):
                    try:
                        with mine.reserve(usd=0.05) as r:
                            snap = parent.snapshot()
                            assert snap.usd_used + snap.usd_reserved <= 1.0
                            r.commit(usd=0.05)
                        ok = True
                    except BudgetExceededError as exc:
                        ok = exc.sent  # refused before the call: sent is False
                    with lock:
                        outcomes.append(ok)

        run_threads(worker)
    # 40 attempts of $0.05 against $1.00: exactly 20 fit, whatever the interleaving
    assert outcomes.count(True) == 20
    assert parent.spent == 1.0
    assert parent.snapshot().usd_reserved == 0.0
    assert parent.spent_by_children == 1.0


def test_parallel_records_overshoot_by_at_most_the_calls_in_flight() -> None:
    with budget(max_usd=1.0, name="parent") as parent:
        stopped = []

        def worker(i: int) -> None:
            with budget(max_usd=1.0, name=f"w{i}") as mine:
                try:
                    while True:
                        mine.record(usd=0.01)
                except BudgetExceededError:
                    stopped.append(i)

        run_threads(worker)
    assert sorted(stopped) == list(range(THREADS))
    # every worker stops at its first call past the cap: at most one call each beyond $1.00
    assert 1.0 < parent.spent <= 1.0 + THREADS * 0.01 + 1e-12


def test_no_lost_updates_with_100_asyncio_tasks_in_one_budget() -> None:
    async def main() -> Budget:
        b = budget(max_usd=100, name="shared")
        async with b:

            async def task() -> None:
                for _ in range(100):
                    b.record(usd=AMOUNT, tokens=1)
                    await asyncio.sleep(0)

            await asyncio.gather(*(task() for _ in range(100)))
        return b

    b = asyncio.run(main())
    assert b.spent == 1.0  # 10,000 x $0.0001
    assert b.snapshot().tokens_used == 10_000
    assert b.summary_data()["total_calls"] == 10_000


def test_100_asyncio_tasks_each_with_its_own_child() -> None:
    async def main() -> tuple[Budget, int]:
        peak = 0
        async with budget(max_usd=100, name="parent") as parent:

            async def task(i: int) -> None:
                nonlocal peak
                async with budget(max_usd=1, name=f"t{i}") as mine:
                    for _ in range(50):
                        assert current_budget() is mine
                        mine.record(usd=AMOUNT)
                        peak = max(peak, sum(c.is_active for c in parent.children))
                        await asyncio.sleep(0)
                    assert mine.spent == 50 * AMOUNT

            await asyncio.gather(*(task(i) for i in range(100)))
            assert current_budget() is parent
        return parent, peak

    parent, peak = asyncio.run(main())
    assert peak == 100  # all children were active at the same time
    assert parent.spent == 0.5  # 100 x 50 x $0.0001
    assert parent.spent_by_children == 0.5
    assert len(parent.children) == 100
    assert all(c.spent == 0.005 for c in parent.children)


def test_asyncio_gather_under_a_capped_parent_with_reservations() -> None:
    async def main() -> tuple[Budget, list[bool]]:
        async with budget(max_usd=0.5, name="parent") as parent:

            async def call(i: int) -> bool:
                async with budget(max_usd=0.2, name=f"call{i}") as mine:
                    try:
                        with mine.reserve(usd=0.1) as r:
                            await asyncio.sleep(0)  # the "LLM call"
                            r.commit(usd=0.1)
                    except BudgetExceededError:
                        return False
                    return True

            results = await asyncio.gather(*(call(i) for i in range(10)))
        return parent, list(results)

    parent, results = asyncio.run(main())
    assert results.count(True) == 5
    assert parent.spent == 0.5


def test_to_thread_inherits_the_budget() -> None:
    async def main() -> Budget:
        async with budget(max_usd=1, name="parent") as parent:

            def blocking_call() -> None:
                assert current_budget() is parent
                with budget(max_usd=0.5, name="in_thread") as b:
                    b.record(usd=0.25)

            await asyncio.to_thread(blocking_call)
        return parent

    parent = asyncio.run(main())
    assert parent.spent == 0.25
    assert parent.children[0].full_name == "parent.in_thread"


def test_pool_no_lost_updates_with_8_threads() -> None:
    pool = BudgetPool()

    def worker(i: int) -> None:
        for _ in range(PER_THREAD):
            pool.record(tokens=3, usd=AMOUNT)

    run_threads(worker, inherit=False)
    snap = pool.snapshot()
    assert snap.tokens_used == 3 * THREADS * PER_THREAD
    assert snap.usd_used == 8.0


def test_pool_cap_is_exact_under_contention() -> None:
    pool = BudgetPool(token_cap=50_000)
    accepted = [0] * THREADS

    def worker(i: int) -> None:
        for _ in range(PER_THREAD):
            try:
                pool.record(tokens=1)
                accepted[i] += 1
            except BudgetExceededError:
                pass

    run_threads(worker, inherit=False)
    assert sum(accepted) == 50_000
    snap = pool.snapshot()
    assert snap.tokens_used == 50_000
    assert snap.tokens_remaining == 0


def test_pool_reserve_commit_under_contention() -> None:
    pool = BudgetPool(token_cap=100_000, usd_cap=1.0)
    accepted = [0] * THREADS

    def worker(i: int) -> None:
        for _ in range(1_000):
            try:
                with pool.reserve(tokens=20, usd=0.0002) as r:
                    snap = pool.snapshot()
                    assert snap.tokens_used + snap.tokens_reserved <= 100_000
                    assert snap.usd_used + snap.usd_reserved <= 1.0 + 1e-12
                    r.commit(tokens=10, usd=0.0001)
                accepted[i] += 1
            except BudgetExceededError:
                pass

    run_threads(worker, inherit=False)
    snap = pool.snapshot()
    assert snap.tokens_reserved == 0
    assert snap.usd_reserved == 0.0
    assert snap.tokens_used == 10 * sum(accepted)
    assert round(snap.usd_used * 1e9) == 100_000 * sum(accepted)
    assert sum(accepted) == THREADS * 1_000  # commits give back half: everything fits
