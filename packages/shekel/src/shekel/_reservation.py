"""``Reservation``: an amount held on a budget chain before a call, settled after it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._config import check_counts, check_text
from ._errors import BudgetStateError
from ._history import CallRecord
from ._ledger import Hold
from ._money import nanos_to_usd, spend_to_nanos
from ._pricing import TokenUsage

if TYPE_CHECKING:
    from ._budget import Budget


class Reservation:
    """Amounts held on a budget chain by :meth:`Budget.reserve`."""

    __slots__ = ("_budget", "_hold", "committed")

    def __init__(self, budget: Budget, hold: Hold) -> None:
        self._budget = budget
        self._hold = hold
        self.committed = False

    @property
    def usd(self) -> float:
        return nanos_to_usd(self._hold.usd)

    @property
    def tokens(self) -> int:
        return self._hold.tokens

    def commit(
        self,
        usd: float | None = None,
        tokens: int | None = None,
        *,
        model: str | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
    ) -> CallRecord:
        """Record the actual spend and give back the rest of the hold.

        ``usd`` defaults to the price of ``model`` with the token counts (or 0), ``tokens`` to
        ``input_tokens + output_tokens``. Raises ``BudgetExceededError`` after recording if the
        actual spend went over a limit.
        """
        if self.committed or self._hold.settled:
            raise BudgetStateError(
                "this reservation was already committed or released; reserve again for another call"
            )
        # Everything is checked before anything changes: a bad value leaves the hold in place,
        # to be committed again or released when the block ends.
        check_counts(input_tokens=input_tokens, output_tokens=output_tokens)
        if tokens is not None:
            check_counts(tokens=tokens)
        check_text("model", model)
        cost = None if usd is None else spend_to_nanos(usd)
        if cost is None and model is None:
            cost = 0
        usage = TokenUsage(input_tokens, output_tokens)
        self.committed = True
        return self._budget.charge(
            usage,
            model,
            None,
            cost=cost,
            tokens=usage.total_tokens if tokens is None else tokens,
            llm_calls=0,
            hold=self._hold,
        )

    def release(self) -> None:
        """Give the whole hold back without recording anything."""
        self._budget.release(self._hold)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            self.release()
