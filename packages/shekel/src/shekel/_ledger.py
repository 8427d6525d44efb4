"""Accounting: what each budget has used and holds in reserve, on four axes.

A *ledger* keeps accounts. Every operation takes a *chain*: the accounts a piece of spend belongs
to (a budget and its ancestors, innermost first), each paired with the caps it is held to, and
applies to all of them or to none of them, so a parent's cap holds while several children spend
in parallel. Caps are the caller's (a budget's configuration), not the ledger's: a ledger stores
counters only, so processes sharing a store never overwrite each other's settings.

:class:`Ledger` is the contract; ``InMemoryLedger`` (``_memory_ledger``) implements it in this
process with one lock. A store (``SQLiteLedger``, ``RedisLedger``) implements the same contract
over a database, and ``shekel.testing.ledger_contract`` is the conformance suite they all pass:

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

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, NamedTuple, NoReturn

UNLIMITED: Final = 1 << 127
"""The cap of an axis without one: beyond any total the counting range allows (amounts are at
most $1e9 each, so 1e21 nano-dollars), so an uncapped budget is never 'over' it."""
AXES: Final = ("usd", "tokens", "llm_calls", "tool_calls")


Amounts = Callable[[Any, Any], tuple[int, int]]
"""``(tokens, usd)`` given by a caller -> ``(tokens, nano-dollars)``, or raise."""
Refuse = Callable[["Overrun", Any, Any], NoReturn]
"""Raises, given the overrun and the caller's ``(tokens, usd)``, when a record or reservation
is refused."""
Recorder = Callable[..., None]
"""``record(tokens=0, usd=0.0)``: see :meth:`Ledger.recorder`."""
Reserver = Callable[..., "Hold"]
"""``reserve(tokens=0, usd=0.0) -> Hold``: see :meth:`Ledger.reserver`."""
Committer = Callable[..., "Overrun | None"]
"""``commit(hold, tokens=0, usd=0.0) -> Overrun | None``: see :meth:`Ledger.committer`."""


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

    An immutable value; the ledger that issued it keeps its state. ``expires_at`` is when a hold
    with a TTL stops counting, in seconds since the epoch on the ledger's clock (this host's
    for the in-memory and SQLite ledgers, the server's for Redis), ``None`` without a TTL.
    """

    __slots__ = (
        "__weakref__",  # the lease keeper renews a hold only while something references it
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

    def reserver(self, chain: Sequence[Link], amounts: Amounts, refuse: Refuse) -> Reserver:
        r"""A function ``reserve(tokens=0, usd=0.0) -> Hold`` that :meth:`reserve`\ s USD and
        tokens on ``chain``, for a caller that reserves on the same chain over and over (a
        pool); ``amounts`` and ``refuse`` as for :meth:`recorder`. A ledger may answer with a
        quicker function than this one."""

        def reserve(tokens: int = 0, usd: float = 0.0) -> Hold:
            count, nanos = amounts(tokens, usd)
            held = self.reserve(chain, nanos, count)
            if isinstance(held, Overrun):
                refuse(held, tokens, usd)
            return held

        return reserve

    def committer(self, amounts: Amounts) -> Committer:
        r"""A function ``commit(hold, tokens=0, usd=0.0)`` that :meth:`commit`\ s a hold
        with that use (and no calls), answering as ``commit`` does; ``amounts`` as for
        :meth:`recorder` (a bad value raises and commits nothing). A ledger may answer with a
        quicker function than this one."""

        def commit(hold: Hold, tokens: int = 0, usd: float = 0.0) -> Overrun | None:
            count, nanos = amounts(tokens, usd)
            return self.commit(hold, nanos, count)

        return commit

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

    def may_call(self, chain: Sequence[Link]) -> bool:
        """Whether a call that holds nothing may go: no account of ``chain`` exhausted (what
        ``check(chain, 0, 0, 1, need_headroom=True)`` passes). The interceptor asks this before
        every call of a budget with nothing to hold, then ``check`` to describe a refusal; a
        ledger may answer it without its lock, as a read a moment stale is as good as one
        taken a moment earlier when nothing is held."""
        return self.check(chain, 0, 0, 1, need_headroom=True) is None

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

    def renew(self, leases: Sequence[tuple[Hold, float]]) -> None:  # noqa: B027
        """Extend each live hold's life to ``ttl`` seconds from now (``(hold, ttl)`` pairs; a
        hold already settled or expired is left alone). Called from a background thread for
        the holds of calls still in flight (``_leases``); the default, for ledgers whose holds
        do not expire, does nothing."""

    def expire(self) -> int:
        """Drop the holds whose time ran out (their reserved amounts stop counting); the number
        dropped. Operations may also do this as they go."""
        return 0

    def forget(self, accounts: Sequence[Any]) -> None:  # noqa: B027
        """Nothing will use ``accounts`` again (the budget objects that knew their keys are
        gone). A ledger that ``shares_keys`` deletes them, or they would pile up, one per
        unnamed or repeated budget; the default, for ledgers in memory, does nothing (an
        account there goes with its budget)."""

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

    async def acheck(
        self,
        chain: Sequence[Link],
        usd: int,
        tokens: int,
        calls: int = 0,
        tools: int = 0,
        *,
        need_headroom: bool = False,
    ) -> Overrun | None:
        result: Overrun | None = await self._call(
            self.check, chain, usd, tokens, calls, tools, need_headroom=need_headroom
        )
        return result

    async def aheadroom(self, chain: Sequence[Link]) -> tuple[int, int]:
        result: tuple[int, int] = await self._call(self.headroom, chain)
        return result

    async def aexpire(self) -> int:
        result: int = await self._call(self.expire)
        return result
