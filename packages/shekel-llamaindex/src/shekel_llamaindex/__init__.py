"""shekel-llamaindex: LlamaIndex steps charged to nested named shekel budgets.

Installed, it works inside any ``with shekel.budget(...)`` with no wiring: queries, retrieval,
synthesis, chat engines and workflow runs and steps are charged to named children of the
active budget, and an exhausted budget stops the next LLM or embedding call before it runs::

    with budget(max_usd=1.00, name="rag") as rag:
        index.as_query_engine().query("What did the author do?")
    print(rag.tree())   # rag > query > retrieve, synthesize

``ShekelCallbackHandler(budgets={"retrieve": 0.10})`` in a ``CallbackManager`` adds limits
to the steps of the components using that manager.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import LlamaIndexBudgetExceededError, ShekelLlamaIndexWarning
from .package import supported

if TYPE_CHECKING:
    from ._handler import ShekelCallbackHandler

__version__ = "0.1.0.dev0"

__all__ = [
    "LlamaIndexBudgetExceededError",
    "ShekelCallbackHandler",
    "ShekelLlamaIndexWarning",
    "__version__",
    "supported",
]


def __getattr__(name: str) -> Any:
    # The handler subclasses LlamaIndex's: imported on first use, so that loading the entry
    # point (this package) never imports LlamaIndex.
    if name == "ShekelCallbackHandler":
        from ._handler import ShekelCallbackHandler

        return ShekelCallbackHandler
    raise AttributeError(f"module 'shekel_llamaindex' has no attribute {name!r}")
