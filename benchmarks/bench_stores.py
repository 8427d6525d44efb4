"""Stores: what keeping budgets in SQLite or Redis costs, beside the in-memory ledger.

Run ``python benchmarks/bench_stores.py`` (or ``nox -s bench``). Prints one JSON document (see
``_harness.py``). ``--quick`` makes a smoke run. It starts its own ``redis-server`` on a free
loopback port (the Redis figures say why they are missing when ``redis-server`` is not
installed) and writes its SQLite file in a temporary directory.

Two kinds of figures:

- *round trips*: reserve + commit pairs per second on a chain of two accounts (a budget and its
  parent), straight on the ledger, from 1 thread and from 8 (a pair is two operations, so two
  round trips to the server for a store);
- *per call*: the overhead of a budget around a real ``openai`` SDK call over
  ``httpx.MockTransport`` (the workload of ``bench_interception.py``), with the budget in each
  store, plain and ``strict=True``: median(with) - median(without), min(with) - min(without)
  in brackets.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _harness as h
import _incumbents_interception as work

ROOT = Path(__file__).resolve().parent.parent

NOTES = [
    "- *Reserve + commit*: `ledger.reserve(chain, ...)` then `ledger.commit(hold, ...)` on a"
    " chain of two accounts (a budget and its parent), pairs per second; each pair is two"
    " round trips to a store (one Lua script each on Redis, one `BEGIN IMMEDIATE` transaction"
    " each on SQLite). *8 threads*: eight threads of one process sharing the ledger.",
    "- Redis: a `redis-server` started by the bench on 127.0.0.1 (no persistence), reached over"
    " TCP through redis-py; SQLite: a WAL file in a temporary directory, `synchronous=NORMAL`.",
    "- *Per call*: µs a budget adds to an `openai` chat completion over `httpx.MockTransport`"
    " (`_incumbents_interception.py`), median(with) − median(without) from interleaved repeats"
    " (min − min in brackets). A plain budget makes two ledger operations per call (hold,"
    " commit); `strict=True` three (headroom, hold, commit).",
]


def sizes_for(quick: bool) -> dict[str, Any]:
    if quick:
        return {"pairs": 200, "pair_repeats": 3, "repeats": 21, "warmup": 10, "call_n": 5}
    return {"pairs": 2_000, "pair_repeats": 7, "repeats": 201, "warmup": 50, "call_n": 5}


# -- a redis-server of our own -----------------------------------------------------------------


@contextmanager
def redis_server(directory: Path) -> Iterator[str | None]:
    """The URL of a fresh ``redis-server`` on a free loopback port, or None without one."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(directory)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- measurements ------------------------------------------------------------------------------


def round_trips(ledger: Any, sizes: dict[str, Any], threads: int) -> list[float]:
    from shekel._ledger import Caps, Hold

    tag = f"bench-{threads}-{time.monotonic_ns()}"
    chain = [
        (ledger.open(f"{tag}-child"), Caps(usd=10**18)),
        (ledger.open(f"{tag}-parent"), Caps(usd=10**18)),
    ]

    def make_worker() -> Callable[[int], None]:
        def run(n: int) -> None:
            for _ in range(n):
                hold = ledger.reserve(chain, 1_000, 10, 1)
                assert isinstance(hold, Hold)
                ledger.commit(hold, 500, 5, 1)

        return run

    per_thread = max(sizes["pairs"] // threads, 1)
    return h.ops_per_second(make_worker, threads, per_thread, sizes["pair_repeats"])


def call_overhead(store: Any, strict: bool, sizes: dict[str, Any]) -> dict[str, Any]:
    from shekel import budget

    name = f"bench-call-{time.monotonic_ns()}"
    b = budget(name=name, max_usd=1e6, strict=strict, store=store)
    run = work.openai_calls(work.openai_client())
    raw = work.interleaved(run, lambda: b, sizes["call_n"], sizes["repeats"], sizes["warmup"])
    with_, without = raw["with"], raw["without"]
    if b.snapshot().llm_calls_used != raw["calls_with_budget"]:
        raise RuntimeError(
            f"{b.snapshot().llm_calls_used} calls recorded of {raw['calls_with_budget']}"
        )
    return {
        "median": statistics.median(with_) - statistics.median(without),
        "min": min(with_) - min(without),
        "paired_median": statistics.median(a - b for a, b in zip(with_, without, strict=True)),
        "repeats": len(with_),
        "without_median": statistics.median(without),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args, _ = parser.parse_known_args()
    sizes = sizes_for(args.quick)
    figures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as redis_url:
        from shekel._store_redis import RedisLedger
        from shekel._store_sqlite import SQLiteLedger
        from shekel.ledger import InMemoryLedger

        sqlite_url = f"sqlite:///{tmp}/bench.db"
        stores: dict[str, Any] = {
            "memory": ("in memory", InMemoryLedger(), "memory"),
            "sqlite": ("SQLite", SQLiteLedger(f"{tmp}/pairs.db"), sqlite_url),
        }
        missing = "redis-server is not installed (Debian: apt-get install redis-server)"
        if redis_url is not None:
            stores["redis"] = ("Redis", RedisLedger(redis_url), redis_url)
        for key, (label, ledger, _) in stores.items():
            for threads in (1, 8):
                h.log(f"bench stores: reserve+commit, {label}, {threads} thread(s)")
                figures.append(
                    h.figure(
                        f"stores.reserve_commit.{key}.{threads}t",
                        f"Reserve + commit pairs/s, {label}, {threads} thread(s)",
                        "ops/s",
                        round_trips(ledger, sizes, threads),
                        params={"chain": 2, "threads": threads},
                    )
                )
        if redis_url is None:
            for threads in (1, 8):
                figures.append(
                    h.figure(
                        f"stores.reserve_commit.redis.{threads}t",
                        f"Reserve + commit pairs/s, Redis, {threads} thread(s)",
                        "ops/s",
                        value=None,
                        extra={"error": missing},
                    )
                )
        for strict in (False, True):
            for key in ("memory", "sqlite", "redis"):
                mode = "strict" if strict else "plain"
                fig_key = f"stores.call_overhead.{key}.{mode}"
                label = f"Per-call overhead, openai SDK, budget in {key} ({mode})"
                if key not in stores:
                    figures.append(h.figure(fig_key, label, "µs/op", extra={"error": missing}))
                    continue
                h.log(f"bench stores: {label}")
                ours = call_overhead(stores[key][2], strict, sizes)
                figures.append(
                    h.figure(
                        fig_key,
                        label,
                        "µs/op",
                        value=ours.pop("median"),
                        extra={**ours, "max": None},
                    )
                )
        for _, ledger, _ in stores.values():
            close = getattr(ledger, "close", None)
            if close is not None:
                close()
    h.emit({"suite": "stores", "figures": figures, "notes": NOTES})


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "benchmarks"))
    main()
