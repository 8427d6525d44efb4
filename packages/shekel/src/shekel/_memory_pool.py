"""The in-memory ledger's answers to a caller that records, reserves and commits on one chain
over and over (a pool): one function each from the caller's arguments to the counters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._ledger import (
    NO_CAPS,
    Amounts,
    Committer,
    Hold,
    Ledger,
    Link,
    Overrun,
    Recorder,
    Refuse,
    Reserver,
)
from ._memory_accounts import LIVE, SETTLED, MemoryHold, overrun_used, overrun_wanted

if TYPE_CHECKING:
    from ._memory_ledger import InMemoryLedger


def recorder(
    ledger: InMemoryLedger, chain: Sequence[Link], amounts: Amounts, refuse: Refuse
) -> Recorder:
    """:meth:`InMemoryLedger.recorder`."""
    if len(chain) != 1:
        return Ledger.recorder(ledger, chain, amounts, refuse)
    ((a, caps),) = chain
    lock = ledger._lock
    usd_cap, tokens_cap = caps[0], caps[1]

    # One function from the arguments to the counters: this is a pool's hot path.
    def record_one(tokens: int = 0, usd: float = 0.0) -> None:
        if type(usd) is float and 0.0 <= usd < 1e9 and type(tokens) is int and tokens >= 0:
            nanos, count = round(usd * 1e9), tokens
        else:
            count, nanos = amounts(tokens, usd)
        with lock:  # only USD and tokens grow here: only they can pass a cap
            if a.usd + a.r_usd + nanos > usd_cap or a.tokens + a.r_tokens + count > tokens_cap:
                over = overrun_wanted(0, a, caps, nanos, count, 0, 0)
            else:
                a.usd += nanos
                a.tokens += count
                return
        refuse(over, tokens, usd)

    return record_one


def reserver(
    ledger: InMemoryLedger, chain: Sequence[Link], amounts: Amounts, refuse: Refuse
) -> Reserver:
    """:meth:`InMemoryLedger.reserver`: USD and tokens only, on a chain with no TTL and no cap
    on calls (anything else goes the general way)."""
    if len(chain) != 1 or ledger.default_ttl is not None or chain[0][1][2:] != NO_CAPS[2:]:
        return Ledger.reserver(ledger, chain, amounts, refuse)
    ((a, caps),) = chain
    lock, ids = ledger._lock, ledger._ids
    usd_cap, tokens_cap = caps[0], caps[1]
    accounts, all_caps = (a,), (caps,)

    # As ``record_one``: a pool's other hot path, on its two axes only.
    def reserve_one(tokens: int = 0, usd: float = 0.0) -> Hold:
        if type(usd) is float and 0.0 <= usd < 1e9 and type(tokens) is int and tokens >= 0:
            nanos, count = round(usd * 1e9), tokens
        else:
            count, nanos = amounts(tokens, usd)
        with lock:
            if a.usd + a.r_usd + nanos > usd_cap or a.tokens + a.r_tokens + count > tokens_cap:
                over = overrun_wanted(0, a, caps, nanos, count, 0, 0)
            else:
                a.r_usd += nanos
                a.r_tokens += count
                epoch = a.epoch
                over = None
        if over is not None:
            refuse(over, tokens, usd)
        hold = MemoryHold(next(ids), accounts, all_caps, nanos, count, 0, 0, (epoch,), None)
        hold.state = LIVE
        return hold

    return reserve_one


def committer(ledger: InMemoryLedger, amounts: Amounts) -> Committer:
    """:meth:`InMemoryLedger.committer`: straight-line for a pool's hold, the general
    ``commit`` for any other."""
    lock, general = ledger._lock, ledger.commit

    def commit_one(hold: Hold, tokens: int = 0, usd: float = 0.0) -> Overrun | None:
        if type(usd) is float and 0.0 <= usd < 1e9 and type(tokens) is int and tokens >= 0:
            nanos, count = round(usd * 1e9), tokens
        else:
            count, nanos = amounts(tokens, usd)
        accounts = hold.accounts
        if (  # anything but a pool's hold (one account, no calls, no TTL) goes the long way
            len(accounts) != 1
            or type(hold) is not MemoryHold
            or hold.calls
            or hold.tools
            or hold.expires_at is not None
        ):
            return general(hold, nanos, count)
        a, caps = accounts[0], hold.caps[0]
        with lock:
            if hold.state == LIVE:
                hold.state = SETTLED
                if a.epoch == hold.epochs[0]:
                    a.r_usd -= hold.usd
                    a.r_tokens -= hold.tokens
                a.usd += nanos
                a.tokens += count
                if a.usd > caps[0] or a.tokens > caps[1] or a.calls > caps[2] or a.tools > caps[3]:
                    return overrun_used(0, a, caps)
                return None
        return general(hold, nanos, count)  # settled or expired meanwhile

    return commit_one
