"""The real OpenTelemetry SDK, read back: in-memory metric reader and span exporter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: the zero-config script must not import the SDK early
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

GPT = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"
EMBEDDING = "text-embedding-3-small"

# Prices given to the budgets (USD per 1M tokens), so that expected costs do not depend on the
# price table of the day.
PRICES = {
    GPT: {"input": 0.15, "output": 0.60},
    CLAUDE: {"input": 0.80, "output": 4.00},
    EMBEDDING: {"input": 0.02, "output": 0.0},
}

USER = [{"role": "user", "content": "Say hello"}]

Key = frozenset[tuple[str, Any]]


def cost(model: str, input_tokens: int, output_tokens: int) -> float:
    """What a call of ``model`` costs at :data:`PRICES`."""
    price = PRICES[model]
    return (price["input"] * input_tokens + price["output"] * output_tokens) / 1_000_000


def key(attributes: Mapping[str, Any]) -> Key:
    return frozenset(attributes.items())


@dataclass
class Telemetry:
    """A meter provider and a tracer provider of the SDK, each read in memory."""

    reader: InMemoryMetricReader
    exporter: InMemorySpanExporter
    meter_provider: MeterProvider
    tracer_provider: TracerProvider

    @classmethod
    def create(cls) -> Telemetry:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        reader = InMemoryMetricReader()
        exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        return cls(reader, exporter, MeterProvider(metric_readers=[reader]), tracer_provider)

    def shutdown(self) -> None:
        self.meter_provider.shutdown()
        self.tracer_provider.shutdown()

    def collect(self) -> dict[str, dict[Key, Any]]:
        """Every metric collected now: name -> attributes -> value (a histogram point's value
        is ``(count, sum)``; its bucket bounds are in :meth:`histogram_bounds`)."""
        from opentelemetry.sdk.metrics.export import HistogramDataPoint

        found: dict[str, dict[Key, Any]] = {}
        data = self.reader.get_metrics_data()
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    points = found.setdefault(metric.name, {})
                    for point in metric.data.data_points:
                        if isinstance(point, HistogramDataPoint):
                            points[key(point.attributes or {})] = (point.count, point.sum)
                        else:
                            points[key(point.attributes or {})] = point.value  # type: ignore[union-attr]
        return found

    def scopes(self) -> dict[str, tuple[str, str | None]]:
        """Metric name -> (instrumentation scope name, version)."""
        data = self.reader.get_metrics_data()
        found = {}
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found[metric.name] = (scope.scope.name, scope.scope.version)
        return found

    def histogram_bounds(self, name: str) -> list[tuple[float, ...]]:
        data = self.reader.get_metrics_data()
        bounds = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        bounds += [tuple(p.explicit_bounds) for p in metric.data.data_points]  # type: ignore[union-attr]
        return bounds

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        spans = list(self.exporter.get_finished_spans())
        return [s for s in spans if name is None or s.name == name]

    def span(self, name: str) -> ReadableSpan:
        (found,) = self.spans(name)
        return found


def shekel_attributes(span: ReadableSpan) -> dict[str, Any]:
    return {k: v for k, v in (span.attributes or {}).items() if k.startswith("shekel.")}


def events(span: ReadableSpan, name: str) -> list[dict[str, Any]]:
    return [dict(e.attributes or {}) for e in span.events if e.name == name]
