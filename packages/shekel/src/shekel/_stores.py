"""Where budgets keep their accounts: ``store=`` URLs and the default store.

``"memory"`` is this process's memory (the default); ``"sqlite:///path/spend.db"`` an embedded
SQLite file every process on the host can share; ``"redis://host:6379/0"`` a Redis server every
process on every host can share. One ledger object serves each URL in a process.

The default store, used by budgets that ask for it (``store="default"``, or a budget with a
``window`` and no ``store``), comes from the ``SHEKEL_STORE`` environment variable, else from a
``shekel.toml`` in the working directory (``[store]`` table, ``url = "..."``).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

from ._errors import BudgetConfigError
from ._ledger import Ledger
from ._memory_ledger import DEFAULT_LEDGER

STORE_ENV: Final = "SHEKEL_STORE"
STORE_FILE: Final = "shekel.toml"

_opened: dict[str, Ledger] = {}
_lock = threading.Lock()


def default_store_url() -> str | None:
    """The configured default store: ``SHEKEL_STORE``, else ``shekel.toml``'s ``[store] url``."""
    url = os.environ.get(STORE_ENV, "").strip()
    if url:
        return url
    path = Path(STORE_FILE)
    if not path.is_file():
        return None
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BudgetConfigError(
            f"{path.resolve()} could not be read as TOML ({exc}); fix it, or set {STORE_ENV}"
        ) from None
    table = data.get("store")
    if table is None:
        return None
    found = table.get("url") if isinstance(table, dict) else None
    if not isinstance(found, str) or not found.strip():
        raise BudgetConfigError(
            f'{path.resolve()}: [store] needs url = "sqlite:///spend.db" or "redis://host:6379/0"'
        )
    return found.strip()


def resolve_store(store: object, *, windowed: bool) -> Ledger:
    """The ledger for a budget's ``store=`` argument."""
    if isinstance(store, Ledger):
        return store
    if store is None:
        url = default_store_url() if windowed else None
        return DEFAULT_LEDGER if url is None else open_store(url)
    if store == "default":
        url = default_store_url()
        if url is None:
            raise BudgetConfigError(
                f'store="default" needs a default store: set {STORE_ENV}=sqlite:///spend.db '
                f"(or redis://host:6379/0), or put [store] url = ... in {STORE_FILE}"
            )
        return open_store(url)
    if isinstance(store, str):
        return open_store(store)
    raise BudgetConfigError(
        "store must be a URL ('sqlite:///spend.db', 'redis://host:6379/0', 'memory'), "
        f"'default', or a shekel Ledger; got {type(store).__name__}"
    )


def open_store(url: str) -> Ledger:
    """The process's ledger for ``url`` (opened on first use)."""
    with _lock:
        found = _opened.get(url)
        if found is not None:
            return found
        ledger = _connect(url)
        _opened[url] = ledger
        return ledger


def _connect(url: str) -> Ledger:
    if url == "memory":
        return DEFAULT_LEDGER
    if url.startswith("sqlite:"):
        base, options, others = _split_options(url)
        path = base.removeprefix("sqlite:///")
        if not base.startswith("sqlite:///") or not path:
            raise BudgetConfigError(
                f"store {shown_url(url)!r}: write sqlite:///relative/spend.db or sqlite:////abs/spend.db"
            )
        if others:
            raise BudgetConfigError(
                f"store {url!r}: an SQLite URL takes the options {', '.join(OPTIONS)}, "
                f"not {', '.join(sorted(others))}"
            )
        from ._store_sqlite import SQLiteLedger

        return SQLiteLedger(path, **options)
    if url.startswith(("redis://", "rediss://")):
        base, options, others = _split_options(url)
        from ._store_redis import RedisLedger

        return RedisLedger(_with_query(base, others), **options)
    raise BudgetConfigError(
        f"store {shown_url(url)!r} is not a store shekel knows: use 'sqlite:///path/spend.db', "
        "'redis://host:6379/0' or 'memory'"
    )


OPTIONS: Final = ("on_error", "timeout", "ttl", "retry")
"""The options every store URL takes after ``?``: ``on_error=open|closed``, ``timeout=SECONDS``
(how long an operation waits for the store), ``ttl=SECONDS`` (how long a hold's lease lasts),
``retry=SECONDS`` (how long the write of spend that already happened is retried before it is
kept in the process's journal)."""
_SECONDS: Final = {"timeout": "timeout", "ttl": "default_ttl", "retry": "retry_for"}


def _split_options(url: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    """``url`` without its query; shekel's options as keyword arguments; the other options."""
    base, _, query = url.partition("?")
    options: dict[str, Any] = {}
    others: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "on_error":
            options["on_error"] = value
        elif name in _SECONDS:
            try:
                seconds = float(value)
            except ValueError:
                seconds = float("nan")
            if not 0 < seconds < 1e9:
                raise BudgetConfigError(
                    f"store {shown_url(url)!r}: {name} must be a number of seconds greater than 0, "
                    f"got {value!r}"
                ) from None
            options[_SECONDS[name]] = seconds
        else:
            others[name] = value
    return base, options, others


def _with_query(base: str, query: dict[str, str]) -> str:
    return f"{base}?{urlencode(query)}" if query else base


def shown_url(url: str) -> str:
    """``url`` without its password."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if parts.port is not None:
            host += f":{parts.port}"
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return url


# -- accounts only a gone budget knew ----------------------------------------------------------

FORGET_BATCH: Final = 64
FORGET_WITHIN: Final = 10.0
"""Accounts of gone budgets are deleted from their store in batches: once this many wait, or
the oldest has waited this many seconds (checked as budgets begin), and at interpreter exit."""

# Filled by finalizers, which may run at any point of any thread: no lock, no I/O, only the
# deque's atomic appends. Emptied by :func:`forget_gone`.
GONE: Final[deque[tuple[float, Ledger, Any]]] = deque()
_RETRY_AT: Final[list[float]] = [0.0]  # after a failed batch, when to try again (monotonic)


class _UntilExit:
    """An object alive until interpreter exit, where its finalizer deletes whatever waits."""


_UNTIL_EXIT: Final = _UntilExit()
_exit_flush: list[weakref.finalize[Any, Any]] = []


def forget_when_gone(owner: object, ledger: Ledger, account: Any) -> None:
    """Have ``ledger`` forget ``account`` once ``owner`` is garbage, or at interpreter exit:
    for store keys nobody else can know (an unnamed root budget's, a repeat's), which would
    otherwise pile up in the store, one per budget object."""
    if not _exit_flush:
        # At exit, ``weakref`` calls the finalizers still pending, newest first: this one, made
        # before any budget's, runs after them all and so deletes what they queued.
        _exit_flush.append(weakref.finalize(_UNTIL_EXIT, forget_gone, at_exit=True))
    weakref.finalize(owner, _gone, ledger, account, os.getpid())


def _gone(ledger: Ledger, account: Any, pid: int) -> None:
    # A forked process inherits the budget objects, and so their finalizers: the account is
    # still the parent's, which goes on using it.
    if os.getpid() == pid:
        GONE.append((time.monotonic(), ledger, account))


def forget_gone(*, at_exit: bool = False) -> None:
    """Delete the accounts of gone budgets, if enough wait or the oldest waited long enough
    (all of them at exit)."""
    try:
        oldest = GONE[0][0]
    except IndexError:
        return
    now = time.monotonic()
    if not at_exit and (
        now < _RETRY_AT[0] or (len(GONE) < FORGET_BATCH and now - oldest < FORGET_WITHIN)
    ):
        return
    batches: dict[int, tuple[Ledger, list[Any]]] = {}
    while True:
        try:
            _, ledger, account = GONE.popleft()
        except IndexError:
            break
        batches.setdefault(id(ledger), (ledger, []))[1].append(account)
    _RETRY_AT[0] = 0.0
    for ledger, accounts in batches.values():
        try:
            ledger.forget(accounts)
        except Exception:
            # Tidying up: the budget that began goes on. The accounts wait for a later batch,
            # tried no sooner than FORGET_WITHIN from now, so that a store that is down does not
            # make every budget that begins wait for its timeout.
            if not at_exit:
                _RETRY_AT[0] = time.monotonic() + FORGET_WITHIN
                GONE.extend((now, ledger, account) for account in accounts)
