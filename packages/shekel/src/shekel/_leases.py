"""Holds on a store are leases: short, and renewed while their call is in flight.

A hold's TTL is how long its room stays reserved if nothing more is heard of it: a worker
killed during a call gives its room back within one TTL (60 seconds by default). A call that
runs longer than that (a 20-minute stream) keeps its room, because this process renews the
lease of every hold it still references (a call in flight, a ``reserve()`` block, a commit
waiting in the journal) a third of a TTL before it would run out. A hold nothing references any
more (an abandoned object) is not renewed, and expires.

One daemon thread per process does the renewing, started with the first lease and again in a
forked child; its store operations fail quietly (a store that is down renews nothing, and a
commit of an expired hold still records the spend).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ._ledger import Hold

DEFAULT_TTL: Final = 60.0
"""Seconds a store's hold lasts unless renewed (``?ttl=`` in a store URL)."""


class _Lease:
    __slots__ = ("hold", "renew_at", "ttl")

    def __init__(self, hold: Hold, ttl: float) -> None:
        self.hold = weakref.ref(hold)
        self.ttl = ttl
        self.renew_at = time.monotonic() + ttl / 3


class _Keeper:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        # ledger -> hold id -> lease
        self._leases: weakref.WeakKeyDictionary[Any, dict[Any, _Lease]] = (
            weakref.WeakKeyDictionary()
        )
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def track(self, ledger: Any, hold: Hold, ttl: float) -> None:
        lease = _Lease(hold, ttl)
        with self._lock:
            self._leases.setdefault(ledger, {})[hold.id] = lease
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="shekel-leases", daemon=True)
                self._thread.start()
        if ttl / 3 < _PERIOD:
            self._wake.set()  # a short lease: look again sooner than the thread planned

    def drop(self, ledger: Any, hold_id: Any) -> None:
        with self._lock:
            held = self._leases.get(ledger)
            if held is not None:
                held.pop(hold_id, None)

    def _run(self) -> None:
        while True:
            wait = self._renew_due()
            self._wake.wait(wait)
            self._wake.clear()

    def _renew_due(self) -> float:
        """Renew the leases due now; the seconds until the next one is."""
        now = time.monotonic()
        due: list[tuple[Any, list[tuple[Hold, float]]]] = []
        soonest = _PERIOD
        with self._lock:
            for ledger, held in list(self._leases.items()):
                renew: list[tuple[Hold, float]] = []
                for hold_id, lease in list(held.items()):
                    hold = lease.hold()
                    if hold is None:  # nothing references the hold: let it expire
                        del held[hold_id]
                        continue
                    if lease.renew_at <= now:
                        renew.append((hold, lease.ttl))
                        lease.renew_at = now + lease.ttl / 3
                    soonest = min(soonest, lease.renew_at - now)
                if renew:
                    due.append((ledger, renew))
        for ledger, leases in due:
            with contextlib.suppress(Exception):  # a store that is down renews nothing
                ledger.renew(leases)
        return max(soonest, 0.0)

    def after_fork(self) -> None:
        """In a forked child: no thread yet, and the holds inherited are the parent's."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._leases = weakref.WeakKeyDictionary()
        self._thread = None
        self._pid = os.getpid()


_PERIOD: Final = 5.0
"""The longest the keeper sleeps between looks (a lease due sooner wakes it)."""

KEEPER: Final = _Keeper()
os.register_at_fork(after_in_child=KEEPER.after_fork)
