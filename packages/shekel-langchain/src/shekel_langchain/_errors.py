"""The errors and warnings of shekel-langchain (all shekel's, specialised)."""

from __future__ import annotations

from shekel import BudgetExceededError


class RunBudgetExceededError(BudgetExceededError):
    """A LangChain model run was refused before it started: its budget (or an ancestor) has
    no room left for another call. Raised for models that never reach the openai or anthropic
    SDKs (those are refused by shekel's interceptor, before the request is sent).

    ``run_name`` is the LangChain run's name; ``budget_name`` the budget that refused it.
    """

    run_name: str | None = None

    @classmethod
    def refusing(cls, refusal: BudgetExceededError, run_name: str | None) -> RunBudgetExceededError:
        """The same refusal as ``refusal`` (a ``budget.check()`` error), for run ``run_name``."""
        error = cls(
            refusal.spent,
            refusal.limit,
            axis=refusal.axis,
            budget_name=refusal.budget_name,
            sent=False,
            detail=f"LangChain run {run_name!r} was not started" if run_name else None,
        )
        error.run_name = run_name
        return error


class UnsupportedVersionWarning(UserWarning):
    """The installed langchain-core is outside the range shekel-langchain supports: nothing was
    registered with LangChain (runs are not followed without an explicit handler)."""
