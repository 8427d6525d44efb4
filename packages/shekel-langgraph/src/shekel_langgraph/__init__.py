"""shekel for LangGraph: a budget per node and per graph, and graphs that pause at their cap
instead of failing (see the README)."""

from ._decorator import budgeted_node
from ._errors import BudgetPause, NodeBudgetExceededError, OnExhausted, is_budget_pause
from ._graph import BudgetedGraph, budgeted_graph

__version__ = "0.1.0.dev0"

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
