"""The recording engine behind every budget: holding before a call, charging after it, the soft
policies and hooks that follow a charge, and the ids of calls already recorded.

These are the interceptor's and the integrations' internal interface to a budget; users call
``Budget``'s public methods, which come here.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from ._context import current_owner
from ._errors import BudgetExceededError, BudgetStoreUnavailableError, UnknownModelError
from ._history import CallRecord, next_sequence
from ._leases import KEEPER
from ._ledger import AXES, UNLIMITED, Hold, Overrun
from ._money import Nanos, nanos_to_usd
from ._overrun import overrun_error
from ._plugins import LISTENING, plugin_manager
from ._policies import emit_warning
from ._pricing import TokenUsage, lookup_rate, rate_for, unknown_model

if TYPE_CHECKING:
    from ._budget import Budget
    from ._pricing import Rate
    from ._windows import Window


# -- before a call ---------------------------------------------------------------------------


def hold(
    budget: Budget,
    usd: Nanos,
    tokens: int,
    llm_calls: int,
    tools: int = 0,
    *,
    need_headroom: bool = False,
    tool_name: str | None = None,
) -> Hold:
    """Reserve amounts on ``budget``'s chain; ``BudgetExceededError(sent=False)`` when refused
    (nothing held)."""
    result = budget._ledger.reserve(
        budget._links(), usd, tokens, llm_calls, tools, need_headroom=need_headroom
    )
    if isinstance(result, Overrun):
        asked = Asked(usd, tokens, llm_calls, tools, need_headroom)
        raise exceeded(budget, result, None, sent=False, tool_name=tool_name, asked=asked)
    if budget._ledger.default_ttl is not None:
        KEEPER.track(budget._ledger, result, budget._ledger.default_ttl)
    return result


def check(budget: Budget, usd: Nanos, tokens: int, llm_calls: int, tools: int) -> None:
    """Raise what :func:`hold` would raise, holding nothing."""
    over = budget._ledger.check(
        budget._links(), usd, tokens, llm_calls, tools, need_headroom=llm_calls > 0
    )
    if over is not None:
        asked = Asked(usd, tokens, llm_calls, tools, llm_calls > 0)
        raise exceeded(budget, over, None, sent=False, asked=asked)


def check_model(budget: Budget, model: str, provider: str | None) -> None:
    """Raise ``UnknownModelError`` if ``budget`` refuses models without a price and has none
    for ``model``."""
    if (budget._strict or budget._refuses_unknown) and price_of(budget, model, provider) is None:
        raise UnknownModelError(model, provider)


def price_of(budget: Budget, model: str, provider: str | None) -> Rate | None:
    """The rate ``budget`` charges for ``model``: its own or an ancestor's ``prices``, then
    the shared sources (plugins, genai-prices); ``None`` when nobody knows it."""
    return rate_for(budget._price_tables, model, provider)


def release(budget: Budget, held: Hold) -> None:
    budget._ledger.release(held)
    KEEPER.drop(budget._ledger, held.id)


def headroom(budget: Budget) -> tuple[Nanos, int]:
    """USD (nano-dollars) and tokens ``budget`` can still take, given its ancestors and every
    reservation outstanding; ``UNLIMITED`` where nothing is capped."""
    return budget._ledger.headroom(budget._links())


def fallback_model(budget: Budget) -> str | None:
    """The model requests should switch to, if ``budget`` or an ancestor switched."""
    for b in budget._lineage:
        if b._policy.switched_at is not None and b._config.fallback is not None:
            return b._config.fallback.model
    return None


# -- after a call ------------------------------------------------------------------------------


def price(
    budget: Budget, usage: TokenUsage, model: str | None, provider: str | None
) -> Nanos | None:
    """Nano-dollars for ``usage`` on ``model``; ``None`` if the price is unknown (after the
    unknown-model policy ran: a warning once per model, or ``UnknownModelError``)."""
    if model is None:
        return None
    tables = budget._price_tables
    rate = rate_for(tables, model, provider) if tables else lookup_rate(model, provider)
    if rate is not None:
        return rate.cost(usage)
    unknown_model(model, provider, "error" if budget._refuses_unknown else "warn")
    return None


def charge(
    budget: Budget,
    usage: TokenUsage,
    model: str | None,
    provider: str | None,
    *,
    cost: Nanos | None = None,
    tokens: int | None = None,
    llm_calls: int = 1,
    tools: int = 0,
    held: Hold | None = None,
    estimated: bool = False,
    on_fallback: bool = False,
    call_id: str | None = None,
    source: str | None = None,
    tool_name: str | None = None,
    unpriced: bool = False,
    response_model: str | None = None,
    operation: str | None = None,
) -> CallRecord:
    """Record one call's spend on ``budget``'s chain (the core of every recording path).

    Prices ``usage`` unless ``cost`` is given (or ``unpriced``: no price could be had, the
    tokens and the call still count), settles ``held`` if any, updates history, warnings,
    fallback and hooks, then raises ``BudgetExceededError`` if a cap is exceeded.
    """
    priced = not unpriced
    counted = usage.total_tokens if tokens is None else tokens
    if unpriced:
        cost = 0
    elif cost is None:
        # ``price``, with the usual case (a model with a shared price) inlined.
        tables = budget._price_tables
        rate = None if tables or model is None else lookup_rate(model, provider)
        if rate is not None:
            cost = rate.cost(usage)
        else:
            try:
                cost = price(budget, usage, model, provider)
            except UnknownModelError:
                _settle(budget, held, 0, counted, llm_calls, tools)
                raise
            if cost is None:
                priced, cost = False, 0
    kept: BudgetStoreUnavailableError | None = None
    try:
        if held is None and not tools:  # ``_settle``, inlined on the hot path
            chain = budget._chain if not budget._timed else budget._links()
            over = budget._ledger.record(chain, cost, counted, llm_calls)
        else:
            over = _settle(budget, held, cost, counted, llm_calls, tools)
    except BudgetStoreUnavailableError as exc:
        if not exc.sent:
            raise
        kept, over = exc, None  # the store will have it later: this process records it now
    call = CallRecord(
        next_sequence(),
        budget._full_name,
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
        tool_name,
        call_id,
        source,
        response_model,
        operation,
    )
    if kept is not None:
        kept.call = call
        with contextlib.suppress(Exception):  # what the caller must hear is the store's error
            after_charge(budget, call, None)
        raise kept
    after_charge(budget, call, over)
    return call


def _settle(
    budget: Budget, held: Hold | None, cost: Nanos, tokens: int, calls: int, tools: int
) -> Overrun | None:
    if held is None:
        return budget._ledger.record(budget._links(), cost, tokens, calls, tools)
    over = budget._ledger.commit(held, cost, tokens, calls, tools)
    KEEPER.drop(budget._ledger, held.id)  # not when the commit was kept: its lease goes on
    return over


def after_charge(budget: Budget, call: CallRecord, over: Overrun | None) -> None:
    budget._history.add(call)
    for b in budget._lineage:
        policy = b._policy
        if policy.switched_at is not None:
            policy.add_fallback_spend(call.cost)
        if policy.watching:
            _check_policies(b)
    if LISTENING.shekel_spend_recorded:
        plugin_manager().hook.shekel_spend_recorded(budget=budget, call=call)
    if over is not None:
        raise exceeded(budget, over, call, tool_name=call.tool_name)


def _check_policies(budget: Budget) -> None:
    caps, policy = budget._capped, budget._policy
    account, ledger = budget._read_account(), budget._ledger
    if caps.usd != UNLIMITED and ledger.used_usd(account) < policy.quiet_below(caps):
        return
    state = ledger.read(account)
    crossing, switched = policy.check(state, caps)
    config = budget._config
    if crossing is not None:
        emit_warning(config, budget.full_name, crossing)
        if LISTENING.shekel_warning_crossed:
            plugin_manager().hook.shekel_warning_crossed(
                budget=budget, axis=crossing.axis, spent=crossing.spent, limit=crossing.limit
            )
    if switched and config.fallback is not None:
        spent, limit = nanos_to_usd(state.used[0]), nanos_to_usd(caps.usd)
        model = config.fallback.model
        if config.on_fallback is not None:
            config.on_fallback(spent, limit, model)
        if LISTENING.shekel_fallback_activated:
            plugin_manager().hook.shekel_fallback_activated(
                budget=budget, spent=spent, limit=limit, fallback_model=model
            )


class Asked(NamedTuple):
    """What a refused request asked the ledger for (see :meth:`Ledger.check`)."""

    usd: Nanos
    tokens: int
    calls: int
    tools: int
    need_headroom: bool


ONE_CALL: Final = Asked(0, 0, 1, 0, True)
"""One more LLM call: what the interceptor asks before sending, and what a retry will ask."""
ONE_TOOL_CALL: Final = Asked(0, 0, 0, 1, False)


def exceeded(
    budget: Budget,
    over: Overrun,
    call: CallRecord | None,
    *,
    sent: bool = True,
    tool_name: str | None = None,
    asked: Asked | None = None,
) -> BudgetExceededError:
    """The error for ``over``, the ledger's first refusing link of ``budget``'s chain.

    ``asked``: what the refused request asked for (by default one more LLM call, or tool call
    with ``tool_name``: what the next call asks after spend went over)."""
    if budget._timed:
        if asked is None:
            asked = ONE_CALL if tool_name is None else ONE_TOOL_CALL
        over = _last_to_free(budget, over, asked)
    owner, over, window = _attribute(budget, over, sent)
    held = 0
    if not sent:  # say so when calls in flight hold what is missing
        link = budget._links()[over.position]
        held = owner._ledger.read(link[0]).reserved[AXES.index(over.axis)]
    error = overrun_error(over, owner.full_name, call, sent=sent, tool_name=tool_name, held=held)
    error.call = call
    if not sent:
        owner._policy.refused = True
    if window is not None:
        error.retry_after = max(window.period(time.time()).ends_at - time.time(), 0.0)
        error.window = window.spec
    if LISTENING.shekel_limit_exceeded:
        plugin_manager().hook.shekel_limit_exceeded(budget=owner, error=error)
    return error


def _last_to_free(budget: Budget, over: Overrun, asked: Asked) -> Overrun:
    """Of the links of ``budget``'s chain that refuse ``asked``, the one whose refusal lasts
    longest: one without a window (waiting frees nothing), else the window whose current
    period ends last. Waiting for the first refusing window alone is not enough when a
    longer one refuses too."""
    owners = budget._owners
    window = owners[over.position][1]
    if window is None:
        return over
    now = time.time()
    ends = window.period(now).ends_at
    links = budget._links()
    ledger = budget._ledger
    for position in range(over.position + 1, len(links)):
        later = owners[position][1]
        if later is not None and later.period(now).ends_at <= ends:
            continue
        found = ledger.check(
            links[position : position + 1],
            asked.usd,
            asked.tokens,
            asked.calls,
            asked.tools,
            need_headroom=asked.need_headroom,
        )
        if found is None:
            continue
        over = found._replace(position=position)
        if later is None:
            return over
        ends = later.period(now).ends_at
    return over


def _attribute(budget: Budget, over: Overrun, sent: bool) -> tuple[Budget, Overrun, Window | None]:
    """The budget to name for ``over``. A refusal names the budget (and window) whose own cap
    refused: an auto-capped child of an exhausted parent would only say "$0 of $0". Spend that
    went over names the innermost budget whose limit, as it shows it (auto-capped to what its
    ancestors had left when it was entered), it went past."""
    owner, window = budget._owners[over.position]
    if window is not None or not sent:
        return owner, over, window
    axis = AXES.index(over.axis)
    for b in budget._lineage:
        if b is owner:
            break
        if b._config.windows:
            continue
        state = b._ledger.read(b._account)
        cap = b._capped[axis]
        if state.used[axis] > cap:
            return b, Overrun(over.position, over.axis, state.used[axis], cap), None
    return owner, over, None


def exhausted_error(budget: Budget, detail: str) -> BudgetExceededError:
    """An error naming the budget of the chain with the least USD left, for a stop that no
    single overrun explains (a strict stream cut off)."""
    tightest, left = budget, None
    for b in budget._lineage:
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


# -- spend that started but is not recorded yet (streams being read) ---------------------------


def add_pending(budget: Budget, spend: Any) -> None:
    """``spend`` needs ``owner`` (the thread or task that started it) and ``interrupt()``: if
    the budget's block ends with an exception in that thread or task, ``interrupt()`` records
    it before the error propagates."""
    with budget._lock:
        budget._pending.add(spend)


def discard_pending(budget: Budget, spend: Any) -> None:
    with budget._lock:
        budget._pending.discard(spend)


def settle_interrupted(budget: Budget) -> None:
    here = current_owner()
    with budget._lock:
        mine = [p for p in budget._pending if p.owner == here]
    for spend in mine:
        spend.interrupt()


# -- calls already recorded, by the provider's id -----------------------------------------------

SDK: Final = "sdk"
"""``CallRecord.source`` of the calls the interceptor records."""

RECENT_CALL_IDS: Final = 65_536
"""How many call ids are remembered: a framework reports a call within moments of the
interceptor (or the other way round), never after thousands of other calls."""


class _Recording:
    """What the registry holds for a call id while one report of it is being recorded."""

    __slots__ = ("source",)

    def __init__(self, source: str | None) -> None:
        self.source = source


# call id -> CallRecord, or the _Recording of a report in progress; oldest first. Read and
# written with single dict operations (atomic), so that the interceptor's claim on every call
# takes no lock.
_recorded: dict[str, CallRecord | _Recording] = {}


def claim(call_id: str, source: str | None) -> CallRecord | None:
    """``None`` if this is the first report of ``call_id`` (the caller records it, then calls
    :func:`claimed`); else the call as the first report recorded it.

    Two reports that both come from the interceptor (``source="sdk"``) are two calls: a server
    that repeats response ids (some local and test servers do) must never lose spend. Only a
    framework's report and the interceptor's are the same call told twice."""
    mark = _Recording(source)
    waited = 0.0
    while True:
        first = _recorded.setdefault(call_id, mark)
        if first is mark:
            if len(_recorded) > RECENT_CALL_IDS:
                _forget_oldest()
            return None
        if source == SDK and (isinstance(first, _Recording) or first.source == SDK):
            _recorded[call_id] = mark
            return None
        if isinstance(first, CallRecord):
            return first
        if waited > 5.0:  # the first report never finished: record this one
            return None
        time.sleep(0.001)  # the first report is being recorded at this moment (rare)
        waited += 0.001


def _forget_oldest() -> None:
    try:
        oldest = list(itertools.islice(_recorded, RECENT_CALL_IDS // 4))
    except RuntimeError:  # another thread changed the registry meanwhile: trim next time
        return
    for call_id in oldest:
        _recorded.pop(call_id, None)


def claimed(call_id: str, call: CallRecord | None) -> None:
    """The first report of ``call_id`` was recorded as ``call`` (``None``: it failed and the id
    is free again)."""
    if call is None:
        _recorded.pop(call_id, None)
    else:
        _recorded[call_id] = call
