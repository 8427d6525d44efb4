"""Amounts held on a budget chain before something runs, settled after it: ``Reservation``
(``Budget.reserve``) and ``ToolCall`` (``Budget.tool_call``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _spend
from ._config import check_counts, check_text
from ._errors import BudgetStateError
from ._history import CallRecord
from ._ledger import Hold
from ._money import nanos_to_usd, spend_to_nanos
from ._pricing import TokenUsage

_NO_USAGE = TokenUsage()

if TYPE_CHECKING:
    from ._chain import Chain


class Reservation:
    """Amounts held on a budget chain by :meth:`Budget.reserve`."""

    __slots__ = ("_chain", "_hold", "committed", "released")

    def __init__(self, chain: Chain, hold: Hold) -> None:
        self._chain = chain
        self._hold = hold
        self.committed = False
        self.released = False

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
        if self.committed or self.released:
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
        return _spend.charge(
            self._chain,
            usage,
            model,
            None,
            cost=cost,
            tokens=usage.total_tokens if tokens is None else tokens,
            llm_calls=0,
            held=self._hold,
            source="manual",
        )

    def release(self) -> None:
        """Give the whole hold back without recording anything."""
        self.released = True
        _spend.release(self._chain, self._hold)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            self.release()


class ToolCall:
    """One tool call counted, and its price held, before the tool runs (``Budget.tool_call``).

    As a context manager: a block that raises releases it (the tool failed: nothing is
    counted); one that ends normally records it at the held price, unless :meth:`commit`
    recorded the actual price first.
    """

    __slots__ = ("_chain", "_hold", "settled", "tool_name")

    def __init__(self, chain: Chain, tool_name: str, hold: Hold) -> None:
        self._chain = chain
        self._hold = hold
        self.tool_name = tool_name
        self.settled = False

    @property
    def usd(self) -> float:
        """The price held for the call."""
        return nanos_to_usd(self._hold.usd)

    def commit(self, usd: float | None = None) -> CallRecord:
        """Record the call at ``usd`` (default: the price held) and give back the rest.
        Raises ``ToolBudgetExceededError`` after recording if a price above the hold took a
        budget over its USD limit."""
        if self.settled:
            raise BudgetStateError(
                f"this call of tool {self.tool_name!r} was already committed or released"
            )
        cost = self._hold.usd if usd is None else spend_to_nanos(usd)
        self.settled = True
        return _spend.charge(
            self._chain,
            _NO_USAGE,
            None,
            None,
            cost=cost,
            tokens=0,
            llm_calls=0,
            tools=1,
            held=self._hold,
            source="tool",
            tool_name=self.tool_name,
        )

    def release(self) -> None:
        """The tool did not run: count nothing and give the hold back."""
        if not self.settled:
            self.settled = True
            _spend.release(self._chain, self._hold)

    def __enter__(self) -> ToolCall:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if self.settled:
            return
        if exc is not None:
            self.release()
        else:
            self.commit()
