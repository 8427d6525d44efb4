"""Store data edited by hand or damaged fails closed for the budgets it belongs to, and for no
other: a bad counter refuses that budget's calls before they are sent; a bad hold keeps its
room taken. Redis compares amounts as numbers, never as strings."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import redis

from shekel import BudgetStoreUnavailableError, budget
from shekel.testing import FakeProvider

MESSAGES = [{"role": "user", "content": "Say hello."}]


def _damage(store: str, key: str, field: str, value: str) -> None:
    """Write ``value`` into an account's counter, as a hand edit would."""
    if store.startswith("redis"):
        client = redis.Redis.from_url(store)
        client.hset(f"shekel:a:{key}", field, value)
        client.close()
    else:
        db = sqlite3.connect(store.removeprefix("sqlite:///").partition("?")[0])
        db.execute(f"UPDATE shekel_accounts SET {field} = ? WHERE key = ?", (value, key))
        db.commit()
        db.close()


def _damage_hold(store: str) -> None:
    """Make every live hold's list of accounts unreadable."""
    if store.startswith("redis"):
        client = redis.Redis.from_url(store)
        for hold_id in client.zrange("shekel:live", 0, -1):
            client.hset(b"shekel:h:" + hold_id, "keys", "not json")
        client.close()
    else:
        db = sqlite3.connect(store.removeprefix("sqlite:///").partition("?")[0])
        db.execute("UPDATE shekel_holds SET keys = 'not json' WHERE state = 'live'")
        db.commit()
        db.close()


@pytest.fixture
def client(fake: FakeProvider) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0) as opened:
        yield opened


@pytest.mark.parametrize("value", ["abc", "0.5", "1e30", "-3"])
@pytest.mark.parametrize("strict", [False, True])
def test_a_damaged_counter_refuses_its_budget_before_sending_and_no_other(
    store: str, fake: FakeProvider, client: openai.OpenAI, value: str, strict: bool
) -> None:
    for name in ("bob", "alice"):
        with budget(name=name, max_usd=1, store=store) as b:
            b.record(usd=0.1)
    _damage(store, "bob", "usd", value)
    with (
        budget(name="bob", max_usd=1, strict=strict, store=store),
        pytest.raises(
            BudgetStoreUnavailableError, match=r"account bob holds usd=.*not a whole number"
        ) as caught,
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5)
    assert caught.value.sent is False
    assert fake.requests == []
    alice = budget(name="alice", max_usd=1, strict=strict, store=store)
    with alice:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5)
    assert alice.snapshot().llm_calls_used == 2  # its record above, and this call
    assert alice.spent > 0.1


def test_redis_compares_amounts_as_numbers(redis_url: str, fake: FakeProvider) -> None:
    """A counter written with leading zeros is the number it spells, not a longer string."""
    with budget(name="padded", max_usd=1, store=redis_url) as b:
        b.record(usd=0.5)
    _damage(redis_url, "padded", "usd", "000000000000000000000000500000000")
    b = budget(name="padded", max_usd=1, store=redis_url)
    assert b.spent == pytest.approx(0.5)
    with b:
        b.check(usd=0.25)  # $0.75 of $1: room left, whatever the length of the string
        b.record(usd=0.25)
    assert b.spent == pytest.approx(0.75)


def test_a_damaged_hold_keeps_its_room_and_blocks_no_other_budget(
    store: str, tmp_path: Path
) -> None:
    url = f"{store}{'&' if '?' in store else '?'}ttl=0.3"
    bob = budget(name="bob", max_usd=1, store=url)
    with bob:
        reservation = bob.reserve(usd=0.6)
        reservation.__enter__()
        _damage_hold(store)
        del reservation  # nothing renews it any more: its lease runs out
        time.sleep(0.6)
        alice = budget(name="alice", max_usd=1, store=url)
        with alice:
            alice.record(usd=0.2)  # every operation sweeps expired holds, the damaged one too
        assert alice.spent == pytest.approx(0.2)
        assert alice.snapshot().usd_reserved == 0
    assert bob.snapshot().usd_reserved == pytest.approx(0.6)  # its room stays taken
