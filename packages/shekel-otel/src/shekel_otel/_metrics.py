"""The metric instruments, and the live budgets their gauges read."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from . import _names as n

if TYPE_CHECKING:
    from shekel import Budget, BudgetSnapshot, CallRecord

logger = logging.getLogger("shekel_otel")

Attributes = Mapping[str, str | bool]

_CACHE_SIZE: Final = 4096
"""Attribute sets kept ready per kind of call (budget, model, provider...); more are built
again as needed."""

_AXES: Final = (
    ("usd", "usd_used", "usd_limit"),
    ("tokens", "tokens_used", "tokens_limit"),
    ("llm_calls", "llm_calls_used", "llm_calls_limit"),
    ("tool_calls", "tool_calls_used", "tool_calls_limit"),
)


class LiveBudgets:
    """The budgets active right now in any thread or task, kept from the enter and exit hooks.

    A budget leaves when no activation of it is left (its last ``with`` block ended), so the
    gauges stop reporting it then.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._budgets: dict[int, Budget] = {}

    def entered(self, budget: Budget) -> None:
        with self._lock:
            self._budgets[id(budget)] = budget

    def exited(self, budget: Budget) -> None:
        with self._lock:
            if not budget.is_active:  # read under the lock: an entry meanwhile keeps it
                self._budgets.pop(id(budget), None)

    def add_lineage(self, budget: Budget | None) -> None:
        """Add ``budget`` and its active ancestors (budgets entered before reporting began)."""
        while budget is not None:
            if budget.is_active:
                self.entered(budget)
            budget = budget.parent

    def clear(self) -> None:
        with self._lock:
            self._budgets.clear()

    def readings(self) -> dict[str, list[BudgetSnapshot]]:
        """Snapshots of the live budgets, by budget path (several budgets may share a name)."""
        with self._lock:
            for ended in [b for b in self._budgets.values() if not b.is_active]:
                del self._budgets[id(ended)]  # an exit that was missed (reporting restarted)
            budgets = list(self._budgets.values())
        found: dict[str, list[BudgetSnapshot]] = {}
        for budget in budgets:
            try:
                snapshot = budget.snapshot()
            except Exception:  # a store that cannot be read now: no reading this time
                logger.debug("no reading of budget %r", budget.full_name, exc_info=True)
                continue
            found.setdefault(budget.full_name, []).append(snapshot)
        return found


class Metrics:
    """shekel's instruments on one meter. ``enabled`` turns reporting off without removing the
    instruments (a meter provider cannot forget them)."""

    def __init__(self, meter: Meter, live: LiveBudgets) -> None:
        self.enabled = True
        self.live = live
        self._calls: dict[tuple[object, ...], tuple[Attributes, Attributes, Attributes]] = {}
        self._tools: dict[tuple[str, str], Attributes] = {}
        self.token_usage = meter.create_histogram(
            n.TOKEN_USAGE,
            unit="{token}",
            description="Tokens of each model call, by type (input or output).",
            explicit_bucket_boundaries_advisory=n.TOKEN_BUCKETS,
        )
        self.cost = meter.create_counter(
            n.COST,
            unit="USD",
            description="Spend shekel recorded, in US dollars, by budget path and model.",
        )
        self.tool_calls = meter.create_counter(
            n.TOOL_CALLS, unit="{call}", description="Tool calls counted by shekel budgets."
        )
        self.exceeded = meter.create_counter(
            n.EXCEEDED,
            unit="{error}",
            description="Budget limits reached: calls refused before they were sent, and calls "
            "that went over a limit.",
        )
        self.warnings = meter.create_counter(
            n.WARNINGS, unit="{warning}", description="Budgets that crossed their warn_at level."
        )
        self.fallbacks = meter.create_counter(
            n.FALLBACKS, unit="{fallback}", description="Budgets that switched to their fallback."
        )
        meter.create_observable_gauge(
            n.REMAINING,
            callbacks=[self._observe_remaining],
            unit="USD",
            description="US dollars left under the limit of each active budget.",
        )
        meter.create_observable_gauge(
            n.UTILIZATION,
            callbacks=[self._observe_utilization],
            unit="1",
            description="Share of each active budget's limit used, per axis (1 when exhausted).",
        )

    # -- calls -----------------------------------------------------------------------------

    def record_call(self, call: CallRecord) -> None:
        if call.tool_name is not None:
            self._record_tool_call(call, call.tool_name)
            return
        key = (call.budget_path, call.model, call.provider, call.response_model, call.operation)
        found = self._calls.get(key)
        if found is None:
            found = self._call_attributes(call)
            if len(self._calls) >= _CACHE_SIZE:
                self._calls.clear()
            self._calls[key] = found
        cost, tokens_in, tokens_out = found
        if call.cost:
            self.cost.add(call.cost_usd, cost)
        # The conventions ask for counts the provider reported: estimates stay out.
        if not call.estimated and (call.input_tokens or call.output_tokens):
            self.token_usage.record(call.input_tokens, tokens_in)
            if call.operation != n.EMBEDDINGS:
                self.token_usage.record(call.output_tokens, tokens_out)

    def _record_tool_call(self, call: CallRecord, tool: str) -> None:
        key = (call.budget_path, tool)
        attributes = self._tools.get(key)
        if attributes is None:
            attributes = {n.BUDGET_PATH: call.budget_path, n.TOOL_NAME: tool}
            if len(self._tools) >= _CACHE_SIZE:
                self._tools.clear()
            self._tools[key] = attributes
        self.tool_calls.add(1, attributes)
        if call.cost:
            self.cost.add(call.cost_usd, attributes)

    @staticmethod
    def _call_attributes(call: CallRecord) -> tuple[Attributes, Attributes, Attributes]:
        cost: dict[str, str | bool] = {n.BUDGET_PATH: call.budget_path}
        tokens: dict[str, str | bool] = {n.OPERATION: call.operation or n.DEFAULT_OPERATION}
        if call.provider:
            cost[n.PROVIDER] = tokens[n.PROVIDER] = n.provider_name(call.provider)
        if call.model:
            cost[n.REQUEST_MODEL] = tokens[n.REQUEST_MODEL] = call.model
        if call.response_model:
            tokens[n.RESPONSE_MODEL] = call.response_model
        tokens[n.BUDGET_PATH] = call.budget_path
        return (
            cost,
            {**tokens, n.TOKEN_TYPE: "input"},
            {**tokens, n.TOKEN_TYPE: "output"},
        )

    # -- budget events ---------------------------------------------------------------------

    def limit_exceeded(self, budget: Budget, axis: str, sent: bool) -> None:
        self.exceeded.add(
            1, {n.BUDGET_PATH: budget.full_name, n.LIMIT_AXIS: axis, n.CALL_SENT: sent}
        )

    def warning_crossed(self, budget: Budget, axis: str) -> None:
        self.warnings.add(1, {n.BUDGET_PATH: budget.full_name, n.LIMIT_AXIS: axis})

    def fallback_activated(self, budget: Budget, model: str) -> None:
        self.fallbacks.add(1, {n.BUDGET_PATH: budget.full_name, n.FALLBACK_MODEL: model})

    # -- gauges ------------------------------------------------------------------------------

    def _observe_remaining(self, options: CallbackOptions) -> Iterable[Observation]:
        if not self.enabled:
            return []
        observations = []
        for path, snapshots in self.live.readings().items():
            left = [s.usd_remaining for s in snapshots if s.usd_remaining is not None]
            if left:  # budgets sharing a name: the one with the least left
                observations.append(Observation(min(left), {n.BUDGET_PATH: path}))
        return observations

    def _observe_utilization(self, options: CallbackOptions) -> Iterable[Observation]:
        if not self.enabled:
            return []
        observations = []
        for path, snapshots in self.live.readings().items():
            for axis, used_field, limit_field in _AXES:
                shares = [
                    _share(getattr(s, used_field), limit)
                    for s in snapshots
                    if (limit := getattr(s, limit_field)) is not None
                ]
                if shares:  # budgets sharing a name: the one closest to its limit
                    attributes = {n.BUDGET_PATH: path, n.LIMIT_AXIS: axis}
                    observations.append(Observation(max(shares), attributes))
        return observations


def _share(used: float, limit: float) -> float:
    if limit <= 0:
        return 1.0  # a zero limit: nothing may be spent, the budget is exhausted
    return used / limit
