"""shekel-llamaindex: LlamaIndex queries, retrieval, synthesis, chat turns, agents and workflow
steps paid by named children of the active shekel budget (see the README)."""

from typing import TYPE_CHECKING, Any

from shekel import BudgetExceededError
from shekel.integration import UnsupportedFrameworkWarning

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


class LlamaIndexBudgetExceededError(BudgetExceededError):
    """A LlamaIndex LLM or embedding call stopped before it ran (``sent=False``). ``step``:
    the budget that would have paid for it; ``event``: ``"llm"`` or ``"embedding"``."""

    step: str = ""
    event: str = "llm"


ShekelLlamaIndexWarning = UnsupportedFrameworkWarning  # its name before the kit, for filters


def supported() -> bool:
    """True when the installed LlamaIndex is a release this package supports."""
    return INTEGRATION.unsupported() is None


def __getattr__(name: str) -> Any:  # the handler subclasses LlamaIndex's: imported when asked
    if name == "ShekelCallbackHandler":
        # LlamaIndex first: imported after a budget was entered, it installs the integration,
        # which imports the handler; imported from the handler, it would find it half made.
        import llama_index.core  # noqa: F401

        from ._handler import ShekelCallbackHandler

        return ShekelCallbackHandler
    raise AttributeError(f"module 'shekel_llamaindex' has no attribute {name!r}")
