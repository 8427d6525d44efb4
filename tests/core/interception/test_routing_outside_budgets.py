"""A request sent outside every budget asks an integration's router only while the router's
live test says its framework has a run going: routing costs nothing outside budgets otherwise,
and no request a router would have named a budget for goes unrecorded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from sdk_figures import USER

from shekel import Budget, budget
from shekel._kit_routes import routes_without_budget
from shekel.integration import route_calls, stop_routing
from shekel.plugins import CallRoute, hookimpl, plugin_manager
from shekel.testing import FakeProvider

# The SDK layer (a plain call) and the HTTP layer (a raw-response call) each make the test.
LAYERS: dict[str, Callable[[openai.OpenAI], Any]] = {
    "sdk": lambda oai: oai.chat.completions.create(model="gpt-4o-mini", messages=USER),
    "http": lambda oai: oai.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=USER
    ),
}


class Framework:
    """A framework's router over its runs: the run going pays."""

    def __init__(self) -> None:
        self.runs: list[Budget] = []
        self.asked: list[Budget | None] = []

    def route(self, active: Budget | None) -> CallRoute | None:
        self.asked.append(active)
        return CallRoute(self.runs[-1]) if self.runs else None


@pytest.fixture
def framework() -> Iterator[Framework]:
    with budget(max_usd=1):  # the first budget entered installs the interception
        pass
    assert not routes_without_budget(), "a router asked outside budgets was left registered"
    registered = Framework()
    route_calls(registered.route, live=registered.runs.__len__)
    yield registered
    stop_routing(registered.route)


@pytest.mark.parametrize("layer", LAYERS)
def test_a_router_is_asked_outside_budgets_only_while_a_run_is_going(
    fake: FakeProvider, oai: openai.OpenAI, framework: Framework, layer: str
) -> None:
    send = LAYERS[layer]
    send(oai)
    assert framework.asked == []  # no run going: nothing asked, nothing recorded
    run = budget(max_usd=1, name="run")
    framework.runs.append(run)
    send(oai)
    assert framework.asked == [None]
    assert run.snapshot().llm_calls_used == 1
    framework.runs.clear()
    with budget(max_usd=1, name="app") as app:  # inside a budget a router may name a child
        send(oai)
    assert framework.asked == [None, app]
    assert app.snapshot().llm_calls_used == 1
    assert len(fake.requests) == 3


def test_a_router_without_a_live_test_is_asked_at_every_request(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    asked: list[Budget | None] = []
    with budget(max_usd=1):  # the first budget entered installs the interception
        pass

    def router(active: Budget | None) -> None:
        asked.append(active)

    route_calls(router)
    try:
        LAYERS["sdk"](oai)
        LAYERS["http"](oai)
    finally:
        stop_routing(router)
    assert asked == [None, None]


class OwnRouter:
    """A plugin that implements ``shekel_route_call`` itself, not through the kit."""

    def __init__(self) -> None:
        self.asked = 0

    @hookimpl
    def shekel_route_call(self, active: Budget | None) -> CallRoute | None:
        self.asked += 1
        return None


def test_a_plugin_routing_by_itself_is_asked_outside_budgets_beside_a_quiet_router(
    fake: FakeProvider, oai: openai.OpenAI, framework: Framework
) -> None:
    own = OwnRouter()
    plugin_manager().register(own)
    try:
        LAYERS["sdk"](oai)
        LAYERS["http"](oai)
    finally:
        plugin_manager().unregister(own)
    assert own.asked == 2
    LAYERS["sdk"](oai)
    assert own.asked == 2
    assert len(framework.asked) == 2  # the kit's routers are asked together, once per request
