"""The errors and warnings of shekel-llamaindex (all derive from shekel's)."""

from __future__ import annotations

from shekel import BudgetExceededError


class LlamaIndexBudgetExceededError(BudgetExceededError):
    """A LlamaIndex LLM or embedding call was stopped before it ran: the budget paying for
    its step (or an ancestor) has no room left.

    A ``shekel.BudgetExceededError`` (and so a ``RuntimeError``) with ``sent=False``;
    ``step`` names the budget that paid for the step (``rag.query.synthesize``) and
    ``event`` the kind of call stopped (``"llm"`` or ``"embedding"``).
    """

    def __init__(self, refused: BudgetExceededError, *, step: str | None, event: str) -> None:
        self.step = step
        self.event = event
        where = f"LlamaIndex {event} call of step {step!r}" if step else f"LlamaIndex {event} call"
        super().__init__(
            refused.spent,
            refused.limit,
            axis=refused.axis,
            budget_name=refused.budget_name,
            sent=False,
            detail=f"stopped the {where}",
        )


class ShekelLlamaIndexWarning(UserWarning):
    """Something shekel-llamaindex could not do as configured (an unsupported LlamaIndex
    version, a step budget that already exists with other limits, a step nested too deep);
    the message says what happened instead and how to fix it."""
