"""The Redis store passes the ledger contract, on a real ``redis-server``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shekel._store_redis import RedisLedger
from shekel.ledger import Ledger
from shekel.testing.ledger_contract import LedgerContract


class TestRedisLedger(LedgerContract):
    @pytest.fixture
    def ledger(self, redis_url: str) -> Iterator[Ledger]:
        ledger = RedisLedger(redis_url)
        yield ledger
        ledger.close()

    @pytest.fixture
    def second_ledger(self, redis_url: str) -> Iterator[Ledger]:
        ledger = RedisLedger(redis_url)  # the same server, as another process connects to it
        yield ledger
        ledger.close()
