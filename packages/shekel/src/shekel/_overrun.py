"""Turning a ledger's :class:`~shekel._ledger.Overrun` into the error a user sees."""

from __future__ import annotations

from ._errors import Axis, BudgetExceededError, ToolBudgetExceededError, _fmt
from ._history import CallRecord
from ._ledger import Overrun
from ._money import nanos_to_usd


def overrun_error(
    over: Overrun,
    budget_name: str,
    call: CallRecord | None,
    *,
    sent: bool = True,
    tool_name: str | None = None,
    held: int = 0,
) -> BudgetExceededError:
    """The error for ``over`` on the budget named ``budget_name`` (dollars on the USD axis,
    counts on the others). ``held``: what calls in flight hold on that axis (a refusal)."""
    axis: Axis = over.axis  # type: ignore[assignment]
    if axis == "usd":
        spent, limit = nanos_to_usd(over.used), nanos_to_usd(over.cap)
    else:
        spent, limit = float(over.used), float(over.cap)
    detail = None
    if held and not sent:
        shown = _fmt(axis, nanos_to_usd(held) if axis == "usd" else held)
        detail = f"calls in flight hold {shown} more, and may give some back"
    if axis == "tool_calls" or tool_name is not None:
        return ToolBudgetExceededError(
            spent,
            limit,
            tool_name=tool_name,
            axis=axis,
            budget_name=budget_name,
            sent=sent,
            held=detail,
        )
    tokens = None
    if call is not None and call.model is not None:
        tokens = {"input_tokens": call.input_tokens, "output_tokens": call.output_tokens}
    return BudgetExceededError(
        spent,
        limit,
        axis=axis,
        budget_name=budget_name,
        model=call.model if call is not None else None,
        tokens=tokens,
        sent=sent,
        detail=detail,
    )
