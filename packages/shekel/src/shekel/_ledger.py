"""Accounting: what each budget has used and holds in reserve, on four axes.

A *ledger* keeps accounts. Every operation takes a *chain*: the accounts a piece of spend belongs
to (a budget and its ancestors, innermost first), each paired with the caps it is held to, and
applies to all of them or to none of them, so a parent's cap holds while several children spend
in parallel. Caps are the caller's (a budget's configuration), not the ledger's: a ledger stores
counters only, so processes sharing a store never overwrite each other's settings.

:class:`Ledger` is the contract; :class:`InMemoryLedger` implements it in this process with one
lock. A store (``SQLiteLedger``, ``RedisLedger``) implements the same contract over a database,
and ``shekel.testing.ledger_contract`` is the conformance suite they all pass:

- accounts are opened by a stable key; a store that ``shares_keys`` gives every process the same
  account for the same key (that is how totals resume and budgets span hosts); the in-memory
  ledger gives every ``open`` a fresh account (two budgets of one name in a process stay apart);
- a hold is an immutable value with an id, the accounts and caps it was taken on, the amounts,
  the accounts' epochs and an expiry; the ledger owns its state, so ``commit`` and ``release``
  are idempotent (the second does nothing) and an expired hold's commit still records its spend;
- ``reset`` starts a new epoch: holds taken before it no longer count against the account;
- every method has an ``a``-prefixed async twin (by default the sync method, run in a worker
  thread when the ledger ``blocks``).

Amounts are integers: nano-dollars for USD, plain counts for the other axes. A cap is an
integer too; ``UNLIMITED`` stands for "no cap".
"""

from __future__ import annotations

import itertools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, NamedTuple

UNLIMITED: Final = 1 << 127
"""The cap of an axis without one: beyond any total the counting range allows (amounts are at
most $1e9 each, so 1e21 nano-dollars), so an uncapped budget is never 'over' it."""
AXES: Final = ("usd", "tokens", "llm_calls", "tool_calls")


Amounts = Callable[[Any, Any], tuple[int, int]]
"""``(tokens, usd)`` given by a caller -> ``(tokens, nano-dollars)``, or raise."""
Refuse = Callable[["Overrun", Any, Any], None]
"""Called with the overrun and the caller's ``(tokens, usd)`` when a record is refused."""
Recorder = Callable[..., None]
"""``record(tokens=0, usd=0.0)``: see :meth:`Ledger.recorder`."""


class Caps(NamedTuple):
    """Per-axis caps of one account; ``UNLIMITED`` where there is none."""

    usd: int = UNLIMITED
    tokens: int = UNLIMITED
    llm_calls: int = UNLIMITED
    tool_calls: int = UNLIMITED


NO_CAPS: Final = Caps()

Link = tuple[Any, Caps]
"""One account of a chain (the handle ``Ledger.open`` returned) and the caps it is held to."""


class Overrun(NamedTuple):
    """Which account of a chain is (or would be) over which cap.

    ``position`` is the index in the chain passed to the ledger (0 = innermost).
    """

    position: int
    axis: str
    used: int
    cap: int


@dataclass(frozen=True, slots=True)
class AccountState:
    """A consistent reading of one account: used and reserved on each axis."""

    used: tuple[int, int, int, int]
    reserved: tuple[int, int, int, int]


class Hold:
    """Amounts reserved on a chain of accounts until committed, released or expired.

    An immutable value; the ledger that issued it keeps its state.
    """

    __slots__ = (
        "accounts",
        "calls",
        "caps",
        "epochs",
        "expires_at",
        "id",
        "tokens",
        "tools",
        "usd",
    )

    def __init__(
        self,
        hold_id: Any,
        accounts: tuple[Any, ...],
        caps: tuple[Caps, ...],
        usd: int,
        tokens: int,
        calls: int,
        tools: int,
        epochs: tuple[int, ...],
        expires_at: float | None,
    ) -> None:
        self.id = hold_id
        self.accounts = accounts
        self.caps = caps
        self.usd = usd
        self.tokens = tokens
        self.calls = calls
        self.tools = tools
        self.epochs = epochs
        self.expires_at = expires_at

    def __repr__(self) -> str:
        return f"Hold({self.id!r}, usd={self.usd}, tokens={self.tokens}, calls={self.calls})"


class Ledger(ABC):
    """Atomic accounting across chains of accounts (see the module docstring for the contract).

    Every method that takes a chain applies to all of its accounts or to none.
    """

    shares_keys: ClassVar[bool] = False
    """True when ``open(key)`` gives every process the same account for the same key."""
    blocks: ClassVar[bool] = False
    """True when operations wait on I/O: async callers then run them in a worker thread."""
    default_ttl: float | None = None
    """Seconds a hold lives unless committed or released (``None``: until then)."""

    @abstractmethod
    def open(self, key: str, caps: Caps = NO_CAPS, *, keep_until: float | None = None) -> Any:
        """A handle on the account ``key``; ``caps`` are informational (what the caller will
        hold it to, shown by tools that list a store's budgets). ``keep_until`` (a POSIX
        timestamp) says the account is of no use after then (a window's period): a store may
        forget it."""

    @abstractmethod
    def record(
        self, chain: Sequence[Link], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        """Add spend that already happened to every account; it is never refused.

        Returns the innermost account whose used amount is now over its cap, or ``None``.
        """

    @abstractmethod
    def try_record(
        self, chain: Sequence[Link], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        """Add spend only if every account keeps ``used + reserved`` within its caps.

        Returns ``None`` when applied; otherwise the first account that would go over, and
        nothing changed.
        """

    def recorder(self, chain: Sequence[Link], amounts: Amounts, refuse: Refuse) -> Recorder:
        r"""A function ``record(tokens=0, usd=0.0)`` that :meth:`try_record`\ s on ``chain``, for
        a caller that records on the same chain over and over (a pool): ``amounts(tokens, usd)``
        turns the arguments into tokens and nano-dollars (raising on bad values), and
        ``refuse(overrun, tokens, usd)`` is called, to raise, when a cap refuses. A ledger may
        answer with a quicker function than this one."""

        def record(tokens: int = 0, usd: float = 0.0) -> None:
            count, nanos = amounts(tokens, usd)
            over = self.try_record(chain, nanos, count)
            if over is not None:
                refuse(over, tokens, usd)

        return record

    @abstractmethod
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
        """Hold amounts on every account if all of them can take them.

        With ``need_headroom``, an account whose USD or token axis is already at its cap refuses
        even a zero-sized hold (an exhausted budget sends no more requests). ``ttl`` overrides
        :attr:`default_ttl`. Returns the :class:`Hold`, or the first :class:`Overrun` and
        nothing changed.
        """

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
        """What :meth:`reserve` would refuse with, holding nothing: ``None`` when it would
        succeed. (A ledger may answer it more cheaply than this reserve-and-release.)"""
        result = self.reserve(chain, usd, tokens, calls, tools, need_headroom=need_headroom)
        if isinstance(result, Overrun):
            return result
        self.release(result)
        return None

    @abstractmethod
    def commit(
        self, hold: Hold, usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        """Give ``hold`` back and record the actual amounts on its accounts (never refused, like
        ``record``; checked against the caps the hold was taken with). A hold that expired, or
        was taken before a reset, is no longer counted as reserved, but its commit still
        records the spend (it happened); a hold already committed or released is left alone and
        nothing is recorded."""

    @abstractmethod
    def release(self, hold: Hold) -> None:
        """Give a hold back without recording anything. Releasing twice is harmless."""

    @abstractmethod
    def read(self, account: Any) -> AccountState:
        """A consistent reading of one account."""

    def used_usd(self, account: Any) -> int:
        """The nano-dollars an account has used: what soft policies (``warn_at``, fallback)
        look at after every record. A ledger that keeps accounts in memory answers without
        :meth:`read`'s lock and copy."""
        return self.read(account).used[0]

    @abstractmethod
    def headroom(self, chain: Sequence[Link]) -> tuple[int, int]:
        """USD (nanos) and tokens still free on the whole chain: the smallest
        ``cap - used - reserved`` of each axis (``UNLIMITED`` where nothing is capped)."""

    @abstractmethod
    def reset(self, account: Any) -> None:
        """Zero an account's used and reserved amounts and start a new epoch: holds taken before
        stop counting against it."""

    def expire(self) -> int:
        """Drop the holds whose time ran out (their reserved amounts stop counting); the number
        dropped. Operations may also do this as they go."""
        return 0

    # -- async twins -----------------------------------------------------------------------------

    async def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.blocks:
            return method(*args, **kwargs)
        import asyncio

        return await asyncio.to_thread(method, *args, **kwargs)

    async def arecord(
        self, chain: Sequence[Link], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        result: Overrun | None = await self._call(self.record, chain, usd, tokens, calls, tools)
        return result

    async def areserve(
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
        result: Hold | Overrun = await self._call(
            self.reserve, chain, usd, tokens, calls, tools, need_headroom=need_headroom, ttl=ttl
        )
        return result

    async def acommit(
        self, hold: Hold, usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        result: Overrun | None = await self._call(self.commit, hold, usd, tokens, calls, tools)
        return result

    async def arelease(self, hold: Hold) -> None:
        await self._call(self.release, hold)

    async def aread(self, account: Any) -> AccountState:
        result: AccountState = await self._call(self.read, account)
        return result


class Account:
    """An in-memory account: counters only a ledger reads or writes."""

    __slots__ = (
        "calls",
        "epoch",
        "key",
        "r_calls",
        "r_tokens",
        "r_tools",
        "r_usd",
        "tokens",
        "tools",
        "usd",
    )

    def __init__(self, key: str) -> None:
        self.key = key
        self.usd = self.tokens = self.calls = self.tools = 0
        self.r_usd = self.r_tokens = self.r_calls = self.r_tools = 0
        self.epoch = 0

    def __repr__(self) -> str:
        return f"Account({self.key!r}, usd={self.usd}, tokens={self.tokens})"


LIVE, EXPIRED, SETTLED = 0, 1, 2


class _MemoryHold(Hold):
    """An in-memory hold: the ledger keeps its state in the hold itself."""

    __slots__ = ("state",)
    state: int


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
        self._expiring: dict[int, _MemoryHold] = {}  # holds with a TTL, for expire()

    def open(self, key: str, caps: Caps = NO_CAPS, *, keep_until: float | None = None) -> Account:
        return Account(key)

    def record(
        self, chain: Sequence[Link], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        if tools or len(chain) > 3:
            return self._record_any(chain, usd, tokens, calls, tools)
        # Straight-line code for the usual depths (see the class docstring).
        a, caps = chain[0]
        b, b_caps = chain[-1]
        m, m_caps = chain[1] if len(chain) == 3 else chain[0]
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
                return _overrun_used(0, a, caps)  # the innermost (its counters are final)
            if m is not a and (m.usd > m_caps[0] or m.tokens > m_caps[1] or m.calls > m_caps[2]):
                return _overrun_used(1, m, m_caps)
            if b is not a and (b.usd > b_caps[0] or b.tokens > b_caps[1] or b.calls > b_caps[2]):
                return _overrun_used(len(chain) - 1, b, b_caps)
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
                    over = _overrun_used(i, a, caps)  # the innermost (its counters are final)
            return over

    def try_record(
        self, chain: Sequence[Link], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        with self._lock:
            refused = self._refusal(chain, usd, tokens, calls, tools, False)
            if refused is not None:
                return refused
            for a, _ in chain:
                a.usd += usd
                a.tokens += tokens
                a.calls += calls
                a.tools += tools
        return None

    def recorder(self, chain: Sequence[Link], amounts: Amounts, refuse: Refuse) -> Recorder:
        if len(chain) != 1:
            return super().recorder(chain, amounts, refuse)
        ((a, caps),) = chain
        lock = self._lock
        usd_cap, tokens_cap = caps[0], caps[1]

        # One function from the arguments to the counters: this is a pool's hot path.
        def record_one(tokens: int = 0, usd: float = 0.0) -> None:
            if type(usd) is float and 0.0 <= usd < 1e9 and type(tokens) is int and tokens >= 0:
                nanos, count = round(usd * 1e9), tokens
            else:
                count, nanos = amounts(tokens, usd)
            with lock:  # only USD and tokens grow here: only they can pass a cap
                if a.usd + a.r_usd + nanos > usd_cap or a.tokens + a.r_tokens + count > tokens_cap:
                    over = _overrun_wanted(0, a, caps, nanos, count, 0, 0)
                else:
                    a.usd += nanos
                    a.tokens += count
                    return
            refuse(over, tokens, usd)

        return record_one

    def _refusal(
        self,
        chain: Sequence[Link],
        usd: int,
        tokens: int,
        calls: int,
        tools: int,
        need_headroom: bool,
    ) -> Overrun | None:
        for i, (a, caps) in enumerate(chain):
            u = a.usd + a.r_usd
            t = a.tokens + a.r_tokens
            if (
                u + usd > caps[0]
                or t + tokens > caps[1]
                or a.calls + a.r_calls + calls > caps[2]
                or a.tools + a.r_tools + tools > caps[3]
                or (need_headroom and (u >= caps[0] or t >= caps[1]))
            ):
                return _overrun_wanted(i, a, caps, usd, tokens, calls, tools, need_headroom)
        return None

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
                    return _overrun_wanted(0, a, caps, usd, tokens, calls, tools, need_headroom)
                a.r_usd += usd
                a.r_tokens += tokens
                a.r_calls += calls
                a.r_tools += tools
                epoch = a.epoch
            # Built after the lock: a Python call inside it lets CPython switch threads while
            # the lock is held, and the other threads then queue on it.
            hold = _MemoryHold(
                next(self._ids), (a,), (caps,), usd, tokens, calls, tools, (epoch,), None
            )
            hold.state = LIVE
            return hold
        lock.acquire()
        try:
            refused = self._refusal(chain, usd, tokens, calls, tools, need_headroom)
            if refused is not None:
                return refused
            for a, _ in chain:
                a.r_usd += usd
                a.r_tokens += tokens
                if calls:
                    a.r_calls += calls
                if tools:
                    a.r_tools += tools
            hold = _MemoryHold(
                next(self._ids),
                tuple([a for a, _ in chain]),
                tuple([c for _, c in chain]),
                usd,
                tokens,
                calls,
                tools,
                tuple([a.epoch for a, _ in chain]),
                None if life is None else time.monotonic() + life,
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
        with self._lock:
            return self._refusal(chain, usd, tokens, calls, tools, need_headroom)

    def _give_back(self, hold: Hold) -> bool:
        """Under the lock: take ``hold`` off its accounts' reservations; False if it had
        settled already (an expired hold gives nothing back but is still to be recorded)."""
        assert isinstance(hold, _MemoryHold), "a hold goes back to the ledger that issued it"
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
        if len(accounts) == 1 and type(hold) is _MemoryHold and hold.state == LIVE:
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
                        return _overrun_used(0, a, caps)
                    return None
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
                    over = _overrun_used(i, a, caps)
            return over
        finally:
            lock.release()

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
        now = time.monotonic()
        with self._lock:
            due = [h for h in self._expiring.values() if h.expires_at <= now]  # type: ignore[operator]
            for hold in due:
                self._give_back(hold)
                hold.state = EXPIRED
        return len(due)


def _overrun_used(index: int, a: Account, caps: Caps) -> Overrun:
    if a.usd > caps[0]:
        return Overrun(index, "usd", a.usd, caps[0])
    if a.tokens > caps[1]:
        return Overrun(index, "tokens", a.tokens, caps[1])
    if a.calls > caps[2]:
        return Overrun(index, "llm_calls", a.calls, caps[2])
    return Overrun(index, "tool_calls", a.tools, caps[3])


def _overrun_wanted(
    index: int,
    a: Account,
    caps: Caps,
    usd: int,
    tokens: int,
    calls: int,
    tools: int,
    need_headroom: bool = False,
) -> Overrun:
    u, t = a.usd + a.r_usd, a.tokens + a.r_tokens
    if u + usd > caps[0] or (need_headroom and u >= caps[0]):
        return Overrun(index, "usd", a.usd, caps[0])
    if t + tokens > caps[1] or (need_headroom and t >= caps[1]):
        return Overrun(index, "tokens", a.tokens, caps[1])
    if a.calls + a.r_calls + calls > caps[2]:
        return Overrun(index, "llm_calls", a.calls, caps[2])
    return Overrun(index, "tool_calls", a.tools, caps[3])


DEFAULT_LEDGER: Final[Ledger] = InMemoryLedger()
"""The process-wide ledger budgets use unless given another one."""
