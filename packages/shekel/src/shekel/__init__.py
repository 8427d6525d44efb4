"""shekel: hard, nested, named spend limits for LLM agents.

```python
from shekel import budget

with budget(max_usd=10.00, name="workflow") as w:
    with budget(max_usd=2.00, name="research"):
        run_research_agent()
print(w.tree())
```
"""

from __future__ import annotations

from ._budget import Budget
from ._context import current_budget
from ._decorators import with_budget
from ._errors import (
    BudgetConfigError,
    BudgetExceeded,
    BudgetExceededError,
    BudgetStateError,
    CallbackError,
    ShekelError,
    ToolBudgetExceededError,
    UnknownModelError,
    UsageMissingError,
)
from ._history import CallRecord
from ._interception import ProtocolAdapter, RequestInfo, StreamTally, UsageMissingWarning
from ._ledger import InMemoryLedger, Ledger
from ._plugins import hookimpl, plugin_manager
from ._policies import BudgetWarning
from ._pool import BudgetPool, PoolReservation
from ._pricing import ModelPrice, TokenUsage, UnknownModelWarning
from ._reservation import Reservation
from ._snapshot import BudgetSnapshot

__version__ = "2.0.0.dev0"

budget = Budget
"""``budget(max_usd=..., name=...)`` creates a :class:`Budget` (the name users write)."""

__all__ = [
    "Budget",
    "BudgetConfigError",
    "BudgetExceeded",
    "BudgetExceededError",
    "BudgetPool",
    "BudgetSnapshot",
    "BudgetStateError",
    "BudgetWarning",
    "CallRecord",
    "CallbackError",
    "InMemoryLedger",
    "Ledger",
    "ModelPrice",
    "PoolReservation",
    "ProtocolAdapter",
    "RequestInfo",
    "Reservation",
    "ShekelError",
    "StreamTally",
    "TokenUsage",
    "ToolBudgetExceededError",
    "UnknownModelError",
    "UnknownModelWarning",
    "UsageMissingError",
    "UsageMissingWarning",
    "__version__",
    "budget",
    "current_budget",
    "hookimpl",
    "plugin_manager",
    "with_budget",
]
