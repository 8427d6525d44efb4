"""What ``shekel budgets`` and ``shekel reset`` ask of a Redis store: its accounts, listed and
reset by name."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ._ledger import NO_CAPS
from ._store_redis_wire import COUNTERS, RedisAccount, glob_escape
from ._windows import split_period_key

if TYPE_CHECKING:
    from ._store_redis import RedisLedger


def list_accounts(ledger: RedisLedger, prefix: str) -> list[dict[str, Any]]:
    ledger._expire()
    start = f"{ledger.prefix}a:"
    found = _account_keys(ledger, glob_escape(start + prefix) + "*")
    pipe = ledger._client.pipeline(transaction=False)
    for redis_key in found:
        pipe.hmget(redis_key, [*COUNTERS, "caps", "keep"])
    rows = pipe.execute()
    live = ledger._client.zrange(f"{ledger.prefix}live", 0, -1)
    pipe = ledger._client.pipeline(transaction=False)
    for hold_id in live:
        pipe.hget(f"{ledger.prefix}h:".encode() + hold_id, "keys")
    holds: dict[str, int] = {}
    for keys in pipe.execute():
        for key in json.loads(keys) if keys else ():
            holds[key] = holds.get(key, 0) + 1
    listing = []
    for redis_key, values in zip(found, rows, strict=True):
        name = redis_key.decode()
        counters = [int(v) if v else 0 for v in values[:8]]
        listing.append(
            {
                "key": name[len(start) :],
                "used": counters[:4],
                "reserved": counters[4:8],
                "caps": json.loads(values[8]) if values[8] else [None] * 4,
                "keep_until": int(values[9]) / 1000 if values[9] else None,
                "holds": holds.get(name, 0),
            }
        )
    return listing


def reset_accounts(ledger: RedisLedger, key: str) -> list[str]:
    start = f"{ledger.prefix}a:"
    found = [
        k.decode()
        for k in _account_keys(ledger, glob_escape(start + key + "@") + "*")
        + _account_keys(ledger, glob_escape(start + key))
    ]
    found = [k for k in found if split_period_key(k[len(start) :])[0] == key]
    if not found:
        return []
    chain = [(RedisAccount(k[len(start) :], redis_key=k), NO_CAPS) for k in found]
    keys, args = ledger._args("reset", chain, (0, 0, 0, 0))
    # the caps shown stay as they were: "" leaves them alone
    for i in range(len(chain)):
        args[4 + i * 6 + 4] = ""
    ledger._eval(keys, args)
    return sorted(k[len(start) :] for k in found)


def _account_keys(ledger: RedisLedger, pattern: str) -> list[bytes]:
    return sorted(ledger._client.scan_iter(match=pattern, count=1000))
