"""shekel-otel: what reporting to OpenTelemetry adds to each call, beside the same call without.

Run ``python benchmarks/bench_otel.py`` (or ``nox -s bench`` for every suite). Prints one JSON
document (see ``_harness.py``). ``--quick`` takes fewer repeats (a smoke run).

Three configurations take turns in every repeat, in one process (this machine's speed drifts
over minutes, and other processes share its two cores):

``off``     shekel-otel registered nothing (``uninstrument()``): shekel alone;
``no_sdk``  the zero-config state of an application without an OpenTelemetry SDK (global
            providers are the API's placeholders): a test of them after each recorded call;
``sdk``     ``instrument()`` with the SDK's ``MeterProvider`` (an in-memory reader, not
            collected while timing) and ``TracerProvider`` (with shekel-otel's span processor),
            every call inside a recording span that gets the cost.

Workloads: the real openai SDK over ``httpx.MockTransport`` (``chat.completions.create``), and
``Budget.record(model=..., input_tokens=..., output_tokens=...)`` alone, which isolates the
per-call work of shekel-otel (one hook call: two histogram points, one counter add, the span's
attributes). Times are the CPU time of the measuring thread. Each overhead is
median(configuration) − median(off), with the ratio of the medians beside it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import opentelemetry.sdk
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import _harness as h
import _incumbents_interception as work
import shekel
import shekel_otel

NOTES = [
    "- *off*: `shekel_otel.uninstrument()`, shekel alone. *no SDK*: no OpenTelemetry SDK"
    " configured (the API's placeholder providers), as an application that installed"
    " shekel-otel without using OpenTelemetry: shekel-otel then only tests, after each recorded"
    " call, whether the global providers are still the placeholders (one hook call)."
    " *SDK*: `instrument()` with the SDK's MeterProvider (InMemoryMetricReader, not collected"
    " while timing) and TracerProvider; every call runs inside a recording span.",
    "- The configurations take turns within every repeat, in one process; times are the CPU"
    " time of the measuring thread (`time.thread_time_ns`), which other processes on the"
    " shared cores inflate less than wall time. *Overhead* = median(configuration) −"
    " median(off), in brackets min − min; *ratio* = median(configuration) / median(off).",
    "- *SDK call*: `chat.completions.create` of the real openai SDK over `httpx.MockTransport`"
    " inside `with budget(max_usd=1e9, name='bench')`. *record*: `Budget.record(model=,"
    " input_tokens=, output_tokens=)` on the same budget: shekel-otel's own work per call"
    " without the SDK around it. *enter/exit*: `with budget(name='step')` inside it (the"
    " live-budget registry of the gauges, with an SDK).",
    "- *SDK alone*: the measurements any reporter of a call must make, made directly on the same"
    " SDK providers (a counter add, two histogram points with the same attributes, two span"
    " attributes): the part of the *SDK* overhead that is the OpenTelemetry SDK's own.",
]

CONFIGS = ("off", "no_sdk", "sdk")


def sizes_for(quick: bool) -> dict[str, int]:
    if quick:
        return {"repeats": 7, "call_n": 50, "record_n": 2_000, "enter_n": 2_000, "warmup": 50}
    return {"repeats": 41, "call_n": 200, "record_n": 20_000, "enter_n": 20_000, "warmup": 500}


class Configurations:
    """Switches shekel-otel between the three configurations."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.tracer_provider = TracerProvider()
        self.tracer = self.tracer_provider.get_tracer("bench")

    def use(self, config: str) -> None:
        if config == "off":
            shekel_otel.uninstrument()
        elif config == "no_sdk":
            shekel_otel.instrument()  # the global providers, which this process never sets
        else:
            shekel_otel.instrument(
                meter_provider=self.meter_provider, tracer_provider=self.tracer_provider
            )

    @contextmanager
    def span(self) -> Iterator[None]:
        """A recording span around the timed calls (the same in every configuration)."""
        with self.tracer.start_as_current_span("bench"):
            yield


def sdk_measurements(configs: Configurations) -> Callable[[int], None]:
    """What any reporter of a call must ask of the SDK, made directly: a counter add, two
    histogram points (the same attributes as shekel-otel's), two span attributes."""
    meter = configs.meter_provider.get_meter("bench-floor")
    counter = meter.create_counter("floor.cost")
    histogram = meter.create_histogram(
        "floor.tokens", explicit_bucket_boundaries_advisory=[4.0**i for i in range(14)]
    )
    cost = {
        "shekel.budget.path": "bench",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
    }
    tokens = {**cost, "gen_ai.operation.name": "chat", "gen_ai.response.model": "gpt-4o-mini"}
    tokens_in = {**tokens, "gen_ai.token.type": "input"}
    tokens_out = {**tokens, "gen_ai.token.type": "output"}

    def run(n: int) -> None:
        with configs.tracer.start_as_current_span("floor") as span:
            for i in range(n):
                counter.add(0.000021, cost)
                histogram.record(100, tokens_in)
                histogram.record(10, tokens_out)
                span.set_attributes({"shekel.cost_usd": 0.000021 * i, "shekel.calls": i})

    return run


def measure(sizes: dict[str, int]) -> dict[str, list[float]]:
    configs = Configurations()
    client = work.openai_client()
    sdk_call = work.openai_calls(client)
    root = shekel.budget(max_usd=1e9, name="bench")

    def calls(n: int) -> None:
        with configs.span():
            sdk_call(n)

    def records(n: int) -> None:
        with configs.span():
            for _ in range(n):
                root.record(model="gpt-4o-mini", input_tokens=100, output_tokens=10)

    step = shekel.budget(name="step")
    sdk_alone = sdk_measurements(configs)

    def entries(n: int) -> None:
        for _ in range(n):
            with step:
                pass

    workloads: dict[str, tuple[Callable[[int], None], int]] = {
        "call": (calls, sizes["call_n"]),
        "record": (records, sizes["record_n"]),
        "enter": (entries, sizes["enter_n"]),
    }
    samples: dict[str, list[float]] = {f"{w}_{c}": [] for w in workloads for c in CONFIGS}
    samples["sdk_alone"] = []
    with root:
        for config in CONFIGS:
            configs.use(config)
            for run, _ in workloads.values():
                run(sizes["warmup"])
        for repeat in range(sizes["repeats"]):
            shift = repeat % len(CONFIGS)
            for config in CONFIGS[shift:] + CONFIGS[:shift]:
                configs.use(config)
                for name, (run, n) in workloads.items():
                    t0 = time.thread_time_ns()
                    run(n)
                    samples[f"{name}_{config}"].append((time.thread_time_ns() - t0) / n / 1_000)
                if config == "off":
                    n = sizes["record_n"]
                    t0 = time.thread_time_ns()
                    sdk_alone(n)
                    samples["sdk_alone"].append((time.thread_time_ns() - t0) / n / 1_000)
        configs.use("off")
    client.close()
    return samples


def overhead(
    key: str, label: str, samples: dict[str, list[float]], case: str, against: str
) -> dict[str, Any]:
    ours, base = samples[case], samples[against]
    return h.figure(
        key,
        label,
        "µs/op",
        value=statistics.median(ours) - statistics.median(base),
        extra={
            "best": min(ours) - min(base),
            "ratio": statistics.median(ours) / statistics.median(base),
            "with_median": statistics.median(ours),
            "against_median": statistics.median(base),
            "paired_median": statistics.median(a - b for a, b in zip(ours, base, strict=True)),
            "repeats": len(ours),
        },
    )


def main(argv: list[str] | None = None) -> None:
    args, sizes = h.suite_args(argv, __doc__.splitlines()[0], sizes_for)
    with shekel.budget(name="install"):  # installs the interception and shekel-otel's start
        pass
    samples = measure(sizes)
    labels = {
        "call": "openai chat.completions.create over MockTransport",
        "record": "Budget.record(model=..., tokens)",
        "enter": "with budget(name=...) enter and exit",
    }
    figures = []
    for name, label in labels.items():
        figures.append(
            h.figure(
                f"otel_{name}_off", f"{label}, shekel-otel off", "µs/op", samples[f"{name}_off"]
            )
        )
        figures.append(
            overhead(
                f"otel_{name}_no_sdk",
                f"{label}: overhead with shekel-otel installed and no SDK configured",
                samples,
                f"{name}_no_sdk",
                f"{name}_off",
            )
        )
        figures.append(
            overhead(
                f"otel_{name}_sdk",
                f"{label}: overhead reporting to the SDK (metrics and span attributes)",
                samples,
                f"{name}_sdk",
                f"{name}_off",
            )
        )
    figures.append(
        h.figure(
            "otel_sdk_alone",
            "of which the SDK's own work, made directly: 1 counter add, 2 histogram points, 2 span"
            " attributes",
            "µs/op",
            samples["sdk_alone"],
        )
    )
    h.emit(
        {
            "suite": "otel",
            "shekel_version": shekel.__version__,
            "shekel_otel_version": shekel_otel.__version__,
            "opentelemetry_sdk_version": opentelemetry.sdk.version.__version__,
            "quick": args.quick,
            "sizes": sizes,
            "figures": figures,
            "notes": NOTES,
        }
    )


if __name__ == "__main__":
    main()
