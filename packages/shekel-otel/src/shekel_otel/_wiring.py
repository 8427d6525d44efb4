"""What shekel-otel reports to, and the plugin it registers with shekel for that.

Three ways in: the zero-config start (``shekel_install``, once per process, before the first
budget), :func:`instrument` and :func:`uninstrument`. A provider given to ``instrument`` is
used as it is; a provider not given means the application's global one, which may be set
after shekel started: until it is, only a :class:`Watcher` is registered, which tests whether
it still is each time a call is recorded.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import metrics, trace

import shekel

from . import _names as n
from ._metrics import LiveBudgets, Metrics
from ._providers import (
    global_meter_provider,
    global_providers_changed,
    global_tracer_provider,
    is_real_meter_provider,
    is_real_tracer_provider,
    read_environment,
    zero_config_disabled,
)
from ._reporter import Reporter, Watcher
from ._spans import Spans
from .package import check_supported

if TYPE_CHECKING:
    from shekel import Budget

    from ._span_finder import LlmSpanFinder

_GLOBAL: Final = "global"

_lock = threading.RLock()
_live = LiveBudgets()
_spans = Spans()
_mode = "unset"  # "auto" (zero-config), "explicit" (instrument()), "off" (uninstrument())
_meter_source: Any = _GLOBAL
_tracer_source: Any = _GLOBAL
_plugin: Watcher | Reporter | None = None
_seen: tuple[object, object] = (None, None)  # the global providers when last resolved

# A provider keeps the instruments created on it (and their gauge callbacks) and the span
# processors added to it for as long as it lives: each is made once per provider and turned
# off when not in use.
_metrics: weakref.WeakKeyDictionary[Any, Metrics] = weakref.WeakKeyDictionary()
_finders: weakref.WeakKeyDictionary[Any, LlmSpanFinder | None] = weakref.WeakKeyDictionary()


def start_zero_config() -> None:
    """The zero-config start: report to the global providers, unless ``instrument()`` or
    ``uninstrument()`` already decided, or ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` names
    ``shekel``."""
    global _mode
    with _lock:
        if _mode != "unset":
            return
        if zero_config_disabled() or not check_supported():
            _mode = "off"
            return
        _mode = "auto"
        _configure(_GLOBAL, _GLOBAL)


def instrument(
    *,
    meter_provider: metrics.MeterProvider | None = None,
    tracer_provider: trace.TracerProvider | None = None,
) -> None:
    """Report shekel's spend to these providers from now on, instead of what was set before.

    ``None`` (the default) stands for the application's global provider, as with no code:
    reported to from the first call recorded after it is set. A no-op provider turns that
    signal off. shekel-otel makes no spans: it writes on the span of each call that an LLM
    instrumentation made (found by a span processor it adds to ``tracer_provider`` when that
    is the SDK's) or else on the current span, if it is recording.
    """
    global _mode
    if not check_supported():
        return
    with _lock:
        _mode = "explicit"
        _configure(
            _GLOBAL if meter_provider is None else meter_provider,
            _GLOBAL if tracer_provider is None else tracer_provider,
        )


def uninstrument() -> None:
    """Stop reporting (whether ``instrument()`` or the zero-config start began it) until
    ``instrument()`` is called again. Instruments already created stay with their meter
    provider, reporting nothing."""
    global _mode
    with _lock:
        _mode = "off"
        _teardown()
        _live.clear()


def _configure(meter_source: Any, tracer_source: Any) -> None:
    global _meter_source, _tracer_source
    _teardown()
    read_environment()
    _meter_source, _tracer_source = meter_source, tracer_source
    _resolve(shekel.current_budget())


def _teardown() -> None:
    global _plugin
    if _plugin is not None:
        shekel.plugins.plugin_manager().unregister(_plugin)
        _plugin = None
    for found in list(_metrics.values()):
        found.enabled = False
    for finder in list(_finders.values()):
        if finder is not None:
            finder.enabled = False


def _look(budget: Budget) -> Reporter | None:
    """When a call is recorded while a global provider is still a placeholder: the reporter
    registered if one was set since."""
    if not global_providers_changed(*_seen):
        return None
    with _lock:
        if _mode in ("auto", "explicit"):
            _resolve(budget)
        return _plugin if isinstance(_plugin, Reporter) else None


def _resolve(budget: Budget | None) -> None:
    """Register what the providers known now call for (under ``_lock``). ``budget`` and its
    active ancestors were entered before: the gauges report them from now on."""
    global _plugin, _seen
    _seen = (metrics.get_meter_provider(), trace.get_tracer_provider())
    meter_provider = _meter_source if _meter_source is not _GLOBAL else global_meter_provider()
    if meter_provider is not None and not is_real_meter_provider(meter_provider):
        meter_provider = None
    tracer_provider = _tracer_source if _tracer_source is not _GLOBAL else global_tracer_provider()
    if tracer_provider is not None and not is_real_tracer_provider(tracer_provider):
        tracer_provider = None
    waiting = (_meter_source is _GLOBAL and meter_provider is None) or (
        _tracer_source is _GLOBAL and tracer_provider is None
    )
    manager = shekel.plugins.plugin_manager()
    if meter_provider is None and tracer_provider is None:
        if isinstance(_plugin, Watcher):
            _plugin.seen = _seen
        elif waiting:
            _plugin = Watcher(_look, _seen)
            manager.register(_plugin)
        return
    reporter = _plugin if isinstance(_plugin, Reporter) else Reporter(_live)
    if meter_provider is not None:
        reporter.metrics = _metrics_on(meter_provider)
    if tracer_provider is not None:
        _finder_on(tracer_provider)
        reporter.spans = _spans
    reporter.look = _look if waiting else None
    if reporter is not _plugin:
        if _plugin is not None:
            manager.unregister(_plugin)
        _plugin = reporter
        manager.register(reporter)
    if reporter.metrics is not None:
        _live.add_lineage(budget)


def _metrics_on(provider: metrics.MeterProvider) -> Metrics:
    found = _metrics.get(provider)
    if found is None:
        from . import __version__

        found = Metrics(provider.get_meter(n.METER_NAME, __version__), _live)
        _metrics[provider] = found
    found.enabled = True
    return found


def _finder_on(provider: trace.TracerProvider) -> None:
    if provider not in _finders:
        try:
            from ._span_finder import attach
        except ImportError:  # a tracer provider that is not the SDK's, without the SDK
            _finders[provider] = None
            return
        _finders[provider] = attach(provider)
    finder = _finders[provider]
    if finder is not None:
        finder.enabled = True
