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
