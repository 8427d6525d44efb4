"""shekel-llamaindex: LlamaIndex queries, retrieval, synthesis, chat turns, agents and workflow
steps paid by named children of the active shekel budget (see the README)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import LlamaIndexBudgetExceededError, ShekelLlamaIndexWarning
from ._plugin import INTEGRATION

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


def supported() -> bool:
    """True when the installed LlamaIndex is a release this package supports."""
    return INTEGRATION.unsupported() is None


def __getattr__(name: str) -> Any:
    # The handler subclasses LlamaIndex's: imported on first use, so that loading the entry
    # point never imports LlamaIndex.
    if name == "ShekelCallbackHandler":
        from ._handler import ShekelCallbackHandler

        return ShekelCallbackHandler
    raise AttributeError(f"module 'shekel_llamaindex' has no attribute {name!r}")
