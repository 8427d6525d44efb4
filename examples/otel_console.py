"""shekel's spend in OpenTelemetry, printed: the metrics and spans a collector would receive.

    uv run python examples/otel_console.py

The script sets up the OpenTelemetry SDK as an application would (global providers), and does
nothing else for shekel: with shekel-otel installed, every budget reports to them. A small
agent plans with gpt-4o-mini and writes with claude-haiku-4-5, each step in a span of its own
and a budget of its own, then keeps "revising" until the writing budget refuses a call.

The spans are printed as they end (one line each: the shekel attributes and events on them),
and the metrics once at the end, as an exporter would read them. No API key is needed: the
calls go to shekel's fake OpenAI/Anthropic server (``shekel.testing.FakeProvider``), which
answers every request with 3,000 input and 400 output tokens.
"""

from __future__ import annotations

import contextlib
from typing import Any

import anthropic
import openai
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

import shekel
from shekel.testing import FakeProvider

QUESTION = [{"role": "user", "content": "Outline a short note on home batteries."}]


def one_line(span: ReadableSpan) -> str:
    """A span as one line: its name, shekel's attributes and events."""
    shown = {k: v for k, v in (span.attributes or {}).items() if k.startswith("shekel.")}
    line = f"span {span.name}: {shown or '(nothing from shekel)'}"
    for event in span.events:
        if event.name.startswith("shekel."):
            line += f"\n    event {event.name}: {dict(event.attributes or {})}"
    return line + "\n"


def print_metrics(reader: InMemoryMetricReader) -> None:
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                print(f"metric {metric.name} ({metric.unit}):")
                for point in metric.data.data_points:
                    attributes = dict(point.attributes or {})
                    if isinstance(point, HistogramDataPoint):
                        value: Any = f"count={point.count} sum={point.sum:g}"
                    else:
                        value = f"{point.value:.6g}"  # type: ignore[union-attr]
                    print(f"    {attributes} {value}")


def print_warning(spent: float, limit: float) -> None:
    print(f"warning: the writing budget is at ${spent:.4f} of ${limit:.2f}")


def main() -> None:
    # The application's OpenTelemetry setup: nothing in it mentions shekel.
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(formatter=one_line)))
    trace.set_tracer_provider(tracer_provider)
    tracer = trace.get_tracer("agent")

    with contextlib.ExitStack() as stack:
        fake = stack.enter_context(FakeProvider(default_text="A draft about home batteries."))
        fake.set_usage(input_tokens=3_000, output_tokens=400)
        gpt = openai.OpenAI(base_url=fake.openai_base_url, api_key="fake-key")
        claude = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="fake-key")
        stack.callback(gpt.close)
        stack.callback(claude.close)

        with shekel.budget(max_usd=0.10, name="agent") as agent:
            with tracer.start_as_current_span("plan"), shekel.budget(name="plan"):
                gpt.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)  # type: ignore[arg-type]
            with shekel.budget(max_usd=0.03, name="write", warn_at=0.5, on_warn=print_warning):
                try:
                    for draft in range(1, 10):
                        with tracer.start_as_current_span(f"draft {draft}"):
                            claude.messages.create(
                                model="claude-haiku-4-5",
                                max_tokens=500,
                                messages=QUESTION,  # type: ignore[arg-type]
                            )
                except shekel.BudgetExceededError as stopped:
                    print(f"stopped: {stopped.budget_name} refused draft {draft} before sending\n")
                print_metrics(reader)  # while the budgets are active, for the gauges
        print(f"\nspent ${agent.spent:.4f} of $0.10")


if __name__ == "__main__":
    main()
