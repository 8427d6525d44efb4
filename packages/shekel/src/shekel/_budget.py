"""``Budget``: a named, nestable spend limit that is active inside a ``with`` block."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace
from types import EllipsisType, TracebackType
from typing import Any, Final, Unpack

from . import _deprecated, _manual, _render, _spend
from ._chain import Chain
from ._config import (
    PARAMETERS,
    BudgetConfig,
    ChildOptions,
    FallbackCallback,
    UnknownModels,
    WarnCallback,
    build_config,
    check_ledger,
    check_same_options,
    explain_unknown,
    limit_value,
    reject_unknown,
)
from ._context import PROCESS_ROOT, Activation, entered_budget, find_live, pop, push
from ._errors import BudgetConfigError, BudgetStateError
from ._history import DEFAULT_HISTORY_SIZE, CallRecord, SpendHistory
from ._ledger import UNLIMITED, Caps, Ledger
from ._money import nanos_to_usd, usd_text
from ._plugins import CALL, LISTENING, install_once
from ._reservation import Reservation, ToolCall
from ._snapshot import BudgetSnapshot
from ._stores import GONE, forget_gone, resolve_store
from ._tree import Node, fold, join

_TREE_LOCK: Final = threading.RLock()


class Budget(metaclass=_deprecated.HidesMovedMembers):
    """A spend limit in USD, tokens, LLM calls and tool calls.

    Create one with :func:`shekel.budget`. Spend recorded while it is active (inside its
    ``with`` / ``async with`` block) counts against it and against every enclosing budget at
    once. The same object accumulates across blocks until :meth:`reset`.
    """

    @explain_unknown
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
    ) -> None:
        config = build_config(
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
        chosen = check_ledger(ledger) or resolve_store(store, windowed=bool(config.windows))
        self.name: str | None = config.name
        self.parent: Budget | None = None
        self.children: list[Budget] = []
        # What spend needs (accounts, caps, prices, policies: see ``_chain``) and the tree's
        # bookkeeping (see ``_tree``).
        self._c: Chain = Chain(self, config, chosen)
        self._node: Node = Node(self, self._c)

    # -- identity and tree -------------------------------------------------------------

    @property
    def full_name(self) -> str:
        """Dotted path from the root, e.g. ``"pipeline.processing.validation"``."""
        return self._c.full_name

    @property
    def active_child(self) -> Budget | None:
        """The most recently entered child that is still active (in any thread or task)."""
        with _TREE_LOCK:
            active = self._node.active_children
            return active[-1] if active else None

    @property
    def is_active(self) -> bool:
        """True while any thread or task is inside this budget's block."""
        return bool(self._node.live)

    # -- money -------------------------------------------------------------------------

    def snapshot(self) -> BudgetSnapshot:
        """Used, reserved and remaining on each axis (remaining within the auto-capped limits),
        the account read atomically: LLM and tool calls counted, tokens, and what calls in
        flight hold."""
        return self._c.reading()[0]

    @property
    def spent(self) -> float:
        """USD recorded in this budget and all its children."""
        return nanos_to_usd(self._c.used()[0])

    @property
    def limit(self) -> float | None:
        """The USD limit in force (auto-capped to the parent's remaining), or ``None``."""
        cap = self._c.capped.usd
        return None if cap == UNLIMITED else nanos_to_usd(cap)

    @property
    def remaining(self) -> float | None:
        """USD left under the limit (never below 0), or ``None`` without a USD limit."""
        return self.snapshot().usd_remaining

    @property
    def config(self) -> BudgetConfig:
        """The budget's validated options (limits in exact units: see ``BudgetConfig``)."""
        return self._c.config

    @property
    def spent_direct(self) -> float:
        """USD recorded in this budget itself, not in its children."""
        _, totals, *_ = self._c.history.snapshot()
        return nanos_to_usd(sum(t.cost for t in totals.values()))

    @property
    def spent_by_children(self) -> float:
        """USD recorded under this budget's children: ``spent - spent_direct``.

        It includes children that were reset since (the spend happened) and ended repeats."""
        _, totals, *_ = self._c.history.snapshot()
        direct = sum(t.cost for t in totals.values())
        return nanos_to_usd(max(self._c.used()[0] - direct, 0))

    @property
    def model_switched(self) -> bool:
        """True once the fallback model is in use."""
        return self._c.policy.switched_at is not None

    @property
    def switched_at_usd(self) -> float | None:
        """Spend when the fallback activated, or ``None``."""
        switched = self._c.policy.switched_at
        return None if switched is None else nanos_to_usd(switched)

    @property
    def fallback_spent(self) -> float:
        """USD recorded after the fallback activated."""
        return nanos_to_usd(self._c.policy.fallback_spent)

    # -- entering and leaving ----------------------------------------------------------

    def __enter__(self) -> Budget:
        begin(self)
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
                live = self._node.live
                frame = live[-1] if live else None
            if frame is None:
                return
        if exc is not None and self._c.pending:
            _spend.settle_interrupted(self._c)
        end(self, frame)
        if LISTENING.shekel_budget_exited:
            CALL.shekel_budget_exited(budget=self, error=exc)

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
        if self._node.live:
            raise BudgetStateError(
                f"cannot reset budget {self.full_name!r} while it is active; "
                "call reset() after its with-block ends"
            )
        for child in list(self.children):
            child.reset()
        self._c.reset()
        self._node.rollups.clear()
        self._node.folded = None  # a repeat counted in its parent's rollup stays counted there

    # -- children and limits ------------------------------------------------------------

    def child(self, name: str, **options: Unpack[ChildOptions]) -> Budget:
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
        asked: dict[str, Any] = dict(options)
        reject_unknown({k: v for k, v in asked.items() if k not in _CHILD_OPTIONS})
        with _TREE_LOCK:
            existing = self._node.child_names.get(name) if isinstance(name, str) else None
            if existing is not None:
                if asked and asked != existing._node.asked_with:
                    check_same_options(existing.full_name, existing._c.config, asked)
                return existing
            created = Budget(name=name, ledger=self._c.ledger, **options)
            join(created._node, self._node, asked_by_name=True)
            created._node.asked_with = asked
        created._c.autocap()
        return created

    def find_child(self, name: str) -> Budget | None:
        """The child of this budget named ``name`` (made by :meth:`child` or by ``with``), or
        ``None``: a lookup that creates nothing."""
        with _TREE_LOCK:
            return self._node.child_names.get(name)

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
        config = self._c.config
        caps = list(config.caps)
        for i, (param, value) in enumerate(given.items()):
            if value is not ...:
                caps[i] = limit_value(param, value)
        if config.fallback is not None and caps[0] == UNLIMITED:
            raise BudgetConfigError(
                "this budget has a fallback, which needs max_usd: keep a USD limit, or create "
                "a budget without fallback"
            )
        with _TREE_LOCK:
            self._c.reconfigure(replace(config, caps=Caps(*caps)))
            self._relink()

    def _relink(self) -> None:
        """Rebuild the chains of this budget and its descendants (their caps changed)."""
        self._c.relink_own()
        self._c.autocap()
        for child in list(self.children):
            child._relink()

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
        return _manual.record(
            self._c,
            usd,
            tokens,
            model,
            input_tokens,
            output_tokens,
            cached_input_tokens,
            cache_write_tokens,
            provider,
            llm_calls,
            call_id,
            source,
            estimated,
        )

    def tool_call(
        self, tool_name: str, usd: float | None = None, *, arguments: object = None
    ) -> ToolCall:
        """Count one call of ``tool_name`` and hold its price before the tool runs.

        The price is ``usd``, else ``tool_prices[tool_name]`` (here or in an ancestor), else 0.
        Raises ``ToolBudgetExceededError`` (``sent=False``, nothing held) when ``max_tool_calls``
        or a USD cap would be passed. Use the result as a context manager: a block that raises
        releases the call (the tool failed: nothing counted); one that ends normally records it
        at its held price unless ``commit(usd=...)`` recorded the actual price first. To count
        a call that already ran, commit at once: ``budget.tool_call("search").commit()``.
        ``arguments`` (any JSON-like value) are what ``loop_guard`` compares: the Nth call of
        one tool with equal arguments raises ``LoopGuardError`` before the tool runs.
        """
        return _manual.tool_call(self._c, tool_name, usd, arguments)

    # -- reservations and checks -------------------------------------------------------

    def reserve(self, usd: float = 0.0, tokens: int = 0) -> Reservation:
        """Hold ``usd`` and ``tokens`` on this budget and every ancestor before a call.

        Raises ``BudgetExceededError`` (with nothing held) if any of them cannot take it. Use
        the result as a context manager and ``commit()`` the actual spend; a reservation that
        is not committed is released when its block ends or raises.
        """
        return _manual.reserve(self._c, usd, tokens)

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
        _manual.check(self._c, usd, tokens, llm_calls, tool_calls, model, provider)

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
        """The budget's own recent calls and its exact per-model totals."""
        return self._c.history

    def __dir__(self) -> list[str]:
        return _deprecated.shown(super().__dir__())

    def __repr__(self) -> str:
        limit = self.limit
        shown = "no limit" if limit is None else usd_text(limit)
        return f"<Budget {self.full_name!r} {usd_text(self.spent)} / {shown}>"


_CHILD_OPTIONS: Final = tuple(p for p in PARAMETERS if p not in ("name", "ledger"))


_deprecated.keep_moved_members(Budget)


def begin(budget: Budget) -> Activation:
    """Activate ``budget`` in the current thread or task. Everything that can fail runs
    before anything changes, so a failure leaves no budget active."""
    install_once()
    if GONE:
        forget_gone()
    parent = entered_budget()
    if parent is None and PROCESS_ROOT[0] is not budget:
        parent = PROCESS_ROOT[0]
    node = budget._node
    with _TREE_LOCK:
        own_parent = budget.parent
        if parent is not None and own_parent is not parent:
            join(node, parent._node)
            own_parent = budget.parent
        elif parent is None and own_parent is not None:
            raise BudgetConfigError(
                f"budget {budget.full_name!r} belongs to {own_parent.full_name!r}; activate "
                "it where that budget is active (charging it needs no activation: route "
                "calls to it, or record on it)"
            )
        frame = push(budget)
        node.live.append(frame)
        if node.parent is not None:
            node.parent.active_children.append(budget)
    try:
        if own_parent is not None:
            budget._c.autocap()
        if LISTENING.shekel_budget_entered:
            CALL.shekel_budget_entered(budget=budget)
    except BaseException:
        end(budget, frame)
        raise
    return frame


def end(budget: Budget, frame: Activation) -> bool:
    """End ``frame``, an activation of ``budget``; False if it had ended already."""
    if not pop(frame):
        return False
    node = budget._node
    with _TREE_LOCK:
        node.live.remove(frame)
        if node.parent is not None:
            node.parent.active_children.remove(budget)
            if node.repeat and not node.live:
                fold(node)
    return True
