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
