"""What a store does when it cannot be reached: fail closed (the default) or open; and, for
spend that already happened, retry and then keep it in the journal (``_journal``)."""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

from ._errors import BudgetConfigError, BudgetStoreUnavailableError
from ._journal import Journal, PendingSpend
from ._ledger import Hold, Link, Overrun

T = TypeVar("T")

DEFAULT_RETRY: Final = 10.0
"""Seconds a write of spend that already happened is retried while the store does not answer,
before it is kept in the journal."""

UNRECORDED: Final = "unrecorded"
"""The id of a hold a failing-open store handed out without recording it."""


class BudgetStoreWarning(UserWarning):
    """A budget store was unavailable and its budgets let calls go on unrecorded
    (``on_error="open"``)."""


class StoreErrors:
    """Turns a store's own exceptions into shekel's, by its failure policy."""

    def __init__(
        self,
        where: str,
        policy: str,
        kinds: type[BaseException] | tuple[type[BaseException], ...],
        *,
        damage: type[BaseException] | tuple[type[BaseException], ...] = (),
        retry_for: float = DEFAULT_RETRY,
    ) -> None:
        if policy not in ("closed", "open"):
            raise BudgetConfigError(
                f"on_error must be 'closed' (refuse calls while the store is down) or 'open' "
                f"(let them go unrecorded), got {policy!r}"
            )
        self.where = where
        self.policy = policy
        self.kinds = kinds
        self.damage = damage  # the store answered, but an account's data is damaged
        self.retry_for = retry_for
        self.journal = Journal(where)
        self._warned = False

    def run(self, fn: Callable[..., T], *args: Any, default: Callable[[], T]) -> T:
        try:
            if self.journal:  # spend the store did not take yet goes first
                self._replay()
            return fn(*args)
        except self.kinds as exc:
            return self._failed(exc, default)

    def _replay(self) -> None:
        failure = self.journal.replay(self.kinds, self.damage)
        if failure is not None:
            raise failure

    async def arun(
        self, fn: Callable[..., Awaitable[T]], *args: Any, default: Callable[[], T]
    ) -> T:
        try:
            if self.journal:
                await _in_thread(self._replay)
            return await fn(*args)
        except self.kinds as exc:
            return self._failed(exc, default)

    def spend(self, fn: Callable[..., Overrun | None], pending: PendingSpend) -> Overrun | None:
        """Write spend that already happened (``fn()``, a commit or a record that applies once
        however often it is sent): retried for :attr:`retry_for` seconds while the store does
        not answer, then kept in the journal (``pending`` describes it) and reported:
        ``BudgetStoreUnavailableError(sent=True)`` when failing closed; when failing open, kept
        at once (nothing waits) with a warning, once per store."""
        deadline = time.monotonic() + (self.retry_for if self.policy == "closed" else 0.0)
        delay = 0.05
        while True:
            try:
                if self.journal:
                    self._replay()
                return fn()
            except self.kinds as exc:
                if isinstance(exc, self.damage) or time.monotonic() + delay >= deadline:
                    self._kept(pending, exc)
                    return None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def aspend(
        self, fn: Callable[..., Awaitable[Overrun | None]], pending: PendingSpend
    ) -> Overrun | None:
        """:meth:`spend` for an async write (``pending.write`` is its sync twin)."""
        deadline = time.monotonic() + (self.retry_for if self.policy == "closed" else 0.0)
        delay = 0.05
        while True:
            try:
                if self.journal:
                    await _in_thread(self._replay)
                return await fn()
            except self.kinds as exc:
                if isinstance(exc, self.damage) or time.monotonic() + delay >= deadline:
                    self._kept(pending, exc)
                    return None
            await sys.modules["asyncio"].sleep(delay)
            delay = min(delay * 2, 1.0)

    def _kept(self, pending: PendingSpend, exc: BaseException) -> None:
        self.journal.keep(pending)
        if self.policy == "closed":
            raise BudgetStoreUnavailableError(
                self.where, exc, sent=True, pending=pending.describe()
            ) from exc
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"the budget store {self.where} did not take the spend of a call that was sent "
                f"({pending.describe()}): {exc}. Calls go on (on_error='open'); their spend is "
                "kept in this process and written to the store once it answers again",
                BudgetStoreWarning,
                stacklevel=4,
            )

    def closed(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn``; the store failing raises ``BudgetStoreUnavailableError`` whatever the
        policy (for tools that report on a store: a listing cannot go on unrecorded)."""
        try:
            return fn(*args)
        except self.kinds as exc:
            raise BudgetStoreUnavailableError(self.where, exc) from exc

    def _failed(self, exc: BaseException, default: Callable[[], T]) -> T:
        if self.policy == "closed" or isinstance(exc, self.damage):
            damaged = isinstance(exc, self.damage)
            raise BudgetStoreUnavailableError(self.where, exc, damaged=damaged) from exc
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"the budget store {self.where} is unavailable ({exc}); calls go on "
                "unrecorded (on_error='open')",
                BudgetStoreWarning,
                stacklevel=4,
            )
        return default()

    @staticmethod
    def unrecorded_hold(chain: Sequence[Link], amounts: Sequence[int]) -> Hold:
        accounts = tuple(a for a, _ in chain)
        caps = tuple(c for _, c in chain)
        usd, tokens, calls, tools = amounts
        return Hold(UNRECORDED, accounts, caps, usd, tokens, calls, tools, (0,) * len(chain), None)

    @staticmethod
    def is_unrecorded(hold: Hold) -> bool:
        return bool(hold.id == UNRECORDED)


async def _in_thread(fn: Callable[[], Any]) -> Any:
    return await sys.modules["asyncio"].to_thread(fn)
