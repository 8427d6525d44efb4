"""Pricing: genai-prices figures, cached tokens, overrides, plugins and unknown models.

Expected costs are computed here from the providers' published prices (USD per million tokens),
independently of shekel's rate tables.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

import shekel
from shekel import (
    BudgetConfigError,
    BudgetExceededError,
    UnknownModelError,
    UnknownModelWarning,
    budget,
)
from shekel.plugins import ModelPrice, hookimpl, plugin_manager

MTOK = Decimal(1_000_000)


def published(inp: int, out: int, cached: int, rates: tuple[str, str, str]) -> float:
    """Dollars for a call: uncached input, cached input and output at their published rates."""
    rin, rout, rcached = (Decimal(r) for r in rates)
    total = ((inp - cached) * rin + cached * rcached + out * rout) / MTOK
    return float(total)


GPT_4O_MINI = ("0.15", "0.60", "0.075")
GPT_4O = ("2.50", "10.00", "1.25")


def fresh_model() -> str:
    return f"private-model-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def plugins() -> Iterator[list[object]]:
    registered: list[object] = []
    yield registered
    for plugin in registered:
        plugin_manager().unregister(plugin)


def register(plugins: list[object], plugin: object) -> None:
    plugin_manager().register(plugin)
    plugins.append(plugin)


def test_gpt_4o_mini_at_published_prices() -> None:
    b = budget(name="b")
    b.record(model="gpt-4o-mini", input_tokens=1_000_000, output_tokens=1_000_000)
    assert b.spent == 0.75  # $0.15 + $0.60
    b.reset()
    b.record(model="gpt-4o-mini", input_tokens=1_200, output_tokens=300)
    assert b.spent == published(1_200, 300, 0, GPT_4O_MINI) == 0.00036


def test_cached_input_tokens_are_priced_at_the_cached_rate() -> None:
    b = budget(name="b")
    call = b.record(
        model="gpt-4o-mini", input_tokens=10_000, output_tokens=2_000, cached_input_tokens=8_000
    )
    # 2,000 x $0.15 + 8,000 x $0.075 + 2,000 x $0.60 per million
    assert b.spent == published(10_000, 2_000, 8_000, GPT_4O_MINI) == 0.0021
    assert call.cache_read_tokens == 8_000
    assert call.input_tokens == 10_000
    assert b.snapshot().tokens_used == 12_000
    uncached = budget(name="u")
    uncached.record(model="gpt-4o-mini", input_tokens=10_000, output_tokens=2_000)
    assert uncached.spent == 0.0027
    assert uncached.spent > b.spent


def test_gpt_4o_with_cache() -> None:
    b = budget(name="b")
    b.record(model="gpt-4o", input_tokens=1_000, output_tokens=250, cached_input_tokens=400)
    assert b.spent == published(1_000, 250, 400, GPT_4O) == 0.0045
    b.reset()
    b.record(model="gpt-4o", input_tokens=1_000, output_tokens=250)
    assert b.spent == 0.005


def test_anthropic_cache_reads_and_writes() -> None:
    # Claude 3.5 Sonnet: $3 input, $15 output, $0.30 cache read, $3.75 cache write per MTok
    b = budget(name="b")
    b.record(
        model="claude-3-5-sonnet-20241022",
        provider="anthropic",
        input_tokens=10_000,
        output_tokens=1_000,
        cached_input_tokens=6_000,
        cache_write_tokens=2_000,
    )
    cost = round(b.spent * 10**9)  # spend is kept in whole nano-dollars
    expected = (2_000 * Decimal(3) + 6_000 * Decimal("0.30") + 2_000 * Decimal("3.75")) / MTOK + (
        1_000 * Decimal(15)
    ) / MTOK
    assert cost == int(expected * 10**9)


def test_tiered_price_above_200k_prompt_tokens() -> None:
    # Gemini 2.5 Pro: $1.25 / $10 per MTok up to 200k prompt tokens, $2.50 / $15 above
    small = budget(name="small")
    small.record(model="gemini-2.5-pro", input_tokens=100_000, output_tokens=1_000)
    assert small.spent == 0.135
    large = budget(name="large")
    large.record(model="gemini-2.5-pro", input_tokens=300_000, output_tokens=1_000)
    assert large.spent == 0.765


def test_summary_cost_matches_the_published_figures() -> None:
    b = budget(max_usd=10, name="session")
    with b:
        b.record(model="gpt-4o-mini", input_tokens=1_200, output_tokens=300)
        b.record(model="gpt-4o", input_tokens=1_000, output_tokens=250)
    data = b.summary_data()
    assert data["by_model"]["gpt-4o-mini"]["cost"] == 0.00036
    assert data["by_model"]["gpt-4o"]["cost"] == 0.005
    assert data["calls"][1]["cost"] == 0.005


def test_budget_prices_override_genai_prices() -> None:
    b = budget(name="b", prices={"gpt-4o-mini": {"input": 1.0, "output": 2.0}})
    b.record(model="gpt-4o-mini", input_tokens=1_000_000, output_tokens=500_000)
    assert b.spent == 2.0


def test_budget_prices_cached_rate_defaults_to_input() -> None:
    b = budget(name="b", prices={"m": {"input": 1.0, "output": 2.0}})
    b.record(model="m", input_tokens=1_000_000, cached_input_tokens=500_000)
    assert b.spent == 1.0
    c = budget(name="c", prices={"m": {"input": 1.0, "output": 2.0, "cached_input": 0.1}})
    c.record(model="m", input_tokens=1_000_000, cached_input_tokens=500_000)
    assert c.spent == 0.55


def test_parent_prices_apply_to_children_and_the_child_wins() -> None:
    with budget(name="p", prices={"house": {"input": 1, "output": 1}}) as p:
        with budget(name="c1") as c1:
            c1.record(model="house", input_tokens=1_000_000)
        with budget(name="c2", prices={"house": {"input": 3, "output": 3}}) as c2:
            c2.record(model="house", input_tokens=1_000_000)
    assert c1.spent == 1.0
    assert c2.spent == 3.0
    assert p.spent == 4.0


def test_lookup_order_budget_then_plugin_then_genai_prices(plugins: list[object]) -> None:
    class Pricer:
        @hookimpl
        def shekel_model_price(self, model: str, provider: str | None) -> ModelPrice | None:
            if model == "gpt-4o-mini":
                return ModelPrice(Decimal(5), Decimal(5))
            return None

    register(plugins, Pricer())
    via_plugin = budget(name="a")
    via_plugin.record(model="gpt-4o-mini", input_tokens=1_000_000)
    assert via_plugin.spent == 5.0
    via_budget = budget(name="b", prices={"gpt-4o-mini": {"input": 7, "output": 7}})
    via_budget.record(model="gpt-4o-mini", input_tokens=1_000_000)
    assert via_budget.spent == 7.0
    via_table = budget(name="c")  # the plugin answers None: genai-prices is asked
    via_table.record(model="gpt-4o", input_tokens=1_000_000)
    assert via_table.spent == 2.5


def test_genai_prices_is_asked_once_per_model(
    plugins: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    import genai_prices

    # registering a plugin invalidates shekel's price cache, so the next lookup is fresh
    register(plugins, object())
    calls: list[str] = []
    real = genai_prices.calc_price

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs.get("model_ref", ""))
        return real(*args, **kwargs)

    monkeypatch.setattr(genai_prices, "calc_price", counting)
    b = budget(name="b")
    for _ in range(200):
        b.record(model="gpt-4o-mini", input_tokens=100, output_tokens=10)
        b.record(model="gpt-4o", input_tokens=100, output_tokens=10)
    assert sorted(calls) == ["gpt-4o", "gpt-4o-mini"]
    # $21 and $350 per million calls of this size
    assert published(100, 10, 0, GPT_4O_MINI) == 0.000021
    assert published(100, 10, 0, GPT_4O) == 0.00035
    assert b.spent == 0.0742


def test_unknown_model_warns_once_and_still_counts_tokens() -> None:
    model = fresh_model()
    b = budget(max_usd=1.0, name="b")
    with b:
        with pytest.warns(UnknownModelWarning, match=model):
            b.record(model=model, input_tokens=100, output_tokens=50)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            b.record(model=model, input_tokens=10, output_tokens=5)
    assert b.spent == 0.0
    assert b.snapshot().tokens_used == 165
    assert b.snapshot().llm_calls_used == 2
    data = b.summary_data()
    assert data["incomplete"] is True
    assert data["unpriced_calls"] == 2
    assert data["calls"][0]["priced"] is False
    assert data["by_model"][model]["unpriced_calls"] == 2
    text = b.summary()
    assert "Incomplete" in text
    assert "unpriced" in text


def test_unknown_model_is_never_silently_free() -> None:
    priced = budget(name="p")
    priced.record(model="gpt-4o-mini", input_tokens=10, output_tokens=5)
    assert priced.summary_data()["incomplete"] is False
    assert "Incomplete" not in priced.summary()


def test_token_caps_apply_to_unknown_models() -> None:
    model = fresh_model()
    b = budget(max_tokens=1_000, name="b")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownModelWarning)
        b.record(model=model, input_tokens=600)
        with pytest.raises(BudgetExceededError) as info:
            b.record(model=model, input_tokens=600)
    assert info.value.axis == "tokens"
    assert b.snapshot().tokens_used == 1_200


def test_unknown_models_error_raises() -> None:
    model = fresh_model()
    b = budget(max_usd=1.0, name="strict_prices", unknown_models="error")
    with b, pytest.raises(UnknownModelError) as info:
        b.record(model=model, input_tokens=100, output_tokens=50)
    assert info.value.model == model
    assert "prices" in str(info.value)
    assert isinstance(info.value, shekel.ShekelError)
    assert b.spent == 0.0


def test_unknown_models_error_set_on_a_parent_applies_to_children() -> None:
    model = fresh_model()
    with budget(name="p", unknown_models="error"), budget(name="c") as c:
        with pytest.raises(UnknownModelError):
            c.check(model=model)
        with pytest.raises(UnknownModelError):
            c.record(model=model, input_tokens=1)
        c.check(model="gpt-4o-mini")  # priced: may go
    assert c.spent == 0.0


def test_explicit_usd_needs_no_price() -> None:
    model = fresh_model()
    b = budget(name="b", unknown_models="error")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b.record(usd=0.25, model=model, input_tokens=10)
    assert b.spent == 0.25
    assert b.summary_data()["incomplete"] is False


def test_published_figures_price_each_kind_of_token() -> None:
    def cost(**tokens: int) -> float:
        b = budget(name="b")
        b.record(model="gpt-4o-mini", **tokens)
        return b.spent

    assert cost(input_tokens=1_000_000) == 0.15
    assert cost(output_tokens=1_000_000) == 0.6
    assert cost(input_tokens=1_000_000, cached_input_tokens=1_000_000) == 0.075


def test_check_refuses_an_unknown_model_only_where_told_to() -> None:
    model = fresh_model()
    budget(name="lenient").check(model=model)  # unknown_models='warn' records tokens unpriced
    with pytest.raises(UnknownModelError) as info:
        budget(name="strict", strict=True).check(model=model, provider="openai")
    assert info.value.model == model
    assert info.value.provider == "openai"
    with pytest.raises(BudgetConfigError, match="model must be a non-empty string"):
        budget(name="b").check(model="")
    with pytest.raises(BudgetConfigError, match="model must be a non-empty string"):
        budget(name="b").check(model="  ")
    with pytest.raises(BudgetConfigError, match="provider must be a non-empty string"):
        budget(name="b").check(model="gpt-4o-mini", provider="")


def test_import_shekel_imports_no_sdk_and_no_price_table() -> None:
    code = (
        "import sys, shekel\n"
        "heavy = ['openai', 'anthropic', 'genai_prices', 'langchain', 'langgraph', 'crewai',"
        " 'httpx', 'pydantic']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


def test_model_name_caches_are_bounded() -> None:
    """A server inventing a model name per response cannot grow memory without end."""
    import warnings

    from shekel import _pricing

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with budget() as b:
            for i in range(_pricing.CACHE_SIZE + 500):
                b.record(model=f"invented-model-{i}", input_tokens=1)
    assert len(_pricing._cache) <= _pricing.CACHE_SIZE
    assert len(_pricing._warned_models) <= _pricing.CACHE_SIZE
    assert b.snapshot().tokens_used == _pricing.CACHE_SIZE + 500
