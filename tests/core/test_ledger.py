"""The ledger interface: a ledger written from scratch here runs budgets and pools unchanged.

If ``Budget`` or ``BudgetPool`` reached past the :class:`shekel.Ledger` methods into the
in-memory implementation, these tests would break.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

from shekel import BudgetExceededError, BudgetPool, Ledger, budget
from shekel._ledger import UNLIMITED, AccountState, Caps, Overrun

AXES = ("usd", "tokens", "llm_calls", "tool_calls")


class Key:
    """An opaque account handle, as a SQLite or Redis ledger would hand out."""

    def __init__(self, key: str) -> None:
        self.key = key


class DictHold:
    def __init__(self, keys: Sequence[Key], amounts: list[int], generations: list[int]) -> None:
        self.keys = tuple(keys)
        self.amounts = amounts
        self.generations = generations
        self.usd, self.tokens = amounts[0], amounts[1]
        self.settled = False


class DictLedger(Ledger):
    """Accounts in a dict keyed by handle, one lock; counts every call it gets."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: dict[Key, dict[str, Any]] = {}
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def open(self, key: str, caps: Caps) -> Any:
        self._count("open")
        handle = Key(key)
        self.state[handle] = {"used": [0] * 4, "held": [0] * 4, "caps": list(caps), "gen": 0}
        return handle

    def set_caps(self, account: Any, caps: Caps) -> None:
        with self.lock:
            self.state[account]["caps"] = list(caps)

    def _over_used(self, keys: Sequence[Key]) -> Overrun | None:
        for i, k in enumerate(keys):
            s = self.state[k]
            for axis in range(4):
                if s["used"][axis] > s["caps"][axis]:
                    return Overrun(i, AXES[axis], s["used"][axis], s["caps"][axis])
        return None

    def _refusal(self, keys: Sequence[Key], amounts: list[int], headroom: bool) -> Overrun | None:
        for i, k in enumerate(keys):
            s = self.state[k]
            for axis in range(4):
                taken = s["used"][axis] + s["held"][axis]
                cap = s["caps"][axis]
                if taken + amounts[axis] > cap or (headroom and axis < 2 and taken >= cap):
                    return Overrun(i, AXES[axis], s["used"][axis], cap)
        return None

    def record(
        self, accounts: Sequence[Any], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        self._count("record")
        with self.lock:
            for k in accounts:
                for axis, amount in enumerate((usd, tokens, calls, tools)):
                    self.state[k]["used"][axis] += amount
            return self._over_used(accounts)

    def try_record(
        self, accounts: Sequence[Any], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        self._count("try_record")
        amounts = [usd, tokens, calls, tools]
        with self.lock:
            refused = self._refusal(accounts, amounts, False)
            if refused is not None:
                return refused
            for k in accounts:
                for axis in range(4):
                    self.state[k]["used"][axis] += amounts[axis]
        return None

    def reserve(
        self,
        accounts: Sequence[Any],
        usd: int,
        tokens: int,
        calls: int = 0,
        tools: int = 0,
        *,
        need_headroom: bool = False,
    ) -> Any:
        self._count("reserve")
        amounts = [usd, tokens, calls, tools]
        with self.lock:
            refused = self._refusal(accounts, amounts, need_headroom)
            if refused is not None:
                return refused
            for k in accounts:
                for axis in range(4):
                    self.state[k]["held"][axis] += amounts[axis]
            return DictHold(accounts, amounts, [self.state[k]["gen"] for k in accounts])

    def _unhold(self, hold: Any) -> None:
        if hold.settled:
            return
        hold.settled = True
        for k, gen in zip(hold.keys, hold.generations, strict=True):
            if self.state[k]["gen"] == gen:
                for axis in range(4):
                    self.state[k]["held"][axis] -= hold.amounts[axis]

    def commit(
        self, hold: Any, usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        self._count("commit")
        with self.lock:
            self._unhold(hold)
            for k in hold.keys:
                for axis, amount in enumerate((usd, tokens, calls, tools)):
                    self.state[k]["used"][axis] += amount
            return self._over_used(hold.keys)

    def release(self, hold: Any) -> None:
        self._count("release")
        with self.lock:
            self._unhold(hold)

    def read(self, account: Any) -> AccountState:
        with self.lock:
            s = self.state[account]
            return AccountState(tuple(s["used"]), tuple(s["held"]), Caps(*s["caps"]))  # type: ignore[arg-type]

    def headroom(self, accounts: Sequence[Any]) -> tuple[int, int]:
        usd = tokens = UNLIMITED
        with self.lock:
            for k in accounts:
                s = self.state[k]
                if s["caps"][0] != UNLIMITED:
                    usd = min(usd, s["caps"][0] - s["used"][0] - s["held"][0])
                if s["caps"][1] != UNLIMITED:
                    tokens = min(tokens, s["caps"][1] - s["used"][1] - s["held"][1])
        return max(usd, 0), max(tokens, 0)

    def reset(self, account: Any) -> None:
        with self.lock:
            s = self.state[account]
            s["used"], s["held"] = [0] * 4, [0] * 4
            s["gen"] += 1


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
            assert info.value.budget_name == "workflow.child"
            with pytest.raises(BudgetExceededError):
                child.record(usd=2.0)
    assert w.spent == 10.5
    assert w.spent_by_children == 3.5
    assert w.spent_direct == 7.0
    assert w.tokens_used == 10
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
    b.record_tool_call("search", usd=0.6)
    with pytest.raises(BudgetExceededError):
        b.record_tool_call("search")
    assert warned == [(0.6, 1.0)]
    assert b.tool_calls_used == 1
    assert ledger.calls["try_record"] == 2


def test_pool_on_another_ledger() -> None:
    ledger = DictLedger()
    pool = BudgetPool(token_cap=1_000, usd_cap=1.0, ledger=ledger)
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
