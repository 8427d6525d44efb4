"""The plugin manager, the cheap "does anyone listen?" flags used on hot paths, and the direct
callers of the hooks that observe spend.

pluggy's own call costs about a microsecond even with no implementation, so every hook call on
the recording path is guarded by a plain attribute read of :data:`LISTENING`. Once a plugin
listens, pluggy's generic dispatch (argument checks, the wrapper protocol) costs several times
what the plugin itself does on every recorded call: :data:`CALL` calls the implementations
directly, in pluggy's order and with pluggy's arguments, whenever no wrapper is registered.
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


def _silent(**kwargs: Any) -> None:
    """What :data:`CALL` holds for a hook nobody implements."""
    return


class _Callers:
    """One caller per observing hook, taking the hook's keyword arguments like pluggy's."""

    __slots__ = _Listening.__slots__

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, _silent)


CALL: Final[Any] = _Callers()
"""``CALL.shekel_spend_recorded(budget=..., call=...)``: the hook's implementations, called
directly. Guarded by :data:`LISTENING` on hot paths, like pluggy's own hook."""


def _direct_caller(caller: pluggy.HookCaller) -> Callable[..., Any]:
    """A function doing what ``caller(**kwargs)`` does for plain implementations: each called
    with the arguments it names, newest registered first; for a ``firstresult`` hook, the first
    answer that is not ``None``. pluggy's own caller when a wrapper must see the call."""
    impls = caller.get_hookimpls()
    if not impls:
        return _silent
    if any(impl.hookwrapper or impl.wrapper for impl in impls) or caller.spec is None:
        return caller
    spec_names = tuple(caller.spec.argnames)
    plan = [
        (impl.function, None if tuple(impl.argnames) == spec_names else tuple(impl.argnames))
        for impl in reversed(impls)
    ]
    if caller.spec.opts.get("firstresult"):

        def first_answer(**kwargs: Any) -> Any:
            for function, names in plan:
                answer = (
                    function(**kwargs) if names is None else function(*[kwargs[n] for n in names])
                )
                if answer is not None:
                    return answer
            return None

        return first_answer
    if len(plan) == 1 and plan[0][1] is None:
        return plan[0][0]  # one plugin taking every argument: call it as it is

    def each(**kwargs: Any) -> None:
        for function, names in plan:
            if names is None:
                function(**kwargs)
            else:
                function(*[kwargs[n] for n in names])

    return each


KIT_ROUTES: Final = "shekel-integration-routes"
"""The name of the plugin that asks the routers integrations register with ``route_calls``."""
OTHER_ROUTERS: Final = [False]
"""Whether a plugin other than :data:`KIT_ROUTES` implements ``shekel_route_call``."""

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
        # A router may name a budget for a call made before any budget was entered. Not the
        # integrations' (``route_calls``): their install hooks route calls, and their budgets
        # are entered through the kit, which installs.
        if _manager is self and not _installed[0] and name != KIT_ROUTES and self._routes(plugin):
            install_once()
        return result

    def _routes(self, plugin: object) -> bool:
        return any(impl.plugin is plugin for impl in self.hook.shekel_route_call.get_hookimpls())

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any:
        result = super().unregister(plugin, name)
        self._changed()
        return result

    def _changed(self) -> None:
        self.generation += 1
        for flag in _Listening.__slots__:
            caller = getattr(self.hook, flag)
            setattr(LISTENING, flag, bool(caller.get_hookimpls()))
            setattr(CALL, flag, _direct_caller(caller))
        kit = self.get_plugin(KIT_ROUTES)
        routers = self.hook.shekel_route_call.get_hookimpls()
        OTHER_ROUTERS[0] = any(impl.plugin is not kit for impl in routers)
        for listener in CHANGE_LISTENERS:
            listener()


_manager: ShekelPluginManager | None = None
_manager_lock = threading.Lock()
_install_lock = threading.Lock()
_installed = [False]  # a list: read on every enter, and re-read under the lock
_installing: list[int | None] = [None]  # the thread running the install hooks
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
    """Run the ``shekel_install`` hook before the first budget becomes active, or when a plugin
    that routes calls (``shekel_route_call``) is registered with ``register``.

    Every thread that gets here first waits until installation has finished: a call made under
    a budget must never go out through an unpatched client. If a plugin's install raises, the
    error reaches the caller and the next budget tries again.
    """
    if _installed[0] or _installing[0] == threading.get_ident():
        return  # done, or a plugin this thread is installing registers a router
    manager = _manager or plugin_manager()
    with _install_lock:
        if _install_done():  # another thread finished it while this one waited
            return
        _installing[0] = threading.get_ident()
        try:
            _install(manager)
        finally:
            _installing[0] = None


def _install(manager: ShekelPluginManager) -> None:
    global _install_called
    # The price table imports httpx2. Imported later, inside some thread's first priced call,
    # it would be half-imported while other threads' SDK code reads it from sys.modules (openai
    # does), which fails: import it now, before any budget is active.
    import genai_prices  # noqa: F401

    if not _install_called:
        _install_called = True  # historic: plugins registered later are installed too
        manager.hook.shekel_install.call_historic(kwargs={})
    else:
        manager.hook.shekel_install()
    _installed[0] = True
