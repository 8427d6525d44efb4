"""The ledger contract: the in-memory ledger and a ledger written from scratch here both pass
the conformance suite (``shekel.testing.ledger_contract``), and the one written here runs
budgets and pools unchanged.

If ``Budget`` or ``BudgetPool`` reached past the :class:`shekel.Ledger` methods into the
in-memory implementation, these tests would break.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from shekel import BudgetExceededError, BudgetPool, budget
from shekel._ledger import NO_CAPS, UNLIMITED, AccountState, Caps, Hold, Overrun
from shekel.ledger import InMemoryLedger, Ledger
from shekel.testing.ledger_contract import LedgerContract

AXES = ("usd", "tokens", "llm_calls", "tool_calls")


class Key:
    """An opaque account handle, as a store would hand out."""

    def __init__(self, key: str) -> None:
        self.key = key


class DictLedger(Ledger):
    """Counters in dicts keyed by account key, holds by string id, one lock; counts every call.

    Unlike the in-memory ledger it shares keys (a second ``open`` of a key gives the same
    account, as a store does), and its holds live in a table of its own.
    """

    shares_keys = True

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.used: dict[str, list[int]] = {}
        self.held: dict[str, list[int]] = {}
        self.epoch: dict[str, int] = {}
        self.holds: dict[str, str] = {}  # id -> "live" | "expired" | "settled"
        self.expiring: dict[str, Hold] = {}  # the live holds, for expire()
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def open(self, key: str, caps: Caps = NO_CAPS, *, keep_until: float | None = None) -> Key:
        self._count("open")
        with self.lock:
            self.used.setdefault(key, [0] * 4)
            self.held.setdefault(key, [0] * 4)
            self.epoch.setdefault(key, 0)
        return Key(key)

    def _over(self, chain: Sequence[tuple[Key, Caps]]) -> Overrun | None:
        for i, (k, caps) in enumerate(chain):
            for axis in range(4):
                if self.used[k.key][axis] > caps[axis]:
                    return Overrun(i, AXES[axis], self.used[k.key][axis], caps[axis])
        return None

    def _refusal(
        self, chain: Sequence[tuple[Key, Caps]], amounts: list[int], headroom: bool
    ) -> Overrun | None:
        for i, (k, caps) in enumerate(chain):
            for axis in range(4):
                taken = self.used[k.key][axis] + self.held[k.key][axis]
                if taken + amounts[axis] > caps[axis] or (
                    headroom and axis < 2 and taken >= caps[axis]
                ):
                    return Overrun(i, AXES[axis], self.used[k.key][axis], caps[axis])
        return None

    def _add(self, keys: Sequence[Key], table: dict[str, list[int]], amounts: list[int]) -> None:
        for k in keys:
            for axis in range(4):
                table[k.key][axis] += amounts[axis]

    def record(
        self, chain: Sequence[Any], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        self._count("record")
        with self.lock:
            self._add([k for k, _ in chain], self.used, [usd, tokens, calls, tools])
            return self._over(chain)

    def try_record(
        self, chain: Sequence[Any], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        self._count("try_record")
        amounts = [usd, tokens, calls, tools]
        with self.lock:
            refused = self._refusal(chain, amounts, False)
            if refused is None:
                self._add([k for k, _ in chain], self.used, amounts)
            return refused

    def reserve(
        self,
        chain: Sequence[Any],
        usd: int,
        tokens: int,
        calls: int = 0,
        tools: int = 0,
        *,
        need_headroom: bool = False,
        ttl: float | None = None,
    ) -> Hold | Overrun:
        self._count("reserve")
        amounts = [usd, tokens, calls, tools]
        with self.lock:
            refused = self._refusal(chain, amounts, need_headroom)
            if refused is not None:
                return refused
            keys = tuple(k for k, _ in chain)
            self._add(keys, self.held, amounts)
            hold = Hold(
                uuid.uuid4().hex,
                keys,
                tuple(c for _, c in chain),
                usd,
                tokens,
                calls,
                tools,
                tuple(self.epoch[k.key] for k in keys),
                None if ttl is None else time.time() + ttl,
            )
            self.holds[hold.id] = "live"
            self.expiring[hold.id] = hold
            return hold

    def _settle(self, hold: Hold) -> bool:
        state = self.holds.get(hold.id)
        if state is None or state == "settled":
            return False
        if state == "live":
            self._unhold(hold)
        self.holds[hold.id] = "settled"
        self.expiring.pop(hold.id, None)
        return True

    def _unhold(self, hold: Hold) -> None:
        amounts = [hold.usd, hold.tokens, hold.calls, hold.tools]
        for k, epoch in zip(hold.accounts, hold.epochs, strict=True):
            if self.epoch[k.key] == epoch:
                for axis in range(4):
                    self.held[k.key][axis] -= amounts[axis]

    def commit(
        self, hold: Hold, usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        self._count("commit")
        with self.lock:
            if not self._settle(hold):
                return None
            self._add(hold.accounts, self.used, [usd, tokens, calls, tools])
            return self._over(list(zip(hold.accounts, hold.caps, strict=True)))

    def release(self, hold: Hold) -> None:
        self._count("release")
        with self.lock:
            self._settle(hold)

    def read(self, account: Key) -> AccountState:
        with self.lock:
            used, held = self.used[account.key], self.held[account.key]
            return AccountState(tuple(used), tuple(held))  # type: ignore[arg-type]

    def headroom(self, chain: Sequence[Any]) -> tuple[int, int]:
        usd = tokens = UNLIMITED
        with self.lock:
            for k, caps in chain:
                if caps[0] != UNLIMITED:
                    usd = min(usd, caps[0] - self.used[k.key][0] - self.held[k.key][0])
                if caps[1] != UNLIMITED:
                    tokens = min(tokens, caps[1] - self.used[k.key][1] - self.held[k.key][1])
        return max(usd, 0), max(tokens, 0)

    def reset(self, account: Key) -> None:
        with self.lock:
            self.used[account.key], self.held[account.key] = [0] * 4, [0] * 4
            self.epoch[account.key] += 1

    def forget(self, accounts: Sequence[Key]) -> None:
        with self.lock:
            for account in accounts:
                self.used.pop(account.key, None)
                self.held.pop(account.key, None)
                self.epoch[account.key] = self.epoch.get(account.key, 0) + 1

    def expire(self) -> int:
        now = time.time()
        with self.lock:
            due = [
                h
                for h in self.expiring.values()
                if h.expires_at is not None and h.expires_at <= now
            ]
            for hold in due:
                self._unhold(hold)
                self.holds[hold.id] = "expired"
                del self.expiring[hold.id]
        return len(due)


class TestInMemoryLedger(LedgerContract):
    @pytest.fixture
    def ledger(self) -> Ledger:
        return InMemoryLedger()


class TestALedgerWrittenHere(LedgerContract):
    @pytest.fixture
    def ledger(self) -> Ledger:
        return DictLedger()


def test_nested_budgets_on_another_ledger() -> None:
    ledger = DictLedger()
    with budget(max_usd=10, name="workflow", ledger=ledger) as w:
        w.record(usd=7.0)
        with budget(max_usd=5, name="child", ledger=ledger) as child:
            assert child.limit == 3.0  # auto-capped through the ledger
            child.record(usd=1.0, tokens=10)
            assert w.spent == 8.0
            with child.reserve(usd=1.0) as r:
                assert w.snapshot().usd_reserved == 1.0
                r.commit(usd=0.5)
            with pytest.raises(BudgetExceededError) as info:
                child.reserve(usd=2.0)
            assert info.value.budget_name == "workflow"  # the cap that refused is the parent's
            with pytest.raises(BudgetExceededError):
                child.record(usd=2.0)
    assert w.spent == 10.5
    assert w.spent_by_children == 3.5
    assert w.spent_direct == 7.0
    assert w.snapshot().tokens_used == 10
    assert "child: $3.50 / $3.00" in w.tree()
    assert ledger.calls["record"] == 3
    assert ledger.calls["reserve"] == 2
    assert ledger.calls["commit"] == 1
    w.reset()
    assert w.spent == 0.0
    assert child.spent == 0.0


def test_tool_calls_and_warnings_on_another_ledger() -> None:
    ledger = DictLedger()
    warned: list[tuple[float, float]] = []
    b = budget(
        max_usd=1,
        max_tool_calls=1,
        warn_at=0.5,
        on_warn=lambda s, lim: warned.append((s, lim)),
        ledger=ledger,
    )
    b.tool_call("search", usd=0.6).commit()
    with pytest.raises(BudgetExceededError):
        b.tool_call("search")
    assert warned == [(0.6, 1.0)]
    assert b.snapshot().tool_calls_used == 1
    assert (ledger.calls["reserve"], ledger.calls["commit"]) == (2, 1)


def test_pool_on_another_ledger() -> None:
    ledger = DictLedger()
    pool = BudgetPool(token_cap=1_000, usd_cap=1.0, ledger=ledger, name="jobs")
    pool.record(tokens=600, usd=0.5)
    before = pool.snapshot()
    with pytest.raises(BudgetExceededError):
        pool.record(tokens=500)
    assert pool.snapshot() == before
    with pool.reserve(tokens=300) as r:
        assert pool.snapshot().tokens_remaining == 100
        r.commit(tokens=200)
    with pool.reserve(tokens=100):
        pass
    snap = pool.snapshot()
    assert (snap.tokens_used, snap.tokens_reserved, snap.tokens_remaining) == (800, 0, 200)
    assert ledger.calls["release"] == 1
    pool.reset()
    assert pool.snapshot().tokens_used == 0


def test_a_ledger_must_be_a_ledger() -> None:
    with pytest.raises(ValueError, match="ledger"):
        budget(ledger={})  # type: ignore[arg-type]
