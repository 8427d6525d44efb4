"""shekel for LangGraph: a budget per node, a budget per graph, and graphs that pause at their
cap instead of failing.

```python
from shekel import budget
from shekel_langgraph import budgeted_graph

app = budgeted_graph(compiled, max_usd=2.00, nodes={"research": 0.50, "write": 1.00})
app.invoke({"topic": "..."})
print(app.budget.tree())
```

The LangGraph-dependent names are imported on first use, so that loading this package as a
shekel plugin (every process that uses shekel) does not import LangGraph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

if TYPE_CHECKING:
    from ._decorator import budgeted_node
    from ._errors import BudgetPause, NodeBudgetExceededError, OnExhausted, is_budget_pause
    from ._graph import BudgetedGraph, budgeted_graph

__all__ = [
    "BudgetPause",
    "BudgetedGraph",
    "NodeBudgetExceededError",
    "OnExhausted",
    "__version__",
    "budgeted_graph",
    "budgeted_node",
    "is_budget_pause",
]

_LAZY = {
    "budgeted_node": "._decorator",
    "BudgetPause": "._errors",
    "NodeBudgetExceededError": "._errors",
    "OnExhausted": "._errors",
    "is_budget_pause": "._errors",
    "BudgetedGraph": "._graph",
    "budgeted_graph": "._graph",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
