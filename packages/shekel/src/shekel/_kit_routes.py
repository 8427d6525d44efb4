"""Which budget pays for a request: the integrations' routers, asked together, deepest first."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from ._hookspecs import CallRoute
from ._plugins import hookimpl, plugin_manager

if TYPE_CHECKING:
    from ._budget import Budget

Router: TypeAlias = "Callable[[Budget | None], CallRoute | None]"
"""Given the budget active where a request is being sent (or ``None``), the route of the
framework step that made it, or ``None`` when the request is not one of this framework's."""

_routers: list[Router] = []
_lock = threading.Lock()
_NAME = "shekel-integration-routes"


class _Routes:
    """One ``shekel_route_call`` for every integration: when two frameworks both claim a request
    (a LangChain model inside a LlamaIndex step...), the step deepest in the budget tree, the
    most specific, pays; import order never decides."""

    @hookimpl
    def shekel_route_call(self, active: Budget | None) -> CallRoute | None:
        best: CallRoute | None = None
        for router in _routers:  # a list replaced whole on change: safe to read without a lock
            found = router(active)
            if found is not None and (best is None or _depth(found) > _depth(best)):
                best = found
        return best


def _depth(route: CallRoute) -> int:
    return len(route.budget._c.lineage)


def route_calls(router: Router) -> None:
    """Ask ``router`` at every request sent while it is registered (idempotent)."""
    global _routers
    with _lock:
        if router in _routers:
            return
        first = not _routers
        _routers = [*_routers, router]
        if first:
            plugin_manager().register(_Routes(), name=_NAME)


def stop_routing(router: Router) -> None:
    """Stop asking ``router``; with no router left, requests pay nothing for routing."""
    global _routers
    with _lock:
        if router not in _routers:
            return
        _routers = [r for r in _routers if r is not router]
        if not _routers:
            manager = plugin_manager()
            plugin = manager.get_plugin(_NAME)
            if plugin is not None:
                manager.unregister(plugin)
