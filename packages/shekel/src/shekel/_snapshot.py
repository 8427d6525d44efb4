"""Point-in-time readings of a budget or pool."""

from __future__ import annotations

from dataclasses import dataclass

from ._ledger import UNLIMITED, AccountState, Caps
from ._money import nanos_to_usd


@dataclass(frozen=True, slots=True)
class BudgetSnapshot:
    """A consistent reading of a budget or pool: used, reserved and remaining on each axis.

    ``*_remaining`` is ``limit - used - reserved`` (never below 0), or ``None`` with no limit.
    """

    usd_used: float
    usd_reserved: float
    usd_remaining: float | None
    usd_limit: float | None
    tokens_used: int
    tokens_reserved: int
    tokens_remaining: int | None
    tokens_limit: int | None
    llm_calls_used: int
    llm_calls_remaining: int | None
    tool_calls_used: int
    tool_calls_remaining: int | None
    llm_calls_limit: int | None = None
    tool_calls_limit: int | None = None
    period_ends_at: float | None = None
    """When the current period of the longest window ends (POSIX seconds); ``None`` without
    ``windows=``."""


def snapshot_of(state: AccountState, caps: Caps) -> BudgetSnapshot:
    """A reading of one account against the caps it is held to."""
    (usd, tok, calls, tools), (r_usd, r_tok, r_calls, r_tools) = state.used, state.reserved

    def left(cap: int, used: int, held: int) -> int | None:
        return None if cap == UNLIMITED else max(cap - used - held, 0)

    usd_left = left(caps.usd, usd, r_usd)
    return BudgetSnapshot(
        usd_used=nanos_to_usd(usd),
        usd_reserved=nanos_to_usd(r_usd),
        usd_remaining=None if usd_left is None else nanos_to_usd(usd_left),
        usd_limit=None if caps.usd == UNLIMITED else nanos_to_usd(caps.usd),
        tokens_used=tok,
        tokens_reserved=r_tok,
        tokens_remaining=left(caps.tokens, tok, r_tok),
        tokens_limit=None if caps.tokens == UNLIMITED else caps.tokens,
        llm_calls_used=calls,
        llm_calls_remaining=left(caps.llm_calls, calls, r_calls),
        tool_calls_used=tools,
        tool_calls_remaining=left(caps.tool_calls, tools, r_tools),
        llm_calls_limit=None if caps.llm_calls == UNLIMITED else caps.llm_calls,
        tool_calls_limit=None if caps.tool_calls == UNLIMITED else caps.tool_calls,
    )
