"""The ledger contract as a test suite: every ledger (in memory, SQLite, Redis, your own) passes it.

Subclass :class:`LedgerContract` in a test module and provide a ``ledger`` fixture that yields
a fresh, empty ledger (and a ``second_ledger`` fixture giving another handle on the same store,
as a second process would open it, for ledgers that share keys)::

    import pytest
    from shekel.testing.ledger_contract import LedgerContract

    class TestMyLedger(LedgerContract):
        @pytest.fixture
        def ledger(self):
            yield MyLedger(...)

The suite needs pytest; nothing else here is imported by ``shekel`` itself.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

from shekel._ledger import AXES, UNLIMITED, Caps, Hold, Ledger, Overrun

USD = 1_000_000_000  # one dollar in nano-dollars


def _caps(usd: float | None = None, tokens: int | None = None, calls: int | None = None) -> Caps:
    return Caps(
        UNLIMITED if usd is None else int(usd * USD),
        UNLIMITED if tokens is None else tokens,
        UNLIMITED if calls is None else calls,
    )


class _Refused(Exception):
    def __init__(self, over: Overrun, tokens: Any, usd: Any) -> None:
        self.over, self.asked = over, (tokens, usd)


def _refuse(over: Overrun, tokens: Any, usd: Any) -> NoReturn:
    raise _Refused(over, tokens, usd)


def _to_nanos(tokens: Any, usd: Any) -> tuple[int, int]:
    if tokens < 0 or usd < 0:
        raise ValueError("negative amount")
    return tokens, round(usd * USD)


class LedgerContract:
    """What every :class:`shekel.Ledger` must do. Override the ``ledger`` fixture."""

    @pytest.fixture
    def ledger(self) -> Iterator[Ledger]:
        raise NotImplementedError("a LedgerContract subclass provides the ledger fixture")

    @pytest.fixture
    def second_ledger(self, ledger: Ledger) -> Ledger:
        """Another handle on the same store (what another process would open)."""
        return ledger

    def key(self) -> str:
        return f"contract-{uuid.uuid4().hex}"

    def chain(self, ledger: Ledger, *caps: Caps) -> list[tuple[Any, Caps]]:
        """Fresh accounts, innermost first, held to ``caps``."""
        return [(ledger.open(self.key(), c), c) for c in caps]

    # -- recording -------------------------------------------------------------------------

    def test_record_adds_to_every_account_of_the_chain(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps(), _caps())
        assert ledger.record(chain, 5 * USD, 100, 1) is None
        for account, _ in chain:
            assert ledger.read(account).used == (5 * USD, 100, 1, 0)

    def test_record_is_never_refused_and_names_the_innermost_account_over(
        self, ledger: Ledger
    ) -> None:
        chain = self.chain(ledger, _caps(usd=10), _caps(usd=1))
        over = ledger.record(chain, 2 * USD, 0)
        assert over == Overrun(1, "usd", 2 * USD, 1 * USD)
        over = ledger.record(chain, 9 * USD, 0)
        assert over == Overrun(0, "usd", 11 * USD, 10 * USD)
        assert ledger.read(chain[0][0]).used[0] == 11 * USD

    @pytest.mark.parametrize("depth", [1, 2, 3, 4])
    @pytest.mark.parametrize("axis", ["usd", "tokens", "llm_calls"])
    def test_record_at_every_depth_adds_everywhere_and_names_the_innermost_over(
        self, ledger: Ledger, depth: int, axis: str
    ) -> None:
        tight = {"usd": {"usd": 1}, "tokens": {"tokens": 10}, "llm_calls": {"calls": 1}}[axis]
        used = {"usd": 2 * USD, "tokens": 20, "llm_calls": 2}[axis]
        for first_over in range(depth):
            chain = self.chain(
                ledger, *[_caps(**tight) if i >= first_over else _caps() for i in range(depth)]
            )
            over = ledger.record(chain, 2 * USD, 20, 2)
            cap = {"usd": 1 * USD, "tokens": 10, "llm_calls": 1}[axis]
            assert over == Overrun(first_over, axis, used, cap)
            for account, _ in chain:
                assert ledger.read(account).used == (2 * USD, 20, 2, 0)

    def test_try_record_refuses_without_changing_anything(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps(tokens=1000), _caps(calls=1))
        assert ledger.try_record(chain, 0, 10, 1) is None
        refused = ledger.try_record(chain, 0, 10, 1)
        assert refused is not None
        assert (refused.position, refused.axis) == (1, "llm_calls")
        for account, _ in chain:
            assert ledger.read(account).used == (0, 10, 1, 0)

    def test_try_record_counts_what_is_reserved(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps(usd=1))
        hold = ledger.reserve(chain, USD // 2, 0)
        assert isinstance(hold, Hold)
        assert ledger.try_record(chain, USD // 2 + 1, 0) is not None
        assert ledger.try_record(chain, USD // 2, 0) is None

    # -- holds -----------------------------------------------------------------------------

    def test_reserve_holds_on_every_account_and_commit_settles(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps(usd=10), _caps(usd=100))
        hold = ledger.reserve(chain, 3 * USD, 50, 1)
        assert isinstance(hold, Hold)
        for account, _ in chain:
            assert ledger.read(account).reserved == (3 * USD, 50, 1, 0)
        assert ledger.commit(hold, 2 * USD, 40, 1) is None
        for account, _ in chain:
            state = ledger.read(account)
            assert state.used == (2 * USD, 40, 1, 0)
            assert state.reserved == (0, 0, 0, 0)

    def test_a_refused_reserve_holds_nothing_anywhere(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps(usd=10), _caps(usd=1))
        refused = ledger.reserve(chain, 2 * USD, 0)
        assert isinstance(refused, Overrun)
        assert refused.position == 1
        for account, _ in chain:
            assert ledger.read(account).reserved == (0, 0, 0, 0)

    def test_an_exhausted_account_refuses_even_an_empty_hold_that_needs_headroom(
        self, ledger: Ledger
    ) -> None:
        chain = self.chain(ledger, _caps(usd=1))
        ledger.record(chain, USD, 0)
        assert isinstance(ledger.reserve(chain, 0, 0, 1), Hold)
        refused = ledger.reserve(chain, 0, 0, 1, need_headroom=True)
        assert isinstance(refused, Overrun)
        assert refused.axis == "usd"

    @pytest.mark.parametrize("depth", [1, 2, 3, 4])
    @pytest.mark.parametrize("axis", AXES)
    def test_reserve_and_commit_at_every_depth_on_every_axis(
        self, ledger: Ledger, depth: int, axis: str
    ) -> None:
        unit = {"usd": USD, "tokens": 10, "llm_calls": 1, "tool_calls": 1}[axis]

        def on_axis(n: int) -> list[int]:
            return [n * unit if name == axis else 0 for name in AXES]

        def capped(n: int) -> Caps:
            return Caps(*[n * unit if name == axis else UNLIMITED for name in AXES])

        def chain_capped_from(first: int, n: int) -> list[tuple[Any, Caps]]:
            return self.chain(ledger, *[capped(n) if i >= first else _caps() for i in range(depth)])

        nothing = (0, 0, 0, 0)
        for first in range(depth):  # accounts ``first`` and outwards are capped
            refusing = chain_capped_from(first, 1)
            refused = ledger.reserve(refusing, *on_axis(2))
            assert isinstance(refused, Overrun)
            assert (refused.position, refused.axis, refused.cap) == (first, axis, unit)
            assert all(ledger.read(a).reserved == nothing for a, _ in refusing)

            chain = chain_capped_from(first, 3)
            hold = ledger.reserve(chain, *on_axis(2))
            assert isinstance(hold, Hold)
            assert all(ledger.read(a).reserved == tuple(on_axis(2)) for a, _ in chain)
            over = ledger.commit(hold, *on_axis(4))
            assert over == Overrun(first, axis, 4 * unit, 3 * unit)
            for account, _ in chain:
                assert ledger.read(account).reserved == nothing
                assert ledger.read(account).used == tuple(on_axis(4))

            if axis in ("usd", "tokens"):  # at the cap: even an empty hold that needs room
                ledger.record(refusing, *on_axis(1))
                empty = ledger.reserve(refusing, 0, 0, 1, need_headroom=True)
                assert isinstance(empty, Overrun)
                assert (empty.position, empty.axis) == (first, axis)

    @pytest.mark.parametrize("depth", [2, 3, 4])
    def test_a_reset_inside_the_chain_leaves_the_others_holds_to_give_back(
        self, ledger: Ledger, depth: int
    ) -> None:
        chain = self.chain(ledger, *[_caps() for _ in range(depth)])
        hold = ledger.reserve(chain, 3 * USD, 30, 1)
        assert isinstance(hold, Hold)
        ledger.reset(chain[1][0])
        assert ledger.commit(hold, USD, 10, 1) is None
        for account, _ in chain:
            state = ledger.read(account)
            assert state.reserved == (0, 0, 0, 0)
            assert state.used == (USD, 10, 1, 0)

    def test_check_answers_like_reserve_and_holds_nothing(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps(calls=1))
        assert ledger.check(chain, 0, 0, 1) is None
        assert ledger.read(chain[0][0]).reserved == (0, 0, 0, 0)
        ledger.record(chain, 0, 0, 1)
        refused = ledger.check(chain, 0, 0, 1)
        assert refused is not None
        assert refused.axis == "llm_calls"

    def test_may_call_until_an_account_of_the_chain_is_exhausted(self, ledger: Ledger) -> None:
        for exhaust in range(3):  # the innermost, the middle, the outermost
            chain = self.chain(ledger, _caps(usd=3), _caps(usd=5, tokens=100), _caps(usd=9))
            assert ledger.may_call(chain)
            from_there = chain[exhaust:]
            ledger.record(from_there, 2 * USD, 10)
            assert ledger.may_call(chain)  # room left everywhere
            room = min(caps.usd - ledger.read(a).used[0] for a, caps in from_there)
            ledger.record(from_there, room, 0)
            assert not ledger.may_call(chain)
            assert ledger.check(chain, 0, 0, 1, need_headroom=True) is not None

    def test_may_call_counts_what_others_hold(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps(tokens=50), _caps(tokens=100))
        hold = ledger.reserve(chain[1:], 0, 100)
        assert isinstance(hold, Hold)
        assert not ledger.may_call(chain)
        ledger.release(hold)
        assert ledger.may_call(chain)

    def test_commit_and_release_are_idempotent(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps(usd=10))
        hold = ledger.reserve(chain, 3 * USD, 0)
        assert isinstance(hold, Hold)
        ledger.commit(hold, USD, 0)
        ledger.commit(hold, USD, 0)  # a second commit records nothing
        ledger.release(hold)  # nor does a release after the commit
        state = ledger.read(chain[0][0])
        assert (state.used[0], state.reserved[0]) == (USD, 0)
        other = ledger.reserve(chain, 2 * USD, 0)
        assert isinstance(other, Hold)
        ledger.release(other)
        ledger.release(other)
        ledger.commit(other, USD, 0)  # a commit after a release records nothing either
        state = ledger.read(chain[0][0])
        assert (state.used[0], state.reserved[0]) == (USD, 0)

    def test_commit_is_checked_against_the_caps_it_was_held_with(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps(usd=1))
        hold = ledger.reserve(chain, USD // 2, 0)
        assert isinstance(hold, Hold)
        over = ledger.commit(hold, 2 * USD, 0)
        assert over == Overrun(0, "usd", 2 * USD, USD)

    def test_holds_have_distinct_ids(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps())
        holds = [ledger.reserve(chain, 1, 1) for _ in range(20)]
        assert len({h.id for h in holds if isinstance(h, Hold)}) == 20

    def test_a_hold_expires_after_its_ttl(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps(usd=1))
        hold = ledger.reserve(chain, USD, 0, ttl=0.2)
        assert isinstance(hold, Hold)
        assert isinstance(ledger.reserve(chain, 1, 0, ttl=0.2), Overrun)
        time.sleep(0.35)
        ledger.expire()
        assert ledger.read(chain[0][0]).reserved[0] == 0
        # The expired hold's commit still records what was spent, and gives back nothing twice.
        assert ledger.commit(hold, USD // 4, 0) is None
        state = ledger.read(chain[0][0])
        assert (state.used[0], state.reserved[0]) == (USD // 4, 0)
        ledger.commit(hold, USD // 4, 0)
        assert ledger.read(chain[0][0]).used[0] == USD // 4

    def test_a_holds_expiry_is_on_the_wall_clock(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps())
        hold = ledger.reserve(chain, 1, 0, ttl=100)
        assert isinstance(hold, Hold)
        assert hold.expires_at is not None
        assert abs(hold.expires_at - (time.time() + 100)) < 5
        default = ledger.reserve(chain, 1, 0)  # the ledger's own TTL, if it has one
        assert isinstance(default, Hold)
        if ledger.default_ttl is None:
            assert default.expires_at is None
        else:
            assert default.expires_at is not None
            assert abs(default.expires_at - (time.time() + ledger.default_ttl)) < 5

    def test_amounts_of_a_billion_dollars_are_exact(self, ledger: Ledger) -> None:
        big = 10**18  # $1e9 in nano-dollars: far past 2**53, where doubles stop being exact
        cap = 4 * big + 3
        chain = self.chain(ledger, Caps(usd=cap), _caps())
        assert ledger.record(chain, big, 1) is None
        assert ledger.record(chain, big - 1, 1) is None
        hold = ledger.reserve(chain, big + 2, 0)
        assert isinstance(hold, Hold)
        assert ledger.headroom(chain) == (big + 2, UNLIMITED)
        assert ledger.reserve(chain, big + 3, 0) == Overrun(0, "usd", 2 * big - 1, cap)
        assert ledger.commit(hold, 2 * big + 4, 0) is None  # exactly at the cap
        for account, _ in chain:
            state = ledger.read(account)
            assert (state.used[0], state.reserved[0]) == (cap, 0)
        assert ledger.record(chain, 1, 0) == Overrun(0, "usd", cap + 1, cap)

    # -- functions for a caller that repeats itself (a pool) ---------------------------------

    def test_a_recorder_adds_what_fits_and_refuses_the_rest(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps(usd=1, tokens=100))
        record = ledger.recorder(chain, _to_nanos, _refuse)
        record(tokens=10, usd=0.5)
        record(tokens=5, usd=0)  # not a float: through ``amounts``
        with pytest.raises(_Refused) as refused:
            record(tokens=5, usd=0.6)
        assert (refused.value.over.axis, refused.value.asked) == ("usd", (5, 0.6))
        with pytest.raises(_Refused) as refused:
            record(tokens=86)
        assert refused.value.over.axis == "tokens"
        with pytest.raises(ValueError, match="negative"):
            record(tokens=-1)
        assert ledger.read(chain[0][0]).used == (USD // 2, 15, 0, 0)

    def test_a_reserver_holds_and_a_committer_settles_once(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps(usd=1, tokens=100))
        reserve, commit = ledger.reserver(chain, _to_nanos, _refuse), ledger.committer(_to_nanos)
        hold = reserve(tokens=50, usd=0.25)
        assert ledger.read(chain[0][0]).reserved == (USD // 4, 50, 0, 0)
        with pytest.raises(_Refused):
            reserve(tokens=51)  # the 50 held count
        with pytest.raises(ValueError, match="negative"):
            commit(hold, tokens=-1)  # a bad amount commits nothing: the hold stays
        assert ledger.read(chain[0][0]).reserved == (USD // 4, 50, 0, 0)
        assert commit(hold, tokens=40, usd=0.2) is None
        assert commit(hold, tokens=40, usd=0.2) is None  # a second commit records nothing
        state = ledger.read(chain[0][0])
        assert (state.used, state.reserved) == ((USD // 5, 40, 0, 0), (0, 0, 0, 0))
        over = commit(reserve(tokens=10), tokens=61, usd=0.5)
        assert over == Overrun(0, "tokens", 101, 100)
        assert ledger.read(chain[0][0]).used == (USD // 5 + USD // 2, 101, 0, 0)

    def test_a_committer_settles_any_hold_and_respects_a_reset(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps(), _caps(usd=10))
        commit = ledger.committer(_to_nanos)
        nested = ledger.reserve(chain, 2 * USD, 20, 1)  # two accounts and a call
        assert isinstance(nested, Hold)
        assert commit(nested, tokens=5, usd=0.5) is None
        for account, _ in chain:
            state = ledger.read(account)
            assert (state.used, state.reserved) == ((USD // 2, 5, 0, 0), (0, 0, 0, 0))
        single = self.chain(ledger, _caps(usd=10))
        old = ledger.reserve(single, 2 * USD, 0)
        assert isinstance(old, Hold)
        ledger.reset(single[0][0])
        assert commit(old, usd=1.0) is None  # spent after the reset: it counts, nothing goes back
        state = ledger.read(single[0][0])
        assert (state.used, state.reserved) == ((USD, 0, 0, 0), (0, 0, 0, 0))

    # -- reading ---------------------------------------------------------------------------

    def test_headroom_is_the_smallest_free_room_of_the_chain(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps(usd=10, tokens=500), _caps(usd=4))
        ledger.record(chain, USD, 100)
        ledger.reserve(chain, USD, 50)
        assert ledger.headroom(chain) == (2 * USD, 350)
        assert ledger.headroom(self.chain(ledger, _caps())) == (UNLIMITED, UNLIMITED)

    def test_reset_starts_a_new_epoch(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps(usd=10))
        ledger.record(chain, USD, 10)
        old = ledger.reserve(chain, 2 * USD, 0)
        assert isinstance(old, Hold)
        ledger.reset(chain[0][0])
        assert ledger.read(chain[0][0]).used == (0, 0, 0, 0)
        assert ledger.read(chain[0][0]).reserved == (0, 0, 0, 0)
        ledger.release(old)  # a hold from before the reset gives back nothing now
        assert ledger.read(chain[0][0]).reserved == (0, 0, 0, 0)
        fresh = ledger.reserve(chain, USD, 0)
        assert isinstance(fresh, Hold)
        assert ledger.read(chain[0][0]).reserved[0] == USD

    def test_accounts_of_one_key(self, ledger: Ledger, second_ledger: Ledger) -> None:
        key = self.key()
        first, second = ledger.open(key), second_ledger.open(key)
        ledger.record([(first, Caps())], USD, 0)
        if ledger.shares_keys:
            assert second_ledger.read(second).used[0] == USD  # the same account everywhere
        else:
            assert second_ledger.read(second).used[0] == 0  # a fresh account per open

    def test_forgotten_accounts_are_deleted_from_a_store(self, ledger: Ledger) -> None:
        key = self.key()
        account = ledger.open(key)
        ledger.record([(account, Caps())], USD, 1)
        ledger.forget([])
        ledger.forget([account])
        if ledger.shares_keys:  # gone from the store: the key starts afresh
            assert ledger.read(ledger.open(key)).used == (0, 0, 0, 0)
        else:  # an account in memory goes with the budget that holds it
            assert ledger.read(account).used == (USD, 1, 0, 0)

    # -- concurrency -----------------------------------------------------------------------

    def test_concurrent_records_lose_nothing(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps(), _caps())
        per_thread, threads = 200, 8

        def work() -> None:
            for _ in range(per_thread):
                ledger.record(chain, 1, 1, 1)

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        expected = per_thread * threads
        for account, _ in chain:
            assert ledger.read(account).used == (expected, expected, expected, 0)

    def test_concurrent_reserve_and_commit_never_pass_the_cap(self, ledger: Ledger) -> None:
        cap_calls = 50
        chain = self.chain(ledger, _caps(calls=cap_calls))
        granted = []
        lock = threading.Lock()

        def work() -> None:
            for _ in range(20):
                hold = ledger.reserve(chain, 0, 0, 1)
                if isinstance(hold, Hold):
                    ledger.commit(hold, 0, 0, 1)
                    with lock:
                        granted.append(1)

        workers = [threading.Thread(target=work) for _ in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert len(granted) == cap_calls
        state = ledger.read(chain[0][0])
        assert (state.used[2], state.reserved[2]) == (cap_calls, 0)

    # -- async twins -----------------------------------------------------------------------

    def test_async_twins(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps(usd=10))

        async def run() -> tuple[Any, ...]:
            hold = await ledger.areserve(chain, USD, 10, 1)
            assert isinstance(hold, Hold)
            over = await ledger.acommit(hold, USD // 2, 5, 1)
            recorded = await ledger.arecord(chain, USD // 2, 5)
            again = await ledger.areserve(chain, USD, 0)
            assert isinstance(again, Hold)
            await ledger.arelease(again)
            return over, recorded, await ledger.aread(chain[0][0])

        over, recorded, state = asyncio.run(run())
        assert (over, recorded) == (None, None)
        assert state.used == (USD, 10, 1, 0)
        assert state.reserved == (0, 0, 0, 0)

    def test_async_twins_of_the_readings(self, ledger: Ledger) -> None:
        chain = self.chain(ledger, _caps(usd=2, tokens=100))

        async def run() -> tuple[Any, ...]:
            held = await ledger.areserve(chain, USD, 40, ttl=0.2)
            assert isinstance(held, Hold)
            room = await ledger.aheadroom(chain)
            refused = await ledger.acheck(chain, USD + 1, 0)
            fits = await ledger.acheck(chain, USD, 60, 1, need_headroom=True)
            await asyncio.sleep(0.35)
            return room, refused, fits, await ledger.aexpire(), await ledger.aheadroom(chain)

        room, refused, fits, expired, after = asyncio.run(run())
        assert room == (USD, 60)
        assert refused == Overrun(0, "usd", 0, 2 * USD)
        assert fits is None
        assert ledger.read(chain[0][0]).reserved == (0, 0, 0, 0)
        assert after == (2 * USD, 100)
        # A store may expire the hold while it works (before ``aexpire`` is called).
        assert expired in (0, 1)
