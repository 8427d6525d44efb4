"""A plugin teaches shekel a new wire protocol (a gateway path) through the adapter hook."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

import shekel
from shekel import BudgetExceededError, budget
from shekel.plugins import ProtocolAdapter, RequestInfo, StreamTally, TokenUsage


class GatewayAdapter(ProtocolAdapter):
    """An in-house gateway: POST /llm/generate {"engine": ..., "prompt": ...}."""

    provider = "openai"
    path_suffixes = ("/llm/generate",)

    def inspect(self, body: dict[str, Any]) -> RequestInfo:
        return RequestInfo(body.get("engine"), False, None)

    def usage_from_json(self, data: dict[str, Any]) -> TokenUsage | None:
        used = data.get("usage")
        if not isinstance(used, dict):
            return None
        return TokenUsage(used["in"], used["out"])

    def read_response(self, content: bytes) -> tuple[TokenUsage | None, str | None]:
        data = json.loads(content)
        return self.usage_from_json(data), data.get("engine")

    def new_tally(self, hide_usage: bool) -> StreamTally:
        raise NotImplementedError("this gateway does not stream")


class GatewayPlugin:
    @shekel.plugins.hookimpl
    def shekel_protocol_adapters(self) -> Sequence[ProtocolAdapter]:
        return [GatewayAdapter()]


@pytest.fixture
def gateway_plugin() -> Iterator[None]:
    plugin = GatewayPlugin()
    shekel.plugins.plugin_manager().register(plugin)
    yield
    shekel.plugins.plugin_manager().unregister(plugin)


def _gateway(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(
        200, json={"engine": body["engine"], "text": "ok", "usage": {"in": 1_000_000, "out": 0}}
    )


def test_plugin_adapter_prices_and_caps_a_gateway(gateway_plugin: None) -> None:
    served: list[httpx.Request] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        served.append(request)
        return _gateway(request)

    client = httpx.Client(transport=httpx.MockTransport(gateway))
    payload = {"engine": "gpt-4o-mini", "prompt": "hi"}
    with budget(max_usd=0.20) as b:
        client.post("http://gw/llm/generate", json=payload)
        assert b.spent == pytest.approx(0.15)  # 1M input tokens of gpt-4o-mini
        with pytest.raises(BudgetExceededError):  # recorded, then over the cap
            client.post("http://gw/llm/generate", json=payload)
        with pytest.raises(BudgetExceededError) as refused:
            client.post("http://gw/llm/generate", json=payload)
    assert refused.value.sent is False
    assert len(served) == 2
    assert b.snapshot().llm_calls_used == 2
    assert b.spent == pytest.approx(0.30)
    assert b.summary_data()["calls"][0]["model"] == "gpt-4o-mini"


def test_without_the_plugin_the_path_is_not_an_llm_call() -> None:
    client = httpx.Client(transport=httpx.MockTransport(_gateway))
    with budget(max_usd=0.20) as b:
        client.post("http://gw/llm/generate", json={"engine": "gpt-4o-mini", "prompt": "hi"})
    assert b.snapshot().llm_calls_used == 0


def test_a_path_stops_being_routed_when_its_plugin_goes() -> None:
    client = httpx.Client(transport=httpx.MockTransport(_gateway))
    plugin = GatewayPlugin()
    shekel.plugins.plugin_manager().register(plugin)
    try:
        with budget(max_usd=1.0) as routed:
            client.post("http://gw/llm/generate", json={"engine": "gpt-4o-mini", "prompt": "hi"})
    finally:
        shekel.plugins.plugin_manager().unregister(plugin)
    with budget(max_usd=1.0) as unrouted:
        client.post("http://gw/llm/generate", json={"engine": "gpt-4o-mini", "prompt": "hi"})
    assert (routed.snapshot().llm_calls_used, unrouted.snapshot().llm_calls_used) == (1, 0)
