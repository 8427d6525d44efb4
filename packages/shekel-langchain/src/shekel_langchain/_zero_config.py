"""Zero configuration: LangChain adds shekel's handler to every run inside a budget.

LangChain's ``register_configure_hook`` makes every new callback manager include the handler
that a registered context variable's ``get()`` returns, when it returns one. It is registered
once per process (the API has no way to unregister, so registering per use would grow
LangChain's list for ever). What is registered is :data:`HANDLER`, whose ``get()`` returns the
zero-config handler while a budget is active in the calling thread or task (shekel's own
context variable decides) and ``None`` otherwise: outside budgets LangChain runs as without
shekel, and entering or leaving a budget costs nothing more. LangChain reads the hook only
through ``get()`` (langchain-core 1.0 to 1.8, both ends tested).

Nothing here imports LangChain: shekel loads this package through its entry point in every
process that enters a budget, LangChain or not. The hook is registered when the first budget is
entered if LangChain's ``langchain_core.tracers.context`` is loaded by then, else the moment it
is (LangChain loads it before it builds its first callback manager). The supported range of
langchain-core is checked then, not before: a process without LangChain pays nothing.
"""

from __future__ import annotations

import abc
import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from shekel import current_budget

from ._names import BudgetSpec, RunNames
from .package import check_supported

if TYPE_CHECKING:
    from ._handler import ShekelCallbackHandler

HOOKS_MODULE: Final = "langchain_core.tracers.context"
"""Where LangChain keeps its configure hooks."""


class ShekelHandlers(abc.ABC):  # noqa: B024 (a marker: nothing to implement)
    """Every ``ShekelCallbackHandler`` is an instance of this class (registered by
    ``_handler``). Given to LangChain as the hook's handler class, without importing LangChain
    here: LangChain leaves the zero-config handler out of a run that has one already."""


class WhileBudgetActive:
    """Registered with LangChain in place of a context variable: holds the zero-config handler
    in every thread or task where a budget is active (``shekel.current_budget()``)."""

    __slots__ = ()
    name = "shekel_langchain_handler"

    def get(self, default: object = None) -> ShekelCallbackHandler | None:
        if current_budget() is None:
            return None
        handler = _default[0]
        if handler is None:  # first use: LangChain is loaded, since it is asking
            from ._handler import zero_config_handler

            handler = _default[0] = zero_config_handler()
        return handler


HANDLER: Final = WhileBudgetActive()

NAMES: Final[ContextVar[RunNames | None]] = ContextVar("shekel_langchain_names", default=None)
"""The names :func:`run_budgets` gives the zero-config handler in this thread or task."""

_default: list[ShekelCallbackHandler | None] = [None]
_registered = [False]
_lock = threading.Lock()


def install() -> None:
    """Register :data:`HANDLER` with LangChain, now or when LangChain loads its hooks module;
    once per process."""
    if _registered[0]:
        return
    with _lock:
        if _registered[0] or _AFTER_IMPORT in sys.meta_path:
            return
        if HOOKS_MODULE not in sys.modules:
            sys.meta_path.insert(0, _AFTER_IMPORT)
            if HOOKS_MODULE not in sys.modules:  # not imported meanwhile by another thread
                return
            sys.meta_path.remove(_AFTER_IMPORT)
    # Loaded already (or being loaded by another thread: this waits for it to finish).
    _register(importlib.import_module(HOOKS_MODULE))


def _register(module: ModuleType) -> None:
    """Register with LangChain if its version is supported (else warn, once, and do not)."""
    with _lock:
        if _registered[0]:
            return
        _registered[0] = True
    if check_supported():
        module.register_configure_hook(HANDLER, True, ShekelHandlers)


class _AfterHooksImport(importlib.abc.MetaPathFinder):
    """Registers :data:`HANDLER` as soon as LangChain's hooks module has been executed."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != HOOKS_MODULE:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)  # once is enough
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            spec: importlib.machinery.ModuleSpec | None = (
                find(fullname, path, target) if find is not None else None
            )
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _RegisteringLoader(spec.loader)
                return spec
        return None


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        created: ModuleType | None = self.inner.create_module(spec)
        return created

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        _register(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename... of the real loader
        return getattr(self.inner, name)


_AFTER_IMPORT: Final = _AfterHooksImport()


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
    token = NAMES.set(names)
    try:
        yield
    finally:
        NAMES.reset(token)
