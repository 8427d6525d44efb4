"""A Redis server stopped in the middle of a run: by default budgets fail closed (the call is
refused before it is sent, with an error saying what to check), and pick up where they were
when the server is back; with ``?on_error=open`` calls go on unrecorded, with a warning."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from redis_server import RedisServer

from shekel import budget
from shekel._errors import BudgetStoreUnavailableError
from shekel._store_errors import BudgetStoreWarning
from shekel.testing import FakeProvider, Reply

MESSAGES = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    found = RedisServer(tmp_path / "redis", persist=True)  # its data survives a restart
    yield found
    found.stop()


@pytest.fixture
def oai(fake: FakeProvider) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=2)
    yield client
    client.close()


@pytest.mark.parametrize("strict", [False, True])
def test_a_stopped_server_refuses_calls_before_they_are_sent(
    server: RedisServer, fake: FakeProvider, oai: openai.OpenAI, strict: bool
) -> None:
    url = f"{server.url}?timeout=1"
    with budget(name="outage", max_usd=1, strict=strict, store=url) as b:
        oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5)
        first = b.spent
        assert first > 0
        server.stop()
        with pytest.raises(BudgetStoreUnavailableError) as caught:
            oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5)
        assert len(fake.requests) == 1  # nothing was sent
        assert f"127.0.0.1:{server.port}" in str(caught.value)
        assert "check that it is running and reachable" in str(caught.value)
        server.start()
        oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5)
        assert b.snapshot().llm_calls_used == 2  # the spend before the outage is still there
        assert b.spent == pytest.approx(2 * first)
        assert b.snapshot().usd_reserved == 0


def test_failing_open_lets_calls_go_on_with_a_warning(
    server: RedisServer, fake: FakeProvider, oai: openai.OpenAI
) -> None:
    url = f"{server.url}?on_error=open&timeout=1"
    with budget(name="open", max_usd=1, strict=True, store=url) as b:
        oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5)
        server.stop()
        with pytest.warns(BudgetStoreWarning, match="unavailable.*unrecorded"):
            reply = oai.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, max_tokens=5
            )
        assert reply.choices[0].message.content
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once, not per call
            oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5)
        assert len(fake.requests) == 3
        server.start()
        assert b.snapshot().llm_calls_used == 1  # the calls made while it was down went unrecorded


# -- a store that stops answering after the call was sent ------------------------------------
# The call has been paid for: its commit is retried, then kept in the process's journal and
# written by the store's next operation; the caller is told the truth (``sent=True``).

SLOW_REPLY = Reply(text="answer", input_tokens=1000, output_tokens=1000, latency=1.5)
SLOW_COST = 1000 * 2.5e-6 + 1000 * 10e-6  # gpt-4o


def _lock_sqlite(path: Path, after: float, hold_for: float) -> threading.Thread:
    """Another connection takes the file's write lock ``after`` seconds from now."""

    def lock() -> None:
        time.sleep(after)
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        time.sleep(hold_for)
        db.execute("COMMIT")
        db.close()

    thread = threading.Thread(target=lock)
    thread.start()
    return thread


@pytest.fixture
def no_retries(fake: FakeProvider) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0) as client:
        yield client


@pytest.mark.slow  # holds a store locked, or a server frozen, for seconds
def test_a_commit_retried_until_the_store_answers_raises_nothing(
    tmp_path: Path, fake: FakeProvider, no_retries: openai.OpenAI
) -> None:
    path = tmp_path / "spend.db"
    b = budget(name="team", max_usd=1, strict=True, store=f"sqlite:///{path}?timeout=0.5")
    fake.enqueue(SLOW_REPLY)
    locker = _lock_sqlite(path, after=0.5, hold_for=2.5)  # across the commit, shorter than retry
    with b:
        no_retries.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    locker.join()
    assert b.spent == pytest.approx(SLOW_COST)
    assert b.snapshot().usd_reserved == 0


@pytest.mark.slow  # holds a store locked, or a server frozen, for seconds
def test_a_store_locked_across_the_commit_keeps_the_spend_and_says_it_was_sent(
    tmp_path: Path, fake: FakeProvider, no_retries: openai.OpenAI
) -> None:
    path = tmp_path / "spend.db"
    url = f"sqlite:///{path}?timeout=0.3&retry=1"
    b = budget(name="team", max_usd=1, strict=True, store=url)
    fake.enqueue(SLOW_REPLY)
    locker = _lock_sqlite(path, after=0.5, hold_for=4)
    with b, pytest.raises(BudgetStoreUnavailableError) as caught:
        no_retries.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    error = caught.value
    assert error.sent is True
    assert "did not take the spend of a call that was sent" in str(error)
    assert "on 'team'" in str(error)
    assert error.call is not None
    assert error.call.cost_usd == pytest.approx(SLOW_COST)
    assert len(fake.requests) == 1
    assert list(b.history().calls) == [error.call]  # this process recorded it
    locker.join()
    other = budget(name="team", max_usd=1, store=url)  # what the store itself holds
    snapshot = b.snapshot()  # the store's next operation writes what was kept
    assert snapshot.usd_used == pytest.approx(SLOW_COST)
    assert snapshot.usd_reserved == 0
    assert other.spent == pytest.approx(SLOW_COST)
    b.snapshot()
    assert other.spent == pytest.approx(SLOW_COST)  # once


@pytest.mark.slow  # holds a store locked, or a server frozen, for seconds
def test_spend_kept_while_the_store_is_locked_refuses_the_next_call_until_written(
    tmp_path: Path, fake: FakeProvider, no_retries: openai.OpenAI
) -> None:
    path = tmp_path / "spend.db"
    b = budget(name="team", max_usd=1, store=f"sqlite:///{path}?timeout=0.3&retry=1")
    fake.enqueue(SLOW_REPLY)
    locker = _lock_sqlite(path, after=0.5, hold_for=3)
    client = no_retries
    with b:
        with pytest.raises(BudgetStoreUnavailableError):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        with pytest.raises(BudgetStoreUnavailableError) as refused:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert refused.value.sent is False
        assert len(fake.requests) == 1
        locker.join()
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert b.snapshot().llm_calls_used == 2
    assert b.snapshot().usd_reserved == 0


def test_a_process_exiting_with_spend_the_store_never_took_says_so(tmp_path: Path) -> None:
    path = tmp_path / "spend.db"
    script = (
        "import sqlite3, subprocess, sys, shekel\n"
        f"url = 'sqlite:///{path}?timeout=0.2&retry=0.5'\n"
        "b = shekel.budget(name='nightly', max_usd=5, store=url)\n"
        "with b: pass\n"
        f"db = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
        "db.execute('BEGIN IMMEDIATE')  # held until this process exits\n"
        "try:\n"
        "    with b: b.record(model='gpt-4o', input_tokens=1000, output_tokens=10)\n"
        "except shekel.BudgetStoreUnavailableError as e:\n"
        "    print('sent', e.sent)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.split() == ["sent", "True"]
    assert "did not take the spend of 1 call that was sent" in done.stderr
    assert "$0.0026, 1,010 tokens, 1 LLM call on 'nightly'" in done.stderr


@pytest.mark.slow  # holds a store locked, or a server frozen, for seconds
def test_a_frozen_redis_server_gets_the_commit_once(
    server: RedisServer, fake: FakeProvider, no_retries: openai.OpenAI
) -> None:
    url = f"{server.url}?timeout=0.3&retry=1"
    b = budget(name="frozen", max_usd=1, strict=True, store=url)
    with b:
        pass
    fake.enqueue(SLOW_REPLY)
    assert server.process is not None
    pid = server.process.pid

    def freeze() -> None:
        time.sleep(0.5)
        os.kill(pid, signal.SIGSTOP)
        time.sleep(3)
        os.kill(pid, signal.SIGCONT)

    freezer = threading.Thread(target=freeze)
    freezer.start()
    try:
        with b, pytest.raises(BudgetStoreUnavailableError) as caught:
            no_retries.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    finally:
        freezer.join()
    assert caught.value.sent is True
    other = budget(name="frozen", max_usd=1, store=server.url)
    time.sleep(0.2)  # the server works through what reached it while frozen
    b.snapshot()  # writes what was kept: a commit the server already applied does nothing
    assert other.spent == pytest.approx(SLOW_COST)
    assert other.snapshot().usd_reserved == 0
