"""Budgets in a store under asyncio: concurrent strict calls of the async openai SDK on one
budget in Redis or SQLite stay under the cap, and every call sent is recorded once."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import openai

from shekel import BudgetExceededError, budget
from shekel._stores import open_store
from shekel.testing import FakeProvider, Reply


def test_concurrent_async_strict_calls_stay_under_the_cap(store: str) -> None:
    cap = 0.0000036 * 10.5  # ten calls and a half
    with FakeProvider() as fake:

        async def run() -> list[BaseException | None]:
            client = openai.AsyncOpenAI(
                base_url=fake.openai_base_url, api_key="test", max_retries=2
            )

            async def one() -> BaseException | None:
                try:
                    await client.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": "hi"}],
                        max_tokens=5,
                    )
                except BudgetExceededError as error:
                    return error
                return None

            async with budget(name="async", max_usd=cap, strict=True, store=store):
                results = await asyncio.gather(*(one() for _ in range(30)))
            await client.close()
            return results

        results = asyncio.run(run())
        refused = [r for r in results if r is not None]
        assert all(isinstance(r, BudgetExceededError) and not r.sent for r in refused)
        ledger = open_store(store)
        state = ledger.read(ledger.open("async"))
        assert state.used[0] <= round(cap * 1e9)
        assert state.used[2] == len(fake.requests) == 30 - len(refused) >= 8
        assert state.reserved == (0, 0, 0, 0)


def test_async_strict_calls_wait_for_room_that_calls_in_flight_hold(store: str) -> None:
    """Holds in flight take all the room, yet each call spends far less: the others wait for
    them to settle and all go. The store is used from one worker thread for every task here (a
    busy machine has few), so neither may that thread stand for the tasks nor wait in it."""
    calls = 12
    with FakeProvider() as fake:
        fake.enqueue(*(Reply(input_tokens=1, output_tokens=1, latency=0.2) for _ in range(calls)))

        async def run() -> list[BaseException | None]:
            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(1))
            client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="test")

            async def one() -> BaseException | None:
                try:
                    await client.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": "hi"}],
                        max_tokens=5,
                    )
                except BudgetExceededError as error:
                    return error
                return None

            async with budget(name="waits", max_usd=0.00002, strict=True, store=store):
                results = await asyncio.gather(*(one() for _ in range(calls)))
            await client.close()
            return results

        results = asyncio.run(run())
    assert results == [None] * calls
    ledger = open_store(store)
    state = ledger.read(ledger.open("waits"))
    assert state.reserved == (0, 0, 0, 0)
    assert state.used[2] == calls
    assert state.used[0] == round(calls * (0.15 + 0.6) * 1e3)  # nanodollars: 1 in, 1 out each
