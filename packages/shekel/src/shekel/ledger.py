"""For ledger authors and store users: where budgets keep their accounts.

``Ledger`` is the contract (``shekel.testing.ledger_contract`` is its conformance suite);
``InMemoryLedger`` keeps accounts in this process, ``SQLiteLedger`` in a file every process on
the host shares, ``RedisLedger`` on a server every host shares. ``open_store(url)`` gives the
process's ledger for a store URL, as ``budget(store=url)`` does. ``SQLiteLedger`` and
``RedisLedger`` are imported on first use (``import shekel.ledger`` never imports redis).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._ledger import UNLIMITED, AccountState, Caps, Hold, Ledger, Overrun
from ._memory_ledger import InMemoryLedger
from ._stores import open_store

if TYPE_CHECKING:
    from ._store_redis import RedisLedger
    from ._store_sqlite import SQLiteLedger


def __getattr__(name: str) -> Any:
    if name == "SQLiteLedger":
        from ._store_sqlite import SQLiteLedger

        return SQLiteLedger
    if name == "RedisLedger":
        from ._store_redis import RedisLedger

        return RedisLedger
    raise AttributeError(f"module 'shekel.ledger' has no attribute {name!r}")


__all__ = [
    "UNLIMITED",
    "AccountState",
    "Caps",
    "Hold",
    "InMemoryLedger",
    "Ledger",
    "Overrun",
    "RedisLedger",
    "SQLiteLedger",
    "open_store",
]
