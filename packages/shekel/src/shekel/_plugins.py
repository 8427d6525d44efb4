"""The plugin manager and the cheap "does anyone listen?" flags used on hot paths.

pluggy's own call costs about a microsecond even with no implementation, so every hook call on
the recording path is guarded by a plain attribute read of :data:`LISTENING`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

import pluggy

from . import _hookspecs

ENTRY_POINT_GROUP: Final = "shekel"

hookimpl = pluggy.HookimplMarker("shekel")
"""Marks plugin functions: ``@shekel.plugins.hookimpl def shekel_spend_recorded(budget, call)``."""


class _Listening:
    """One boolean per observing hook: True when at least one plugin implements it."""

    __slots__ = (
        "shekel_budget_entered",
        "shekel_budget_exited",
        "shekel_fallback_activated",
        "shekel_limit_exceeded",
        "shekel_model_price",
        "shekel_route_call",
        "shekel_spend_recorded",
        "shekel_warning_crossed",
    )

    shekel_budget_entered: bool
    shekel_budget_exited: bool
    shekel_fallback_activated: bool
    shekel_limit_exceeded: bool
    shekel_model_price: bool
    shekel_route_call: bool
    shekel_spend_recorded: bool
    shekel_warning_crossed: bool

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, False)


LISTENING: Final = _Listening()

CHANGE_LISTENERS: Final[list[Callable[[], object]]] = []
"""Called whenever a plugin is registered or unregistered (caches that depend on plugins)."""


class ShekelPluginManager(pluggy.PluginManager):
    """A pluggy manager that keeps :data:`LISTENING` and other caches up to date."""

    def __init__(self) -> None:
        super().__init__("shekel")
        self.add_hookspecs(_hookspecs)
        self.generation = 0

    def register(self, plugin: object, name: str | None = None) -> str | None:
        result = super().register(plugin, name)
        self._changed()
        return result

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any:
        result = super().unregister(plugin, name)
        self._changed()
        return result

    def _changed(self) -> None:
        self.generation += 1
        for flag in _Listening.__slots__:
            setattr(LISTENING, flag, bool(getattr(self.hook, flag).get_hookimpls()))
        for listener in CHANGE_LISTENERS:
            listener()


_manager: ShekelPluginManager | None = None
_manager_lock = threading.Lock()
_install_lock = threading.Lock()
_installed = [False]  # a list: read on every enter, and re-read under the lock
_install_called = False


def plugin_manager() -> ShekelPluginManager:
    """The process-wide plugin manager, created on first use with entry-point plugins loaded."""
    global _manager
    manager = _manager
    if manager is not None:
        return manager
    with _manager_lock:
        if _manager is None:
            created = ShekelPluginManager()
            created.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
            created._changed()
            _manager = created
        return _manager


def _install_done() -> bool:
    return _installed[0]


def install_once() -> None:
    """Run the ``shekel_install`` hook before the first budget becomes active.

    Every thread that gets here first waits until installation has finished: a call made under
    a budget must never go out through an unpatched client. If a plugin's install raises, the
    error reaches the caller and the next budget tries again.
    """
    global _install_called
    if _installed[0]:
        return
    manager = plugin_manager()
    with _install_lock:
        if _install_done():  # another thread finished it while this one waited
            return
        # The price table imports httpx2. Imported later, inside some thread's first priced
        # call, it would be half-imported while other threads' SDK code reads it from
        # sys.modules (openai does), which fails: import it now, before any budget is active.
        import genai_prices  # noqa: F401

        if not _install_called:
            _install_called = True  # historic: plugins registered later are installed too
            manager.hook.shekel_install.call_historic(kwargs={})
        else:
            manager.hook.shekel_install()
        _installed[0] = True
