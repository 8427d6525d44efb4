"""The error raised when a node may not start, and the value a budget pause carries."""

from __future__ import annotations

from typing import Final, Literal, TypedDict

from shekel import BudgetExceededError
from shekel.integration import framework_error

OnExhausted = Literal["raise", "interrupt"]
"""A node with no room left: ``"raise"`` :class:`NodeBudgetExceededError`, or ``"interrupt"``
the graph (a LangGraph interrupt carrying a :class:`BudgetPause`)."""

PAUSE_KIND: Final = "shekel.budget_exhausted"


class NodeBudgetExceededError(BudgetExceededError):
    """A LangGraph node was not started: its budget or an ancestor had no room left.

    The core's refusal (``budget_name``: the budget whose own cap refused; ``sent`` is
    ``False``) with two more attributes: ``node``, the LangGraph node, and ``node_budget``, the
    dotted name of its budget. A ``RuntimeError``: LangGraph's default retry policy skips it.
    """

    node: str
    node_budget: str

    @classmethod
    def refusing(
        cls, error: BudgetExceededError, *, node: str, node_budget: str
    ) -> NodeBudgetExceededError:
        refusal = framework_error(error, cls)
        refusal.node, refusal.node_budget = node, node_budget
        refusal.args = (
            f"LangGraph node {node!r} was not started: {error}. To pause the graph at its cap "
            "instead (and resume it once the limit is raised), pass on_exhausted='interrupt'",
        )
        return refusal


class BudgetPause(TypedDict):
    """The value of a pause's interrupt: plain data, so every checkpointer stores it."""

    kind: Literal["shekel.budget_exhausted"]
    node: str
    node_budget: str
    budget: str | None
    """The budget the error named (the core's rule: the one whose limit to raise)."""
    axis: str
    spent: float
    limit: float
    started: bool
    """``True`` when a call inside the node was refused or went over: it reruns on resume."""
    message: str


def pause_of(
    error: BudgetExceededError, *, node: str, node_budget: str, started: bool
) -> BudgetPause:
    return BudgetPause(
        kind=PAUSE_KIND,
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
    """True for the value of an interrupt a budget pause raised, to tell it from the graph's
    own ``interrupt()`` calls."""
    return isinstance(value, dict) and value.get("kind") == PAUSE_KIND
