"""shekel-langchain: LangChain runs charged to nested, named shekel budgets.

Imported by shekel wherever a budget is entered, it imports no LangChain until it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shekel.integration import Limits as BudgetSpec
from shekel.integration import UnsupportedFrameworkWarning as UnsupportedVersionWarning

from ._errors import RunBudgetExceededError
from ._zero_config import run_budgets, supported

if TYPE_CHECKING:
    from ._handler import ShekelCallbackHandler

__version__ = "2.0.0.dev0"

__all__ = [
    "BudgetSpec",
    "RunBudgetExceededError",
    "ShekelCallbackHandler",
    "UnsupportedVersionWarning",
    "__version__",
    "run_budgets",
    "supported",
]


def __getattr__(name: str) -> Any:
    if name == "ShekelCallbackHandler":
        # LangChain first: imported after a budget was entered, it installs the integration,
        # which imports the handler; imported from the handler, it would find it half made.
        import langchain_core  # noqa: F401

        from ._handler import ShekelCallbackHandler

        globals()[name] = ShekelCallbackHandler
        return ShekelCallbackHandler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
