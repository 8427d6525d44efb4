"""Zero configuration: LangChain adds shekel's handler to every run started inside a budget.

LangChain's ``register_configure_hook`` adds the handler a registered context variable's
``get()`` returns to every callback manager it configures, unless one is a
``ShekelCallbackHandler`` already (given in ``callbacks``). It cannot unregister a hook: the
one registered, once per process, answers from shekel's ``current_budget()`` (so the threads
``shekel run`` counts are followed too). Runs inside a run inherit its handler.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from shekel import current_budget
from shekel.integration import Integration, Limits, stop_routing

from ._names import NAMED, RunNames
from .package import _instruments

if TYPE_CHECKING:
    from ._handler import ShekelCallbackHandler


class _WhileBudgetActive:
    """What LangChain takes for a context variable: the default handler, where a budget (or a
    :func:`run_budgets` block, to warn that it applies to nothing) is active."""

    name = "shekel_langchain_handler"

    def get(self, default: object = None) -> ShekelCallbackHandler | None:
        wanted = current_budget() is not None or NAMED.get() is not None
        return _default[0] if wanted else None  # None while not installed


HOOK = _WhileBudgetActive()
_default: list[ShekelCallbackHandler | None] = [None]
_registered = [False]


def _install() -> None:
    from langchain_core.tracers.context import register_configure_hook

    from ._handler import ShekelCallbackHandler

    _default[0] = ShekelCallbackHandler()  # registers the router
    if not _registered[0]:
        register_configure_hook(HOOK, True, ShekelCallbackHandler)  # type: ignore[arg-type]
        _registered[0] = True


def _uninstall() -> None:
    from ._runs import route

    _default[0] = None
    stop_routing(route)


INTEGRATION = Integration(
    "shekel-langchain", "LangChain", _instruments, "langchain_core", _install, _uninstall
)


def supported() -> bool:
    """True when the installed langchain-core is one shekel-langchain supports."""
    return INTEGRATION.unsupported() is None


@contextmanager
def run_budgets(budgets: Mapping[str, Limits] | None) -> Iterator[None]:
    """Inside this block, handlers given no ``budgets`` (the one LangChain runs get by
    themselves inside a budget) map run names as ``ShekelCallbackHandler(budgets=budgets)``
    does; the innermost block applies. ``budgets`` is checked on entry (``BudgetConfigError``).
    """
    token = NAMED.set(RunNames(budgets))
    INTEGRATION.install_when_imported()
    try:
        yield
    finally:
        NAMED.reset(token)
