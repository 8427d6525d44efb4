"""``Budget``: a named, nestable spend limit that is active inside a ``with`` block."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final

from . import _render
from ._config import (
    MAX_COUNT,
    BudgetConfig,
    FallbackCallback,
    UnknownModels,
    WarnCallback,
    build_config,
    check_counts,
    check_ledger,
    check_text,
    reject_unknown,
)
from ._context import (
    PROCESS_ROOT,
    Activation,
    active_budget,
    current_owner,
    entered_budget,
    find_live,
    pop,
    push,
)
from ._errors import (
    BudgetConfigError,
    BudgetExceededError,
    BudgetStateError,
    UnknownModelError,
)
from ._history import DEFAULT_HISTORY_SIZE, CallRecord, SpendHistory, next_sequence
from ._ledger import DEFAULT_LEDGER, UNLIMITED, Caps, Hold, Ledger, Overrun
from ._money import MAX_USD, Nanos, nanos_to_usd, spend_to_nanos
from ._overrun import overrun_error
from ._plugins import LISTENING, install_once, plugin_manager
from ._policies import PolicyState, emit_warning
from ._pricing import Rate, TokenUsage, lookup_rate, rate_for, unknown_model
from ._reservation import Reservation
from ._snapshot import BudgetSnapshot, snapshot_of
from ._tree import Rollup, Totals, fold, join

_TREE_LOCK: Final = threading.RLock()


class Budget:
    """A spend limit in USD, tokens, LLM calls and tool calls.

    Create one with :func:`shekel.budget`. Spend recorded while it is active (inside its
    ``with`` / ``async with`` block) counts against it and against every enclosing budget at
    once. The same object accumulates across blocks until :meth:`reset`.
    """

    def __init__(
        self,
        max_usd: float | None = None,
        *,
        max_tokens: int | None = None,
        max_llm_calls: int | None = None,
        max_tool_calls: int | None = None,
        name: str | None = None,
        warn_at: float | None = None,
        on_warn: WarnCallback | None = None,
        fallback: Mapping[str, Any] | None = None,
        on_fallback: FallbackCallback | None = None,
        prices: Mapping[str, Any] | None = None,
        tool_prices: Mapping[str, float] | None = None,
        strict: bool = False,
        unknown_models: UnknownModels = "warn",
        history_size: int = DEFAULT_HISTORY_SIZE,
        ledger: Ledger | None = None,
        **unexpected: object,
    ) -> None:
        reject_unknown(unexpected)
        self._config: BudgetConfig = build_config(
            max_usd=max_usd,
            max_tokens=max_tokens,
            max_llm_calls=max_llm_calls,
            max_tool_calls=max_tool_calls,
            name=name,
            warn_at=warn_at,
            on_warn=on_warn,
            fallback=fallback,
            on_fallback=on_fallback,
            prices=prices,
            tool_prices=tool_prices,
            strict=strict,
            unknown_models=unknown_models,
            history_size=history_size,
        )
        self._ledger: Ledger = check_ledger(ledger) or DEFAULT_LEDGER
        self.name: str | None = self._config.name
        self._account = self._ledger.open(self.name or "budget", self._config.caps)
        self.parent: Budget | None = None
        self.children: list[Budget] = []
        self._child_names: dict[str, Budget] = {}
        self._rollups: dict[str, Rollup] = {}
        self._active_children: list[Budget] = []
        self._live: list[Activation] = []
        self._depth = 0
        self._lineage: tuple[Budget, ...] = (self,)
        self._chain: tuple[Any, ...] = (self._account,)
        # The non-empty ``prices`` tables of the lineage, innermost first (rebuilt when attached).
        self._price_tables: list[dict[str, Rate]] = (
            [self._config.prices] if self._config.prices else []
        )
        self._history = SpendHistory(self._config.history_size)
        self._lock = threading.Lock()
        self._policy = PolicyState(self._config)
        self._full_name = self.name or "budget"
        self._pending: set[Any] = set()
        self._strict = self._config.strict
        self._refuses_unknown = self._config.unknown_models == "error"
        self._repeat = False  # a child that is rolled up into its parent when it ends
        self._adopts_repeats = False  # unnamed and same-name children become repeats
        self._folded: Totals | None = None  # what this repeat last added to its parent's rollup

    # -- identity and tree -------------------------------------------------------------

    @property
    def full_name(self) -> str:
        """Dotted path from the root, e.g. ``"pipeline.processing.validation"``."""
        return self._full_name

    @property
    def active_child(self) -> Budget | None:
        """The most recently entered child that is still active (in any thread or task)."""
        with _TREE_LOCK:
            return self._active_children[-1] if self._active_children else None

    @property
    def active_children(self) -> tuple[Budget, ...]:
        """Every child active right now, in entry order (several under fan-out)."""
        with _TREE_LOCK:
            return tuple(dict.fromkeys(self._active_children))

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def config(self) -> BudgetConfig:
        return self._config

    # -- money -------------------------------------------------------------------------

    def snapshot(self) -> BudgetSnapshot:
        """Used, reserved and remaining on each axis, read atomically."""
        return snapshot_of(self._ledger, self._account)

    @property
    def spent(self) -> float:
        """USD recorded in this budget and all its children."""
        return nanos_to_usd(self._ledger.read(self._account).used[0])

    @property
    def limit(self) -> float | None:
        """The USD limit in force (auto-capped to the parent's remaining), or ``None``."""
        cap = self._ledger.read(self._account).caps.usd
        return None if cap == UNLIMITED else nanos_to_usd(cap)

    @property
    def remaining(self) -> float | None:
        """USD left under the limit (never below 0), or ``None`` without a USD limit."""
        return self.snapshot().usd_remaining

    @property
    def max_usd(self) -> float | None:
        """The USD limit as configured, before auto-capping."""
        cap = self._config.caps.usd
        return None if cap == UNLIMITED else nanos_to_usd(cap)

    @property
    def tokens_used(self) -> int:
        return self._ledger.read(self._account).used[1]

    @property
    def calls_used(self) -> int:
        """LLM calls recorded in this budget and its children."""
        return self._ledger.read(self._account).used[2]

    @property
    def tool_calls_used(self) -> int:
        return self._ledger.read(self._account).used[3]

    @property
    def spent_direct(self) -> float:
        """USD recorded in this budget itself, not in its children."""
        _, totals, *_ = self._history.snapshot()
        return nanos_to_usd(sum(t.cost for t in totals.values()))

    @property
    def spent_by_children(self) -> float:
        """USD recorded under this budget's children: ``spent - spent_direct``.

        It includes children that were reset since (the spend happened) and ended repeats."""
        _, totals, *_ = self._history.snapshot()
        direct = sum(t.cost for t in totals.values())
        return nanos_to_usd(self._ledger.read(self._account).used[0] - direct)

    @property
    def rollups(self) -> Mapping[str, Rollup]:
        """Totals of the ended repeats under this budget, by name (``@with_budget`` calls)."""
        return self._rollups

    @property
    def model_switched(self) -> bool:
        """True once the fallback model is in use."""
        return self._policy.switched_at is not None

    @property
    def switched_at_usd(self) -> float | None:
        """Spend when the fallback activated, or ``None``."""
        switched = self._policy.switched_at
        return None if switched is None else nanos_to_usd(switched)

    @property
    def fallback_spent(self) -> float:
        """USD recorded after the fallback activated."""
        return nanos_to_usd(self._policy.fallback_spent)

    @property
    def is_active(self) -> bool:
        """True while any thread or task is inside this budget's block."""
        return bool(self._live)

    # -- entering and leaving ----------------------------------------------------------

    def __enter__(self) -> Budget:
        self._begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        frame = find_live(self)
        if frame is None:  # ended in another context than it began (a generator closed late)
            with _TREE_LOCK:
                frame = self._live[-1] if self._live else None
            if frame is None:
                return
        if exc is not None and self._pending:
            self._settle_interrupted()
        self._end(frame)
        if LISTENING.shekel_budget_exited:
            plugin_manager().hook.shekel_budget_exited(budget=self, error=exc)

    def _begin(self) -> Activation:
        """Activate this budget in the current thread or task. Everything that can fail runs
        before anything changes, so a failure leaves no budget active."""
        install_once()
        parent = entered_budget()
        if parent is None and PROCESS_ROOT[0] is not self:
            parent = PROCESS_ROOT[0]
        with _TREE_LOCK:
            if parent is not None and self.parent is not parent:
                join(self, parent)
            elif parent is None and self.parent is not None:
                raise BudgetConfigError(
                    f"budget {self.full_name!r} was first used inside {self.parent.full_name!r}; "
                    "enter it inside that budget again, or create a new budget"
                )
            frame = push(self)
            self._live.append(frame)
            if self.parent is not None:
                self.parent._active_children.append(self)
        try:
            if self.parent is not None:
                self._autocap(self.parent)
            if LISTENING.shekel_budget_entered:
                plugin_manager().hook.shekel_budget_entered(budget=self)
        except BaseException:
            self._end(frame)
            raise
        return frame

    def _end(self, frame: Activation) -> None:
        if not pop(frame):
            return
        with _TREE_LOCK:
            self._live.remove(frame)
            parent = self.parent
            if parent is not None:
                parent._active_children.remove(self)
                if self._repeat and not self._live:
                    fold(self)

    async def __aenter__(self) -> Budget:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def add_pending(self, spend: Any) -> None:
        """Register spend that started but is not recorded yet (a stream being read).

        ``spend`` needs ``owner`` (an identity of the thread or task that started it) and
        ``interrupt()``. If this budget's block ends with an exception in that same thread or
        task, ``interrupt()`` is called so the spend is recorded before the error propagates.
        """
        with self._lock:
            self._pending.add(spend)

    def discard_pending(self, spend: Any) -> None:
        with self._lock:
            self._pending.discard(spend)

    def _settle_interrupted(self) -> None:
        here = current_owner()
        with self._lock:
            mine = [p for p in self._pending if p.owner == here]
        for spend in mine:
            spend.interrupt()

    def _autocap(self, parent: Budget) -> None:
        mine = self._ledger.read(self._account)
        theirs = self._ledger.read(parent._account)
        own = self._config.caps
        caps = []
        # zip rather than indexing, and no Caps built unless they changed: runs on every enter.
        for cap, parent_cap, parent_used, parent_held, used in zip(
            own, theirs.caps, theirs.used, theirs.reserved, mine.used, strict=True
        ):
            if parent_cap == UNLIMITED or cap == UNLIMITED:
                caps.append(cap)
                continue
            room = parent_cap - parent_used - parent_held
            caps.append(min(cap, used + (room if room > 0 else 0)))
        if tuple(caps) != mine.caps:
            self._ledger.set_caps(self._account, Caps(*caps))

    def reset(self) -> None:
        """Forget all spend of this budget and its children; warnings and fallback re-arm.

        Raises ``BudgetStateError`` while the budget is active. Enclosing budgets keep the
        spend (it happened): their ``spent_by_children`` still includes it.
        """
        if self._live:
            raise BudgetStateError(
                f"cannot reset budget {self.full_name!r} while it is active; "
                "call reset() after its with-block ends"
            )
        for child in list(self.children):
            child.reset()
        self._ledger.reset(self._account)
        self._ledger.set_caps(self._account, self._config.caps)
        self._history.clear()
        self._rollups.clear()
        self._policy.reset()
        self._folded = None  # a repeat counted in its parent's rollup stays counted there

    # -- recording ---------------------------------------------------------------------

    def record(
        self,
        usd: float | None = None,
        tokens: int | None = None,
        *,
        model: str | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cached_input_tokens: int = 0,
        provider: str | None = None,
        llm_calls: int = 1,
    ) -> CallRecord:
        """Record spend that no interceptor saw (another SDK, a gateway, a human review).

        Give ``usd`` directly, or a ``model`` with token counts to price it. ``tokens`` defaults
        to ``input_tokens + output_tokens``. The spend is recorded first, then
        ``BudgetExceededError`` is raised if a limit is now exceeded.
        """
        current = active_budget()
        if current is not self and current is not None:  # the usual cases need no more checks
            self._check_not_locked()
        if not (
            type(input_tokens) is int
            and type(output_tokens) is int
            and type(cached_input_tokens) is int
            and type(llm_calls) is int
            and (tokens is None or type(tokens) is int)
            and 0 <= input_tokens < MAX_COUNT
            and 0 <= output_tokens < MAX_COUNT
            and 0 <= cached_input_tokens < MAX_COUNT
            and 0 <= llm_calls < MAX_COUNT
            and (tokens is None or 0 <= tokens < MAX_COUNT)
            and (model is None or type(model) is str)
            and (provider is None or type(provider) is str)
        ):
            check_counts(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cached_input_tokens=cached_input_tokens,
                llm_calls=llm_calls,
                tokens=0 if tokens is None else tokens,
            )
            check_text("model", model)
            check_text("provider", provider)
        if usd is None:
            cost = None
        elif type(usd) is float and 0.0 <= usd < _FAST_LIMIT:
            cost = round(usd * 1e9)
        else:
            cost = spend_to_nanos(usd)
        if cost is not None and not (input_tokens or output_tokens or cached_input_tokens):
            usage = _NO_USAGE  # a plain ``record(usd=...)``: charge() only reads its zeros
        else:
            usage = TokenUsage(input_tokens, output_tokens, cached_input_tokens)
        return self.charge(
            usage,
            model,
            provider,
            cost=cost,
            tokens=input_tokens + output_tokens if tokens is None else tokens,
            llm_calls=llm_calls,
        )

    def record_tool_call(self, tool_name: str, usd: float | None = None) -> CallRecord:
        """Count one tool call (checked before the tool runs: call it before dispatching).

        The price is ``usd``, else ``tool_prices[tool_name]``, else 0. Raises
        ``ToolBudgetExceededError`` without recording if the call would exceed a limit.
        """
        self._check_not_locked()
        check_text("tool_name", tool_name, required=True)
        cost = spend_to_nanos(usd) if usd is not None else self._tool_price(tool_name)
        over = self._ledger.try_record(self._chain, cost, 0, 0, 1)
        if over is not None:
            raise self._exceeded(over, None, sent=False, tool_name=tool_name)
        call = CallRecord(next_sequence(), self.full_name, None, 0, 0, cost, 0, tool_name=tool_name)
        self._after_charge(call, None)
        return call

    def _tool_price(self, tool_name: str) -> Nanos:
        for b in self._lineage:
            price = b._config.tool_prices.get(tool_name)
            if price is not None:
                return price
        return 0

    def rate_for(self, model: str, provider: str | None = None) -> Rate | None:
        """The price used for ``model``: this budget's or an ancestor's ``prices``, then the
        shared sources (plugins, genai-prices). ``None`` when nobody knows it."""
        return rate_for(self._price_tables, model, provider)

    def price(self, usage: TokenUsage, model: str | None, provider: str | None) -> Nanos | None:
        """Nano-dollars for ``usage`` on ``model``; ``None`` if the price is unknown (after the
        unknown-model policy ran: a warning once per model, or ``UnknownModelError``)."""
        if model is None:
            return None
        tables = self._price_tables  # ``self.rate_for``, inlined (no tables: the shared rates)
        rate = rate_for(tables, model, provider) if tables else lookup_rate(model, provider)
        if rate is not None:
            return rate.cost(usage)
        unknown_model(model, provider, self._config.unknown_models)
        return None

    def charge(
        self,
        usage: TokenUsage,
        model: str | None,
        provider: str | None,
        *,
        cost: Nanos | None = None,
        tokens: int | None = None,
        llm_calls: int = 1,
        hold: Hold | None = None,
        estimated: bool = False,
        on_fallback: bool = False,
    ) -> CallRecord:
        """Record one call's spend on this budget's chain (the core of every recording path).

        Prices ``usage`` unless ``cost`` is given, settles ``hold`` if any, updates history,
        warnings, fallback and hooks, then raises ``BudgetExceededError`` if a cap is exceeded.
        """
        priced = True
        if cost is None:
            try:
                cost = self.price(usage, model, provider)
            except UnknownModelError:
                self._settle(hold, 0, usage.total_tokens if tokens is None else tokens, llm_calls)
                raise
            if cost is None:
                priced, cost = False, 0
        counted = usage.total_tokens if tokens is None else tokens
        if hold is None:  # ``_settle``, inlined on the hot path
            over = self._ledger.record(self._chain, cost, counted, llm_calls)
        else:
            over = self._ledger.commit(hold, cost, counted, llm_calls)
        call = CallRecord(
            next_sequence(),
            self._full_name,
            model,
            usage.input_tokens,
            usage.output_tokens,
            cost,
            counted,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.reasoning_tokens,
            provider,
            priced,
            estimated,
            on_fallback,
        )
        self._after_charge(call, over)
        return call

    def _settle(self, hold: Hold | None, cost: Nanos, tokens: int, calls: int) -> Overrun | None:
        if hold is None:
            return self._ledger.record(self._chain, cost, tokens, calls)
        return self._ledger.commit(hold, cost, tokens, calls)

    def _after_charge(self, call: CallRecord, over: Overrun | None) -> None:
        self._history.add(call)
        for b in self._lineage:
            policy = b._policy
            if policy.switched_at is not None:
                policy.add_fallback_spend(call.cost)
            if policy.watching:
                b._check_policies()
        if LISTENING.shekel_spend_recorded:
            plugin_manager().hook.shekel_spend_recorded(budget=self, call=call)
        if over is not None:
            raise self._exceeded(over, call)

    def _check_policies(self) -> None:
        state = self._ledger.read(self._account)
        crossing, switched = self._policy.check(state)
        if crossing is not None:
            emit_warning(self._config, self.full_name, crossing)
            if LISTENING.shekel_warning_crossed:
                plugin_manager().hook.shekel_warning_crossed(
                    budget=self, axis=crossing.axis, spent=crossing.spent, limit=crossing.limit
                )
        if switched and self._config.fallback is not None:
            spent, limit = nanos_to_usd(state.used[0]), nanos_to_usd(state.caps.usd)
            model = self._config.fallback.model
            if self._config.on_fallback is not None:
                self._config.on_fallback(spent, limit, model)
            if LISTENING.shekel_fallback_activated:
                plugin_manager().hook.shekel_fallback_activated(
                    budget=self, spent=spent, limit=limit, fallback_model=model
                )

    def _check_not_locked(self) -> None:
        current = active_budget()
        if current is not None and current is not self and self in current._lineage:
            raise BudgetStateError(
                f"cannot record on {self.full_name!r} while its child {current.full_name!r} is "
                "active here; record on the child, or after the child's block ends"
            )

    def _exceeded(
        self,
        over: Overrun,
        call: CallRecord | None,
        *,
        sent: bool = True,
        tool_name: str | None = None,
    ) -> BudgetExceededError:
        owner = self._lineage[over.position]
        error = overrun_error(over, owner.full_name, call, sent=sent, tool_name=tool_name)
        if LISTENING.shekel_limit_exceeded:
            plugin_manager().hook.shekel_limit_exceeded(budget=owner, error=error)
        return error

    # -- reservations ------------------------------------------------------------------

    def reserve(self, usd: float = 0.0, tokens: int = 0) -> Reservation:
        """Hold ``usd`` and ``tokens`` on this budget and every ancestor before a call.

        Raises ``BudgetExceededError`` (with nothing held) if any of them cannot take it. Use
        the result as a context manager and ``commit()`` the actual spend; a reservation that
        is not committed is released when its block ends or raises.
        """
        self._check_not_locked()
        check_counts(tokens=tokens)
        held = self.hold(spend_to_nanos(usd), tokens, 0)
        return Reservation(self, held)

    def hold(self, usd: Nanos, tokens: int, llm_calls: int, *, need_headroom: bool = False) -> Hold:
        """Low-level reservation used by interceptors; raises when refused (nothing held)."""
        result = self._ledger.reserve(
            self._chain, usd, tokens, llm_calls, 0, need_headroom=need_headroom
        )
        if isinstance(result, Overrun):
            raise self._exceeded(result, None, sent=False)
        return result

    def release(self, hold: Hold) -> None:
        self._ledger.release(hold)

    def headroom(self) -> tuple[Nanos, int]:
        """USD (nano-dollars) and tokens this budget can still take, given its ancestors and
        every reservation outstanding; ``UNLIMITED`` where nothing is capped."""
        return self._ledger.headroom(self._chain)

    @property
    def strict(self) -> bool:
        """True when this budget or an ancestor was created with ``strict=True``."""
        return self._strict

    @property
    def refuses_unknown_models(self) -> bool:
        """True when this budget or an ancestor has ``unknown_models='error'``."""
        return self._refuses_unknown

    def exhausted_error(self, detail: str) -> BudgetExceededError:
        """An error naming the budget of this chain with the least USD left, for a stop that
        no single overrun explains (a strict stream cut off at its reservation)."""
        tightest, left = self, None
        for b in self._lineage:
            snap = b.snapshot()
            if snap.usd_remaining is not None and (left is None or snap.usd_remaining < left):
                tightest, left = b, snap.usd_remaining
        snap = tightest.snapshot()
        error = BudgetExceededError(
            snap.usd_used,
            snap.usd_limit if snap.usd_limit is not None else snap.usd_used,
            budget_name=tightest.full_name,
            detail=detail,
        )
        if LISTENING.shekel_limit_exceeded:
            plugin_manager().hook.shekel_limit_exceeded(budget=tightest, error=error)
        return error

    def fallback_model(self) -> str | None:
        """The model requests should switch to, if this budget or an ancestor switched."""
        for b in self._lineage:
            if b._policy.switched_at is not None and b._config.fallback is not None:
                return b._config.fallback.model
        return None

    # -- rendering ---------------------------------------------------------------------

    def summary(self) -> str:
        """A table of recent calls, per-model totals and the budget's status."""
        return _render.summary(self)

    def summary_data(self) -> dict[str, Any]:
        """The same as :meth:`summary`, as a JSON-serialisable dict."""
        return _render.summary_data(self)

    def tree(self) -> str:
        """The budget and its children, one line each, with spent / limit and direct spend."""
        return _render.tree(self)

    def history(self) -> SpendHistory:
        return self._history

    def __repr__(self) -> str:
        limit = self.limit
        shown = "no limit" if limit is None else f"${limit:.4f}"
        return f"<Budget {self.full_name!r} ${self.spent:.4f} / {shown}>"


_FAST_LIMIT: Final = float(MAX_USD)
"""Floats below this many dollars take the inlined conversion; larger ones are validated."""
_NO_USAGE: Final = TokenUsage()
"""Shared by records without token counts (never passed where it could be changed)."""
