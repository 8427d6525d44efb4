"""Zero configuration: LangChain adds shekel's handler to every run inside a budget.

LangChain's ``register_configure_hook`` makes every new callback manager include the handler a
context variable holds, when it holds one. The variable is registered once per process (the
API has no way to unregister, so registering per use would grow LangChain's list for ever); it
holds :data:`DEFAULT` in a thread or task from the moment a budget (or :func:`run_budgets`) is
entered there, and is cleared when the last budget there ends, so outside budgets LangChain
runs exactly as without shekel. Registered with ``handle_class=ShekelCallbackHandler``,
LangChain leaves it out of any run given a ``ShekelCallbackHandler`` explicitly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final

from langchain_core.tracers.context import register_configure_hook

from shekel import current_budget

from ._handler import ShekelCallbackHandler
from ._names import BudgetSpec, RunNames
from .package import check_supported


class ZeroConfigHandler(ShekelCallbackHandler):
    """The handler LangChain adds by itself; its names come from :func:`run_budgets`."""

    _explicit = False

    def __init__(self) -> None:
        super().__init__()

    def _mapping(self) -> RunNames:
        return NAMES.get() or self._names


DEFAULT: Final = ZeroConfigHandler()

HANDLER: Final[ContextVar[ShekelCallbackHandler | None]] = ContextVar(
    "shekel_langchain_handler", default=None
)
NAMES: Final[ContextVar[RunNames | None]] = ContextVar("shekel_langchain_names", default=None)

_registered = [False]
_lock = threading.Lock()


def install() -> bool:
    """Register :data:`HANDLER` with LangChain, once per process; False when the installed
    langchain-core is not supported (then nothing is registered)."""
    if _registered[0]:
        return True
    if not check_supported():
        return False
    with _lock:
        if not _registered[0]:
            register_configure_hook(HANDLER, True, ShekelCallbackHandler)
            _registered[0] = True
    return True


def arm() -> None:
    """A budget was entered here: LangChain runs started here from now on are followed."""
    if _registered[0] and HANDLER.get() is None:
        HANDLER.set(DEFAULT)


def disarm() -> None:
    """A budget ended here: stop once no budget and no :func:`run_budgets` is left."""
    if HANDLER.get() is DEFAULT and NAMES.get() is None and current_budget() is None:
        HANDLER.set(None)


@contextmanager
def run_budgets(budgets: Mapping[str, BudgetSpec] | None) -> Iterator[None]:
    """Inside this block, LangChain runs followed without an explicit handler map their names
    as ``ShekelCallbackHandler(budgets=budgets)`` does::

        with budget(max_usd=5, name="root"), run_budgets({"summarize": 1.00}):
            chain.invoke(text)  # runs named "summarize" charge root.summarize

    The mapping is checked on entry (``BudgetConfigError`` saying what to fix). Blocks nest:
    the innermost mapping applies to the runs that start inside it.
    """
    names = RunNames(budgets)
    install()
    names_token = NAMES.set(names)
    handler_token = HANDLER.set(DEFAULT) if _registered[0] else None
    try:
        yield
    finally:
        NAMES.reset(names_token)
        if handler_token is not None:
            HANDLER.reset(handler_token)
