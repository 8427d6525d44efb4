"""shekel-otel: shekel's spend, limits and refusals as OpenTelemetry metrics and span data.

Installed, it reports to the application's global ``MeterProvider`` and ``TracerProvider``
with no code, from the first call recorded once they are set; with the API's placeholder
providers (no SDK configured) it reports nothing and only tests, after each recorded call,
whether they still are placeholders. For explicit wiring::

    import shekel_otel

    shekel_otel.instrument(meter_provider=meter_provider, tracer_provider=tracer_provider)

Metrics: ``gen_ai.client.token.usage`` (the GenAI semantic conventions), ``shekel.cost``,
``shekel.tool.calls``, ``shekel.budget.exceeded``, ``shekel.budget.warnings``,
``shekel.budget.fallbacks``, and the gauges ``shekel.budget.remaining`` and
``shekel.budget.utilization`` of every active budget. Spans: each call's cost on the span an
LLM instrumentation made for it (else on the current span), refusals, warnings and fallbacks
as span events. Names and rules: docs/behaviour.md, "OpenTelemetry".
"""

from __future__ import annotations

from ._names import METER_NAME
from ._wiring import instrument, uninstrument
from .package import UnsupportedVersionWarning, supported

__version__ = "0.1.0.dev0"

__all__ = [
    "METER_NAME",
    "UnsupportedVersionWarning",
    "__version__",
    "instrument",
    "supported",
    "uninstrument",
]
