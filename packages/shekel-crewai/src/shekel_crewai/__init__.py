"""shekel for CrewAI: each agent of a crew pays into a budget named after its role, under the
budget active where the crew runs, and is stopped before an LLM call that budget cannot take.
Imports no crewai (shekel loads its plugin everywhere): ``AgentBudgetExceededError`` is lazy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from shekel.integration import Limits as AgentLimits
from shekel.integration import UnsupportedFrameworkWarning as UnsupportedCrewAIWarning

from ._crews import crew_budget

if TYPE_CHECKING:
    from ._errors import AgentBudgetExceededError

__version__ = "2.0.0.dev0"
__all__ = [
    "AgentBudgetExceededError",
    "AgentLimits",
    "UnsupportedCrewAIWarning",
    "__version__",
    "crew_budget",
]


def __getattr__(name: str) -> Any:
    if name == "AgentBudgetExceededError":
        # CrewAI first: imported after a budget was entered, it installs the integration,
        # which imports the errors; imported from them, it would find them half made.
        importlib.import_module("crewai")
        value = importlib.import_module("._errors", __name__).AgentBudgetExceededError
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
