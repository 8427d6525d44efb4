"""Which budget pays for a request: the integrations' routers, asked together, deepest first."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from ._hookspecs import CallRoute
from ._plugins import KIT_ROUTES, OTHER_ROUTERS, hookimpl, plugin_manager

if TYPE_CHECKING:
    from ._budget import Budget

Router: TypeAlias = "Callable[[Budget | None], CallRoute | None]"
"""Given the budget active where a request is being sent (or ``None``), the route of the
framework step that made it, or ``None`` when the request is not one of this framework's."""

_routers: list[Router] = []
_lock = threading.Lock()
# What a request sent with no budget active must ask: routers with no live test (always), and
# the live tests of the others.
_live_tests: tuple[Callable[[], object], ...] = ()
_untested: list[Router] = []
_tests_of: dict[Router, Callable[[], object]] = {}


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


def route_calls(router: Router, *, live: Callable[[], object] | None = None) -> None:
    """Ask ``router`` at every request sent while it is registered (idempotent).

    ``live``: a cheap test that is true whenever ``router`` could name a budget for a request
    sent with no budget active (its framework has a run going, usually: ``RUNS.__len__``). A
    request sent outside every budget then asks the router only while the test is true, and
    pays nothing for routing otherwise. It must never be false while the router would answer:
    that request would go unrecorded. Without it, the router is asked at every request."""
    global _routers, _live_tests
    with _lock:
        if router in _routers:
            return
        first = not _routers
        _routers = [*_routers, router]
        if live is None:
            _untested.append(router)
        else:
            _live_tests = (*_live_tests, live)
            _tests_of[router] = live
        if first:
            plugin_manager().register(_Routes(), name=KIT_ROUTES)


def stop_routing(router: Router) -> None:
    """Stop asking ``router``; with no router left, requests pay nothing for routing."""
    global _routers, _live_tests
    with _lock:
        if router not in _routers:
            return
        _routers = [r for r in _routers if r is not router]
        if router in _untested:
            _untested.remove(router)
        live = _tests_of.pop(router, None)
        if live is not None:
            _live_tests = tuple(t for t in _live_tests if t is not live)
        if not _routers:
            manager = plugin_manager()
            plugin = manager.get_plugin(KIT_ROUTES)
            if plugin is not None:
                manager.unregister(plugin)


def routes_without_budget() -> bool:
    """Whether a request sent with no budget active may have a route: a plugin of its own
    implements ``shekel_route_call``, a router has no live test, or a live test is true.
    (Asked only when ``LISTENING.shekel_route_call`` is.)"""
    if OTHER_ROUTERS[0] or _untested:
        return True
    # A loop, not any(): a generator costs more, and this runs at each request outside budgets.
    for live in _live_tests:  # noqa: SIM110 (a tuple replaced whole on change: no lock)
        if live():
            return True
    return False
