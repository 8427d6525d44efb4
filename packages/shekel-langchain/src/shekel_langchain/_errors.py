"""The error of shekel-langchain (shekel's, specialised)."""

from __future__ import annotations

from shekel import BudgetExceededError


class RunBudgetExceededError(BudgetExceededError):
    """A LangChain model that never reaches the openai or anthropic SDKs was refused before it
    ran: its budget (or an ancestor) has no room left for another call. ``run_name`` is the
    LangChain run's name; ``budget_name`` the budget whose cap refused."""

    run_name: str | None = None
