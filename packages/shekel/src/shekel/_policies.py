"""Soft policies layered over the hard caps: the one-time warning and the model fallback."""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

from ._config import BudgetConfig
from ._errors import _fmt
from ._ledger import UNLIMITED, AccountState, Caps
from ._money import Nanos, nanos_to_usd

_AXES = ("usd", "tokens", "llm_calls", "tool_calls")


class BudgetWarning(UserWarning):
    """Emitted when a budget crosses ``warn_at`` and no ``on_warn`` callback was given."""


@dataclass(slots=True)
class WarnCrossing:
    axis: str
    spent: float
    limit: float


def warn_crossing(config: BudgetConfig, state: AccountState, caps: Caps) -> WarnCrossing | None:
    """The first capped axis whose use reached ``warn_at`` of its (effective) cap, if any.

    With a USD limit only USD counts: ``on_warn(spent, limit)`` is then always in dollars, as
    users write it (``f"${spent:.2f} of ${limit:.2f}"``), never a tool-call or token count.
    """
    warn_at = config.warn_at
    if warn_at is None:
        return None
    usd_capped = caps[0] != UNLIMITED
    for i, axis in enumerate(_AXES):
        cap = caps[i]
        if cap == UNLIMITED or (usd_capped and i > 0):
            continue
        used = state.used[i]
        if used >= cap * warn_at:
            if axis == "usd":
                return WarnCrossing(axis, nanos_to_usd(used), nanos_to_usd(cap))
            return WarnCrossing(axis, float(used), float(cap))
    return None


def emit_warning(config: BudgetConfig, name: str, crossing: WarnCrossing) -> None:
    if config.on_warn is not None:
        config.on_warn(crossing.spent, crossing.limit)
        return
    warnings.warn(
        f"budget {name!r} reached {config.warn_at:.0%} of its limit of "
        f"{_fmt(crossing.axis, crossing.limit)} ({_fmt(crossing.axis, crossing.spent)} used)",
        BudgetWarning,
        stacklevel=4,
    )


def fallback_due(config: BudgetConfig, state: AccountState, caps: Caps) -> bool:
    """True when spend reached the fallback threshold of the effective USD cap."""
    fb = config.fallback
    if fb is None or caps.usd == UNLIMITED:
        return False
    threshold: Nanos = round(caps.usd * fb.at_pct)
    return state.used[0] >= threshold


class PolicyState:
    """The soft-policy state of one budget: whether it warned, when it switched to the
    fallback model, and what it spent since. Transitions happen once, under a lock."""

    __slots__ = (
        "_lock",
        "_trigger",
        "_trigger_caps",
        "config",
        "fallback_spent",
        "looped",
        "refused",
        "switched_at",
        "warned",
        "watching",
    )

    def __init__(self, config: BudgetConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.warned = False
        self.refused = False  # a call was refused for want of room (shown as EXHAUSTED)
        self.looped = False  # loop_guard stopped a repeated call (shown as LOOP)
        self.switched_at: Nanos | None = None
        self.fallback_spent: Nanos = 0
        self.watching = self.config.warn_at is not None or self.config.fallback is not None
        """True while a warning or a fallback switch may still fire."""
        self._trigger_caps: Caps | None = None
        self._trigger = 0.0

    def quiet_below(self, caps: Caps) -> float:
        """The USD (nano-dollars) under which nothing can fire against ``caps``, which must
        cap USD (only USD then counts for the warning as for the fallback): spend below it
        needs no :meth:`check`."""
        if caps is not self._trigger_caps:
            config, lowest = self.config, float("inf")
            if config.warn_at is not None and not self.warned:
                lowest = caps.usd * config.warn_at
            if config.fallback is not None and self.switched_at is None:
                lowest = min(lowest, round(caps.usd * config.fallback.at_pct))
            self._trigger, self._trigger_caps = lowest, caps
        return self._trigger

    def add_fallback_spend(self, cost: Nanos) -> None:
        with self._lock:
            self.fallback_spent += cost

    def check(self, state: AccountState, caps: Caps) -> tuple[WarnCrossing | None, bool]:
        """What fires now: a warning crossing (once) and whether the fallback switched (once)."""
        config = self.config
        crossing = None if self.warned else warn_crossing(config, state, caps)
        switch = self.switched_at is None and fallback_due(config, state, caps)
        if crossing is None and not switch:
            return None, False
        with self._lock:
            if crossing is not None:
                if self.warned:
                    crossing = None
                self.warned = True
            if switch:
                switch = self.switched_at is None
                if switch:
                    self.switched_at = state.used[0]
            self.watching = (config.warn_at is not None and not self.warned) or (
                config.fallback is not None and self.switched_at is None
            )
            self._trigger_caps = None
        return crossing, switch
