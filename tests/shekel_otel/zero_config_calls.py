"""The zero-config path, in a process of its own (global providers can be set once per process).

``python zero_config_calls.py MODE``, MODE one of:

``before``  the global providers are set before the first budget;
``after``   a budget is entered and calls made first, then the providers are set and more
            calls made, in that budget and in one entered after;
``none``    no SDK is configured at all;
``env``     as ``before``, with ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` naming shekel (set by
            the test);
``named``   no provider is set in code: the test names the SDK's in ``OTEL_PYTHON_TRACER_PROVIDER``
            and ``OTEL_PYTHON_METER_PROVIDER``, and the API makes them when first asked. The
            first call is openai's alone (anthropic's SDK would ask the API for a tracer); the
            application asks for the tracer provider only after it (to add an exporter, as
            ``after`` sets the providers). Only spans are read back: a meter provider made so
            has no reader.

Prints one JSON document: the metrics collected, the spans, and which of shekel-otel's
objects implement which of shekel's hooks.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anthropic
import openai
from otel_support import CLAUDE, GPT, PRICES, USER, Telemetry

import shekel
from shekel.testing import FakeProvider


def set_global_providers() -> Telemetry:
    from opentelemetry import metrics, trace

    telemetry = Telemetry.create()
    metrics.set_meter_provider(telemetry.meter_provider)
    trace.set_tracer_provider(telemetry.tracer_provider)
    return telemetry


def exporter_on_named_tracer_provider() -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider: Any = trace.get_tracer_provider()  # made now, from the environment
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def ours() -> dict[str, list[str]]:
    """shekel's hooks that shekel-otel implements now, with who implements them."""
    manager = shekel.plugins.plugin_manager()
    found: dict[str, list[str]] = {}
    for name in dir(manager.hook):
        if not name.startswith("shekel_"):
            continue
        for impl in getattr(manager.hook, name).get_hookimpls():
            plugin = impl.plugin
            where = getattr(plugin, "__name__", None) or type(plugin).__module__
            if where.startswith("shekel_otel"):
                found.setdefault(name, []).append(
                    where if isinstance(plugin, type(sys)) else type(plugin).__name__
                )
    return found


def calls(fake: FakeProvider, oai: openai.OpenAI, claude: anthropic.Anthropic) -> None:
    oai.chat.completions.create(model=GPT, messages=USER)  # type: ignore[arg-type]
    claude.messages.create(model=CLAUDE, max_tokens=100, messages=USER)  # type: ignore[arg-type]


def main(mode: str) -> dict[str, Any]:
    telemetry = set_global_providers() if mode in ("before", "env") else None
    exporter = None
    with FakeProvider() as fake:
        oai = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
        claude = anthropic.Anthropic(
            base_url=fake.anthropic_base_url, api_key="test", max_retries=0
        )
        with shekel.budget(max_usd=1, name="early", prices=PRICES):
            if mode == "named":  # openai alone: anthropic 2.x asks the API for a tracer itself
                oai.chat.completions.create(model=GPT, messages=USER)  # type: ignore[arg-type]
            else:
                calls(fake, oai, claude)
            hooks_before = ours()
            if mode == "after":
                telemetry = set_global_providers()
            elif mode == "named":
                exporter = exporter_on_named_tracer_provider()
            calls(fake, oai, claude)
            tracer: Any = telemetry.tracer_provider if telemetry else None
            if exporter is not None:
                from opentelemetry import trace

                tracer = trace.get_tracer_provider()
            with shekel.budget(max_usd=0.5, name="late"):
                if tracer is not None:
                    with tracer.get_tracer("app").start_as_current_span("work"):
                        calls(fake, oai, claude)
                else:
                    calls(fake, oai, claude)
                gauges = telemetry.collect() if telemetry else {}
        oai.close()
        claude.close()
    from shekel._plugins import LISTENING

    return {
        "metrics": {
            name: [[dict(key), value] for key, value in points.items()]
            for name, points in (telemetry.collect() if telemetry else {}).items()
        },
        "gauges_while_active": {
            name: [[dict(key), value] for key, value in gauges.get(name, {}).items()]
            for name in ("shekel.budget.remaining", "shekel.budget.utilization")
        },
        "spans": [
            {
                "name": s.name,
                "shekel": {k: v for k, v in (s.attributes or {}).items() if "shekel" in k},
            }
            for s in (
                telemetry.spans()
                if telemetry
                else (exporter.get_finished_spans() if exporter is not None else [])
            )
        ],
        "hooks_in_first_budget": hooks_before,
        "hooks_at_end": ours(),
        "spend_hook_listened": LISTENING.shekel_spend_recorded,
        "sdk_imported": any(name.startswith("opentelemetry.sdk") for name in sys.modules),
    }


if __name__ == "__main__":
    json.dump(main(sys.argv[1]), sys.stdout)
