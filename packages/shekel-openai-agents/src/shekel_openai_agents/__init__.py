"""shekel-openai-agents: inside a shekel budget, each agent of an OpenAI Agents SDK run pays
into a child budget named after it, and is stopped before a model call that budget cannot take.

Loaded by shekel wherever a budget is entered, it imports no openai-agents until that is
imported itself (see the README).
"""

from __future__ import annotations

from shekel.integration import Limits as AgentLimits
from shekel.integration import UnsupportedFrameworkWarning

from ._limits import AgentBudgetExceededError, agent_budgets
from ._plugin import INTEGRATION

__version__ = "2.0.0.dev0"
__all__ = [
    "AgentBudgetExceededError",
    "AgentLimits",
    "UnsupportedFrameworkWarning",
    "__version__",
    "agent_budgets",
    "supported",
]


def supported() -> bool:
    """True when the installed openai-agents is a release this package supports."""
    return INTEGRATION.unsupported() is None
