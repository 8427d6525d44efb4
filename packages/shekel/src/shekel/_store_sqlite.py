"""``SQLiteLedger``: budgets kept in an SQLite file, shared by every process on the host.

Each operation on a chain is one ``BEGIN IMMEDIATE`` transaction in WAL mode, so it is atomic
across the whole chain and across processes. Money is stored as integers (nano-dollars). A
commit is on disk before the call returns: a writer killed with ``kill -9`` loses nothing it
committed (``synchronous=NORMAL`` in WAL mode survives a process crash; pass
``durable=True`` for ``FULL``, which also survives a power cut, at a cost per write).
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ._journal import PendingSpend
from ._leases import DEFAULT_TTL
from ._ledger import NO_CAPS, UNLIMITED, AccountState, Caps, Hold, Ledger, Link, Overrun
from ._store_errors import DEFAULT_RETRY, StoreErrors
from ._store_sqlite_rows import (
    COLUMNS,
    COUNTERS,
    SCHEMA,
    CorruptAccountError,
    empty_state,
    like_prefix,
    nothing,
    over_used,
    readable_hold,
    refusal,
)
from ._windows import split_period_key

SETTLED_MEMORY = 3600.0
"""Seconds past its expiry that a settled hold's id is remembered."""


@dataclass(frozen=True, slots=True)
class SQLiteAccount:
    """A handle on one account of an SQLite store (no I/O until it is used)."""

    key: str
    caps: Caps = NO_CAPS
    keep_until: float | None = None


class SQLiteLedger(Ledger):
    """A ledger in the SQLite file at ``path``.

    ``timeout``: seconds an operation waits for another process's transaction before the store
    counts as unavailable. ``default_ttl``: seconds a hold's lease lasts unless renewed (this
    process renews the leases of its calls in flight; a worker that died holding gives its
    room back after that). ``retry_for``: seconds a commit of spend that already happened is
    retried before it is kept in the process's journal. ``on_error``: ``"closed"`` (the default)
    raises ``BudgetStoreUnavailableError`` when the file cannot be used, so nothing is sent
    unaccounted; ``"open"`` lets calls go on unrecorded, with a warning.
    """

    shares_keys: ClassVar[bool] = True
    blocks: ClassVar[bool] = True

    def __init__(
        self,
        path: str | Path,
        *,
        timeout: float = 5.0,
        default_ttl: float = DEFAULT_TTL,
        on_error: str = "closed",
        durable: bool = False,
        retry_for: float = DEFAULT_RETRY,
    ) -> None:
        self.path = str(path)
        self.timeout = timeout
        self.default_ttl = self._life = default_ttl
        self.durable = durable
        self._errors = StoreErrors(
            f"sqlite:///{self.path}",
            on_error,
            sqlite3.Error,
            damage=CorruptAccountError,
            retry_for=retry_for,
        )
        self._local = threading.local()
        self._errors.run(self._create, default=nothing)

    def _create(self) -> None:
        db = self._connection()
        db.executescript(SCHEMA)

    def __repr__(self) -> str:
        return f"SQLiteLedger({self.path!r})"

    # -- connections -----------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None or self._local.pid != os.getpid():
            # A connection is never used across fork(): a child process inherits the object
            # (and this thread-local) but opens its own (the inherited one is left alone).
            self._local.pid = os.getpid()
            db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            self._use_wal(db)
            db.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
            self._local.db = db
        return db

    def _use_wal(self, db: sqlite3.Connection) -> None:
        """Switch the file to write-ahead logging (once per file; later it is a no-op).

        The switch needs the file to itself, and SQLite answers "database is locked" at once,
        without waiting the timeout, when another connection is writing meanwhile (processes
        opening a new store together): so it is retried here until the timeout.
        """
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        while True:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- rows ------------------------------------------------------------------------------

    def _ensure(self, db: sqlite3.Connection, accounts: Sequence[SQLiteAccount]) -> None:
        for a in accounts:
            caps = json.dumps([None if c == UNLIMITED else c for c in a.caps])
            db.execute(
                "INSERT INTO shekel_accounts (key, caps, keep_until) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO NOTHING",
                (a.key, caps, a.keep_until),
            )

    def _rows(
        self, db: sqlite3.Connection, accounts: Sequence[SQLiteAccount]
    ) -> list[tuple[int, ...]]:
        rows: list[tuple[int, ...]] = []
        for a in accounts:
            row = db.execute(
                "SELECT usd, tokens, calls, tools, r_usd, r_tokens, r_calls, r_tools, epoch "
                "FROM shekel_accounts WHERE key = ?",
                (a.key,),
            ).fetchone()
            if row is None:
                rows.append((0,) * 9)
                continue
            for column, value in zip(COLUMNS, row, strict=True):
                if type(value) is not int or value < 0:  # edited by hand, or damaged
                    raise CorruptAccountError(a.key, column, value)
            rows.append(tuple(row))
        return rows

    def _add(
        self, db: sqlite3.Connection, keys: Sequence[str], amounts: Sequence[int], reserved: bool
    ) -> None:
        columns = [f"r_{c}" if reserved else c for c in COUNTERS]
        assignments = ", ".join(f"{c} = {c} + ?" for c in columns)
        for key in keys:
            db.execute(f"UPDATE shekel_accounts SET {assignments} WHERE key = ?", (*amounts, key))

    def _expire_due(self, db: sqlite3.Connection, now: float) -> int:
        # Holds settled long ago are forgotten (a second commit comes at once, not an hour
        # after the hold expired); holds that expired unsettled stay, so that their commit
        # still records the spend whenever it comes.
        db.execute(
            "DELETE FROM shekel_holds WHERE state = 'settled' AND expires_at < ?",
            (now - SETTLED_MEMORY,),
        )
        # Accounts kept until a moment (a window's past periods) are forgotten after it, as
        # Redis lets such keys expire.
        db.execute(
            "DELETE FROM shekel_accounts WHERE keep_until IS NOT NULL AND keep_until < ?", (now,)
        )
        due = db.execute(
            "SELECT id, keys, epochs, usd, tokens, calls, tools FROM shekel_holds "
            "WHERE state = 'live' AND expires_at IS NOT NULL AND expires_at <= ?",
            (now,),
        ).fetchall()
        for hold_id, keys, epochs, *amounts in due:
            # A damaged hold cannot say what it held: its room stays taken on the accounts it
            # was on (those budgets fail closed), and no other budget is affected.
            state = "damaged"
            try:
                keys, epochs = json.loads(keys), json.loads(epochs)
            except (ValueError, TypeError):
                keys = None
            if readable_hold(keys, epochs, amounts):
                self._unhold(db, keys, epochs, [-x for x in amounts])
                state = "expired"
            db.execute("UPDATE shekel_holds SET state = ? WHERE id = ?", (state, hold_id))
        return len(due)

    def _unhold(
        self, db: sqlite3.Connection, keys: Sequence[str], epochs: Sequence[int], negated: list[int]
    ) -> None:
        assignments = ", ".join(f"r_{c} = r_{c} + ?" for c in COUNTERS)
        for key, epoch in zip(keys, epochs, strict=True):
            db.execute(
                f"UPDATE shekel_accounts SET {assignments} WHERE key = ? AND epoch = ?",
                (*negated, key, epoch),
            )

    # -- the contract ----------------------------------------------------------------------

    def open(
        self, key: str, caps: Caps = NO_CAPS, *, keep_until: float | None = None
    ) -> SQLiteAccount:
        return SQLiteAccount(key, caps, keep_until)

    def record(
        self, chain: Sequence[Link], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        # A failed transaction applied nothing: writing it again applies it once.
        write = functools.partial(self._record, chain, (usd, tokens, calls, tools))
        pending = PendingSpend(write, chain[0][0].key, (usd, tokens, calls, tools))
        return self._errors.spend(write, pending)

    def _record(self, chain: Sequence[Link], amounts: tuple[int, ...]) -> Overrun | None:
        usd, tokens, calls, tools = amounts
        with self._transaction() as db:
            accounts = [a for a, _ in chain]
            self._ensure(db, accounts)
            self._add(db, [a.key for a in accounts], (usd, tokens, calls, tools), False)
            return over_used(self._rows(db, accounts), [c for _, c in chain])

    def try_record(
        self, chain: Sequence[Link], usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        return self._errors.run(
            self._try_record, chain, (usd, tokens, calls, tools), default=nothing
        )

    def _try_record(self, chain: Sequence[Link], amounts: tuple[int, ...]) -> Overrun | None:
        usd, tokens, calls, tools = amounts
        with self._transaction() as db:
            self._expire_due(db, time.time())
            accounts = [a for a, _ in chain]
            self._ensure(db, accounts)
            refused = refusal(self._rows(db, accounts), chain, (usd, tokens, calls, tools), False)
            if refused is None:
                self._add(db, [a.key for a in accounts], (usd, tokens, calls, tools), False)
            return refused

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
        amounts = (usd, tokens, calls, tools)
        life = self._life if ttl is None else ttl
        return self._errors.run(
            self._reserve,
            chain,
            amounts,
            need_headroom,
            life,
            default=lambda: self._errors.unrecorded_hold(chain, amounts),
        )

    def _reserve(
        self, chain: Sequence[Link], amounts: tuple[int, ...], need_headroom: bool, life: float
    ) -> Hold | Overrun:
        accounts = tuple(a for a, _ in chain)
        caps = tuple(c for _, c in chain)
        with self._transaction() as db:
            now = time.time()
            self._expire_due(db, now)
            self._ensure(db, accounts)
            rows = self._rows(db, accounts)
            refused = refusal(rows, chain, amounts, need_headroom)
            if refused is not None:
                return refused
            keys = [a.key for a in accounts]
            self._add(db, keys, amounts, True)
            epochs = tuple(row[8] for row in rows)
            usd, tokens, calls, tools = amounts
            hold = Hold(
                uuid.uuid4().hex, accounts, caps, usd, tokens, calls, tools, epochs, now + life
            )
            db.execute(
                "INSERT INTO shekel_holds VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'live')",
                (hold.id, json.dumps(keys), json.dumps(epochs), *amounts, hold.expires_at),
            )
            return hold

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
        amounts = (usd, tokens, calls, tools)
        return self._errors.run(self._check, chain, amounts, need_headroom, default=nothing)

    def _check(
        self, chain: Sequence[Link], amounts: tuple[int, ...], need_headroom: bool
    ) -> Overrun | None:
        with self._transaction() as db:
            self._expire_due(db, time.time())
            rows = self._rows(db, [a for a, _ in chain])
            return refusal(rows, chain, amounts, need_headroom)

    def _settle(self, db: sqlite3.Connection, hold: Hold) -> bool:
        row = db.execute("SELECT state FROM shekel_holds WHERE id = ?", (hold.id,)).fetchone()
        if row is None or row[0] == "settled":
            return False
        if row[0] == "live":
            amounts = [hold.usd, hold.tokens, hold.calls, hold.tools]
            keys = [a.key for a in hold.accounts]
            self._unhold(db, keys, hold.epochs, [-x for x in amounts])
        db.execute("UPDATE shekel_holds SET state = 'settled' WHERE id = ?", (hold.id,))
        return True

    def commit(
        self, hold: Hold, usd: int, tokens: int, calls: int = 0, tools: int = 0
    ) -> Overrun | None:
        if self._errors.is_unrecorded(hold):
            return None
        write = functools.partial(self._commit, hold, (usd, tokens, calls, tools))
        pending = PendingSpend(write, hold.accounts[0].key, (usd, tokens, calls, tools), hold)
        return self._errors.spend(write, pending)

    def _commit(self, hold: Hold, amounts: tuple[int, ...]) -> Overrun | None:
        with self._transaction() as db:
            if not self._settle(db, hold):
                return None
            self._add(db, [a.key for a in hold.accounts], amounts, False)
            return over_used(self._rows(db, hold.accounts), hold.caps)

    def release(self, hold: Hold) -> None:
        if not self._errors.is_unrecorded(hold):
            self._errors.run(self._release, hold, default=nothing)

    def _release(self, hold: Hold) -> None:
        with self._transaction() as db:
            self._settle(db, hold)

    def renew(self, leases: Sequence[tuple[Hold, float]]) -> None:
        with self._transaction() as db:
            now = time.time()
            db.executemany(
                "UPDATE shekel_holds SET expires_at = ? WHERE id = ? AND state = 'live'",
                [(now + ttl, hold.id) for hold, ttl in leases],
            )

    def read(self, account: SQLiteAccount) -> AccountState:
        return self._errors.run(self._read, account, default=empty_state)

    def _read(self, account: SQLiteAccount) -> AccountState:
        db = self._connection()
        due = db.execute(
            "SELECT 1 FROM shekel_holds WHERE state = 'live' AND expires_at <= ? LIMIT 1",
            (time.time(),),
        ).fetchone()
        if due is not None:  # a reading never counts holds whose lease ran out
            self._expire()
        row = self._rows(db, [account])[0]
        return AccountState(row[:4], row[4:8])  # type: ignore[arg-type]

    def headroom(self, chain: Sequence[Link]) -> tuple[int, int]:
        return self._errors.run(self._headroom, chain, default=lambda: (UNLIMITED, UNLIMITED))

    def _headroom(self, chain: Sequence[Link]) -> tuple[int, int]:
        with self._transaction() as db:
            self._expire_due(db, time.time())
            rows = self._rows(db, [a for a, _ in chain])
        usd = tokens = UNLIMITED
        for row, (_, caps) in zip(rows, chain, strict=True):
            if caps[0] != UNLIMITED:
                usd = min(usd, caps[0] - row[0] - row[4])
            if caps[1] != UNLIMITED:
                tokens = min(tokens, caps[1] - row[1] - row[5])
        return max(usd, 0), max(tokens, 0)

    def reset(self, account: SQLiteAccount) -> None:
        self._errors.run(self._reset, account, default=nothing)

    def _reset(self, account: SQLiteAccount) -> None:
        with self._transaction() as db:
            self._ensure(db, [account])
            zeros = ", ".join(f"{c} = 0, r_{c} = 0" for c in COUNTERS)
            db.execute(
                f"UPDATE shekel_accounts SET {zeros}, epoch = epoch + 1 WHERE key = ?",
                (account.key,),
            )

    def expire(self) -> int:
        return self._errors.run(self._expire, default=lambda: 0)

    def forget(self, accounts: Sequence[SQLiteAccount]) -> None:
        with self._transaction() as db:
            db.executemany(
                "DELETE FROM shekel_accounts WHERE key = ?", [(a.key,) for a in accounts]
            )

    def _expire(self) -> int:
        with self._transaction() as db:
            return self._expire_due(db, time.time())

    # -- for the CLI -----------------------------------------------------------------------

    def accounts(self, prefix: str = "") -> list[dict[str, Any]]:
        """Every account whose key starts with ``prefix``: counters, caps, live holds."""
        return self._errors.closed(self._accounts, prefix)

    def _accounts(self, prefix: str) -> list[dict[str, Any]]:
        with self._transaction() as db:
            self._expire_due(db, time.time())
            rows = db.execute(
                "SELECT key, usd, tokens, calls, tools, r_usd, r_tokens, r_calls, r_tools, "
                "caps, keep_until FROM shekel_accounts WHERE key LIKE ? ESCAPE '\\' ORDER BY key",
                (like_prefix(prefix),),
            ).fetchall()
            live = db.execute("SELECT keys FROM shekel_holds WHERE state = 'live'").fetchall()
        holds: dict[str, int] = {}
        for (keys,) in live:
            for key in json.loads(keys):
                holds[key] = holds.get(key, 0) + 1
        return [
            {
                "key": key,
                "used": list(rest[:4]),
                "reserved": list(rest[4:8]),
                "caps": json.loads(rest[8]) if rest[8] else [None] * 4,
                "keep_until": rest[9],
                "holds": holds.get(key, 0),
            }
            for key, *rest in rows
        ]

    def reset_key(self, key: str) -> list[str]:
        """Reset every account whose key is ``key`` or one of its periods; their keys."""
        return self._errors.closed(self._reset_key, key)

    def _reset_key(self, key: str) -> list[str]:
        with self._transaction() as db:
            keys = [
                row[0]
                for row in db.execute(
                    "SELECT key FROM shekel_accounts WHERE key = ? OR key LIKE ? ESCAPE '\\'",
                    (key, like_prefix(key + "@")),
                )
                if split_period_key(row[0])[0] == key  # not "a@b@1d/..." for "a"
            ]
            zeros = ", ".join(f"{c} = 0, r_{c} = 0" for c in COUNTERS)
            for k in keys:
                db.execute(
                    f"UPDATE shekel_accounts SET {zeros}, epoch = epoch + 1 WHERE key = ?", (k,)
                )
        return sorted(keys)
