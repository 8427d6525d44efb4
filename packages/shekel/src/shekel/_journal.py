"""The journal: spend that happened but that a store did not take yet.

A call that was sent has been paid for, whatever the store says afterwards. When a store does
not answer the commit (or record) of such spend, the write is retried for a while (each write
carries the id that makes it apply once: a hold's id, or a Redis operation's id); when it still
fails, it is kept here, in this process, and replayed, in order, before the store's next
operation from this process. The holds of kept commits stay referenced, so their leases keep
being renewed (``_leases``) and their room stays reserved until the spend lands.

A process that exits with spend still kept tries once more, then writes what it could not
commit to stderr, with the amounts, so that nothing is lost silently.
"""

from __future__ import annotations

import atexit
import sys
import threading
import weakref
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from ._keys import shown_key

_NANOS: Final = Decimal(10) ** 9


class PendingSpend:
    """One write of spend that already happened, kept until the store takes it."""

    __slots__ = ("amounts", "hold", "key", "write")

    def __init__(
        self,
        write: Callable[[], Any],
        key: str,
        amounts: tuple[int, int, int, int],
        hold: Any = None,
    ) -> None:
        self.write = write  # idempotent: the same hold id or operation id every time
        self.key = key  # the innermost account's key
        self.amounts = amounts  # nano-dollars, tokens, LLM calls, tool calls
        self.hold = hold

    def describe(self) -> str:
        usd, tokens, calls, tools = self.amounts
        parts = [f"${(Decimal(usd) / _NANOS).normalize():f}"]
        if tokens:
            parts.append(f"{tokens:,} token{'s' * (tokens != 1)}")
        if calls:
            parts.append(f"{calls:,} LLM call{'s' * (calls != 1)}")
        if tools:
            parts.append(f"{tools:,} tool call{'s' * (tools != 1)}")
        return f"{', '.join(parts)} on {shown_key(self.key)!r}"


class Journal:
    """The spend one store did not take yet, oldest first."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._entries: list[PendingSpend] = []
        self._lock = threading.Lock()  # one replay at a time, in order

    def __bool__(self) -> bool:
        return bool(self._entries)

    def keep(self, entry: PendingSpend) -> None:
        with self._lock:
            self._entries.append(entry)
        _watch(self)

    def replay(
        self,
        outages: type[BaseException] | tuple[type[BaseException], ...],
        damage: type[BaseException] | tuple[type[BaseException], ...] = (),
    ) -> BaseException | None:
        """Write what waits, oldest first. A write refused for damaged data (``damage``: an
        account edited by hand) stays kept and the others go on, so that one bad account
        blocks no other budget; the first outage stops the replay and is returned, with it and
        everything after it kept."""
        with self._lock:
            kept: list[PendingSpend] = []
            for at, entry in enumerate(self._entries):
                try:
                    entry.write()
                except damage:
                    kept.append(entry)
                except outages as exc:
                    self._entries = kept + self._entries[at:]
                    return exc
            self._entries = kept
        return None

    def pending(self) -> list[PendingSpend]:
        with self._lock:
            return list(self._entries)


_journals: weakref.WeakSet[Journal] = weakref.WeakSet()
_watching = False


def _watch(journal: Journal) -> None:
    global _watching
    _journals.add(journal)
    if not _watching:
        _watching = True
        atexit.register(_at_exit)


def _at_exit() -> None:
    for journal in list(_journals):
        if not journal:
            continue
        try:
            failure: BaseException | None = journal.replay(Exception)
        except Exception as exc:
            failure = exc
        left = journal.pending()
        if left:  # the store is still down, or refuses the data: say what it never took
            lines = [
                f"shekel: the budget store {journal.where} did not take the spend of "
                f"{_calls(len(left))} sent ({failure or 'damaged account'}); "
                "add it to the store by hand (budget.record(...)) once it is back:"
            ]
            lines += [f"  {entry.describe()}" for entry in left]
            print("\n".join(lines), file=sys.stderr, flush=True)


def _calls(count: int) -> str:
    return "1 call that was" if count == 1 else f"{count} calls that were"
