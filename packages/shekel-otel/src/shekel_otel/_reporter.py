"""The plugin objects registered with shekel: a watcher while no SDK is configured, then the
reporter.

Telemetry never stops the caller: an error in here is logged (once per hook, at WARNING) and
the call goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.metrics import _internal as _metrics_state

import shekel

from . import _names as n
from ._providers import ask_the_api, global_providers_changed

if TYPE_CHECKING:
    from shekel import Budget, CallRecord

    from ._metrics import LiveBudgets, Metrics
    from ._spans import Spans

logger = logging.getLogger("shekel_otel")
_logged: set[str] = set()

Look = Callable[["Budget"], "Reporter | None"]
"""Checks whether the application's global providers were set, when a call is recorded;
returns the reporter registered for them, if any."""


def _failed(hook: str) -> None:
    if hook in _logged:
        logger.debug("shekel-otel: %s failed", hook, exc_info=True)
        return
    _logged.add(hook)
    logger.warning(
        "shekel-otel could not report from %s (the call went on; later failures of this hook "
        "are logged at DEBUG)",
        hook,
        exc_info=True,
    )


class Watcher:
    """Implements only ``shekel_spend_recorded``: while the application's global providers are
    placeholders, it tests whether they still are (two identity tests) and reports nothing."""

    def __init__(self, look: Look, seen: tuple[object, object]) -> None:
        self.look = look
        self.seen = seen  # the global providers when last resolved

    @shekel.plugins.hookimpl
    def shekel_spend_recorded(self, budget: Budget, call: CallRecord) -> None:
        if (  # the usual answer, without a call: no provider set at all
            not ask_the_api[0]
            and trace._TRACER_PROVIDER is None
            and _metrics_state._METER_PROVIDER is None
        ):
            return
        try:
            if not global_providers_changed(*self.seen):
                return
            reporter = self.look(budget)
        except Exception:
            _failed("shekel_spend_recorded")
            return
        if reporter is not None:  # registered just now: this call is its first
            reporter.shekel_spend_recorded(budget, call)


class Reporter:
    """Reports what shekel records to ``metrics`` and on spans (either may be ``None``).
    ``look`` is set while a global provider is still a placeholder."""

    def __init__(self, live: LiveBudgets) -> None:
        self.live = live
        self.metrics: Metrics | None = None
        self.spans: Spans | None = None
        self.look: Look | None = None

    @shekel.plugins.hookimpl
    def shekel_budget_entered(self, budget: Budget) -> None:
        try:
            if self.metrics is not None:
                self.live.entered(budget)
        except Exception:
            _failed("shekel_budget_entered")

    @shekel.plugins.hookimpl
    def shekel_budget_exited(self, budget: Budget) -> None:
        try:
            self.live.exited(budget)
        except Exception:
            _failed("shekel_budget_exited")

    @shekel.plugins.hookimpl
    def shekel_spend_recorded(self, budget: Budget, call: CallRecord) -> None:
        try:
            if self.look is not None:  # the other global provider is still awaited
                self.look(budget)
            if self.metrics is not None:
                self.metrics.record_call(call)
            if self.spans is not None:
                self.spans.record_call(call)
        except Exception:
            _failed("shekel_spend_recorded")

    @shekel.plugins.hookimpl
    def shekel_limit_exceeded(self, budget: Budget, error: BaseException) -> None:
        try:
            axis = str(getattr(error, "axis", "usd"))
            sent = bool(getattr(error, "sent", True))
            if self.metrics is not None:
                self.metrics.limit_exceeded(budget, axis, sent)
            if self.spans is not None:
                attributes: dict[str, Any] = {
                    n.BUDGET_PATH: budget.full_name,
                    n.LIMIT_AXIS: axis,
                    n.LIMIT_SPENT: _number(getattr(error, "spent", None)),
                    n.LIMIT_VALUE: _number(getattr(error, "limit", None)),
                    n.CALL_SENT: sent,
                }
                window = getattr(error, "window", None)
                if window is not None:
                    attributes[n.LIMIT_WINDOW] = str(window)
                retry_after = getattr(error, "retry_after", None)
                if retry_after is not None:
                    attributes[n.RETRY_AFTER] = _number(retry_after)
                model = getattr(error, "model", None)
                self.spans.event(n.EVENT_EXCEEDED, attributes, model)
        except Exception:
            _failed("shekel_limit_exceeded")

    @shekel.plugins.hookimpl
    def shekel_warning_crossed(self, budget: Budget, axis: str, spent: float, limit: float) -> None:
        try:
            if self.metrics is not None:
                self.metrics.warning_crossed(budget, axis)
            if self.spans is not None:
                attributes = {
                    n.BUDGET_PATH: budget.full_name,
                    n.LIMIT_AXIS: axis,
                    n.LIMIT_SPENT: _number(spent),
                    n.LIMIT_VALUE: _number(limit),
                }
                self.spans.event(n.EVENT_WARNING, attributes)
        except Exception:
            _failed("shekel_warning_crossed")

    @shekel.plugins.hookimpl
    def shekel_fallback_activated(
        self, budget: Budget, spent: float, limit: float, fallback_model: str
    ) -> None:
        try:
            if self.metrics is not None:
                self.metrics.fallback_activated(budget, fallback_model)
            if self.spans is not None:
                attributes = {
                    n.BUDGET_PATH: budget.full_name,
                    n.LIMIT_SPENT: _number(spent),
                    n.LIMIT_VALUE: _number(limit),
                    n.FALLBACK_MODEL: fallback_model,
                }
                self.spans.event(n.EVENT_FALLBACK, attributes)
        except Exception:
            _failed("shekel_fallback_activated")


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
