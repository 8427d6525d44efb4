"""The SQLite store passes the ledger contract, on a real file."""

from __future__ import annotations

from pathlib import Path

import pytest

from shekel import Ledger
from shekel._store_sqlite import SQLiteLedger
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
