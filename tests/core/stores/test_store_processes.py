"""Budgets in a store, shared by real processes: strict calls through the real openai SDK
against the fake provider from many workers at once never take the budget past its cap, and
every dollar a worker recorded is in the store; a worker killed while holding gives the budget
back when its hold expires; a second process resumes a budget's totals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest

from shekel import BudgetExceededError, budget
from shekel._stores import open_store
from shekel.testing import FakeProvider, Reply

WORKER = str(Path(__file__).with_name("store_worker.py"))
MESSAGES = [{"role": "user", "content": "Say hello."}]

pytestmark = pytest.mark.slow  # every test here runs processes of its own


def start(*args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, WORKER, *args], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def stored(url: str, name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    ledger = open_store(url)
    state = ledger.read(ledger.open(name))
    return state.used, state.reserved


@pytest.mark.parametrize("store", ["redis", "sqlite"], indirect=True)
def test_many_processes_never_pass_a_strict_cap_and_lose_nothing(
    store: str, fake: FakeProvider, tmp_path: Path
) -> None:
    workers = 8 if store.startswith("redis") else 4
    per_worker = 200
    # A call costs $0.0000036 (12 tokens in, 3 out); the cap stops the workers before all
    # their calls are made, while they race for the last of it.
    cap = 0.0000036 * per_worker * workers * 0.4
    go = tmp_path / "go"
    name = f"shared-{workers}"
    processes = [
        start("calls", store, name, str(cap), fake.openai_base_url, str(per_worker), str(go))
        for _ in range(workers)
    ]
    go.touch()
    reports = []
    for process in processes:
        out, _ = process.communicate(timeout=600)
        assert process.returncode == 0
        reports.append(json.loads(out.strip().splitlines()[-1]))
    used, reserved = stored(store, name)
    recorded = sum(r["nanos"] for r in reports)
    calls = sum(r["calls"] for r in reports)
    assert used[0] <= round(cap * 1e9)  # never past the cap, across processes
    assert used[0] == recorded  # every nano-dollar a worker recorded is in the store
    assert (used[1], used[2]) == (sum(r["tokens"] for r in reports), calls)
    assert reserved == (0, 0, 0, 0)
    assert len(fake.requests) == calls  # nothing was sent without being recorded
    assert sum(r["refused"] for r in reports) == workers * per_worker - calls > 0
    assert used[0] > round(cap * 1e9) - 20_000  # they used the budget up (to within a call)
    # They raced for it: calls from several processes (on a loaded machine one of them can
    # lose every race for the store's lock, which is fair enough for a cap).
    assert sum(r["calls"] > 0 for r in reports) >= 2


@pytest.mark.parametrize("store", ["redis", "sqlite"], indirect=True)
def test_a_killed_workers_hold_expires_and_the_budget_is_usable_again(
    store: str, fake: FakeProvider
) -> None:
    url = f"{store}?ttl=4"
    fake.enqueue(Reply(latency=5))  # the worker's call: slow enough to be killed holding
    worker = start("hold", url, "killed", "0.005", fake.openai_base_url)
    deadline = time.monotonic() + 30
    while not fake.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.requests  # the call was sent: its hold is taken
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    _, reserved = stored(url, "killed")
    assert reserved[0] > 0.0049e9  # the dead worker held (nearly) the whole budget
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=2)
    with budget(name="killed", max_usd=0.005, strict=True, store=url) as b:
        with pytest.raises(BudgetExceededError) as refused:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert refused.value.sent is False
        while True:  # the hold expires after its TTL (4 s)
            try:
                client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
                break
            except BudgetExceededError:
                assert time.monotonic() < deadline, "the dead worker's hold never expired"
                time.sleep(0.1)
        assert b.snapshot().llm_calls_used == 1
    assert len(fake.requests) == 2
    client.close()


@pytest.mark.parametrize("store", ["redis", "sqlite"], indirect=True)
def test_a_second_process_resumes_a_budgets_totals(store: str, fake: FakeProvider) -> None:
    worker = start("calls", store, "resumed", "1.0", fake.openai_base_url, "3")
    out, _ = worker.communicate(timeout=120)
    first = json.loads(out.strip().splitlines()[-1])
    assert first["calls"] == 3
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=2)
    with budget(name="resumed", max_usd=1.0, store=store) as b:
        assert b.snapshot().llm_calls_used == 3
        assert round(b.spent * 1e9) == first["nanos"]
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert b.snapshot().llm_calls_used == 4
    used, _ = stored(store, "resumed")
    assert used[2] == 4
    client.close()


def test_killing_an_sqlite_writer_loses_nothing_it_committed(
    tmp_path: Path, fake: FakeProvider
) -> None:
    url = f"sqlite:///{tmp_path / 'spend.db'}"
    worker = start("trickle", url, "durable", "1.0", fake.openai_base_url)
    assert worker.stdout is not None
    recorded = [int(worker.stdout.readline()) for _ in range(25)]
    os.kill(worker.pid, signal.SIGKILL)  # mid-call, or mid-commit
    worker.wait()
    used, _ = stored(url, "durable")
    one_call = recorded[0]
    assert recorded[-1] <= used[0] <= recorded[-1] + one_call  # the next commit may have landed
    assert used[0] == one_call * used[2]  # whole calls only: a commit is all or nothing
