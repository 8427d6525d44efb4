"""Holds on a store are leases: a killed worker's room comes back within one lease (a minute by
default), and a call that runs longer keeps its room, because its process renews the lease."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from shekel import BudgetExceededError, budget
from shekel.testing import FakeProvider, Reply

MESSAGES = [{"role": "user", "content": "Say hello."}]


def _holding_worker(url: str, name: str, usd: float) -> subprocess.Popen[str]:
    """A process that reserves ``usd`` on the budget ``name`` and waits to be killed."""
    code = (
        "import shekel, time\n"
        f"b = shekel.budget(name={name!r}, max_usd=1.0, store={url!r})\n"
        "with b:\n"
        f"    r = b.reserve(usd={usd})\n"
        "    r.__enter__()\n"
        "    print('held', flush=True)\n"
        "    time.sleep(600)\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None
    assert worker.stdout.readline().strip() == "held"
    return worker


def _kill(worker: subprocess.Popen[str]) -> None:
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()


def _with_options(store: str, options: str) -> str:
    return f"{store}{'&' if '?' in store else '?'}{options}"


@pytest.fixture
def closing() -> Iterator[contextlib.ExitStack]:
    """What a test opens, closed when it ends (clients' sockets, before the next test)."""
    with contextlib.ExitStack() as stack:
        yield stack


def test_reads_do_not_count_holds_whose_lease_ran_out(store: str) -> None:
    url = _with_options(store, "ttl=1")
    name = f"k-{uuid.uuid4().hex[:6]}"
    _kill(_holding_worker(url, name, 0.7))
    b = budget(name=name, max_usd=1.0, store=url)
    assert b.snapshot().usd_reserved == pytest.approx(0.7)
    time.sleep(1.3)
    snapshot = b.snapshot()  # a reading, before any write swept the hold
    assert snapshot.usd_reserved == 0
    assert snapshot.usd_remaining == pytest.approx(1.0)


@pytest.mark.slow
def test_a_killed_workers_room_comes_back_within_75_seconds_by_default(
    redis_url: str, tmp_path: Path
) -> None:
    """Both stores at once, with their default settings: one wait of about a minute."""
    name = f"killed-{uuid.uuid4().hex[:6]}"
    stores = [redis_url, f"sqlite:///{tmp_path / 'spend.db'}"]
    workers = [_holding_worker(url, name, 1.0) for url in stores]
    waiting = [budget(name=name, max_usd=1.0, store=url) for url in stores]
    for b in waiting:
        with pytest.raises(BudgetExceededError):
            b.check(usd=0.5)
    for worker in workers:
        _kill(worker)
    killed = time.monotonic()
    while waiting:
        for b in list(waiting):
            try:
                b.check(usd=0.5)
            except BudgetExceededError:
                continue
            assert b.snapshot().usd_reserved == 0
            waiting.remove(b)
        assert time.monotonic() - killed < 75, "a dead worker's hold is still counted"
        time.sleep(1)


@pytest.mark.slow  # a call of 3 s, five lease lifetimes
def test_a_call_longer_than_several_leases_keeps_its_hold(
    store: str, fake: FakeProvider, closing: contextlib.ExitStack
) -> None:
    url = _with_options(store, "ttl=0.6")
    name = f"long-{uuid.uuid4().hex[:6]}"
    b = budget(name=name, max_usd=0.05, strict=True, store=url)
    # Another view of the store, as another process has (a ledger of its own).
    watcher = budget(name=name, max_usd=0.05, store=_with_options(url, "timeout=3"))
    fake.enqueue(Reply(text="a long answer", input_tokens=100, output_tokens=200, latency=3.0))
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
    closing.callback(client.close)
    seen: list[float] = []

    def watch() -> None:
        while not fake.requests:  # the hold is taken before the request is sent
            time.sleep(0.01)
        for _ in range(8):
            seen.append(watcher.snapshot().usd_reserved)
            time.sleep(0.3)

    watching = threading.Thread(target=watch)
    watching.start()
    with b:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    watching.join()
    assert min(seen) > 0.04  # the hold was there all along: 2.4 s, four lease lifetimes
    assert watcher.snapshot().usd_reserved == 0
    assert watcher.spent == pytest.approx(100 * 2.5e-6 + 200 * 10e-6)
