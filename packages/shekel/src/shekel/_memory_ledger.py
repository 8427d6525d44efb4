"""The default ledger: every budget's counters in this process's memory, under one lock."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from typing import Final

from . import _memory_pool
from ._ledger import (
    NO_CAPS,
    UNLIMITED,
    AccountState,
    Amounts,
    Caps,
    Committer,
    Hold,
    Ledger,
    Link,
    Overrun,
    Recorder,
    Refuse,
    Reserver,
)
from ._memory_accounts import (
    EXPIRED,
    LIVE,
    NOT_LIVE,
    SETTLED,
    Account,
    MemoryHold,
    overrun_used,
    overrun_wanted,
    refusal,
)


class InMemoryLedger(Ledger):
    """The default ledger: counters in this process, guarded by one lock.

    Every ``open`` makes a fresh account (the key is a label). Holds do not expire unless a TTL
    is given (the process's memory goes with the process). Single-account chains (a budget
    with no parent, a pool) take a straight path with no loop: the common case.

    The hot paths hold the lock over straight-line code only, entered with ``with`` rather
    than ``acquire()``: CPython hands the GIL to a waiting thread at calls and loop jumps, and
    a thread that loses the GIL while holding the lock makes every other thread queue on it
    (a convoy: with 8 threads, reserve+commit on a pool fell from about 550 k to 100 k a
    second, and records into a nested budget from 400 k to 100 k).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._expiring: dict[int, MemoryHold] = {}  # holds with a TTL, for expire()

    def open(self, key: str, caps: Caps = NO_CAPS, *, keep_until: float | None = None) -> Account:
        return Account(key)

    def record(
        self, chain: Sequence[Link], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        depth = len(chain)
        if depth == 1 and not tools:  # a budget with no parent: the straight path
            ((a, caps),) = chain
            with self._lock:
                a.usd += usd
                a.tokens += tokens
                a.calls += calls
                if a.usd > caps[0] or a.tokens > caps[1] or a.calls > caps[2]:
                    return overrun_used(0, a, caps)
            return None
        if tools or depth > 3:
            return self._record_any(chain, usd, tokens, calls, tools)
        # Straight-line code for the usual depths (see the class docstring).
        a, caps = chain[0]
        b, b_caps = chain[-1]
        m, m_caps = chain[1] if depth == 3 else chain[0]
        with self._lock:
            a.usd += usd
            a.tokens += tokens
            a.calls += calls
            if m is not a:
                m.usd += usd
                m.tokens += tokens
                m.calls += calls
            if b is not a:
                b.usd += usd
                b.tokens += tokens
                b.calls += calls
            if a.usd > caps[0] or a.tokens > caps[1] or a.calls > caps[2]:
                return overrun_used(0, a, caps)  # the innermost (its counters are final)
            if m is not a and (m.usd > m_caps[0] or m.tokens > m_caps[1] or m.calls > m_caps[2]):
                return overrun_used(1, m, m_caps)
            if b is not a and (b.usd > b_caps[0] or b.tokens > b_caps[1] or b.calls > b_caps[2]):
                return overrun_used(len(chain) - 1, b, b_caps)
        return None

    def _record_any(
        self, chain: Sequence[Link], usd: int, tokens: int, calls: int, tools: int
    ) -> Overrun | None:
        with self._lock:
            over = None
            for i, (a, caps) in enumerate(chain):
                a.usd += usd
                a.tokens += tokens
                if calls:
                    a.calls += calls
                if tools:
                    a.tools += tools
                if over is None and (
                    a.usd > caps[0] or a.tokens > caps[1] or a.calls > caps[2] or a.tools > caps[3]
                ):
                    over = overrun_used(i, a, caps)  # the innermost (its counters are final)
            return over

    def try_record(
        self, chain: Sequence[Link], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        with self._lock:
            refused = refusal(chain, usd, tokens, calls, tools, False)
            if refused is not None:
                return refused
            for a, _ in chain:
                a.usd += usd
                a.tokens += tokens
                a.calls += calls
                a.tools += tools
        return None

    def recorder(self, chain: Sequence[Link], amounts: Amounts, refuse: Refuse) -> Recorder:
        return _memory_pool.recorder(self, chain, amounts, refuse)

    def reserver(self, chain: Sequence[Link], amounts: Amounts, refuse: Refuse) -> Reserver:
        return _memory_pool.reserver(self, chain, amounts, refuse)

    def committer(self, amounts: Amounts) -> Committer:
        return _memory_pool.committer(self, amounts)

    def reserve(
        self,
        chain: Sequence[Link],
        usd: int,
        tokens: int,
        calls: int = 0,
        tools: int = 0,
        *,
        need_headroom: bool = False,
        ttl: float | None = None,
    ) -> Hold | Overrun:
        life = self.default_ttl if ttl is None else ttl
        lock = self._lock
        if len(chain) == 1 and life is None:  # a budget with no parent: the straight path
            ((a, caps),) = chain
            with lock:  # not acquire() (see the class docstring)
                u = a.usd + a.r_usd
                t = a.tokens + a.r_tokens
                if (
                    u + usd > caps[0]
                    or t + tokens > caps[1]
                    or a.calls + a.r_calls + calls > caps[2]
                    or a.tools + a.r_tools + tools > caps[3]
                    or (need_headroom and (u >= caps[0] or t >= caps[1]))
                ):
                    return overrun_wanted(0, a, caps, usd, tokens, calls, tools, need_headroom)
                a.r_usd += usd
                a.r_tokens += tokens
                a.r_calls += calls
                a.r_tools += tools
                epoch = a.epoch
            # Built after the lock: a Python call inside it lets CPython switch threads while
            # the lock is held, and the other threads then queue on it.
            hold = MemoryHold(
                next(self._ids), (a,), (caps,), usd, tokens, calls, tools, (epoch,), None
            )
            hold.state = LIVE
            return hold
        if len(chain) <= 3 and life is None:
            return self._reserve_short(chain, usd, tokens, calls, tools, need_headroom)
        lock.acquire()
        try:
            refused = refusal(chain, usd, tokens, calls, tools, need_headroom)
            if refused is not None:
                return refused
            for a, _ in chain:
                a.r_usd += usd
                a.r_tokens += tokens
                if calls:
                    a.r_calls += calls
                if tools:
                    a.r_tools += tools
            hold = MemoryHold(
                next(self._ids),
                tuple([a for a, _ in chain]),
                tuple([c for _, c in chain]),
                usd,
                tokens,
                calls,
                tools,
                tuple([a.epoch for a, _ in chain]),
                None if life is None else time.time() + life,
            )
            hold.state = LIVE
            if life is not None:
                self._expiring[hold.id] = hold
            return hold
        finally:
            lock.release()

    def check(
        self,
        chain: Sequence[Link],
        usd: int,
        tokens: int,
        calls: int = 0,
        tools: int = 0,
        *,
        need_headroom: bool = False,
    ) -> Overrun | None:
        if len(chain) == 1:  # a budget with no parent: the straight path, as in ``reserve``
            ((a, caps),) = chain
            with self._lock:
                u = a.usd + a.r_usd
                t = a.tokens + a.r_tokens
                if (
                    u + usd > caps[0]
                    or t + tokens > caps[1]
                    or a.calls + a.r_calls + calls > caps[2]
                    or a.tools + a.r_tools + tools > caps[3]
                    or (need_headroom and (u >= caps[0] or t >= caps[1]))
                ):
                    return overrun_wanted(0, a, caps, usd, tokens, calls, tools, need_headroom)
            return None
        with self._lock:
            return refusal(chain, usd, tokens, calls, tools, need_headroom)

    def may_call(self, chain: Sequence[Link]) -> bool:
        # Unlocked: each counter is read whole (a reservation may land between two reads,
        # which is the same as reading a moment earlier or later).
        for a, caps in chain:
            if (
                a.usd + a.r_usd >= caps[0]
                or a.tokens + a.r_tokens >= caps[1]
                or a.calls + a.r_calls >= caps[2]
            ):
                return False
        return True

    def _give_back(self, hold: Hold) -> bool:
        """Under the lock: take ``hold`` off its accounts' reservations; False if it had
        settled already (an expired hold gives nothing back but is still to be recorded)."""
        assert isinstance(hold, MemoryHold), "a hold goes back to the ledger that issued it"
        state = hold.state
        if state == SETTLED:
            return False
        hold.state = SETTLED
        if state == LIVE:
            usd, tokens, calls, tools = hold.usd, hold.tokens, hold.calls, hold.tools
            for a, epoch in zip(hold.accounts, hold.epochs, strict=True):
                if a.epoch == epoch:
                    a.r_usd -= usd
                    a.r_tokens -= tokens
                    if calls:
                        a.r_calls -= calls
                    if tools:
                        a.r_tools -= tools
            if hold.expires_at is not None:
                self._expiring.pop(hold.id, None)
        return True

    def commit(
        self, hold: Hold, usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        lock = self._lock
        accounts = hold.accounts
        if len(accounts) == 1 and type(hold) is MemoryHold and hold.state == LIVE:
            (a,), (caps,) = accounts, hold.caps  # the straight path: a budget with no parent
            with lock:  # not acquire() (see the class docstring)
                if hold.state == LIVE:
                    hold.state = SETTLED
                    if a.epoch == hold.epochs[0]:
                        a.r_usd -= hold.usd
                        a.r_tokens -= hold.tokens
                        a.r_calls -= hold.calls
                        a.r_tools -= hold.tools
                    if hold.expires_at is not None:
                        self._expiring.pop(hold.id, None)
                    a.usd += usd
                    a.tokens += tokens
                    a.calls += calls
                    a.tools += tools
                    if (
                        a.usd > caps[0]
                        or a.tokens > caps[1]
                        or a.calls > caps[2]
                        or a.tools > caps[3]
                    ):
                        return overrun_used(0, a, caps)
                    return None
        elif (
            len(accounts) <= 3
            and type(hold) is MemoryHold
            and hold.state == LIVE
            and hold.expires_at is None
        ):
            over = self._commit_short(hold, usd, tokens, calls, tools)
            if over is not NOT_LIVE:
                return over
        lock.acquire()
        try:
            if not self._give_back(hold):
                return None
            over = None
            for i, (a, caps) in enumerate(zip(hold.accounts, hold.caps, strict=True)):
                a.usd += usd
                a.tokens += tokens
                if calls:
                    a.calls += calls
                if tools:
                    a.tools += tools
                if over is None and (
                    a.usd > caps[0] or a.tokens > caps[1] or a.calls > caps[2] or a.tools > caps[3]
                ):
                    over = overrun_used(i, a, caps)
            return over
        finally:
            lock.release()

    def _reserve_short(
        self,
        chain: Sequence[Link],
        usd: int,
        tokens: int,
        calls: int,
        tools: int,
        need_headroom: bool,
    ) -> Hold | Overrun:
        """``reserve`` on two or three accounts without a TTL (a budget and its parent or
        grandparent), in straight-line code under the lock (see the class docstring)."""
        (a, a_caps), (m, m_caps), (b, b_caps) = chain[0], chain[1], chain[-1]
        three = m is not b
        with self._lock:
            u, t = a.usd + a.r_usd, a.tokens + a.r_tokens
            if (
                u + usd > a_caps[0]
                or t + tokens > a_caps[1]
                or a.calls + a.r_calls + calls > a_caps[2]
                or a.tools + a.r_tools + tools > a_caps[3]
                or (need_headroom and (u >= a_caps[0] or t >= a_caps[1]))
            ):
                return overrun_wanted(0, a, a_caps, usd, tokens, calls, tools, need_headroom)
            u, t = m.usd + m.r_usd, m.tokens + m.r_tokens
            if three and (
                u + usd > m_caps[0]
                or t + tokens > m_caps[1]
                or m.calls + m.r_calls + calls > m_caps[2]
                or m.tools + m.r_tools + tools > m_caps[3]
                or (need_headroom and (u >= m_caps[0] or t >= m_caps[1]))
            ):
                return overrun_wanted(1, m, m_caps, usd, tokens, calls, tools, need_headroom)
            u, t = b.usd + b.r_usd, b.tokens + b.r_tokens
            if (
                u + usd > b_caps[0]
                or t + tokens > b_caps[1]
                or b.calls + b.r_calls + calls > b_caps[2]
                or b.tools + b.r_tools + tools > b_caps[3]
                or (need_headroom and (u >= b_caps[0] or t >= b_caps[1]))
            ):
                last = len(chain) - 1
                return overrun_wanted(last, b, b_caps, usd, tokens, calls, tools, need_headroom)
            a.r_usd += usd
            a.r_tokens += tokens
            a.r_calls += calls
            a.r_tools += tools
            if three:
                m.r_usd += usd
                m.r_tokens += tokens
                m.r_calls += calls
                m.r_tools += tools
            b.r_usd += usd
            b.r_tokens += tokens
            b.r_calls += calls
            b.r_tools += tools
            epochs = (a.epoch, m.epoch, b.epoch) if three else (a.epoch, b.epoch)
        accounts: tuple[Account, ...]
        caps: tuple[Caps, ...]
        if three:
            accounts, caps = (a, m, b), (a_caps, m_caps, b_caps)
        else:
            accounts, caps = (a, b), (a_caps, b_caps)
        hold = MemoryHold(next(self._ids), accounts, caps, usd, tokens, calls, tools, epochs, None)
        hold.state = LIVE
        return hold

    def _commit_short(
        self, hold: MemoryHold, usd: int, tokens: int, calls: int, tools: int
    ) -> Overrun | None:
        """``commit`` of a live hold on two or three accounts, in straight-line code under the
        lock; ``NOT_LIVE`` when the hold stopped being live meanwhile (the caller then takes
        the general path)."""
        accounts, caps, epochs = hold.accounts, hold.caps, hold.epochs
        a, m, b = accounts[0], accounts[1], accounts[-1]
        three = m is not b
        with self._lock:
            if hold.state != LIVE:
                return NOT_LIVE
            hold.state = SETTLED
            h_usd, h_tokens, h_calls, h_tools = hold.usd, hold.tokens, hold.calls, hold.tools
            if a.epoch == epochs[0]:
                a.r_usd -= h_usd
                a.r_tokens -= h_tokens
                a.r_calls -= h_calls
                a.r_tools -= h_tools
            if three and m.epoch == epochs[1]:
                m.r_usd -= h_usd
                m.r_tokens -= h_tokens
                m.r_calls -= h_calls
                m.r_tools -= h_tools
            if b.epoch == epochs[-1]:
                b.r_usd -= h_usd
                b.r_tokens -= h_tokens
                b.r_calls -= h_calls
                b.r_tools -= h_tools
            a.usd += usd
            a.tokens += tokens
            a.calls += calls
            a.tools += tools
            if three:
                m.usd += usd
                m.tokens += tokens
                m.calls += calls
                m.tools += tools
            b.usd += usd
            b.tokens += tokens
            b.calls += calls
            b.tools += tools
            c = caps[0]
            if a.usd > c[0] or a.tokens > c[1] or a.calls > c[2] or a.tools > c[3]:
                return overrun_used(0, a, c)
            c = caps[1]
            if three and (m.usd > c[0] or m.tokens > c[1] or m.calls > c[2] or m.tools > c[3]):
                return overrun_used(1, m, c)
            c = caps[-1]
            if b.usd > c[0] or b.tokens > c[1] or b.calls > c[2] or b.tools > c[3]:
                return overrun_used(len(accounts) - 1, b, c)
        return None

    def release(self, hold: Hold) -> None:
        with self._lock:
            self._give_back(hold)

    def used_usd(self, account: Account) -> int:
        return account.usd  # one attribute: consistent without the lock

    def read(self, account: Account) -> AccountState:
        a = account
        with self._lock:
            return AccountState(
                (a.usd, a.tokens, a.calls, a.tools), (a.r_usd, a.r_tokens, a.r_calls, a.r_tools)
            )

    def headroom(self, chain: Sequence[Link]) -> tuple[int, int]:
        usd = tokens = UNLIMITED
        with self._lock:
            for a, caps in chain:
                if caps[0] != UNLIMITED:
                    usd = min(usd, caps[0] - a.usd - a.r_usd)
                if caps[1] != UNLIMITED:
                    tokens = min(tokens, caps[1] - a.tokens - a.r_tokens)
        return max(usd, 0), max(tokens, 0)

    def reset(self, account: Account) -> None:
        a = account
        with self._lock:
            a.usd = a.tokens = a.calls = a.tools = 0
            a.r_usd = a.r_tokens = a.r_calls = a.r_tools = 0
            a.epoch += 1

    def expire(self) -> int:
        now = time.time()
        with self._lock:
            due = [h for h in self._expiring.values() if h.expires_at <= now]  # type: ignore[operator]
            for hold in due:
                self._give_back(hold)
                hold.state = EXPIRED
        return len(due)


DEFAULT_LEDGER: Final[Ledger] = InMemoryLedger()
"""The process-wide ledger budgets use unless given another one."""
