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

from typing import TYPE_CHECKING, Any

from ._budget import Budget
from ._config import BudgetConfig, budget_name
from ._context import Activation, current_budget
from ._decorators import with_budget
from ._errors import (
    Axis,
    BudgetConfigError,
    BudgetExceeded,
    BudgetExceededError,
    BudgetStateError,
    BudgetStoreUnavailableError,
    CallbackError,
    ShekelError,
    ToolBudgetExceededError,
    UnknownModelError,
    UsageMissingError,
)
from ._history import CallRecord, SpendHistory
from ._hookspecs import CallRoute
from ._interception import (
    PathInfo,
    ProtocolAdapter,
    RequestInfo,
    StreamTally,
    UncountedCallWarning,
    UsageMissingWarning,
)
from ._ledger import AccountState, Caps, Hold, Ledger, Overrun
from ._loops import LoopGuardError
from ._memory_ledger import InMemoryLedger
from ._plugins import hookimpl, plugin_manager
from ._policies import BudgetWarning
from ._pool import BudgetPool, PoolExceededError, PoolReservation
from ._pricing import ModelPrice, TokenUsage, UnknownModelWarning
from ._reservation import Reservation, ToolCall
from ._snapshot import BudgetSnapshot
from ._store_errors import BudgetStoreWarning
from ._tree import Rollup

if TYPE_CHECKING:
    from ._store_redis import RedisLedger
    from ._store_sqlite import SQLiteLedger


def __getattr__(name: str) -> Any:
    # The stores load on first use: ``import shekel`` stays small (and never imports redis).
    if name == "SQLiteLedger":
        from ._store_sqlite import SQLiteLedger

        return SQLiteLedger
    if name == "RedisLedger":
        from ._store_redis import RedisLedger

        return RedisLedger
    raise AttributeError(f"module 'shekel' has no attribute {name!r}")


__version__ = "2.0.0.dev0"

budget = Budget
"""``budget(max_usd=..., name=...)`` creates a :class:`Budget` (the name users write)."""

__all__ = [
    "AccountState",
    "Activation",
    "Axis",
    "Budget",
    "BudgetConfig",
    "BudgetConfigError",
    "BudgetExceeded",
    "BudgetExceededError",
    "BudgetPool",
    "BudgetSnapshot",
    "BudgetStateError",
    "BudgetStoreUnavailableError",
    "BudgetStoreWarning",
    "BudgetWarning",
    "CallRecord",
    "CallRoute",
    "CallbackError",
    "Caps",
    "Hold",
    "InMemoryLedger",
    "Ledger",
    "LoopGuardError",
    "ModelPrice",
    "Overrun",
    "PathInfo",
    "PoolExceededError",
    "PoolReservation",
    "ProtocolAdapter",
    "RedisLedger",
    "RequestInfo",
    "Reservation",
    "Rollup",
    "SQLiteLedger",
    "ShekelError",
    "SpendHistory",
    "StreamTally",
    "TokenUsage",
    "ToolBudgetExceededError",
    "ToolCall",
    "UncountedCallWarning",
    "UnknownModelError",
    "UnknownModelWarning",
    "UsageMissingError",
    "UsageMissingWarning",
    "__version__",
    "budget",
    "budget_name",
    "current_budget",
    "hookimpl",
    "plugin_manager",
    "with_budget",
]
