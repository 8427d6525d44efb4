"""The SQLite store passes the ledger contract, on a real file."""

from __future__ import annotations

from pathlib import Path

import pytest

from shekel._store_sqlite import SQLiteLedger
from shekel.ledger import Ledger
from shekel.testing.ledger_contract import LedgerContract


class TestSQLiteLedger(LedgerContract):
    @pytest.fixture
    def ledger(self, tmp_path: Path) -> Ledger:
        return SQLiteLedger(tmp_path / "spend.db")

    @pytest.fixture
    def second_ledger(self, tmp_path: Path) -> Ledger:
        return SQLiteLedger(tmp_path / "spend.db")  # the same file, as another process opens it


def test_settled_holds_are_forgotten_and_expired_ones_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3
    import time

    from shekel._ledger import Caps, Hold

    ledger = SQLiteLedger(tmp_path / "spend.db")
    chain = [(ledger.open("k"), Caps())]
    settled = ledger.reserve(chain, 1, 0, ttl=1)
    unsettled = ledger.reserve(chain, 2, 0, ttl=1)
    assert isinstance(settled, Hold)
    assert isinstance(unsettled, Hold)
    ledger.commit(settled, 1, 0)
    later = time.time() + 3602
    monkeypatch.setattr(time, "time", lambda: later)
    ledger.expire()
    rows = sqlite3.connect(tmp_path / "spend.db").execute("SELECT id, state FROM shekel_holds")
    assert dict(rows.fetchall()) == {unsettled.id: "expired"}
    ledger.commit(unsettled, 2, 0)  # an hour late: still recorded
    ledger.commit(settled, 1, 0)  # forgotten: nothing recorded twice
    assert ledger.read(chain[0][0]).used[0] == 3


def test_accounts_kept_until_a_moment_are_forgotten_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window's past periods leave no rows behind (Redis lets their keys expire)."""
    import time

    from shekel._ledger import Caps

    ledger = SQLiteLedger(tmp_path / "spend.db")
    now = time.time()
    period = [(ledger.open("daily@1d/2026-11-29", keep_until=now + 60), Caps())]
    lasting = [(ledger.open("lasting"), Caps())]
    ledger.record(period, 5, 1)
    ledger.record(lasting, 7, 1)
    assert [a["key"] for a in ledger.accounts()] == ["daily@1d/2026-11-29", "lasting"]
    monkeypatch.setattr(time, "time", lambda: now + 61)
    ledger.expire()
    assert [a["key"] for a in ledger.accounts()] == ["lasting"]
    assert ledger.read(lasting[0][0]).used[0] == 7


def _spend_in_a_forked_child(ledger: SQLiteLedger, key: str, n: int) -> None:
    from shekel._ledger import Caps

    chain = [(ledger.open(key), Caps())]
    for _ in range(n):
        ledger.record(chain, 1, 1, 1)


def test_forked_processes_share_a_ledger_object_safely(tmp_path: Path) -> None:
    import multiprocessing

    from shekel._ledger import Caps

    ledger = SQLiteLedger(tmp_path / "spend.db")
    chain = [(ledger.open("forked"), Caps())]
    ledger.record(chain, 1, 1, 1)  # the parent's connection is open when it forks
    context = multiprocessing.get_context("fork")
    children = [
        context.Process(target=_spend_in_a_forked_child, args=(ledger, "forked", 100))
        for _ in range(4)
    ]
    for child in children:
        child.start()
    ledger.record(chain, 1, 1, 1)  # the parent goes on writing meanwhile
    for child in children:
        child.join(timeout=120)
        assert child.exitcode == 0
    assert ledger.read(chain[0][0]).used == (402, 402, 402, 0)


def test_async_sdk_calls_on_a_store_are_recorded(tmp_path: Path) -> None:
    """An async SDK call under a budget kept in a store: the store is used from a worker
    thread (the event loop never waits on its I/O), and the spend lands in the file."""
    import asyncio

    import openai

    from shekel import budget
    from shekel.testing import FakeProvider, Reply

    store = f"sqlite:///{tmp_path}/spend.db"

    async def run(fake: FakeProvider) -> float:
        client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=2)
        async with budget(name="async-user", max_usd=1, store=store, strict=True) as b:
            await client.chat.completions.create(model="gpt-4o-mini", messages=_USER)
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=_USER, stream=True
            )
            async for _ in stream:
                pass
        await client.close()
        return b.spent

    with FakeProvider() as fake:
        fake.enqueue(Reply(input_tokens=1000, output_tokens=100))
        fake.enqueue(Reply(text="a b c", input_tokens=1000, output_tokens=3))
        spent = asyncio.run(run(fake))
    expected = (2000 * 0.15 + 103 * 0.60) / 1e6
    assert spent == pytest.approx(expected, abs=1e-12)
    again = budget(name="async-user", max_usd=1, store=store)
    assert again.spent == pytest.approx(expected, abs=1e-12)  # from the file, in a new object
    assert again.snapshot().usd_reserved == 0


_USER = [{"role": "user", "content": "hi"}]


def test_opening_waits_out_another_connection_writing_to_a_new_file(tmp_path: Path) -> None:
    """Switching a file to write-ahead logging is refused at once while another connection
    writes (processes creating a store together); opening waits for it like any write."""
    import sqlite3
    import threading

    path = tmp_path / "spend.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE other (x)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO other VALUES (1)")
    finish = threading.Timer(0.2, writer.execute, ("COMMIT",))
    finish.start()
    try:
        ledger = SQLiteLedger(path, timeout=10)
    finally:
        finish.join()
    account = ledger.open("opened")
    assert ledger.read(account).used == (0, 0, 0, 0)
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)
