"""Seed 003: BudgetPool, a shared token + USD counter with reserve/commit."""

from __future__ import annotations

import asyncio

import pytest

import shekel
from shekel import BudgetConfigError, BudgetExceeded, BudgetExceededError, BudgetPool


def test_budget_exceeded_is_an_alias_of_budget_exceeded_error() -> None:
    assert BudgetExceeded is BudgetExceededError
    assert shekel.BudgetExceeded is shekel.BudgetExceededError
    assert issubclass(BudgetExceeded, RuntimeError)


def test_seed_usage() -> None:
    pool = BudgetPool(token_cap=1_000_000, usd_cap=10.0)
    pool.record(tokens=1200, usd=0.0036)
    snap = pool.snapshot()
    assert snap.tokens_used == 1200
    assert snap.usd_remaining == 9.9964
    assert snap.tokens_remaining == 998800
    assert snap.usd_used == 0.0036
    assert snap.tokens_reserved == 0
    assert snap.usd_reserved == 0.0


def test_record_past_the_cap_raises_budget_exceeded() -> None:
    pool = BudgetPool(token_cap=1_000, usd_cap=1.0)
    pool.record(tokens=900, usd=0.5)
    with pytest.raises(BudgetExceeded) as info:
        pool.record(tokens=200, usd=0.1)
    err = info.value
    assert err.axis == "tokens"
    assert err.limit == 1_000
    assert err.spent == 900
    assert err.sent is False
    assert "nothing was recorded" in str(err)
    assert "200 tokens" in str(err)


def test_refused_record_changes_nothing() -> None:
    pool = BudgetPool(token_cap=1_000, usd_cap=1.0)
    pool.record(tokens=500, usd=0.9)
    before = pool.snapshot()
    # the token axis would fit, the USD axis would not: neither may move
    with pytest.raises(BudgetExceeded) as info:
        pool.record(tokens=100, usd=0.2)
    assert info.value.axis == "usd"
    assert pool.snapshot() == before
    # and the other way round
    with pytest.raises(BudgetExceeded):
        pool.record(tokens=600, usd=0.01)
    assert pool.snapshot() == before
    pool.record(tokens=500, usd=0.1)  # exactly to both caps is allowed
    snap = pool.snapshot()
    assert snap.tokens_remaining == 0
    assert snap.usd_remaining == 0.0


def test_reserve_then_commit_the_actual_usage() -> None:
    pool = BudgetPool(token_cap=10_000, usd_cap=1.0)
    with pool.reserve(tokens=2000, usd=0.012) as r:
        held = pool.snapshot()
        assert held.tokens_reserved == 2000
        assert held.usd_reserved == 0.012
        assert held.tokens_used == 0
        assert held.tokens_remaining == 8000
        assert held.usd_remaining == 0.988
        r.commit(tokens=1500, usd=0.009)
    snap = pool.snapshot()
    assert snap.tokens_used == 1500
    assert snap.usd_used == 0.009
    assert snap.tokens_reserved == 0
    assert snap.usd_reserved == 0.0
    assert snap.tokens_remaining == 8500


def test_reservation_is_released_when_the_block_raises() -> None:
    pool = BudgetPool(token_cap=10_000, usd_cap=1.0)
    with pytest.raises(ConnectionError), pool.reserve(tokens=2000, usd=0.012):
        raise ConnectionError("the LLM call failed")
    snap = pool.snapshot()
    assert snap.tokens_reserved == 0
    assert snap.usd_reserved == 0.0
    assert snap.tokens_used == 0
    assert snap.tokens_remaining == 10_000


def test_reservation_is_released_on_exit_without_commit() -> None:
    pool = BudgetPool(token_cap=10_000)
    with pool.reserve(tokens=2000):
        assert pool.snapshot().tokens_remaining == 8000
    assert pool.snapshot().tokens_remaining == 10_000
    assert pool.snapshot().tokens_used == 0


def test_reservations_count_against_records_and_other_reservations() -> None:
    pool = BudgetPool(token_cap=1_000)
    r = pool.reserve(tokens=900)
    with pytest.raises(BudgetExceeded):
        pool.record(tokens=200)
    with pytest.raises(BudgetExceeded):
        pool.reserve(tokens=101)
    assert pool.snapshot().tokens_reserved == 900
    pool.record(tokens=100)
    r.release()
    pool.record(tokens=200)
    assert pool.snapshot().tokens_used == 300


def test_reservation_that_does_not_fit_raises_and_holds_nothing() -> None:
    pool = BudgetPool(token_cap=1_000, usd_cap=1.0)
    before = pool.snapshot()
    with pytest.raises(BudgetExceeded) as info:
        pool.reserve(tokens=10, usd=1.5)
    assert info.value.axis == "usd"
    assert pool.snapshot() == before


def test_commit_above_the_reservation_records_and_raises_past_the_cap() -> None:
    pool = BudgetPool(token_cap=1_000)
    with pool.reserve(tokens=500) as r, pytest.raises(BudgetExceeded):
        r.commit(tokens=1_200)  # the call already happened: it is recorded
    snap = pool.snapshot()
    assert snap.tokens_used == 1_200
    assert snap.tokens_reserved == 0
    assert snap.tokens_remaining == 0


def test_commit_twice_or_after_release_is_an_error() -> None:
    pool = BudgetPool(token_cap=1_000)
    r = pool.reserve(tokens=100)
    r.commit(tokens=50)
    with pytest.raises(RuntimeError):
        r.commit(tokens=50)
    r2 = pool.reserve(tokens=100)
    r2.release()
    r2.release()  # harmless
    with pytest.raises(RuntimeError):
        r2.commit(tokens=50)
    snap = pool.snapshot()
    assert snap.tokens_used == 50
    assert snap.tokens_reserved == 0


def test_either_axis_is_optional() -> None:
    only_tokens = BudgetPool(token_cap=500_000)
    only_tokens.record(tokens=1, usd=1_000_000.0)
    snap = only_tokens.snapshot()
    assert snap.usd_remaining is None
    assert snap.usd_used == 1_000_000.0
    assert snap.tokens_remaining == 499_999

    only_usd = BudgetPool(usd_cap=5.0)
    only_usd.record(tokens=10**12, usd=1.0)
    snap = only_usd.snapshot()
    assert snap.tokens_remaining is None
    assert snap.usd_remaining == 4.0
    with pytest.raises(BudgetExceeded):
        only_usd.record(usd=4.01)

    unbounded = BudgetPool()
    for _ in range(1_000):
        unbounded.record(tokens=1_000, usd=1.0)
    snap = unbounded.snapshot()
    assert snap.tokens_used == 1_000_000
    assert snap.usd_used == 1_000.0
    assert snap.tokens_remaining is None
    assert snap.usd_remaining is None


def test_reset_zeroes_the_pool() -> None:
    pool = BudgetPool(token_cap=1_000, usd_cap=1.0)
    pool.record(tokens=1_000, usd=1.0)
    with pytest.raises(BudgetExceeded):
        pool.record(tokens=1)
    pool.reset()
    snap = pool.snapshot()
    assert (snap.tokens_used, snap.usd_used, snap.tokens_remaining, snap.usd_remaining) == (
        0,
        0.0,
        1_000,
        1.0,
    )
    pool.record(tokens=10)
    assert pool.snapshot().tokens_used == 10


def test_reservations_from_before_a_reset_stop_counting() -> None:
    pool = BudgetPool(token_cap=1_000)
    released = pool.reserve(tokens=400)
    committed = pool.reserve(tokens=400)
    pool.reset()
    assert pool.snapshot().tokens_reserved == 0
    released.release()  # must not drive the reserved amount below zero
    assert pool.snapshot().tokens_reserved == 0
    assert pool.snapshot().tokens_remaining == 1_000
    committed.commit(tokens=300)  # the call happened after the reset: it counts
    snap = pool.snapshot()
    assert snap.tokens_used == 300
    assert snap.tokens_reserved == 0
    assert snap.tokens_remaining == 700


def test_snapshot_is_a_frozen_value() -> None:
    pool = BudgetPool(token_cap=10)
    snap = pool.snapshot()
    pool.record(tokens=5)
    assert snap.tokens_used == 0
    with pytest.raises(AttributeError):
        snap.tokens_used = 3  # type: ignore[misc]


def test_pool_under_asyncio() -> None:
    pool = BudgetPool(token_cap=1_000)

    async def worker() -> bool:
        try:
            with pool.reserve(tokens=100) as r:
                await asyncio.sleep(0)
                r.commit(tokens=100)
        except BudgetExceeded:
            return False
        return True

    async def main() -> list[bool]:
        return list(await asyncio.gather(*(worker() for _ in range(25))))

    results = asyncio.run(main())
    assert results.count(True) == 10
    assert pool.snapshot().tokens_used == 1_000


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"token_cap": -1}, "token_cap"),
        ({"token_cap": 0}, "token_cap"),
        ({"token_cap": 1.5}, "token_cap"),
        ({"token_cap": True}, "token_cap"),
        ({"token_cap": "100"}, "token_cap"),
        ({"usd_cap": -1.0}, "usd_cap"),
        ({"usd_cap": 0}, "usd_cap"),
        ({"usd_cap": float("nan")}, "usd_cap"),
        ({"usd_cap": float("inf")}, "usd_cap"),
        ({"usd_cap": "10"}, "usd_cap"),
    ],
)
def test_bad_caps_name_the_parameter(kwargs: dict[str, object], param: str) -> None:
    with pytest.raises(BudgetConfigError, match=param):
        BudgetPool(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"tokens": -1}, "tokens"),
        ({"tokens": 1.5}, "tokens"),
        ({"usd": -0.01}, "usd"),
        ({"usd": float("nan")}, "usd"),
        ({"usd": float("inf")}, "usd"),
    ],
)
def test_bad_amounts_name_the_parameter_and_change_nothing(
    kwargs: dict[str, object], param: str
) -> None:
    pool = BudgetPool(token_cap=100, usd_cap=1.0)
    with pytest.raises(BudgetConfigError, match=param):
        pool.record(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(BudgetConfigError, match=param):
        pool.reserve(**kwargs)  # type: ignore[arg-type]
    snap = pool.snapshot()
    assert snap.tokens_used == 0
    assert snap.tokens_reserved == 0
    assert snap.usd_used == 0.0


# -- what a pool's errors say ----------------------------------------------------------------


def test_a_refused_pool_record_says_nothing_was_recorded() -> None:
    pool = BudgetPool(token_cap=1000)
    pool.record(tokens=900)
    with pytest.raises(BudgetExceeded) as caught:
        pool.record(tokens=500)
    message = str(caught.value)
    assert "the pool cannot take 500 tokens more" in message
    assert "nothing was recorded" in message
    assert "request" not in message
    assert "fallback" not in message
    assert caught.value.sent is False


def test_a_pool_commit_over_the_cap_says_the_use_was_recorded() -> None:
    pool = BudgetPool(token_cap=1000)
    with pytest.raises(BudgetExceeded) as caught, pool.reserve(tokens=100) as r:
        r.commit(tokens=1500)
    message = str(caught.value)
    assert "went over its token cap" in message
    assert "the use was recorded" in message
    assert "nothing was recorded" not in message
    assert "fallback" not in message
    assert caught.value.sent is True
    assert pool.snapshot().tokens_used == 1500


def test_a_refusal_mentions_what_others_hold() -> None:
    pool = BudgetPool(usd_cap=1.0)
    held = pool.reserve(usd=0.7)
    with pytest.raises(BudgetExceeded, match=r"reserved by others"):
        pool.record(usd=0.5)
    held.release()
    pool.record(usd=0.5)
