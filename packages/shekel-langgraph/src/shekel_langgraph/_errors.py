"""The error raised when a node may not start, and the value a budget pause carries."""

from __future__ import annotations

from typing import Final, Literal, TypedDict

from shekel import BudgetExceededError

OnExhausted = Literal["raise", "interrupt"]
"""What a node does when its budget (or an ancestor) has no room left: ``"raise"``
:class:`NodeBudgetExceededError`, or ``"interrupt"`` the graph (a LangGraph interrupt carrying a
:class:`BudgetPause`)."""

ON_EXHAUSTED: Final = ("raise", "interrupt")

PAUSE_KIND: Final = "shekel.budget_exhausted"

Axis = Literal["usd", "tokens", "llm_calls", "tool_calls"]

_UNITS: Final = {
    "usd": "USD",
    "tokens": "tokens",
    "llm_calls": "LLM calls",
    "tool_calls": "tool calls",
}


def _amount(axis: str, value: float) -> str:
    if axis == "usd":
        return f"${value:,.4f}"
    return f"{value:,.0f} {_UNITS.get(axis, axis)}"


class NodeBudgetExceededError(BudgetExceededError):
    """A LangGraph node was not started because its budget, or one of that budget's ancestors
    (the graph's, the caller's), has no room left for another LLM call.

    A :class:`shekel.BudgetExceededError`, hence a ``RuntimeError``: LangGraph's default retry
    policy does not retry it. ``sent`` is always ``False`` (nothing was started, nothing was
    sent). Besides the attributes of ``BudgetExceededError`` (``spent``, ``limit``, ``axis``, and
    ``budget_name``, the budget whose limit was reached):

    Attributes:
        node: the LangGraph node's name.
        node_budget: the dotted name of the node's own budget (``"graph.research"``).
    """

    def __init__(
        self,
        spent: float,
        limit: float,
        *,
        axis: Axis = "usd",
        budget_name: str | None = None,
        node: str = "",
        node_budget: str = "",
    ) -> None:
        super().__init__(spent, limit, axis=axis, budget_name=budget_name, sent=False)
        self.node = node
        self.node_budget = node_budget
        self.args = (self._node_message(),)

    def _node_message(self) -> str:
        used = f"{_amount(self.axis, self.spent)} used of {_amount(self.axis, self.limit)}"
        where = (
            f"its budget {self.node_budget!r}"
            if self.budget_name == self.node_budget
            else f"budget {self.budget_name!r} (above its budget {self.node_budget!r})"
        )
        return (
            f"LangGraph node {self.node!r} was not started: {where} has no room left under its "
            f"{_UNITS.get(self.axis, self.axis)} limit ({used}). Raise the limit on the live "
            "budget with set_limits(...), or pass on_exhausted='interrupt' to pause the graph "
            "at its cap and resume it later"
        )

    @classmethod
    def refusing(
        cls, error: BudgetExceededError, *, node: str, node_budget: str
    ) -> NodeBudgetExceededError:
        """The error for a node turned away by ``error`` (a refusal from ``Budget.check()``)."""
        return cls(
            error.spent,
            error.limit,
            axis=error.axis,
            budget_name=error.budget_name,
            node=node,
            node_budget=node_budget,
        )


class BudgetPause(TypedDict):
    """The value of the LangGraph interrupt a node raises with ``on_exhausted="interrupt"``
    (``result["__interrupt__"][0].value``). Plain data, so every checkpointer stores it."""

    kind: Literal["shekel.budget_exhausted"]
    node: str
    """The LangGraph node that paused."""
    node_budget: str
    """The dotted name of the node's budget (``"graph.research"``)."""
    budget: str | None
    """The dotted name of the budget whose limit was reached: the node's or an ancestor's."""
    axis: str
    """``"usd"``, ``"tokens"``, ``"llm_calls"`` or ``"tool_calls"``."""
    spent: float
    """What ``budget`` had used on ``axis`` when the node paused."""
    limit: float
    """The limit on ``axis`` then in force."""
    started: bool
    """``False`` when the node was paused before it started, ``True`` when a call inside it
    was refused or crossed the cap (the node's work so far is dropped; it re-runs on resume)."""
    message: str
    """What happened, in words: a call refused before it was sent, or one that was sent and
    whose spend went over the limit of ``budget``."""


def pause_of(
    error: BudgetExceededError, *, node: str, node_budget: str, started: bool
) -> BudgetPause:
    return BudgetPause(
        kind="shekel.budget_exhausted",
        node=node,
        node_budget=node_budget,
        budget=error.budget_name,
        axis=error.axis,
        spent=error.spent,
        limit=error.limit,
        started=started,
        message=str(error),
    )


def is_budget_pause(value: object) -> bool:
    """True for the value of an interrupt raised by a budget pause (``interrupt.value``), so
    that a caller can tell it from the graph's own ``interrupt()`` calls."""
    return isinstance(value, dict) and value.get("kind") == PAUSE_KIND
