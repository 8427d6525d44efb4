"""Spend on spans: on the span an LLM instrumentation made for the call (OpenLLMetry's openai
and anthropic instrumentations, real ones, in a process of their own; the anthropic SDK's own
spans), else on the current span."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry import metrics
from opentelemetry.sdk.trace import TracerProvider
from otel_fixtures import (  # noqa: F401 (fixtures, used by their names)
    claude_fixture,
    oai_fixture,
    telemetry_fixture,
)
from otel_support import CLAUDE, GPT, PRICES, USER, Telemetry, cost, events, shekel_attributes

import shekel_otel
from shekel import BudgetExceededError, BudgetWarning, budget
from shekel.testing import FakeProvider, Reply


@pytest.fixture(scope="module")
def instrumented() -> dict[str, Any]:
    """The spans of ``instrumented_calls.py``: calls under OpenLLMetry's instrumentations."""
    # Absent only where the lowest opentelemetry-api is tested (they need far newer ones).
    pytest.importorskip("opentelemetry.instrumentation.openai")
    pytest.importorskip("opentelemetry.instrumentation.anthropic")
    script = Path(__file__).with_name("instrumented_calls.py")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def test_cost_on_the_current_span_adds_up_the_calls_under_it(
    telemetry: Telemetry, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    with budget(max_usd=1, name="app", prices=PRICES), tracer.start_as_current_span("work"):
        oai.chat.completions.create(model=GPT, messages=USER)
        claude.messages.create(model=CLAUDE, max_tokens=100, messages=USER)  # type: ignore[arg-type]
        with budget(name="step"), tracer.start_as_current_span("inner"):
            oai.chat.completions.create(model=GPT, messages=USER)
    assert shekel_attributes(telemetry.span("work")) == {
        "shekel.cost_usd": pytest.approx(cost(GPT, 12, 3) + cost(CLAUDE, 12, 3)),
        "shekel.calls": 2,
        "shekel.budget.path": "app",
    }
    # Each call counts once, on the innermost span: backends add children up themselves.
    assert shekel_attributes(telemetry.span("inner")) == {
        "shekel.cost_usd": pytest.approx(cost(GPT, 12, 3)),
        "shekel.calls": 1,
        "shekel.budget.path": "app.step",
    }


def test_cost_on_the_span_of_each_call_made_by_an_llm_instrumentation(
    instrumented: dict[str, Any],
) -> None:
    costs = [
        (span["name"], span["attributes"])
        for span in instrumented["spans"]
        if span["name"] != "work" and span["status"] != "ERROR"
    ]

    def on_span(model: str, tokens_in: int, tokens_out: int, path: str = "app") -> object:
        return {
            "shekel.cost_usd": pytest.approx(cost(model, tokens_in, tokens_out)),
            "shekel.calls": 1,
            "shekel.budget.path": path,
        }

    assert costs == [
        ("openai.chat", on_span(GPT, 1_000, 10)),
        # This instrumentation does not make its span the current one: found all the same.
        ("anthropic.chat", on_span(CLAUDE, 2_000, 20)),
        # A stream is recorded when its end is read: inside the span, which ends right after.
        ("openai.chat", on_span(GPT, 100, 3)),
        ("anthropic.chat", on_span(CLAUDE, 200, 1)),  # async
        ("anthropic.chat", on_span(CLAUDE, 300, 2)),  # async stream
        ("openai.chat", on_span(GPT, 12, 3, "app.capped")),
    ]
    (work,) = [span for span in instrumented["spans"] if span["name"] == "work"]
    assert work["attributes"] == {}
    assert work["events"] == []


def test_a_refusal_is_an_event_on_the_refused_calls_span(instrumented: dict[str, Any]) -> None:
    assert instrumented["requests"] == 6  # the refused call was never sent
    (refused,) = [span for span in instrumented["spans"] if span["status"] == "ERROR"]
    assert refused["name"] == "openai.chat"
    assert refused["attributes"] == {}  # nothing was spent
    assert refused["events"] == [
        {
            "name": "shekel.budget.exceeded",
            "attributes": {
                "shekel.budget.path": "app.capped",
                "shekel.limit.axis": "llm_calls",
                "shekel.limit.spent": 1.0,
                "shekel.limit.value": 1.0,
                "shekel.call.sent": False,
            },
        }
    ]


def test_cost_on_the_anthropic_sdks_own_spans(telemetry: Telemetry, fake_llm: FakeProvider) -> None:
    client = anthropic.Anthropic(
        base_url=fake_llm.anthropic_base_url,
        api_key="test",
        max_retries=0,
        open_telemetry={"tracer_provider": telemetry.tracer_provider},
    )
    fake_llm.enqueue(
        Reply(text="a", input_tokens=500, output_tokens=5),
        Reply(text="b c", input_tokens=600, output_tokens=2),
    )
    tracer = telemetry.tracer_provider.get_tracer("app")
    with budget(max_usd=1, name="app", prices=PRICES), tracer.start_as_current_span("work"):
        client.messages.create(model=CLAUDE, max_tokens=100, messages=USER)  # type: ignore[arg-type]
        with client.messages.stream(model=CLAUDE, max_tokens=100, messages=USER) as stream:  # type: ignore[arg-type]
            stream.until_done()
    client.close()
    assert [
        shekel_attributes(span)["shekel.cost_usd"]
        for span in telemetry.spans("anthropic.messages.create")
    ] == [pytest.approx(cost(CLAUDE, 500, 5)), pytest.approx(cost(CLAUDE, 600, 2))]
    assert shekel_attributes(telemetry.span("work")) == {}


def test_a_stream_read_elsewhere_is_charged_where_it_ends(
    telemetry: Telemetry, oai: openai.OpenAI
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    with budget(max_usd=1, name="app", prices=PRICES):
        with tracer.start_as_current_span("ask"):
            stream = oai.chat.completions.create(model=GPT, messages=USER, stream=True)
        with tracer.start_as_current_span("read"):
            for _ in stream:
                pass
    assert shekel_attributes(telemetry.span("ask")) == {}
    assert shekel_attributes(telemetry.span("read"))["shekel.cost_usd"] == pytest.approx(
        cost(GPT, 12, 3)
    )


def test_refusals_of_windows_warnings_and_fallbacks_are_events(
    telemetry: Telemetry, fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    fake_llm.set_usage(input_tokens=1_000_000, output_tokens=0)  # $0.15 on gpt-4o-mini
    prices = {**PRICES, "gpt-4o-nano": {"input": 0.01, "output": 0.01}}
    tracer = telemetry.tracer_provider.get_tracer("app")
    with (
        budget(max_usd=1, name="app", prices=prices),
        budget(max_llm_calls=3, window="1d", name="daily") as daily,
        tracer.start_as_current_span("work"),
        budget(
            max_usd=0.25,
            name="task",
            warn_at=0.5,
            fallback={"at_pct": 0.5, "model": "gpt-4o-nano"},
        ),
    ):
        with pytest.warns(
            BudgetWarning, match=r"reached 50% of its limit of \$0\.25 \(\$0\.15 used\)"
        ):
            oai.chat.completions.create(model=GPT, messages=USER)
        oai.chat.completions.create(model=GPT, messages=USER)
        oai.chat.completions.create(model=GPT, messages=USER)
        with pytest.raises(BudgetExceededError) as refused:
            oai.chat.completions.create(model=GPT, messages=USER)
    assert refused.value.window == "1d"
    work = telemetry.span("work")
    assert events(work, "shekel.budget.warning") == [
        {
            "shekel.budget.path": "app.daily.task",
            "shekel.limit.axis": "usd",
            "shekel.limit.spent": pytest.approx(0.15),
            "shekel.limit.value": pytest.approx(0.25),
        }
    ]
    assert events(work, "shekel.budget.fallback") == [
        {
            "shekel.budget.path": "app.daily.task",
            "shekel.limit.spent": pytest.approx(0.15),
            "shekel.limit.value": pytest.approx(0.25),
            "shekel.fallback.model": "gpt-4o-nano",
        }
    ]
    (exceeded,) = events(work, "shekel.budget.exceeded")
    retry_after = exceeded.pop("shekel.limit.retry_after")
    assert 0 < retry_after <= 86_400
    assert exceeded == {
        "shekel.budget.path": daily.full_name,
        "shekel.limit.axis": "llm_calls",
        "shekel.limit.spent": 3.0,
        "shekel.limit.value": 3.0,
        "shekel.call.sent": False,
        "shekel.limit.window": "1d",
    }
    assert shekel_attributes(work)["shekel.calls"] == 3


def test_flags_on_the_span_for_estimated_and_unpriced_calls(telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    with budget(name="app", prices=PRICES) as app, tracer.start_as_current_span("work"):
        app.record(model=GPT, input_tokens=100, output_tokens=10, estimated=True)
        with pytest.warns(Warning, match="no price"):
            app.record(model="house-model-b", input_tokens=10, output_tokens=5)
    assert shekel_attributes(telemetry.span("work")) == {
        "shekel.cost_usd": pytest.approx(cost(GPT, 100, 10)),
        "shekel.calls": 2,
        "shekel.budget.path": "app",
        "shekel.estimated": True,
        "shekel.priced": False,
    }


def test_spans_of_another_tracer_provider_are_written_on_when_current(
    telemetry: Telemetry, oai: openai.OpenAI
) -> None:
    other = Telemetry.create()  # the application's spans come from a provider not given
    try:
        with (
            budget(max_usd=1, name="app", prices=PRICES),
            other.tracer_provider.get_tracer("app").start_as_current_span("theirs"),
        ):
            oai.chat.completions.create(model=GPT, messages=USER)
        assert shekel_attributes(other.span("theirs"))["shekel.calls"] == 1
    finally:
        other.shutdown()


def test_nothing_is_written_without_a_recording_span(
    telemetry: Telemetry, oai: openai.OpenAI
) -> None:
    with budget(max_usd=1, name="app", prices=PRICES):
        oai.chat.completions.create(model=GPT, messages=USER)
    assert telemetry.spans() == []
    assert telemetry.collect()["shekel.cost"]  # the metrics are reported all the same


class _Failing(metrics.Counter, metrics.Histogram):
    """An instrument of a broken metrics SDK: every measurement raises."""

    def __init__(self) -> None:
        pass

    def add(self, amount: int | float, attributes: Any = None, context: Any = None) -> None:
        raise RuntimeError("exporter is broken")

    def record(self, amount: int | float, attributes: Any = None, context: Any = None) -> None:
        raise RuntimeError("exporter is broken")


class _FailingMeter(metrics.NoOpMeter):
    def create_counter(self, name: str, unit: str = "", description: str = "") -> Any:
        return _Failing()

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> Any:
        return _Failing()


class _FailingMeterProvider(metrics.MeterProvider):
    def get_meter(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> metrics.Meter:
        return _FailingMeter(name)


def test_a_broken_telemetry_sdk_never_stops_a_call(
    oai: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    shekel_otel.instrument(meter_provider=_FailingMeterProvider(), tracer_provider=TracerProvider())
    try:
        with (
            caplog.at_level(logging.DEBUG, logger="shekel_otel"),
            budget(max_usd=1, name="app", prices=PRICES) as app,
        ):
            oai.chat.completions.create(model=GPT, messages=USER)
            oai.chat.completions.create(model=GPT, messages=USER)
    finally:
        shekel_otel.uninstrument()
    assert app.snapshot().llm_calls_used == 2
    ours = [r for r in caplog.records if r.name == "shekel_otel"]
    warned = [r for r in ours if r.levelno == logging.WARNING]
    assert len(warned) == 1  # once per hook; later failures at DEBUG
    assert "shekel_spend_recorded" in warned[0].getMessage()
    assert [r.levelno for r in ours] == [logging.WARNING, logging.DEBUG]
