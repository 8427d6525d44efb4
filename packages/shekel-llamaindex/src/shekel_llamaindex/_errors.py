"""The integration's error, and the name its warnings had."""

from __future__ import annotations

from shekel import BudgetExceededError
from shekel.integration import UnsupportedFrameworkWarning


class LlamaIndexBudgetExceededError(BudgetExceededError):
    """A LlamaIndex LLM or embedding call stopped before it ran (``sent=False``). ``step``
    names the budget of the step stopped (``None`` outside a step); ``event`` is ``"llm"`` or
    ``"embedding"``."""

    step: str | None = None
    event: str = "llm"


ShekelLlamaIndexWarning = UnsupportedFrameworkWarning  # its name before the kit, for filters
