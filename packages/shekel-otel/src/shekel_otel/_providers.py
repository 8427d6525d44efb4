"""Telling a configured OpenTelemetry SDK from the API's placeholders.

Until an application sets its providers, the API hands out proxies that forward to nothing
(and no-op providers may be set on purpose). shekel-otel reports only to real providers: with
placeholders it only tests, after each recorded call, whether they were replaced.
"""

from __future__ import annotations

import os
from typing import Final

from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as _metrics_state

DISABLED_VARIABLE = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
"""OpenTelemetry's list of instrumentations not to start: ``shekel`` in it turns off the
zero-config start (``instrument()`` still works)."""

INSTRUMENTATION_NAME = "shekel"


_sdk_disabled = [False]
# The API keeps the providers set so far in these module globals (``None`` until one is set).
# Reading them is what keeps the test after each recorded call cheap: the API's getters look up
# ``os.environ`` on each call while nothing is set, which costs more than the rest of the test.
_KEPT_AT: Final = ((_metrics_state, "_METER_PROVIDER"), (trace, "_TRACER_PROVIDER"))
ask_the_api: Final = [not all(hasattr(module, name) for module, name in _KEPT_AT)]
"""``[True]`` when the providers must be asked for through the API's getters (a provider named
in the environment, or an API that keeps them elsewhere); ``[False]`` while the module
globals above can be read directly."""


def read_environment() -> None:
    """Read ``OTEL_SDK_DISABLED`` (when reporting is configured, as the SDK reads it when its
    providers are made): looking for providers after each recorded call must stay cheap. A
    provider named in the environment is made by the API's getters: then they are asked."""
    _sdk_disabled[0] = os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    named = {"OTEL_PYTHON_METER_PROVIDER", "OTEL_PYTHON_TRACER_PROVIDER"} & os.environ.keys()
    kept = all(hasattr(module, name) for module, name in _KEPT_AT)
    ask_the_api[0] = bool(named) or not kept


def sdk_disabled() -> bool:
    """True when ``OTEL_SDK_DISABLED`` tells every SDK to do nothing."""
    return _sdk_disabled[0]


def zero_config_disabled() -> bool:
    names = os.environ.get(DISABLED_VARIABLE, "")
    return INSTRUMENTATION_NAME in {name.strip() for name in names.split(",")}


def is_real_meter_provider(provider: metrics.MeterProvider) -> bool:
    """False for the API's proxy (no provider set yet) and for no-op providers."""
    if isinstance(provider, metrics.NoOpMeterProvider) or sdk_disabled():
        return False
    # The proxy's class is private to the API: recognised by its name, not imported.
    return type(provider).__name__ != "_ProxyMeterProvider"


def is_real_tracer_provider(provider: trace.TracerProvider) -> bool:
    """False for the API's proxy (no provider set yet) and for no-op providers."""
    placeholder = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    return not isinstance(provider, placeholder) and not sdk_disabled()


def global_providers_changed(meter_was: object, tracer_was: object) -> bool:
    """Whether either global provider is another object than the placeholder seen before
    (the cheap test made after each recorded call while one is awaited)."""
    if ask_the_api[0]:
        return metrics.get_meter_provider() is not meter_was or (
            trace.get_tracer_provider() is not tracer_was
        )
    meter = _metrics_state._METER_PROVIDER
    tracer = trace._TRACER_PROVIDER
    return (meter is not None and meter is not meter_was) or (
        tracer is not None and tracer is not tracer_was
    )


def global_meter_provider() -> metrics.MeterProvider | None:
    """The application's global meter provider, or ``None`` while it is a placeholder."""
    provider = metrics.get_meter_provider()
    return provider if is_real_meter_provider(provider) else None


def global_tracer_provider() -> trace.TracerProvider | None:
    """The application's global tracer provider, or ``None`` while it is a placeholder."""
    provider = trace.get_tracer_provider()
    return provider if is_real_tracer_provider(provider) else None
