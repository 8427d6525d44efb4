"""``BudgetPool``: a thread-safe token and USD counter for fan-out workloads.

It has no ``with`` block and no interception: workers call :meth:`BudgetPool.record` or
:meth:`BudgetPool.reserve` themselves. It runs on the same ledger as budgets.
"""

from __future__ import annotations

from typing import Any, NoReturn

from ._config import MAX_COUNT, _count_limit, _name, _usd_limit
from ._errors import BudgetConfigError, BudgetExceededError, BudgetStateError, _fmt
from ._keys import pool_key
from ._ledger import Caps, Hold, Ledger, Overrun
from ._memory_ledger import InMemoryLedger
from ._money import is_finite_number, nanos_to_usd, usd_to_nanos
from ._snapshot import BudgetSnapshot, snapshot_of

_POOL_ADVICE = "Raise the pool's cap, or catch BudgetExceeded and stop or retry later"


class PoolExceededError(BudgetExceededError):
    """A pool refused a record or reservation (``sent=False``: nothing was recorded), or a
    commit took it over a cap (``sent=True``: the use was recorded)."""

    def _message(self, detail: str | None, advice: str) -> str:
        unit = "USD" if self.axis == "usd" else "token"
        used = f"{_fmt(self.axis, self.spent)} used of {_fmt(self.axis, self.limit)}"
        if self.sent:
            head = f"the pool went over its {unit} cap: {used} (the use was recorded)"
        else:
            head = f"the pool cannot take {detail}: {used}; nothing was recorded"
        return f"{head}. {advice}"


_FAST = 1e9  # floats below this many dollars take the inlined conversion


def _usd(value: object) -> int:
    if type(value) is float and 0.0 <= value < _FAST:
        return round(value * 1e9)
    if not is_finite_number(value) or value < 0:  # type: ignore[operator]
        raise BudgetConfigError(f"usd must be a finite number >= 0, got {value!r}")
    return usd_to_nanos(value, "usd")  # type: ignore[arg-type]


def _tokens(value: object) -> int:
    if type(value) is int and 0 <= value < MAX_COUNT:
        return value
    raise BudgetConfigError(f"tokens must be a whole number >= 0, got {value!r}")


def _amounts(tokens: object, usd: object) -> tuple[int, int]:
    return _tokens(tokens), _usd(usd)


class PoolReservation:
    """A hold on a pool, released on exit unless committed."""

    __slots__ = ("_hold", "_pool", "committed", "released")

    def __init__(self, pool: BudgetPool, hold: Hold) -> None:
        self._pool, self._hold = pool, hold
        self.committed = self.released = False

    def commit(self, tokens: int = 0, usd: float = 0.0) -> None:
        """Record the actual use and give back the rest. Raises ``BudgetExceeded`` (after
        recording) if the actual use went over a cap. A bad value raises
        ``BudgetConfigError`` and changes nothing: the hold stays until released."""
        if self.committed or self.released:
            raise BudgetStateError(
                "this pool reservation was already committed or released; reserve again"
            )
        self.committed = True
        try:
            over = self._pool._commit(self._hold, tokens, usd)
        except BudgetConfigError:
            self.committed = False
            raise
        if over is not None:
            raise self._pool._error(over, recorded=True)

    def release(self) -> None:
        """Give the hold back without recording anything."""
        self.released = True
        self._pool._ledger.release(self._hold)

    def __enter__(self) -> PoolReservation:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            self.release()


class BudgetPool:
    """A shared cap on tokens and/or USD; either cap may be omitted.

    ``record`` is all-or-nothing: a record that would pass a cap raises ``BudgetExceeded`` and
    changes nothing. ``reserve`` holds capacity before a call; ``commit`` settles it.

    ``ledger`` is where the counters live (this process's memory by default). On a store shared
    by processes (``open_store("redis://...")``) the pool needs a ``name``: pools of one name,
    in any process, are one account; a pool and a budget never share one, whatever their names.
    """

    def __init__(
        self,
        token_cap: int | None = None,
        usd_cap: float | None = None,
        *,
        ledger: Ledger | None = None,
        name: str | None = None,
    ) -> None:
        if token_cap is not None and (
            isinstance(token_cap, bool) or not isinstance(token_cap, int)
        ):
            raise BudgetConfigError(
                f"token_cap must be a whole number > 0 or None, got {token_cap!r}"
            )

        try:
            caps = Caps(_usd_limit(usd_cap), _count_limit("token_cap", token_cap))
        except BudgetConfigError as exc:
            raise BudgetConfigError(str(exc).replace("max_usd", "usd_cap")) from None
        self._ledger: Ledger = ledger or InMemoryLedger()
        self._caps = caps
        self.name = _name(name)
        if self.name is None and self._ledger.shares_keys:
            raise BudgetConfigError(
                f"a pool on a shared store ({self._ledger!r}) needs a name, which is its account "
                "there: BudgetPool(..., name='crawl-jobs'). Pools of the same name share it"
            )
        self._account = self._ledger.open(pool_key(self.name or "pool"), caps)
        self._accounts = ((self._account, caps),)
        # ``pool.record`` is the ledger's recorder itself: one call from the caller to the
        # counters (the method below documents it and serves subclasses that override it).
        self._record = self._ledger.recorder(self._accounts, _amounts, self._refuse)
        self._reserve = self._ledger.reserver(self._accounts, _amounts, self._refuse)
        self._commit = self._ledger.committer(_amounts)
        if type(self).record is BudgetPool.record:
            vars(self)["record"] = self._record

    def record(self, tokens: int = 0, usd: float = 0.0) -> None:
        """Add use, or raise ``BudgetExceeded`` and add nothing if a cap would be passed."""
        self._record(tokens, usd)

    def reserve(self, tokens: int = 0, usd: float = 0.0) -> PoolReservation:
        """Hold capacity before a call; raises ``BudgetExceeded`` (nothing held) if it won't fit."""
        return PoolReservation(self, self._reserve(tokens, usd))

    def snapshot(self) -> BudgetSnapshot:
        """Used, reserved and remaining tokens and USD, read atomically."""
        return snapshot_of(self._ledger.read(self._account), self._caps)

    def reset(self) -> None:
        """Zero the pool. Reservations taken before stop counting against it."""
        self._ledger.reset(self._account)

    def _refuse(self, over: Overrun, tokens: Any, usd: Any) -> NoReturn:
        raise self._error(over, tokens, usd)

    def _error(
        self, over: Overrun, tokens: int = 0, usd: float = 0.0, *, recorded: bool = False
    ) -> BudgetExceededError:
        if over.axis == "usd":
            spent, limit = nanos_to_usd(over.used), nanos_to_usd(over.cap)
        else:
            spent, limit = float(over.used), float(over.cap)
        wanted = f"${usd:,.4f} more" if over.axis == "usd" else f"{tokens:,} tokens more"
        held = self.snapshot()
        reserved = held.usd_reserved if over.axis == "usd" else held.tokens_reserved
        if reserved and not recorded:
            wanted += f" (with {_fmt(over.axis, reserved)} reserved by others)"
        return PoolExceededError(
            spent,
            limit,
            axis=over.axis,  # type: ignore[arg-type]
            budget_name=self.name,
            sent=recorded,
            detail=wanted,
            advice=_POOL_ADVICE,
        )
