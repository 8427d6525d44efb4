"""Metrics through ``instrument()``: what the fake provider charged, by budget path and model."""

from __future__ import annotations

import asyncio

import anthropic
import openai
import pytest
from otel_fixtures import (  # noqa: F401 (fixtures, used by their names)
    aclaude_fixture,
    aoai_fixture,
    claude_fixture,
    oai_fixture,
    telemetry_fixture,
)
from otel_support import CLAUDE, EMBEDDING, GPT, PRICES, USER, Key, Telemetry, cost, key

import shekel_otel
from shekel import (
    BudgetExceededError,
    BudgetWarning,
    ToolBudgetExceededError,
    budget,
    current_budget,
    with_budget,
)
from shekel.testing import FakeProvider, Reply

# The bucket boundaries the GenAI conventions give for token counts.
TOKEN_BUCKETS = (
    1.0,
    4.0,
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262144.0,
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
)


def tokens_key(
    path: str,
    model: str,
    provider: str,
    kind: str,
    response_model: str | None = None,
    operation: str = "chat",
) -> frozenset[tuple[str, str]]:
    return key(
        {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "gen_ai.response.model": response_model or model,
            "gen_ai.token.type": kind,
            "shekel.budget.path": path,
        }
    )


def cost_key(path: str, model: str, provider: str) -> frozenset[tuple[str, str]]:
    return key(
        {
            "shekel.budget.path": path,
            "gen_ai.request.model": model,
            "gen_ai.provider.name": provider,
        }
    )


def test_cost_and_tokens_by_budget_path_and_model(
    telemetry: Telemetry,
    fake_llm: FakeProvider,
    oai: openai.OpenAI,
    claude: anthropic.Anthropic,
) -> None:
    fake_llm.enqueue(
        Reply(text="a", input_tokens=1_000, output_tokens=200),
        Reply(text="b", input_tokens=3_000, output_tokens=400),
        Reply(text="c d", input_tokens=500, output_tokens=2),  # streamed
        Reply(text="e", input_tokens=2_000, output_tokens=100),  # anthropic
        Reply(text="f g", input_tokens=700, output_tokens=2),  # anthropic, streamed
    )
    with budget(max_usd=5, name="app", prices=PRICES) as app:
        oai.chat.completions.create(model=GPT, messages=USER)
        with budget(max_usd=1, name="research") as research:
            oai.chat.completions.create(model=GPT, messages=USER)
            list(oai.chat.completions.create(model=GPT, messages=USER, stream=True))
            claude.messages.create(model=CLAUDE, max_tokens=100, messages=USER)  # type: ignore[arg-type]
        with (
            budget(max_usd=1, name="write") as write,
            claude.messages.stream(model=CLAUDE, max_tokens=100, messages=USER) as stream,  # type: ignore[arg-type]
        ):
            stream.until_done()

    found = telemetry.collect()
    assert found["shekel.cost"] == {
        cost_key("app", GPT, "openai"): pytest.approx(cost(GPT, 1_000, 200)),
        cost_key("app.research", GPT, "openai"): pytest.approx(
            cost(GPT, 3_000, 400) + cost(GPT, 500, 2)
        ),
        cost_key("app.research", CLAUDE, "anthropic"): pytest.approx(cost(CLAUDE, 2_000, 100)),
        cost_key("app.write", CLAUDE, "anthropic"): pytest.approx(cost(CLAUDE, 700, 2)),
    }
    # The same figures as the budgets' own accounts.
    assert sum(found["shekel.cost"].values()) == pytest.approx(app.spent)
    research_cost = sum(
        v for k, v in found["shekel.cost"].items() if ("shekel.budget.path", "app.research") in k
    )
    assert research_cost == pytest.approx(research.spent)
    assert found["shekel.cost"][cost_key("app.write", CLAUDE, "anthropic")] == pytest.approx(
        write.spent
    )

    assert found["gen_ai.client.token.usage"] == {
        tokens_key("app", GPT, "openai", "input"): (1, 1_000),
        tokens_key("app", GPT, "openai", "output"): (1, 200),
        tokens_key("app.research", GPT, "openai", "input"): (2, 3_500),
        tokens_key("app.research", GPT, "openai", "output"): (2, 402),
        tokens_key("app.research", CLAUDE, "anthropic", "input"): (1, 2_000),
        tokens_key("app.research", CLAUDE, "anthropic", "output"): (1, 100),
        tokens_key("app.write", CLAUDE, "anthropic", "input"): (1, 700),
        tokens_key("app.write", CLAUDE, "anthropic", "output"): (1, 2),
    }


def test_instruments_follow_the_conventions(
    telemetry: Telemetry, fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    fake_llm.enqueue(Reply(text="a", input_tokens=100_000, output_tokens=3))
    with budget(max_usd=5, name="app", warn_at=0.000001) as app:
        with pytest.warns(BudgetWarning, match="reached"):
            oai.chat.completions.create(model=GPT, messages=USER)
        app.tool_call("search", usd=0.01).commit()
        with pytest.raises(BudgetExceededError):
            app.record(usd=10.0)
        assert telemetry.collect()  # the gauges, while the budget is active
    data = telemetry.reader.get_metrics_data()
    assert data is not None
    units = {
        metric.name: (metric.unit, type(metric.data).__name__)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert units == {
        "gen_ai.client.token.usage": ("{token}", "Histogram"),
        "shekel.cost": ("USD", "Sum"),
        "shekel.tool.calls": ("{call}", "Sum"),
        "shekel.budget.exceeded": ("{error}", "Sum"),
        "shekel.budget.warnings": ("{warning}", "Sum"),
    }
    assert {scope for scope, _ in telemetry.scopes().values()} == {shekel_otel.METER_NAME}
    assert telemetry.histogram_bounds("gen_ai.client.token.usage") == [TOKEN_BUCKETS] * 2


def test_gauges_report_active_budgets_only(
    telemetry: Telemetry, fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    fake_llm.set_usage(input_tokens=100_000, output_tokens=10_000)
    per_call = cost(GPT, 100_000, 10_000)  # $0.021
    with budget(max_usd=1, max_llm_calls=4, name="app", prices=PRICES):
        oai.chat.completions.create(model=GPT, messages=USER)
        with budget(max_usd=0.1, max_tokens=500_000, name="step"):
            oai.chat.completions.create(model=GPT, messages=USER)
            found = telemetry.collect()
            assert found["shekel.budget.remaining"] == {
                key({"shekel.budget.path": "app"}): pytest.approx(1 - 2 * per_call),
                key({"shekel.budget.path": "app.step"}): pytest.approx(0.1 - per_call),
            }
            assert found["shekel.budget.utilization"] == {
                key({"shekel.budget.path": "app", "shekel.limit.axis": "usd"}): pytest.approx(
                    2 * per_call
                ),
                key({"shekel.budget.path": "app", "shekel.limit.axis": "llm_calls"}): 0.5,
                key({"shekel.budget.path": "app.step", "shekel.limit.axis": "usd"}): pytest.approx(
                    per_call / 0.1
                ),
                key(
                    {"shekel.budget.path": "app.step", "shekel.limit.axis": "tokens"}
                ): pytest.approx(110_000 / 500_000),
            }
        # The step ended: only the app is reported now.
        found = telemetry.collect()
        assert set(found["shekel.budget.remaining"]) == {key({"shekel.budget.path": "app"})}
    found = telemetry.collect()
    assert not found.get("shekel.budget.remaining")
    assert not found.get("shekel.budget.utilization")


def test_budgets_sharing_a_name_report_the_tightest(telemetry: Telemetry) -> None:
    @with_budget(max_usd=1.0, name="request")
    async def request(spend: float, ready: asyncio.Barrier) -> dict[str, dict[Key, object]]:
        current_budget().record(usd=spend)  # type: ignore[union-attr]
        await ready.wait()  # every request is active now
        found = telemetry.collect()
        await ready.wait()
        return found

    async def main() -> list[dict[str, dict[Key, object]]]:
        ready = asyncio.Barrier(3)
        return await asyncio.gather(request(0.1, ready), request(0.7, ready), request(0.5, ready))

    with budget(name="app"):
        found = asyncio.run(main())[0]
    # One series per name: the request with the least left, the one closest to its limit.
    assert found["shekel.budget.remaining"] == {
        key({"shekel.budget.path": "app.request"}): pytest.approx(0.3)
    }
    assert found["shekel.budget.utilization"] == {
        key({"shekel.budget.path": "app.request", "shekel.limit.axis": "usd"}): pytest.approx(0.7)
    }


def test_unnamed_and_repeated_budgets_are_reported_by_name(
    telemetry: Telemetry, fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    @with_budget(max_usd=1, name="summarize")
    def summarize() -> None:
        oai.chat.completions.create(model=GPT, messages=USER)

    for _ in range(2):  # two unnamed budgets, each with private keys of its own
        with budget(max_usd=1, prices=PRICES):
            oai.chat.completions.create(model=GPT, messages=USER)
    with budget(max_usd=5, name="app", prices=PRICES):
        for _ in range(3):
            summarize()
    paths = {
        dict(k)["shekel.budget.path"]: v for k, v in telemetry.collect()["shekel.cost"].items()
    }
    assert paths == {
        "budget": pytest.approx(2 * cost(GPT, 12, 3)),
        "app.summarize": pytest.approx(3 * cost(GPT, 12, 3)),
    }


def test_async_calls(
    telemetry: Telemetry,
    fake_llm: FakeProvider,
    aoai: openai.AsyncOpenAI,
    aclaude: anthropic.AsyncAnthropic,
) -> None:
    fake_llm.set_usage(input_tokens=400, output_tokens=50)

    async def main() -> None:
        async with budget(max_usd=1, name="app", prices=PRICES):
            async with budget(name="gpt"):
                await aoai.chat.completions.create(model=GPT, messages=USER)  # type: ignore[arg-type]
                async for _ in await aoai.chat.completions.create(
                    model=GPT,
                    messages=USER,  # type: ignore[arg-type]
                    stream=True,
                ):
                    pass
            async with budget(name="claude"):
                await aclaude.messages.create(model=CLAUDE, max_tokens=100, messages=USER)  # type: ignore[arg-type]
        await aoai.close()
        await aclaude.close()

    asyncio.run(main())
    found = telemetry.collect()
    assert found["shekel.cost"] == {
        cost_key("app.gpt", GPT, "openai"): pytest.approx(2 * cost(GPT, 400, 50)),
        cost_key("app.claude", CLAUDE, "anthropic"): pytest.approx(cost(CLAUDE, 400, 50)),
    }
    assert found["gen_ai.client.token.usage"][tokens_key("app.gpt", GPT, "openai", "input")] == (
        2,
        800,
    )


def test_embeddings_and_response_models(
    telemetry: Telemetry, fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    fake_llm.enqueue(
        Reply(text="a", input_tokens=300, output_tokens=30, model="gpt-4o-mini-2024-07-18"),
        Reply(input_tokens=5_000),
    )
    with budget(max_usd=1, name="app", prices=PRICES):
        oai.chat.completions.create(model=GPT, messages=USER)
        oai.embeddings.create(model=EMBEDDING, input=["a", "b"])
    tokens = telemetry.collect()["gen_ai.client.token.usage"]
    dated = "gpt-4o-mini-2024-07-18"
    assert tokens == {
        tokens_key("app", GPT, "openai", "input", response_model=dated): (1, 300),
        tokens_key("app", GPT, "openai", "output", response_model=dated): (1, 30),
        # Embeddings have input tokens only.
        tokens_key("app", EMBEDDING, "openai", "input", operation="embeddings"): (1, 5_000),
    }


def test_refusals_by_axis(telemetry: Telemetry, fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.set_usage(input_tokens=1_000_000, output_tokens=0)
    with budget(max_usd=1, name="app", prices=PRICES) as app:
        with budget(max_llm_calls=1, name="calls"):
            oai.chat.completions.create(model=GPT, messages=USER)
            with pytest.raises(BudgetExceededError) as refused:
                oai.chat.completions.create(model=GPT, messages=USER)
            assert refused.value.sent is False
        with budget(max_usd=0.2, name="money"):
            with pytest.raises(BudgetExceededError) as over:
                oai.chat.completions.create(model=GPT, messages=USER)  # $0.15, then ...
                oai.chat.completions.create(model=GPT, messages=USER)  # ... $0.30: over
            assert over.value.sent is True
        with budget(max_tool_calls=1, name="tools") as tools:
            tools.tool_call("search").commit()
            with pytest.raises(ToolBudgetExceededError):
                tools.tool_call("search").commit()
        assert app.snapshot().llm_calls_used == 3
    assert len(fake_llm.requests) == 3  # the refused call was never sent
    exceeded = telemetry.collect()["shekel.budget.exceeded"]
    assert exceeded == {
        key(
            {
                "shekel.budget.path": "app.calls",
                "shekel.limit.axis": "llm_calls",
                "shekel.call.sent": False,
            }
        ): 1,
        key(
            {
                "shekel.budget.path": "app.money",
                "shekel.limit.axis": "usd",
                "shekel.call.sent": True,
            }
        ): 1,
        key(
            {
                "shekel.budget.path": "app.tools",
                "shekel.limit.axis": "tool_calls",
                "shekel.call.sent": False,
            }
        ): 1,
    }


def test_warnings_fallbacks_and_tool_calls(
    telemetry: Telemetry, fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    fake_llm.set_usage(input_tokens=1_000_000, output_tokens=0)  # $0.15 on gpt-4o-mini
    fallback = {"at_pct": 0.5, "model": "gpt-4o-nano"}
    prices = {**PRICES, "gpt-4o-nano": {"input": 0.01, "output": 0.01}}
    with budget(
        max_usd=0.25,
        name="app",
        prices=prices,
        warn_at=0.5,
        fallback=fallback,
        tool_prices={"search": 0.005},
    ) as app:
        with pytest.warns(
            BudgetWarning, match=r"reached 50% of its limit of \$0\.25 \(\$0\.15 used\)"
        ):
            oai.chat.completions.create(model=GPT, messages=USER)  # 60%: warning and fallback
        oai.chat.completions.create(model=GPT, messages=USER)  # sent as gpt-4o-nano
        app.tool_call("search").commit()
        app.tool_call("search").commit()
        app.tool_call("fetch", usd=0.001).commit()
    assert fake_llm.requests[-1].body["model"] == "gpt-4o-nano"
    found = telemetry.collect()
    assert found["shekel.budget.warnings"] == {
        key({"shekel.budget.path": "app", "shekel.limit.axis": "usd"}): 1
    }
    assert found["shekel.budget.fallbacks"] == {
        key({"shekel.budget.path": "app", "shekel.fallback.model": "gpt-4o-nano"}): 1
    }
    search = key({"shekel.budget.path": "app", "gen_ai.tool.name": "search"})
    fetch = key({"shekel.budget.path": "app", "gen_ai.tool.name": "fetch"})
    assert found["shekel.tool.calls"] == {search: 2, fetch: 1}
    assert found["shekel.cost"][search] == pytest.approx(0.01)
    assert found["shekel.cost"][fetch] == pytest.approx(0.001)
    assert found["shekel.cost"][cost_key("app", "gpt-4o-nano", "openai")] == pytest.approx(0.01)


def test_reported_usage_estimates_and_unknown_models(
    telemetry: Telemetry, fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    # A stream cut off after two chunks: recorded as an estimate.
    fake_llm.enqueue(Reply(text="one two three four five six", drop_after_chunks=2))
    with budget(max_usd=1, name="app", prices=PRICES) as app:
        app.record(usd=0.25)  # a known amount: a cost, no tokens
        app.record(model=GPT, input_tokens=2_000, output_tokens=100, source="framework")
        with pytest.warns(Warning, match="no price"):
            app.record(model="house-model-a", input_tokens=10, output_tokens=5)
        with pytest.raises(Exception):  # the transport's error, passed through
            for _ in oai.chat.completions.create(model=GPT, messages=USER, stream=True):
                pass
        estimated = app.history().recent()[-1]
    assert estimated.estimated
    assert estimated.cost > 0
    found = telemetry.collect()
    assert found["shekel.cost"] == {
        key({"shekel.budget.path": "app"}): pytest.approx(0.25),
        key({"shekel.budget.path": "app", "gen_ai.request.model": GPT}): pytest.approx(
            cost(GPT, 2_000, 100)
        ),
        # The estimate is charged, so it costs...
        cost_key("app", GPT, "openai"): pytest.approx(estimated.cost_usd),
    }
    reported = {"gen_ai.operation.name": "chat", "shekel.budget.path": "app"}
    # ... but only counts the provider reported are token usage.
    assert found["gen_ai.client.token.usage"] == {
        key({**reported, "gen_ai.request.model": GPT, "gen_ai.token.type": "input"}): (1, 2_000),
        key({**reported, "gen_ai.request.model": GPT, "gen_ai.token.type": "output"}): (1, 100),
        key({**reported, "gen_ai.request.model": "house-model-a", "gen_ai.token.type": "input"}): (
            1,
            10,
        ),
        key({**reported, "gen_ai.request.model": "house-model-a", "gen_ai.token.type": "output"}): (
            1,
            5,
        ),
    }


def test_uninstrument_stops_reporting(
    telemetry: Telemetry, fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    with budget(max_usd=1, name="app", prices=PRICES) as app:
        oai.chat.completions.create(model=GPT, messages=USER)
        shekel_otel.uninstrument()
        oai.chat.completions.create(model=GPT, messages=USER)
        app.tool_call("search").commit()
        found = telemetry.collect()
    assert found["shekel.cost"] == {cost_key("app", GPT, "openai"): pytest.approx(cost(GPT, 12, 3))}
    assert "shekel.tool.calls" not in found
    assert not found.get("shekel.budget.remaining")  # the gauges report nothing either
    # Wired again to the same providers, it goes on where it stopped.
    shekel_otel.instrument(
        meter_provider=telemetry.meter_provider, tracer_provider=telemetry.tracer_provider
    )
    with budget(max_usd=1, name="app", prices=PRICES):
        oai.chat.completions.create(model=GPT, messages=USER)
        found = telemetry.collect()
    assert found["shekel.cost"] == {
        cost_key("app", GPT, "openai"): pytest.approx(2 * cost(GPT, 12, 3))
    }
    assert set(found["shekel.budget.remaining"]) == {key({"shekel.budget.path": "app"})}
