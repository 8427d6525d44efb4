"""The SQLite store's tables, and reading and checking their rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ._keys import name_of
from ._ledger import AccountState, Caps, Link, Overrun
from ._windows import split_period_key

SCHEMA = """
CREATE TABLE IF NOT EXISTS shekel_accounts (
    key TEXT PRIMARY KEY,
    usd INTEGER NOT NULL DEFAULT 0,
    tokens INTEGER NOT NULL DEFAULT 0,
    calls INTEGER NOT NULL DEFAULT 0,
    tools INTEGER NOT NULL DEFAULT 0,
    r_usd INTEGER NOT NULL DEFAULT 0,
    r_tokens INTEGER NOT NULL DEFAULT 0,
    r_calls INTEGER NOT NULL DEFAULT 0,
    r_tools INTEGER NOT NULL DEFAULT 0,
    epoch INTEGER NOT NULL DEFAULT 0,
    caps TEXT,
    keep_until REAL
);
CREATE TABLE IF NOT EXISTS shekel_holds (
    id TEXT PRIMARY KEY,
    keys TEXT NOT NULL,
    epochs TEXT NOT NULL,
    usd INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    tools INTEGER NOT NULL,
    expires_at REAL,
    state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS shekel_holds_due ON shekel_holds (state, expires_at);
CREATE INDEX IF NOT EXISTS shekel_accounts_kept ON shekel_accounts (keep_until)
    WHERE keep_until IS NOT NULL;
"""

COUNTERS = ("usd", "tokens", "calls", "tools")
COLUMNS = (*COUNTERS, *(f"r_{c}" for c in COUNTERS), "epoch")


class CorruptAccountError(sqlite3.DatabaseError):
    """An account's row holds a value that is not a whole number >= 0 (edited by hand, or
    damaged): its budgets fail closed until it is fixed or reset; other budgets go on."""

    def __init__(self, key: str, column: str, value: object) -> None:
        super().__init__(
            f"account {key} holds {column}={value}, which is not a whole number >= 0; "
            f"fix the row, or zero it with `shekel reset {name_of(split_period_key(key)[0])}`"
        )


AXES = ("usd", "tokens", "llm_calls", "tool_calls")


def nothing() -> None:
    return None


def readable_hold(keys: object, epochs: object, amounts: Sequence[object]) -> bool:
    return (
        isinstance(keys, list)
        and isinstance(epochs, list)
        and len(keys) == len(epochs)
        and all(isinstance(k, str) for k in keys)
        and all(type(e) is int for e in epochs)
        and all(type(x) is int and x >= 0 for x in amounts)
    )


def empty_state() -> AccountState:
    return AccountState((0, 0, 0, 0), (0, 0, 0, 0))


def like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def over_used(rows: Sequence[tuple[int, ...]], caps: Sequence[Caps]) -> Overrun | None:
    for i, (row, cap) in enumerate(zip(rows, caps, strict=True)):
        for axis in range(4):
            if row[axis] > cap[axis]:
                return Overrun(i, AXES[axis], row[axis], cap[axis])
    return None


def refusal(
    rows: Sequence[tuple[int, ...]],
    chain: Sequence[Link],
    amounts: Sequence[int],
    need_headroom: bool,
) -> Overrun | None:
    for i, (row, (_, caps)) in enumerate(zip(rows, chain, strict=True)):
        for axis in range(4):
            taken = row[axis] + row[axis + 4]
            if taken + amounts[axis] > caps[axis] or (
                need_headroom and axis < 2 and taken >= caps[axis]
            ):
                return Overrun(i, AXES[axis], row[axis], caps[axis])
    return None
