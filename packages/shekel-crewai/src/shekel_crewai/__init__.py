"""shekel for CrewAI: a budget per agent and per task under a crew budget.

```python
from shekel_crewai import crew_budget

with crew_budget(crew, max_usd=15.0, agents={"Research Analyst": 5.0}) as spend:
    crew.kickoff()
print(spend.tree())
```

Installed, the package also works inside any named ``with shekel.budget(...)``: the agents
of a crew get children named after their roles, are stopped before an LLM call their budget
cannot take, and count their tool calls.

``import shekel_crewai`` imports no crewai (shekel loads this package's plugin in every
process): ``AgentBudgetExceededError``, a crewai ``HookAborted``, is imported on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._crew_budget import AgentLimits, CrewBudget, crew_budget
from ._install import UnsupportedCrewAIWarning
from .package import supported

if TYPE_CHECKING:
    from ._errors import AgentBudgetExceededError

__version__ = "2.0.0.dev0"

__all__ = [
    "AgentBudgetExceededError",
    "AgentLimits",
    "CrewBudget",
    "UnsupportedCrewAIWarning",
    "__version__",
    "crew_budget",
    "supported",
]


def __getattr__(name: str) -> Any:
    if name == "AgentBudgetExceededError":
        value = importlib.import_module("._errors", __name__).AgentBudgetExceededError
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
