"""shekel-langchain: LangChain runs charged to nested, named shekel budgets.

```python
from shekel import budget
from shekel_langchain import ShekelCallbackHandler

handler = ShekelCallbackHandler(budgets={"retrieve": 0.50, "summarize": 1.00})
with budget(max_usd=5.00, name="root") as root:
    chain.invoke(question, config={"callbacks": [handler]})
print(root.tree())  # root, root.retrieve, root.summarize
```

Installed, the package also follows every LangChain run inside a ``with budget(...)`` block
with no callbacks passed; :func:`run_budgets` gives that path the same run names.

shekel imports this package (through its entry point) in every process that enters a budget,
so importing it does not import LangChain: ``ShekelCallbackHandler`` is loaded when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import RunBudgetExceededError, UnsupportedVersionWarning
from ._names import BudgetSpec
from ._zero_config import run_budgets
from .package import supported

if TYPE_CHECKING:
    from ._handler import ShekelCallbackHandler

__version__ = "2.0.0.dev0"

__all__ = [
    "BudgetSpec",
    "RunBudgetExceededError",
    "ShekelCallbackHandler",
    "UnsupportedVersionWarning",
    "__version__",
    "run_budgets",
    "supported",
]


def __getattr__(name: str) -> Any:
    if name == "ShekelCallbackHandler":
        from ._handler import ShekelCallbackHandler

        globals()[name] = ShekelCallbackHandler
        return ShekelCallbackHandler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
