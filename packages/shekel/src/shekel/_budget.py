"""``Budget``: a named, nestable spend limit that is active inside a ``with`` block."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from types import EllipsisType, TracebackType
from typing import Any, Final

from . import _loops, _render, _spend
from ._config import (
    MAX_COUNT,
    PARAMETERS,
    BudgetConfig,
    FallbackCallback,
    UnknownModels,
    WarnCallback,
    build_config,
    check_counts,
    check_ledger,
    check_text,
    limit_value,
    reject_unknown,
    same_options,
)
from ._context import (
    PROCESS_ROOT,
    Activation,
    active_budget,
    entered_budget,
    find_live,
    pop,
    push,
)
from ._errors import BudgetConfigError, BudgetStateError
from ._history import DEFAULT_HISTORY_SIZE, CallRecord, SpendHistory, next_sequence
from ._keys import key_part, private_key
from ._ledger import UNLIMITED, AccountState, Caps, Ledger, Link
from ._loops import LoopGuard
from ._money import MAX_USD, Nanos, nanos_to_usd, spend_to_nanos
from ._plugins import LISTENING, install_once, plugin_manager
from ._policies import PolicyState
from ._pricing import Rate, TokenUsage
from ._reservation import Reservation, ToolCall
from ._snapshot import BudgetSnapshot, snapshot_of
from ._stores import GONE, forget_gone, forget_when_gone, resolve_store
from ._tree import Rollup, Totals, fold, join
from ._windows import Period, Window

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
        window: str | None = None,
        windows: Mapping[str, float | Mapping[str, float | int | None]] | None = None,
        timezone: str | None = None,
        loop_guard: int | None = None,
        store: str | Ledger | None = None,
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
            window=window,
            windows=windows,
            timezone=timezone,
            loop_guard=loop_guard,
        )
        if ledger is not None and store is not None:
            raise BudgetConfigError("give store= (ledger= is its older name), not both")
        self._ledger: Ledger = check_ledger(ledger) or resolve_store(
            store, windowed=bool(self._config.windows)
        )
        self.name: str | None = self._config.name
        # A store key nobody else can know (see ``_keys``): deleted once the budget is gone.
        self._private = self.name is None and self._ledger.shares_keys
        if self.name is not None:
            self._key = key_part(self.name)
        else:
            self._key = private_key("budget") if self._private else "budget"
        self._account: Any = self._ledger.open(self._key, self._config.caps)
        if self._private:
            forget_when_gone(self, self._ledger, self._account)
        self._periods: dict[str, tuple[Period, Any]] = {}  # window spec -> current period
        self.parent: Budget | None = None
        self.children: list[Budget] = []
        self._child_names: dict[str, Budget] = {}
        self._rollups: dict[str, Rollup] = {}
        self._active_children: list[Budget] = []
        self._live: list[Activation] = []
        self._depth = 0
        self._counted_depth = 0  # levels of hand-written budgets, for MAX_DEPTH
        self._lineage: tuple[Budget, ...] = (self,)
        # The accounts spend goes to, innermost first, with the caps each is held to (a
        # windowed budget has one per window, whose accounts change with the period), and
        # whose each of them is: the budget, and the window or None.
        self._timed = bool(self._config.windows)  # a window anywhere in the lineage
        self._chain: tuple[Link, ...] = ()
        self._owners: tuple[tuple[Budget, Window | None], ...] = ()
        self._plain = self._unheld = self._guarded = False
        # The caps it shows: its own, auto-capped when it was last activated (or attached) to
        # what its parent had left then.
        self._capped: Caps = self._config.caps
        # The non-empty ``prices`` tables of the lineage, innermost first (rebuilt when attached).
        self._price_tables: list[dict[str, Rate]] = (
            [self._config.prices] if self._config.prices else []
        )
        self._history = SpendHistory(self._config.history_size)
        guard = self._config.loop_guard
        self._loops: LoopGuard | None = None if guard is None else LoopGuard(guard)
        self._lock = threading.Lock()
        self._policy = PolicyState(self._config)
        self._full_name = self.name or "budget"
        self._pending: set[Any] = set()
        self._strict = self._config.strict
        self._refuses_unknown = self._config.unknown_models == "error"
        self._repeat = False  # a child that is rolled up into its parent when it ends
        self._adopts_repeats = False  # unnamed and same-name children become repeats
        self._folded: Totals | None = None  # what this repeat last added to its parent's rollup
        self._asked_with: dict[str, Any] = {}  # the options child() created it with
        self._relink_own()

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
        """Used, reserved and remaining on each axis (remaining within the auto-capped limits),
        the account read atomically."""
        return self._reading()[0]

    def _reading(self) -> tuple[BudgetSnapshot, AccountState, Caps]:
        state = self._ledger.read(self._read_account())
        caps = self._capped
        return snapshot_of(state, caps), state, caps

    def _autocap(self) -> None:
        """Lower the caps this budget shows to what its parent has left now. Enforcement needs
        no such figure (every operation checks the whole chain against each budget's own caps),
        so it is kept here, not in the ledger."""
        own = self._config.caps
        parent = self.parent
        if parent is None:
            self._capped = own
            return
        state = self._ledger.read(self._read_account())
        theirs = parent._ledger.read(parent._read_account())
        parent_caps = parent._capped
        capped = []
        for cap, parent_cap, parent_used, parent_held, used in zip(
            own, parent_caps, theirs.used, theirs.reserved, state.used, strict=True
        ):
            if parent_cap == UNLIMITED or cap == UNLIMITED:
                capped.append(cap)
            else:
                room = parent_cap - parent_used - parent_held
                capped.append(min(cap, used + (room if room > 0 else 0)))
        self._capped = Caps(*capped)

    @property
    def spent(self) -> float:
        """USD recorded in this budget and all its children."""
        return nanos_to_usd(self._ledger.read(self._read_account()).used[0])

    @property
    def limit(self) -> float | None:
        """The USD limit in force (auto-capped to the parent's remaining), or ``None``."""
        cap = self._capped.usd
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
        return self._ledger.read(self._read_account()).used[1]

    @property
    def calls_used(self) -> int:
        """LLM calls recorded in this budget and its children."""
        return self._ledger.read(self._read_account()).used[2]

    @property
    def tool_calls_used(self) -> int:
        return self._ledger.read(self._read_account()).used[3]

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
        return nanos_to_usd(max(self._ledger.read(self._read_account()).used[0] - direct, 0))

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
            _spend.settle_interrupted(self)
        self._end(frame)
        if LISTENING.shekel_budget_exited:
            plugin_manager().hook.shekel_budget_exited(budget=self, error=exc)

    def activate(self) -> Activation:
        """Make this budget active in the current thread or task, as entering its ``with``
        block does, until :meth:`deactivate` is given the returned activation.

        For framework callbacks and span handlers that see a step start and end in separate
        calls. Ending is safe from anywhere: from another thread or task (LangChain runs async
        end callbacks in a copied context) it stops the activation counting everywhere, so
        nothing stays active by mistake.
        """
        return self._begin()

    def deactivate(self, activation: Activation) -> None:
        """End an activation returned by :meth:`activate`. Ending it twice does nothing."""
        if activation.budget is not self:
            raise BudgetConfigError(
                f"this activation belongs to budget {activation.budget.full_name!r}, not to "
                f"{self.full_name!r}; call deactivate() on the budget that activated it"
            )
        if self._end(activation) and LISTENING.shekel_budget_exited:
            plugin_manager().hook.shekel_budget_exited(budget=self, error=None)

    def _begin(self) -> Activation:
        """Activate this budget in the current thread or task. Everything that can fail runs
        before anything changes, so a failure leaves no budget active."""
        install_once()
        if GONE:
            forget_gone()
        parent = entered_budget()
        if parent is None and PROCESS_ROOT[0] is not self:
            parent = PROCESS_ROOT[0]
        with _TREE_LOCK:
            if parent is not None and self.parent is not parent:
                join(self, parent)
            elif parent is None and self.parent is not None:
                raise BudgetConfigError(
                    f"budget {self.full_name!r} belongs to {self.parent.full_name!r}; activate "
                    "it where that budget is active (charging it needs no activation: route "
                    "calls to it, or record on it)"
                )
            frame = push(self)
            self._live.append(frame)
            if self.parent is not None:
                self.parent._active_children.append(self)
        try:
            if self.parent is not None:
                self._autocap()
            if LISTENING.shekel_budget_entered:
                plugin_manager().hook.shekel_budget_entered(budget=self)
        except BaseException:
            self._end(frame)
            raise
        return frame

    def _end(self, frame: Activation) -> bool:
        if not pop(frame):
            return False
        with _TREE_LOCK:
            self._live.remove(frame)
            parent = self.parent
            if parent is not None:
                parent._active_children.remove(self)
                if self._repeat and not self._live:
                    fold(self)
        return True

    async def __aenter__(self) -> Budget:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

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
        for account in (self._account, *(account for _, account in self._periods.values())):
            self._ledger.reset(account)
        self._capped = self._config.caps
        self._history.clear()
        if self._loops is not None:
            self._loops.clear()
        self._rollups.clear()
        self._policy.reset()
        self._folded = None  # a repeat counted in its parent's rollup stays counted there

    # -- children and limits ------------------------------------------------------------

    def child(self, name: str, **options: Any) -> Budget:
        """The child of this budget named ``name``, created the first time it is asked for.

        ``options`` are ``budget()``'s (``max_usd``, ``max_tokens``, ``warn_at``...), used when
        the child is created; the child is attached at once, auto-capped to what this budget
        has left, and not activated (``with parent.child("x"):`` activates it). Later calls
        return the same object, from any thread or task: one child per parent and name, reused
        across repeats, parallel branches and retries. A later call with the options the child
        was created with, or none, returns it (even after :meth:`set_limits` changed its
        limits); one that gives an option another value raises ``BudgetConfigError`` (change a
        live budget's limits with :meth:`set_limits`). The parent may be unnamed (its children
        then show as ``budget.<name>``). Framework names may contain '.': pass them through
        :func:`shekel.budget_name` first.
        """
        reject_unknown({k: v for k, v in options.items() if k not in _CHILD_OPTIONS})
        with _TREE_LOCK:
            existing = self._child_names.get(name) if isinstance(name, str) else None
            if existing is not None:
                if options and options != existing._asked_with:
                    _check_same_options(existing, options)
                return existing
            created = Budget(name=name, ledger=self._ledger, **options)
            join(created, self, asked_by_name=True)
            created._asked_with = dict(options)
        created._autocap()
        return created

    def find_child(self, name: str) -> Budget | None:
        """The child of this budget named ``name`` (made by :meth:`child` or by ``with``), or
        ``None``: a lookup that creates nothing."""
        with _TREE_LOCK:
            return self._child_names.get(name)

    def set_limits(
        self,
        *,
        max_usd: float | EllipsisType | None = ...,
        max_tokens: int | EllipsisType | None = ...,
        max_llm_calls: int | EllipsisType | None = ...,
        max_tool_calls: int | EllipsisType | None = ...,
    ) -> None:
        """Change this budget's limits while it lives (``None`` removes one; a limit not given
        stays as it is). Raising a limit lets a paused workflow go on; lowering one below what was
        spent makes the budget exhausted, so the next call is refused. The new caps apply at
        once to the ledger, atomically with spend running in other threads, and the children's
        auto-caps follow.
        """
        given = {
            "max_usd": max_usd,
            "max_tokens": max_tokens,
            "max_llm_calls": max_llm_calls,
            "max_tool_calls": max_tool_calls,
        }
        caps = list(self._config.caps)
        for i, (param, value) in enumerate(given.items()):
            if value is not ...:
                caps[i] = limit_value(param, value)
        if self._config.fallback is not None and caps[0] == UNLIMITED:
            raise BudgetConfigError(
                "this budget has a fallback, which needs max_usd: keep a USD limit, or create "
                "a budget without fallback"
            )
        with _TREE_LOCK:
            self._config = replace(self._config, caps=Caps(*caps))
            self._policy.config = self._config
            self._relink()

    def _relink(self) -> None:
        """Rebuild the chains of this budget and its descendants (their caps changed)."""
        self._relink_own()
        self._autocap()
        for child in list(self.children):
            child._relink()

    def _relink_own(self) -> None:
        parent = self.parent
        windows = self._config.windows
        if windows:
            own_links: tuple[Link, ...] = tuple((None, w.caps) for w in windows)
            owners: tuple[tuple[Budget, Window | None], ...] = tuple((self, w) for w in windows)
        else:
            own_links = ((self._account, self._config.caps),)
            owners = ((self, None),)
        if parent is None:
            self._chain, self._owners = own_links, owners
            self._timed = bool(windows)
        else:
            self._chain = own_links + parent._chain
            self._owners = owners + parent._owners
            self._timed = bool(windows) or parent._timed
        # The interceptor's shortest path: no strict mode, no unknown-model refusal, no
        # fallback to watch for and no window anywhere in the lineage.
        self._guarded = any(b._loops is not None for b in self._lineage)
        self._plain = not (
            self._timed
            or self._strict
            or self._refuses_unknown
            or self._guarded
            or any(b._config.fallback is not None for b in self._lineage)
        )
        # Shorter still: nothing to hold before a call. Only a cap on LLM calls needs each call
        # in flight held (so that concurrent calls cannot pass it), and a store's hold is what
        # other processes see; otherwise checking that no budget of the chain is exhausted is
        # the whole decision.
        self._unheld = (
            self._plain
            and not self._ledger.blocks
            and all(caps[2] == UNLIMITED for _, caps in self._chain)
        )

    def _links(self) -> tuple[Link, ...]:
        """The chain as it stands now: windowed budgets' accounts of the current period."""
        if not self._timed:
            return self._chain
        now = time.time()
        return tuple(
            (owner._period_account(window, now), caps) if window is not None else (account, caps)
            for (account, caps), (owner, window) in zip(self._chain, self._owners, strict=True)
        )

    def _period_account(self, window: Window, now: float) -> Any:
        current = self._periods.get(window.spec)
        if current is not None and now < current[0].ends_at:
            return current[1]
        with self._lock:
            current = self._periods.get(window.spec)
            if current is None or now >= current[0].ends_at:
                period = window.period(now)
                account = self._ledger.open(
                    f"{self._key}@{window.spec}/{period.label}",
                    window.caps,
                    keep_until=period.ends_at + window.length,
                )
                current = self._periods[window.spec] = (period, account)
        return current[1]

    def _read_account(self) -> Any:
        """The account ``spent``, ``limit``... report: the budget's own, or, for a windowed
        budget, the current period of its longest window."""
        windows = self._config.windows
        if not windows:
            return self._account
        return self._period_account(windows[-1], time.time())

    def period_ends_at(self) -> float | None:
        """When the current period of this budget's longest window ends (a POSIX timestamp),
        or ``None`` without a window."""
        windows = self._config.windows
        if not windows:
            return None
        self._period_account(windows[-1], time.time())
        return self._periods[windows[-1].spec][0].ends_at

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
        cache_write_tokens: int = 0,
        provider: str | None = None,
        llm_calls: int = 1,
        call_id: str | None = None,
        source: str | None = None,
        estimated: bool = False,
    ) -> CallRecord:
        """Record spend that no interceptor saw (another SDK, a gateway, a human review), or
        usage a framework reports for a model that never reaches the intercepted SDKs.

        Give ``usd`` directly, or a ``model`` with token counts to price it. ``input_tokens``
        counts every prompt token; ``cached_input_tokens`` and ``cache_write_tokens`` say how
        many of them were read from and written to a prompt cache (priced at those rates).
        ``tokens`` defaults to ``input_tokens + output_tokens``. ``estimated=True`` marks
        counts that are a guess (a model that reported no usage), as the interceptor marks its
        own. The spend is recorded first, then ``BudgetExceededError`` is raised if a limit is
        now exceeded.

        ``call_id`` is the provider's id of the response (``chatcmpl-...``, ``msg_...``). A
        call is recorded once per id, whoever reports it first, this method or the
        interceptor (which reads the id from every response): a later report of the same id
        changes nothing and returns the call as first recorded. ``source`` names the reporter
        in the call's record (default ``"manual"``).
        """
        args = (
            usd,
            tokens,
            model,
            input_tokens,
            output_tokens,
            cached_input_tokens,
            cache_write_tokens,
            provider,
            llm_calls,
            source,
            estimated,
        )
        if not call_id:
            return self._record(*args, None)
        check_text("call_id", call_id)
        first = _spend.claim(call_id, source or "manual")
        if first is not None:
            return first
        try:
            call = self._record(*args, call_id)
        except BaseException as exc:
            _spend.claimed(call_id, getattr(exc, "call", None))
            raise
        _spend.claimed(call_id, call)
        return call

    def _record(
        self,
        usd: float | None,
        tokens: int | None,
        model: str | None,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int,
        cache_write_tokens: int,
        provider: str | None,
        llm_calls: int,
        source: str | None,
        estimated: bool,
        call_id: str | None,
    ) -> CallRecord:
        current = active_budget()
        if current is not self and current is not None:  # the usual cases need no more checks
            self._check_not_locked()
        if not (
            type(input_tokens) is int
            and type(output_tokens) is int
            and type(cached_input_tokens) is int
            and type(cache_write_tokens) is int
            and type(llm_calls) is int
            and (tokens is None or type(tokens) is int)
            and 0 <= input_tokens < MAX_COUNT
            and 0 <= output_tokens < MAX_COUNT
            and 0 <= cached_input_tokens < MAX_COUNT
            and 0 <= cache_write_tokens < MAX_COUNT
            and 0 <= llm_calls < MAX_COUNT
            and (tokens is None or 0 <= tokens < MAX_COUNT)
            and (model is None or (type(model) is str and model and not model.isspace()))
            and (provider is None or type(provider) is str)
        ):
            check_counts(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cached_input_tokens=cached_input_tokens,
                cache_write_tokens=cache_write_tokens,
                llm_calls=llm_calls,
                tokens=0 if tokens is None else tokens,
            )
            check_text("model", model)
            check_text("provider", provider)
        if source is not None:
            check_text("source", source)
        if type(estimated) is not bool:
            raise BudgetConfigError(f"estimated must be True or False, got {estimated!r}")
        if usd is None:
            cost = None
        elif type(usd) is float and 0.0 <= usd < _FAST_LIMIT:
            cost = round(usd * 1e9)
        else:
            cost = spend_to_nanos(usd)
        if cost is not None and not (
            input_tokens or output_tokens or cached_input_tokens or cache_write_tokens
        ):
            usage = _NO_USAGE  # a plain ``record(usd=...)``: charge() only reads its zeros
        else:
            usage = TokenUsage(input_tokens, output_tokens, cached_input_tokens, cache_write_tokens)
        return _spend.charge(
            self,
            usage,
            model,
            provider,
            cost=cost,
            tokens=input_tokens + output_tokens if tokens is None else tokens,
            llm_calls=llm_calls,
            call_id=call_id,
            source=source or "manual",
            estimated=estimated,
        )

    def record_tool_call(
        self, tool_name: str, usd: float | None = None, *, arguments: object = None
    ) -> CallRecord:
        """Count one tool call (checked before the tool runs: call it before dispatching).

        The price is ``usd``, else ``tool_prices[tool_name]``, else 0. Raises
        ``ToolBudgetExceededError`` without recording if the call would exceed a limit.
        """
        self._check_not_locked()
        check_text("tool_name", tool_name, required=True)
        cost = spend_to_nanos(usd) if usd is not None else self._tool_price(tool_name)
        if self._guarded:
            self._admit_tool(tool_name, arguments)
        over = self._ledger.try_record(self._links(), cost, 0, 0, 1)
        if over is not None:
            asked = _spend.Asked(cost, 0, 0, 1, False)
            raise _spend.exceeded(self, over, None, sent=False, tool_name=tool_name, asked=asked)
        call = CallRecord(
            next_sequence(), self.full_name, None, 0, 0, cost, 0, tool_name=tool_name, source="tool"
        )
        _spend.after_charge(self, call, None)
        return call

    def _tool_price(self, tool_name: str) -> Nanos:
        for b in self._lineage:
            price = b._config.tool_prices.get(tool_name)
            if price is not None:
                return price
        return 0

    def fallback_model(self) -> str | None:
        """The model requests are switched to, if this budget or an ancestor switched."""
        return _spend.fallback_model(self)

    def _check_not_locked(self) -> None:
        current = active_budget()
        if current is not None and current is not self and self in current._lineage:
            raise BudgetStateError(
                f"cannot record on {self.full_name!r} while its child {current.full_name!r} is "
                "active here; record on the child, or after the child's block ends"
            )

    # -- reservations and checks -------------------------------------------------------

    def reserve(self, usd: float = 0.0, tokens: int = 0) -> Reservation:
        """Hold ``usd`` and ``tokens`` on this budget and every ancestor before a call.

        Raises ``BudgetExceededError`` (with nothing held) if any of them cannot take it. Use
        the result as a context manager and ``commit()`` the actual spend; a reservation that
        is not committed is released when its block ends or raises.
        """
        self._check_not_locked()
        check_counts(tokens=tokens)
        held = _spend.hold(self, spend_to_nanos(usd), tokens, 0)
        return Reservation(self, held)

    def check(
        self,
        *,
        usd: float = 0.0,
        tokens: int = 0,
        llm_calls: int = 1,
        tool_calls: int = 0,
        model: str | None = None,
        provider: str | None = None,
    ) -> None:
        """Raise the ``BudgetExceededError`` (``sent=False``) that a call needing these amounts
        would meet now, holding nothing: by default, "may one more LLM call go?", the test the
        interceptor makes before sending (a budget or ancestor at its USD or token cap, or at
        its call cap, refuses). For frameworks that stop work before it reaches the SDK.

        With ``model``, also raise the ``UnknownModelError`` the call would meet: a budget or
        ancestor with ``strict=True`` or ``unknown_models='error'`` refuses a model it has no
        price for (``provider`` narrows the lookup as in :meth:`record`).
        """
        if model is not None:
            check_text("model", model)
            check_text("provider", provider)
            _spend.check_model(self, model, provider)
        if not (usd == 0 and tokens == 0 and llm_calls == 1 and tool_calls == 0):
            check_counts(tokens=tokens, llm_calls=llm_calls, tool_calls=tool_calls)
            _spend.check(self, spend_to_nanos(usd), tokens, llm_calls, tool_calls)
            return
        _spend.check(self, 0, 0, 1, 0)  # "may one more call go?": nothing to validate

    def tool_call(
        self, tool_name: str, usd: float | None = None, *, arguments: object = None
    ) -> ToolCall:
        """Count one call of ``tool_name`` and hold its price before the tool runs.

        The price is ``usd``, else ``tool_prices[tool_name]`` (here or in an ancestor), else 0.
        Raises ``ToolBudgetExceededError`` (``sent=False``, nothing held) when ``max_tool_calls``
        or a USD cap would be passed. Use the result as a context manager: a block that raises
        releases the call (the tool failed: nothing counted); one that ends normally records it
        at its held price unless ``commit(usd=...)`` recorded the actual price first.
        ``arguments`` (any JSON-like value) are what ``loop_guard`` compares: the Nth call of
        one tool with equal arguments raises ``LoopGuardError`` before the tool runs.
        """
        self._check_not_locked()
        check_text("tool_name", tool_name, required=True)
        price = spend_to_nanos(usd) if usd is not None else self._tool_price(tool_name)
        if self._guarded:
            self._admit_tool(tool_name, arguments)
        held = _spend.hold(self, price, 0, 0, 1, tool_name=tool_name)
        return ToolCall(self, tool_name, held)

    def _admit_tool(self, tool_name: str, arguments: object) -> None:
        _loops.admit(
            self,
            _loops.tool_key(tool_name, arguments),
            lambda: _loops.describe_tool(tool_name, arguments),
            tool=True,
        )

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


_CHILD_OPTIONS: Final = tuple(p for p in PARAMETERS if p not in ("name", "ledger"))


def _check_same_options(child: Budget, options: Mapping[str, Any]) -> None:
    differ = same_options(child._config, options)
    if differ:
        raise BudgetConfigError(
            f"{child.full_name!r} already exists with other {', '.join(differ)}; ask for it "
            "with the same options (or none), or change a live budget's limits with "
            "set_limits()"
        )
