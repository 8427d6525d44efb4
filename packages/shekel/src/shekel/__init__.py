"""shekel: hard, nested, named spend limits for LLM agents.

```python
from shekel import budget

with budget(max_usd=10.00, name="workflow") as w:
    with budget(max_usd=2.00, name="research"):
        run_research_agent()
print(w.tree())
```

This namespace is what users call. Ledger authors and store users import from
``shekel.ledger``; plugin and protocol-adapter authors from ``shekel.plugins``; framework
integrations from ``shekel.integration``; tests from ``shekel.testing``.
"""

from __future__ import annotations

import warnings
from typing import Any

# The namespaces of ledger authors and plugin authors, as attributes too (shekel.plugins...).
from . import ledger as ledger
from . import plugins as plugins
from ._budget import Budget
from ._config import BudgetConfig
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
from ._interception import UncountedCallWarning, UsageMissingWarning
from ._keys import budget_name
from ._loops import LoopGuardError
from ._policies import BudgetWarning
from ._pool import BudgetPool, PoolExceededError, PoolReservation
from ._pricing import UnknownModelWarning
from ._reservation import Reservation, ToolCall
from ._snapshot import BudgetSnapshot
from ._store_errors import BudgetStoreWarning
from ._tree import Rollup

__version__ = "2.0.0.dev0"

budget = Budget
"""``budget(max_usd=..., name=...)`` creates a :class:`Budget` (the name users write)."""

# Names that moved to the namespaces of their audience; still importable from here, with a
# DeprecationWarning saying where they live now.
_MOVED: dict[str, str] = {
    "AccountState": "shekel.ledger",
    "Caps": "shekel.ledger",
    "Hold": "shekel.ledger",
    "InMemoryLedger": "shekel.ledger",
    "Ledger": "shekel.ledger",
    "Overrun": "shekel.ledger",
    "RedisLedger": "shekel.ledger",
    "SQLiteLedger": "shekel.ledger",
    "CallRoute": "shekel.plugins",
    "ModelPrice": "shekel.plugins",
    "ProtocolAdapter": "shekel.plugins",
    "RequestInfo": "shekel.plugins",
    "StreamTally": "shekel.plugins",
    "TokenUsage": "shekel.plugins",
    "hookimpl": "shekel.plugins",
    "plugin_manager": "shekel.plugins",
}


def __getattr__(name: str) -> Any:
    home = _MOVED.get(name)
    if home is None:
        raise AttributeError(f"module 'shekel' has no attribute {name!r}")
    import importlib

    warnings.warn(
        f"import {name} from {home} (shekel.{name} will be removed)",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(home), name)


__all__ = [
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
    "CallbackError",
    "LoopGuardError",
    "PoolExceededError",
    "PoolReservation",
    "Reservation",
    "Rollup",
    "ShekelError",
    "SpendHistory",
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
    "with_budget",
]

# Tracebacks and reprs show the name users import: shekel.BudgetExceededError.
for _name in __all__:
    _public = globals()[_name]
    if isinstance(_public, type) and _public.__module__.startswith("shekel._"):
        _public.__module__ = "shekel"
del _name, _public
