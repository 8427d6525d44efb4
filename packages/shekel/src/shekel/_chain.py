"""``Chain``: what spend needs of a budget, in one object.

A budget's spend goes to its own account and to the account of every budget enclosing it, each
held to that budget's caps: the *chain* of links, innermost first. The interceptor, the recording
engine (``_spend``) and the tree (``join``) work on this object; ``Budget`` is the user's handle
on it and keeps the tree's bookkeeping (children, activations, rollups).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import _clock
from ._history import SpendHistory
from ._keys import key_part, private_key
from ._ledger import UNLIMITED, AccountState, Caps, Ledger, Link
from ._loops import LoopGuard
from ._policies import PolicyState
from ._pricing import Rate
from ._snapshot import BudgetSnapshot, snapshot_of
from ._stores import forget_when_gone

if TYPE_CHECKING:
    from ._budget import Budget
    from ._config import BudgetConfig
    from ._windows import Period, Window


class Chain:
    """The accounts, caps, prices and policies a budget's spend goes through.

    ``links`` are the (account, caps) pairs spend is recorded on, innermost first; ``owners``
    says, for each link, whose it is and under which window (``None``: the budget's own account).
    A windowed link's account changes with the period, so its place in ``links`` holds ``None``
    and :meth:`current_links` fills it in. The flags let the interceptor take its shortest path:
    ``plain`` (no strict mode, unknown-model refusal, fallback, loop guard or window anywhere in
    the lineage) and ``unheld`` (plain, and nothing to hold before a call).
    """

    __slots__ = (
        "account",
        "budget",
        "capped",
        "config",
        "full_name",
        "guarded",
        "history",
        "key",
        "ledger",
        "lineage",
        "links",
        "lock",
        "loops",
        "owners",
        "parent",
        "pending",
        "periods",
        "plain",
        "policed",
        "policy",
        "price_tables",
        "private",
        "quick",
        "refuses_unknown",
        "strict",
        "timed",
        "unheld",
    )

    def __init__(self, budget: Budget, config: BudgetConfig, ledger: Ledger) -> None:
        self.budget = budget
        self.config = config
        self.ledger = ledger
        name = config.name
        # A store key nobody else can know (see ``_keys``): deleted once the budget is gone.
        self.private = name is None and ledger.shares_keys
        if name is not None:
            self.key = key_part(name)
        else:
            self.key = private_key("budget") if self.private else "budget"
        self.account: Any = ledger.open(self.key, config.caps)
        if self.private:
            forget_when_gone(budget, ledger, self.account)
        self.periods: dict[str, tuple[Period, Any]] = {}  # window spec -> current period
        self.parent: Chain | None = None
        self.lineage: tuple[Chain, ...] = (self,)
        self.full_name = name or "budget"
        self.timed = bool(config.windows)  # a window anywhere in the lineage
        self.links: tuple[Link, ...] = ()
        self.owners: tuple[tuple[Chain, Window | None], ...] = ()
        self.plain = self.unheld = self.quick = self.guarded = False
        # The caps the budget shows: its own, auto-capped when it was last activated (or
        # attached) to what its parent had left then.
        self.capped: Caps = config.caps
        # The non-empty ``prices`` tables of the lineage, innermost first.
        self.price_tables: list[dict[str, Rate]] = [config.prices] if config.prices else []
        self.history = SpendHistory(config.history_size)
        guard = config.loop_guard
        self.loops: LoopGuard | None = None if guard is None else LoopGuard(guard)
        self.lock = threading.Lock()
        self.policy = PolicyState(config)
        self.pending: set[Any] = set()  # streams being read (see ``_spend.add_pending``)
        self.strict = config.strict
        self.refuses_unknown = config.unknown_models == "error"
        self.relink_own()

    # -- the tree ----------------------------------------------------------------------

    def attach(self, parent: Chain, name: str, *, repeat: bool) -> None:
        """Extend this chain by ``parent``'s (the budget joined ``parent``'s budget as ``name``)."""
        config = self.config
        self.parent = parent
        self.lineage = (self, *parent.lineage)
        own_prices = [config.prices] if config.prices else []
        self.price_tables = own_prices + parent.price_tables
        self.full_name = f"{parent.full_name}.{name}"
        self.strict = config.strict or parent.strict
        self.refuses_unknown = self.refuses_unknown or parent.refuses_unknown
        ledger = self.ledger
        if ledger.shares_keys:  # the account a store knows this budget by: its path
            self.private = repeat or parent.private
            place = f"{parent.key}.{key_part(name)}"
            self.key = private_key(place) if repeat else place
            self.account = ledger.open(self.key, config.caps)
            if self.private:
                forget_when_gone(self.budget, ledger, self.account)
            self.periods.clear()
        self.relink_own()

    def reconfigure(self, config: BudgetConfig) -> None:
        """Take new caps (``set_limits``); the caller relinks the subtree."""
        self.config = config
        self.policy.config = config

    def relink_own(self) -> None:
        """Rebuild ``links``, ``owners`` and the flags from this budget's and its parent's."""
        parent = self.parent
        config = self.config
        windows = config.windows
        if windows:
            own_links: tuple[Link, ...] = tuple((None, w.caps) for w in windows)
            owners: tuple[tuple[Chain, Window | None], ...] = tuple((self, w) for w in windows)
        else:
            own_links = ((self.account, config.caps),)
            owners = ((self, None),)
        if parent is None:
            self.links, self.owners = own_links, owners
            self.timed = bool(windows)
        else:
            self.links = own_links + parent.links
            self.owners = owners + parent.owners
            self.timed = bool(windows) or parent.timed
        lineage = self.lineage
        self.guarded = any(c.loops is not None for c in lineage)
        # The budgets whose policy may act on a recorded call (a warning or a fallback to
        # watch for), innermost first: the rest never need a look after a call.
        self.policed = tuple(
            c for c in lineage if c.config.warn_at is not None or c.config.fallback is not None
        )
        self.plain = not (
            self.timed
            or self.strict
            or self.refuses_unknown
            or self.guarded
            or any(c.config.fallback is not None for c in lineage)
        )
        # Shorter still: nothing to hold before a call. Only a cap on LLM calls needs each call
        # in flight held (so that concurrent calls cannot pass it), and a store's hold is what
        # other processes see; otherwise checking that no budget of the chain is exhausted is
        # the whole decision.
        self.unheld = (
            self.plain
            and not self.ledger.blocks
            and all(caps[2] == UNLIMITED for _, caps in self.links)
        )
        # Shortest: a call is priced from the shared rates and recorded in one step
        # (``_interception._sdk_record.book_usual``).
        self.quick = self.unheld and not self.price_tables

    def autocap(self) -> None:
        """Lower the caps the budget shows to what its parent has left now. Enforcement needs
        no such figure (every operation checks the whole chain against each budget's own caps),
        so it is kept here, not in the ledger."""
        own = self.config.caps
        parent = self.parent
        if parent is None:
            self.capped = own
            return
        state = self.ledger.read(self.read_account())
        theirs = parent.ledger.read(parent.read_account())
        capped = []
        for cap, parent_cap, parent_used, parent_held, used in zip(
            own, parent.capped, theirs.used, theirs.reserved, state.used, strict=True
        ):
            if parent_cap == UNLIMITED or cap == UNLIMITED:
                capped.append(cap)
            else:
                room = parent_cap - parent_used - parent_held
                capped.append(min(cap, used + (room if room > 0 else 0)))
        self.capped = Caps(*capped)

    # -- accounts ----------------------------------------------------------------------

    def current_links(self) -> tuple[Link, ...]:
        """The chain as it stands now: windowed budgets' accounts of the current period."""
        if not self.timed:
            return self.links
        now = _clock.now()
        return tuple(
            (owner.period_account(window, now), caps) if window is not None else (account, caps)
            for (account, caps), (owner, window) in zip(self.links, self.owners, strict=True)
        )

    def period_account(self, window: Window, now: float) -> Any:
        current = self.periods.get(window.spec)
        if current is not None and now < current[0].ends_at:
            return current[1]
        with self.lock:
            current = self.periods.get(window.spec)
            if current is None or now >= current[0].ends_at:
                period = window.period(now)
                account = self.ledger.open(
                    f"{self.key}@{window.spec}/{period.label}",
                    window.caps,
                    keep_until=period.ends_at + window.length,
                )
                current = self.periods[window.spec] = (period, account)
        return current[1]

    def read_account(self) -> Any:
        """The account ``spent``, ``limit``... report: the budget's own, or, for a windowed
        budget, the current period of its longest window."""
        windows = self.config.windows
        if not windows:
            return self.account
        return self.period_account(windows[-1], _clock.now())

    def period_ends_at(self) -> float | None:
        windows = self.config.windows
        if not windows:
            return None
        self.period_account(windows[-1], _clock.now())
        return self.periods[windows[-1].spec][0].ends_at

    def used(self) -> tuple[int, int, int, int]:
        """Used on each axis (nano-dollars, tokens, LLM calls, tool calls)."""
        return self.ledger.read(self.read_account()).used

    def reading(self) -> tuple[BudgetSnapshot, AccountState, Caps]:
        state = self.ledger.read(self.read_account())
        caps = self.capped
        snap = snapshot_of(state, caps)
        if self.config.windows:
            snap = replace(snap, period_ends_at=self.period_ends_at())
        return snap, state, caps

    def reset(self) -> None:
        """Forget this budget's own spend, warnings and fallback (not its children's)."""
        for account in (self.account, *(account for _, account in self.periods.values())):
            self.ledger.reset(account)
        self.capped = self.config.caps
        self.history.clear()
        if self.loops is not None:
            self.loops.clear()
        self.policy.reset()

    def tool_price(self, tool_name: str) -> int:
        """``tool_prices[tool_name]`` of the innermost budget of the lineage that has one, or 0."""
        for c in self.lineage:
            price = c.config.tool_prices.get(tool_name)
            if price is not None:
                return price
        return 0
