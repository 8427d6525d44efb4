"""The exception hierarchy. Every error shekel raises derives from :class:`ShekelError`.

```
ShekelError
├── BudgetConfigError (ValueError)       a bad argument or setting: fix the call
├── UnknownModelError (LookupError)      no price for a model, and the budget may not guess
├── BudgetStateError (RuntimeError)      an operation the budget's state does not allow now
├── UsageMissingError (RuntimeError)     a response carried no usable usage (strict budgets)
├── CallbackError (RuntimeError)         a callback or plugin raised while a call was handled
├── BudgetStoreUnavailableError (RuntimeError)  a budget's store cannot be reached
└── BudgetExceededError (RuntimeError)   a limit was reached
    ├── ToolBudgetExceededError
    └── LoopGuardError                   the same call was about to repeat loop_guard times
```

Runtime failures derive from ``RuntimeError``: retry policies that skip it (LangGraph's default)
then never re-send a request that shekel stopped or already recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ._history import CallRecord

Axis = Literal["usd", "tokens", "llm_calls", "tool_calls"]

_UNITS: dict[str, str] = {
    "usd": "USD",
    "tokens": "tokens",
    "llm_calls": "LLM calls",
    "tool_calls": "tool calls",
}


class ShekelError(Exception):
    """Base class of every exception raised by shekel."""


class BudgetConfigError(ShekelError, ValueError):
    """A budget, pool or price table was given a value it cannot use.

    The message names the parameter and says what would be accepted.
    """


class UnknownModelError(ShekelError, LookupError):
    """No price is known for a model and the budget was told not to guess.

    Pass ``prices={model: {...}}`` to ``budget()``, or register a plugin implementing
    ``shekel_model_price``.
    """

    def __init__(self, model: str, provider: str | None = None) -> None:
        self.model = model
        self.provider = provider
        where = f" (provider {provider})" if provider else ""
        super().__init__(
            f"no price is known for model {model!r}{where}. Give one with "
            f"budget(prices={{{model!r}: {{'input': <USD per 1M input tokens>, "
            f"'output': <USD per 1M output tokens>}}}}), or use unknown_models='warn' to record "
            "its tokens without a price"
        )


class UsageMissingError(ShekelError, RuntimeError):
    """A provider response carried no usable usage figures, so its cost could not be measured.

    Raised only by strict budgets, after an estimate was recorded; other budgets record the
    estimate with a ``UsageMissingWarning``.
    """


class BudgetStateError(ShekelError, RuntimeError):
    """The budget's current state does not allow the operation: ``reset()`` while the budget is
    active, recording on a parent while its child is active in the same thread or task, or
    settling a reservation twice. The message says what to do instead."""


class CallbackError(ShekelError, RuntimeError):
    """A callback (``on_warn``, ``on_fallback``), a plugin hook or a warnings filter set to
    ``error`` raised while shekel checked an SDK call before sending it, or recorded it after.

    The original exception is ``__cause__``. It is wrapped so that the SDK does not take it for a
    connection failure and send the paid request again.

    Attributes:
        sent: ``False`` when it was raised before the request was sent (while shekel checked the
            call: a ``shekel_model_price`` plugin failing, for example), so the provider never
            got it and nothing was spent. ``True`` when it was raised after the call was sent,
            while or after its spend was recorded.
    """

    sent: bool = True


class BudgetStoreUnavailableError(ShekelError, RuntimeError):
    """The store a budget keeps its accounts in (SQLite file, Redis server) cannot be used.

    Raised before a call is sent when the budget cannot check it (stores fail closed unless
    created with ``on_error="open"``), or when one of its accounts holds damaged data (a value
    edited by hand that is not a whole number; other budgets go on): ``sent`` is ``False``.
    Raised with ``sent=True`` when the store did not take the spend of a call that was already
    sent, even after retrying: that spend is kept in this process's journal and written to the
    store by its next operation (``pending`` describes it), so it is never lost while the
    process lives. ``store`` is the store's URL; the cause is chained.
    """

    call: CallRecord | None = None
    """The call whose spend is pending (``sent=True``), as recorded in the budget's history."""

    def __init__(
        self,
        store: str,
        cause: BaseException | None = None,
        *,
        sent: bool = False,
        pending: str | None = None,
        damaged: bool = False,
    ) -> None:
        self.store = store
        self.sent = sent
        self.pending = pending
        if damaged and not sent:
            message = (
                f"the budget store {store} holds damaged data for this budget ({cause}). Calls "
                "under it are refused until the data is fixed; budgets with other accounts in "
                "the store go on"
            )
        elif sent:
            message = (
                f"the budget store {store} did not take the spend of a call that was sent "
                f"({pending or 'its amounts'}): {cause}. The spend is kept in this process and "
                "written to the store by its next operation there; calls under its budgets are "
                "refused until the store is back (check that it is running and reachable)"
            )
        else:
            message = (
                f"the budget store {store} is unavailable ({cause}); check that it is running "
                "and reachable (and for SQLite that the file's directory is writable). Calls "
                "under its budgets are refused until it is back; create the store with "
                "on_error='open' to let them go on unrecorded instead (?on_error=open in a "
                "store URL)"
            )
        super().__init__(message)


_SINGULAR: dict[str, str] = {"tokens": "token", "llm_calls": "LLM call", "tool_calls": "tool call"}


def _fmt(axis: str, value: float) -> str:
    """An amount on ``axis`` as people read it: ``$0.046``, ``1 LLM call``, ``1,200 tokens``."""
    if axis == "usd":
        from ._money import usd_text

        return usd_text(value)
    count = round(value)
    unit = _SINGULAR.get(axis, axis) if count == 1 else _UNITS.get(axis, axis)
    return f"{count:,} {unit}"


def _advice(axis: str) -> str:
    """What to do about a limit: a cheaper model only helps a USD limit."""
    if axis == "usd":
        return (
            "Raise the limit, catch BudgetExceededError to stop the agent cleanly, or set "
            "fallback={'at_pct': 0.8, 'model': '<cheaper model>'} to switch models before the cap"
        )
    return "Raise the limit, or catch BudgetExceededError to stop the agent cleanly"


class BudgetExceededError(ShekelError, RuntimeError):
    """A budget's limit was reached.

    Derives from ``RuntimeError`` so that retry policies which skip ``RuntimeError`` (LangGraph's
    default) do not retry a call that was refused for money.

    Attributes:
        spent: what the budget had used on ``axis`` when the error was raised.
        limit: the limit on ``axis`` (after auto-capping).
        axis: ``"usd"``, ``"tokens"``, ``"llm_calls"`` or ``"tool_calls"``.
        budget_name: the budget's dotted ``full_name`` (``None`` for an unnamed budget or pool).
        model, tokens: the last call's model and token counts, when known.
        sent: ``False`` when the request was refused before it reached the provider.
        call: the recorded call that crossed the limit (``None`` for a refusal).
        window, retry_after: for a limit per time window, the window (``"1d"``) and the
        seconds until its current period ends and the limit starts over (of several windows
        that refuse, the one whose period ends last); else ``None``.
    """

    call: CallRecord | None = None
    window: str | None = None
    retry_after: float | None = None

    def __init__(
        self,
        spent: float,
        limit: float,
        *,
        axis: Axis = "usd",
        budget_name: str | None = None,
        model: str | None = None,
        tokens: dict[str, int] | None = None,
        sent: bool = True,
        detail: str | None = None,
        advice: str | None = None,
    ) -> None:
        self.spent = spent
        self.limit = limit
        self.axis: Axis = axis
        self.budget_name = budget_name
        self.model = model
        self.tokens = tokens
        self.sent = sent
        super().__init__(self._message(detail, _advice(axis) if advice is None else advice))

    @property
    def full_name(self) -> str | None:
        """Alias of ``budget_name``."""
        return self.budget_name

    @property
    def _not_made(self) -> str:
        return "the request was not sent"

    def _message(self, detail: str | None, advice: str) -> str:
        who = f"budget {self.budget_name!r}" if self.budget_name else "budget"
        limit = f"limit of {_fmt(self.axis, self.limit)}"
        used = (
            f"{_fmt(self.axis, self.spent)} used"
            if self.axis != "usd"
            else (f"{_fmt(self.axis, self.spent)} spent")
        )
        if self.sent or self.spent > self.limit:
            head = f"{who} exceeded its {limit}: {used}"
        else:
            head = f"{who} has no room left for this call under its {limit} ({used})"
        if self.model:
            head += f" (last call: {self.model}"
            if self.tokens:
                head += ", " + ", ".join(f"{k}={v:,}" for k, v in self.tokens.items())
            head += ")"
        if not self.sent:
            head += f"; {self._not_made}"
        if detail:
            head += f"; {detail}"
        return f"{head}. {advice}" if advice else head


class ToolBudgetExceededError(BudgetExceededError):
    """A tool-call limit (``max_tool_calls``) or a tool's price pushed the budget over."""

    @property
    def _not_made(self) -> str:
        tool = f" of tool {self.tool_name!r}" if self.tool_name else ""
        return f"the call{tool} was not made"

    def __init__(
        self,
        spent: float,
        limit: float,
        *,
        tool_name: str | None = None,
        axis: Axis = "tool_calls",
        budget_name: str | None = None,
        sent: bool = True,
        held: str | None = None,
    ) -> None:
        self.tool_name = tool_name
        details = [f"tool {tool_name!r}"] if tool_name and sent else []
        if held:
            details.append(held)
        super().__init__(
            spent,
            limit,
            axis=axis,
            budget_name=budget_name,
            sent=sent,
            detail="; ".join(details) or None,
            advice="Raise max_tool_calls (or the budget's USD limit), or catch "
            "ToolBudgetExceededError to stop the agent cleanly",
        )


BudgetExceeded = BudgetExceededError
"""Alias kept for users coming from token-budget-py's ``BudgetPool``."""
