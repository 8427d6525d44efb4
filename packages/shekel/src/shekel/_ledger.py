"""Accounting: what each budget has used and holds in reserve, on four axes.

A *ledger* keeps one account per budget. Every operation takes the whole chain of accounts a
piece of spend belongs to (a budget and its ancestors, innermost first) and applies to all of
them atomically, so a parent's cap holds while several children spend in parallel.

:class:`Ledger` is the interface; :class:`InMemoryLedger` implements it with one lock. A SQLite
or Redis ledger implements the same methods and plugs in without touching ``Budget``.

Amounts are integers: nano-dollars for USD, plain counts for the other axes. A cap is an integer
too; ``UNLIMITED`` stands for "no cap".
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

UNLIMITED: Final = 1 << 127
"""The cap of an axis without one: beyond any total the counting range allows (amounts are at
most $1e9 each, so 1e21 nano-dollars), so an uncapped budget is never 'over' it."""
AXES: Final = ("usd", "tokens", "llm_calls", "tool_calls")


class Caps(NamedTuple):
    """Per-axis caps of one account; ``UNLIMITED`` where there is none."""

    usd: int = UNLIMITED
    tokens: int = UNLIMITED
    llm_calls: int = UNLIMITED
    tool_calls: int = UNLIMITED


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
    """A consistent reading of one account."""

    used: tuple[int, int, int, int]
    reserved: tuple[int, int, int, int]
    caps: Caps


class Account:
    """An in-memory account. Only a ledger reads or writes its counters."""

    __slots__ = (
        "calls",
        "cap_calls",
        "cap_tokens",
        "cap_tools",
        "cap_usd",
        "caps",
        "generation",
        "key",
        "r_calls",
        "r_tokens",
        "r_tools",
        "r_usd",
        "tokens",
        "tools",
        "usd",
    )

    def __init__(self, key: str, caps: Caps) -> None:
        self.key = key
        self.usd = self.tokens = self.calls = self.tools = 0
        self.r_usd = self.r_tokens = self.r_calls = self.r_tools = 0
        self.generation = 0
        self.cap_usd, self.cap_tokens, self.cap_calls, self.cap_tools = caps
        self.caps = caps if type(caps) is Caps else Caps(*caps)  # the same four, as read() shows

    def __repr__(self) -> str:
        return f"Account({self.key!r}, usd={self.usd}, tokens={self.tokens})"


class Hold:
    """Amounts reserved on a chain of accounts until committed or released."""

    __slots__ = ("accounts", "calls", "generations", "settled", "tokens", "tools", "usd")

    def __init__(
        self,
        accounts: Sequence[Account],
        usd: int,
        tokens: int,
        calls: int,
        tools: int,
        generations: tuple[int, ...] | None = None,
    ) -> None:
        self.accounts = accounts if type(accounts) is tuple else tuple(accounts)
        # Read under the ledger's lock: ``generations`` if the caller read them, else here.
        # (A list comprehension: a generator expression costs twice as much on this hot path.)
        self.generations = (
            tuple([a.generation for a in accounts]) if generations is None else generations
        )
        self.usd = usd
        self.tokens = tokens
        self.calls = calls
        self.tools = tools
        self.settled = False


class Ledger(ABC):
    """Atomic accounting across chains of accounts.

    Every method that takes ``accounts`` applies to all of them or to none of them.
    """

    @abstractmethod
    def open(self, key: str, caps: Caps) -> Account:
        """Create an account with the given caps and nothing used."""

    @abstractmethod
    def set_caps(self, account: Account, caps: Caps) -> None:
        """Replace an account's caps (used when a child is auto-capped on entry)."""

    @abstractmethod
    def record(
        self, accounts: Sequence[Account], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        """Add spend that already happened to every account; it is never refused.

        Returns the innermost account whose used amount is now over a cap, or ``None``.
        """

    @abstractmethod
    def try_record(
        self, accounts: Sequence[Account], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        """Add spend only if every account keeps ``used + reserved`` within its caps.

        Returns ``None`` when applied; otherwise the first account that would go over, and
        nothing changed.
        """

    @abstractmethod
    def reserve(
        self,
        accounts: Sequence[Account],
        usd: int,
        tokens: int,
        calls: int = 0,
        tools: int = 0,
        *,
        need_headroom: bool = False,
    ) -> Hold | Overrun:
        """Hold amounts on every account if all of them can take them.

        With ``need_headroom``, an account whose USD or token axis is already at its cap
        refuses even a zero-sized hold (an exhausted budget sends no more requests).
        Returns the :class:`Hold`, or the first :class:`Overrun` and nothing changed.
        """

    def check(
        self,
        accounts: Sequence[Account],
        usd: int,
        tokens: int,
        calls: int = 0,
        tools: int = 0,
        *,
        need_headroom: bool = False,
    ) -> Overrun | None:
        """What :meth:`reserve` would refuse with, holding nothing: ``None`` when it would
        succeed. (A ledger may answer it more cheaply than this reserve-and-release.)"""
        result = self.reserve(accounts, usd, tokens, calls, tools, need_headroom=need_headroom)
        if isinstance(result, Overrun):
            return result
        self.release(result)
        return None

    @abstractmethod
    def commit(
        self, hold: Hold, usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        """Release ``hold`` and record the actual amounts (never refused, like ``record``)."""

    @abstractmethod
    def release(self, hold: Hold) -> None:
        """Give a hold back without recording anything. Releasing twice is harmless."""

    @abstractmethod
    def read(self, account: Account) -> AccountState:
        """A consistent snapshot of one account."""

    @abstractmethod
    def headroom(self, accounts: Sequence[Account]) -> tuple[int, int]:
        """USD (nanos) and tokens still free on the whole chain: the smallest
        ``cap - used - reserved`` of each axis (``UNLIMITED`` where nothing is capped)."""

    @abstractmethod
    def reset(self, account: Account) -> None:
        """Zero an account's used and reserved amounts; holds taken before stop counting."""


class InMemoryLedger(Ledger):
    """The default ledger: counters in this process, guarded by one lock.

    The hot methods have a straight-line branch for a one-account chain (a pool, a root
    budget): CPython hands the GIL to another thread only at calls and backward jumps, so with
    no call and no loop inside the ``with self._lock`` block a thread is never switched out
    while holding the lock, and threads hitting one pool do not queue on it. Chains of several
    accounts take the loop; both branches do exactly the same accounting.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def open(self, key: str, caps: Caps) -> Account:
        return Account(key, caps)

    def set_caps(self, account: Account, caps: Caps) -> None:
        with self._lock:
            account.cap_usd, account.cap_tokens, account.cap_calls, account.cap_tools = caps
            account.caps = caps if type(caps) is Caps else Caps(*caps)

    def record(
        self, accounts: Sequence[Account], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        if len(accounts) == 1:
            (a,) = accounts
            with self._lock:
                a.usd += usd
                a.tokens += tokens
                if calls:
                    a.calls += calls
                if tools:
                    a.tools += tools
                if (
                    a.usd > a.cap_usd
                    or a.tokens > a.cap_tokens
                    or a.calls > a.cap_calls
                    or a.tools > a.cap_tools
                ):
                    return _overrun_used(0, a)
            return None
        over: Account | None = None
        lock = self._lock
        # acquire/release rather than ``with``: half the cost, and this loop lets the GIL go
        # inside the lock anyway. The hottest path of nested budgets.
        lock.acquire()
        try:
            for a in accounts:
                a.usd += usd
                a.tokens += tokens
                if calls:
                    a.calls += calls
                if tools:
                    a.tools += tools
                if over is None and (
                    a.usd > a.cap_usd
                    or a.tokens > a.cap_tokens
                    or a.calls > a.cap_calls
                    or a.tools > a.cap_tools
                ):
                    over = a  # the innermost account over a cap (its counters are final)
            if over is not None:
                return _overrun_used(accounts.index(over), over)
        finally:
            lock.release()
        return None

    def try_record(
        self, accounts: Sequence[Account], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        if len(accounts) == 1:
            (a,) = accounts
            with self._lock:
                if (
                    a.usd + a.r_usd + usd > a.cap_usd
                    or a.tokens + a.r_tokens + tokens > a.cap_tokens
                    or (calls and a.calls + a.r_calls + calls > a.cap_calls)
                    or (tools and a.tools + a.r_tools + tools > a.cap_tools)
                ):
                    return _overrun_wanted(0, a, usd, tokens, calls, tools)
                a.usd += usd
                a.tokens += tokens
                if calls:
                    a.calls += calls
                if tools:
                    a.tools += tools
            return None
        with self._lock:
            for a in accounts:
                if (
                    a.usd + a.r_usd + usd > a.cap_usd
                    or a.tokens + a.r_tokens + tokens > a.cap_tokens
                    or (calls and a.calls + a.r_calls + calls > a.cap_calls)
                    or (tools and a.tools + a.r_tools + tools > a.cap_tools)
                ):
                    return _overrun_wanted(accounts.index(a), a, usd, tokens, calls, tools)
            for a in accounts:
                a.usd += usd
                a.tokens += tokens
                if calls:
                    a.calls += calls
                if tools:
                    a.tools += tools
        return None

    def reserve(
        self,
        accounts: Sequence[Account],
        usd: int,
        tokens: int,
        calls: int = 0,
        tools: int = 0,
        *,
        need_headroom: bool = False,
    ) -> Hold | Overrun:
        if len(accounts) == 1:
            (a,) = accounts
            with self._lock:
                u = a.usd + a.r_usd
                t = a.tokens + a.r_tokens
                if (
                    u + usd > a.cap_usd
                    or t + tokens > a.cap_tokens
                    or a.calls + a.r_calls + calls > a.cap_calls
                    or a.tools + a.r_tools + tools > a.cap_tools
                    or (need_headroom and (u >= a.cap_usd or t >= a.cap_tokens))
                ):
                    return _overrun_wanted(0, a, usd, tokens, calls, tools, need_headroom)
                a.r_usd += usd
                a.r_tokens += tokens
                if calls:
                    a.r_calls += calls
                if tools:
                    a.r_tools += tools
                generation = a.generation
            return Hold(accounts, usd, tokens, calls, tools, (generation,))
        with self._lock:
            for i, a in enumerate(accounts):
                u = a.usd + a.r_usd
                t = a.tokens + a.r_tokens
                if (
                    u + usd > a.cap_usd
                    or t + tokens > a.cap_tokens
                    or a.calls + a.r_calls + calls > a.cap_calls
                    or a.tools + a.r_tools + tools > a.cap_tools
                    or (need_headroom and (u >= a.cap_usd or t >= a.cap_tokens))
                ):
                    return _overrun_wanted(i, a, usd, tokens, calls, tools, need_headroom)
            for a in accounts:
                a.r_usd += usd
                a.r_tokens += tokens
                a.r_calls += calls
                a.r_tools += tools
            return Hold(accounts, usd, tokens, calls, tools)

    def check(
        self,
        accounts: Sequence[Account],
        usd: int,
        tokens: int,
        calls: int = 0,
        tools: int = 0,
        *,
        need_headroom: bool = False,
    ) -> Overrun | None:
        with self._lock:
            for i, a in enumerate(accounts):
                u = a.usd + a.r_usd
                t = a.tokens + a.r_tokens
                if (
                    u + usd > a.cap_usd
                    or t + tokens > a.cap_tokens
                    or a.calls + a.r_calls + calls > a.cap_calls
                    or a.tools + a.r_tools + tools > a.cap_tools
                    or (need_headroom and (u >= a.cap_usd or t >= a.cap_tokens))
                ):
                    return _overrun_wanted(i, a, usd, tokens, calls, tools, need_headroom)
        return None

    def commit(
        self, hold: Hold, usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        accounts = hold.accounts
        if len(accounts) == 1:
            (a,) = accounts
            with self._lock:
                if not hold.settled:
                    hold.settled = True
                    if a.generation == hold.generations[0]:
                        a.r_usd -= hold.usd
                        a.r_tokens -= hold.tokens
                        if hold.calls:
                            a.r_calls -= hold.calls
                        if hold.tools:
                            a.r_tools -= hold.tools
                a.usd += usd
                a.tokens += tokens
                if calls:
                    a.calls += calls
                if tools:
                    a.tools += tools
                if (
                    a.usd > a.cap_usd
                    or a.tokens > a.cap_tokens
                    or a.calls > a.cap_calls
                    or a.tools > a.cap_tools
                ):
                    return _overrun_used(0, a)
            return None
        over: Account | None = None
        with self._lock:
            live = not hold.settled
            hold.settled = True
            for a, generation in zip(accounts, hold.generations, strict=True):
                if live and a.generation == generation:
                    a.r_usd -= hold.usd
                    a.r_tokens -= hold.tokens
                    a.r_calls -= hold.calls
                    a.r_tools -= hold.tools
                a.usd += usd
                a.tokens += tokens
                if calls:
                    a.calls += calls
                if tools:
                    a.tools += tools
                if over is None and (
                    a.usd > a.cap_usd
                    or a.tokens > a.cap_tokens
                    or a.calls > a.cap_calls
                    or a.tools > a.cap_tools
                ):
                    over = a  # the innermost account over a cap (its counters are final)
            if over is not None:
                return _overrun_used(accounts.index(over), over)
        return None

    def release(self, hold: Hold) -> None:
        with self._lock:
            if hold.settled:
                return
            hold.settled = True
            for a, gen in zip(hold.accounts, hold.generations, strict=True):
                if a.generation == gen:
                    a.r_usd -= hold.usd
                    a.r_tokens -= hold.tokens
                    a.r_calls -= hold.calls
                    a.r_tools -= hold.tools

    def read(self, account: Account) -> AccountState:
        a = account
        with self._lock:
            # Positional arguments and the account's own (immutable) Caps: read() runs on
            # every record into a budget with ``warn_at`` or a fallback, and on every nested
            # enter; keywords and a fresh Caps made it twice as slow.
            return AccountState(
                (a.usd, a.tokens, a.calls, a.tools),
                (a.r_usd, a.r_tokens, a.r_calls, a.r_tools),
                a.caps,
            )

    def headroom(self, accounts: Sequence[Account]) -> tuple[int, int]:
        usd = tokens = UNLIMITED
        with self._lock:
            for a in accounts:
                if a.cap_usd != UNLIMITED:
                    usd = min(usd, a.cap_usd - a.usd - a.r_usd)
                if a.cap_tokens != UNLIMITED:
                    tokens = min(tokens, a.cap_tokens - a.tokens - a.r_tokens)
        return max(usd, 0), max(tokens, 0)

    def reset(self, account: Account) -> None:
        a = account
        with self._lock:
            a.usd = a.tokens = a.calls = a.tools = 0
            a.r_usd = a.r_tokens = a.r_calls = a.r_tools = 0
            a.generation += 1


def _overrun_used(index: int, a: Account) -> Overrun:
    if a.usd > a.cap_usd:
        return Overrun(index, "usd", a.usd, a.cap_usd)
    if a.tokens > a.cap_tokens:
        return Overrun(index, "tokens", a.tokens, a.cap_tokens)
    if a.calls > a.cap_calls:
        return Overrun(index, "llm_calls", a.calls, a.cap_calls)
    return Overrun(index, "tool_calls", a.tools, a.cap_tools)


def _overrun_wanted(
    index: int,
    a: Account,
    usd: int,
    tokens: int,
    calls: int,
    tools: int,
    need_headroom: bool = False,
) -> Overrun:
    u, t = a.usd + a.r_usd, a.tokens + a.r_tokens
    if u + usd > a.cap_usd or (need_headroom and u >= a.cap_usd):
        return Overrun(index, "usd", a.usd, a.cap_usd)
    if t + tokens > a.cap_tokens or (need_headroom and t >= a.cap_tokens):
        return Overrun(index, "tokens", a.tokens, a.cap_tokens)
    if a.calls + a.r_calls + calls > a.cap_calls:
        return Overrun(index, "llm_calls", a.calls, a.cap_calls)
    return Overrun(index, "tool_calls", a.tools, a.cap_tools)


DEFAULT_LEDGER: Final[Ledger] = InMemoryLedger()
"""The process-wide ledger budgets use unless given another one."""
