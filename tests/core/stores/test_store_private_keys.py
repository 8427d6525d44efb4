"""Keys only one budget object knows (an unnamed root's, a repeat's) leave the store once the
object is gone: a service making a budget per request must not fill its Redis or SQLite."""

from __future__ import annotations

import gc
from collections.abc import Callable

import pytest

from shekel import budget, current_budget, with_budget
from shekel._stores import FORGET_BATCH, GONE, forget_gone, open_store
from shekel.ledger import InMemoryLedger


def _private_keys(store: str) -> list[str]:
    return [a["key"] for a in open_store(store).accounts() if "#" in a["key"]]


def _handler(store: str) -> Callable[[], None]:
    """A request handler with a budget per call (a repeat of ``handle``) that spends $0.01."""

    @with_budget(max_usd=1.0, name="handle", store=store)
    def handle() -> None:
        current = current_budget()
        assert current is not None
        current.record(usd=0.01)

    return handle


def _empty_queue() -> None:
    """The queue of gone budgets' accounts is the process's: what earlier tests' budgets left
    in it would make up a batch with part of a test's own, deleted midway through its loop."""
    gc.collect()
    forget_gone(at_exit=True)


def test_the_repeats_of_a_decorated_function_are_forgotten(store: str) -> None:
    _empty_queue()
    handle = _handler(store)
    service = budget(max_usd=10.0, name="service", store=store)
    calls = FORGET_BATCH + 6
    with service:
        for _ in range(calls):
            handle()
        gc.collect()
    with service:  # a budget beginning deletes what gone budgets left, in batches
        pass
    assert len(_private_keys(store)) < FORGET_BATCH // 8  # one per call before
    assert service.spent == pytest.approx(calls * 0.01)
    assert service._node.rollups["handle"].runs == calls
    assert next(a["key"] for a in open_store(store).accounts("service")) == "service"


def test_unnamed_root_budgets_are_forgotten_when_gone(store: str) -> None:
    kept = budget(max_usd=1.0, store=store)
    kept.record(usd=0.5)
    for _ in range(FORGET_BATCH + 1):
        budget(max_usd=1.0, store=store).record(usd=0.01)
    gc.collect()
    with budget(max_usd=1.0, name="next", store=store):
        pass
    assert len(_private_keys(store)) == 1  # the budget still alive keeps its account
    assert kept.spent == pytest.approx(0.5)


def test_repeats_from_many_threads_at_once_are_all_counted_and_forgotten(store: str) -> None:
    """Threads begin budgets, and so delete what gone budgets left, at the same moments."""
    import contextvars
    import threading

    handle = _handler(store)
    service = budget(max_usd=10.0, name="service", store=store)
    threads, calls = 8, 25
    start = threading.Barrier(threads)

    def work() -> None:
        start.wait()
        for _ in range(calls):
            handle()

    with service:
        workers = [
            threading.Thread(target=contextvars.copy_context().run, args=(work,))
            for _ in range(threads)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        gc.collect()
    with service:
        pass
    assert service.spent == pytest.approx(threads * calls * 0.01)
    assert service._node.rollups["handle"].runs == threads * calls
    assert len(_private_keys(store)) < FORGET_BATCH


EXITING = """
import sys
from shekel import budget, current_budget, with_budget

store = sys.argv[1]
kept = budget(max_usd=1.0, store=store)  # alive until the interpreter exits
kept.record(usd=0.5)
for _ in range(5):  # gone at once, fewer than a batch and younger than FORGET_WITHIN
    budget(max_usd=1.0, store=store).record(usd=0.01)

@with_budget(max_usd=1.0, name="handle", store=store)
def handle() -> None:
    current_budget().record(usd=0.01)

with budget(max_usd=10.0, name="service", store=store):
    for _ in range(3):
        handle()
print("recorded", flush=True)
"""


def test_a_process_that_exits_leaves_no_private_keys(store: str) -> None:
    """A short-lived process (a cron job, a CLI run) deletes at exit what its budgets alone
    knew, whether their objects were gone or still alive."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", EXITING, store], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "recorded"
    assert _private_keys(store) == []
    service = open_store(store).accounts("service")
    assert [a["key"] for a in service] == ["service"]  # the named budget's account stays


FORKING = """
import os, sys
from shekel import budget
from shekel._stores import open_store

store = sys.argv[1]
shared = budget(max_usd=1.0, store=store)  # made before the fork: the child inherits it
shared.record(usd=0.25)
child = os.fork()
if child == 0:
    shared.record(usd=0.25)
    sys.exit(0)  # a normal exit: the child's finalizers run
os.waitpid(child, 0)
keys = [a["key"] for a in open_store(store).accounts() if a["key"].startswith("budget#")]
print(len(keys), round(shared.spent, 2), flush=True)
"""


def test_a_forked_child_that_exits_leaves_its_parents_keys_alone(store: str) -> None:
    """A worker forked from a process that made an unnamed budget (a pre-fork server) shares
    the budget's account; its exit must not delete what the parent still uses."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", FORKING, store], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "0.5"]  # the parent's key, with both records
    assert _private_keys(store) == []  # and the parent deleted it when it exited


class StoreThatGoesDown(InMemoryLedger):
    """A ledger whose keys are shared, as a store's are, and whose deletes fail while down."""

    shares_keys = True

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.forgotten: list[object] = []

    def forget(self, accounts: object) -> None:
        if self.down:
            raise ConnectionError("the store is down")
        self.forgotten.extend(accounts)  # type: ignore[call-overload]


def test_accounts_a_store_could_not_delete_wait_for_a_later_batch() -> None:
    _empty_queue()
    ledger = StoreThatGoesDown()
    for _ in range(FORGET_BATCH):
        budget(max_usd=1.0, ledger=ledger).record(usd=0.01)
    gc.collect()
    with budget(max_usd=1.0, name="next", ledger=ledger):  # the batch is due: the delete fails
        pass
    assert len(GONE) == FORGET_BATCH  # kept, not dropped
    ledger.down = False
    with budget(max_usd=1.0, name="soon", ledger=ledger):  # no retry at every budget begun
        pass
    assert ledger.forgotten == []
    forget_gone(at_exit=True)  # at exit (or after FORGET_WITHIN seconds) they go
    assert len(ledger.forgotten) == FORGET_BATCH
    assert len(GONE) == 0
