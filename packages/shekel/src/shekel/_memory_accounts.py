"""What the in-memory ledger keeps: accounts, holds, and the overruns read off them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ._ledger import Caps, Hold, Link, Overrun


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
NOT_LIVE: Final = Overrun(-1, "", 0, 0)
"""What ``_commit_short`` answers for a hold that stopped being live (compared by identity)."""


class MemoryHold(Hold):
    """An in-memory hold: the ledger keeps its state in the hold itself."""

    __slots__ = ("state",)
    state: int


def overrun_used(index: int, a: Account, caps: Caps) -> Overrun:
    if a.usd > caps[0]:
        return Overrun(index, "usd", a.usd, caps[0])
    if a.tokens > caps[1]:
        return Overrun(index, "tokens", a.tokens, caps[1])
    if a.calls > caps[2]:
        return Overrun(index, "llm_calls", a.calls, caps[2])
    return Overrun(index, "tool_calls", a.tools, caps[3])


def overrun_wanted(
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


def refusal(
    chain: Sequence[Link],
    usd: int,
    tokens: int,
    calls: int,
    tools: int,
    need_headroom: bool,
) -> Overrun | None:
    """The first account of ``chain`` that cannot take these amounts (call with the ledger's
    lock held), or ``None``."""
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
            return overrun_wanted(i, a, caps, usd, tokens, calls, tools, need_headroom)
    return None
