"""The recording engine behind every budget: holding before a call, charging after it, the soft
policies and hooks that follow a charge.

These are the interceptor's and the integrations' internal interface to a budget: they take its
:class:`~shekel._chain.Chain`. Users call ``Budget``'s public methods, which come here.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from . import _clock
from ._context import current_owner
from ._errors import BudgetExceededError, BudgetStoreUnavailableError, UnknownModelError
from ._history import FOLD_EVERY, CallRecord, new_record, next_sequence
from ._leases import KEEPER
from ._ledger import AXES, UNLIMITED, Hold, Overrun
from ._money import Nanos, nanos_to_usd
from ._overrun import overrun_error
from ._plugins import CALL, LISTENING
from ._policies import emit_warning
from ._pricing import TokenUsage, lookup_rate, rate_for, unknown_model

if TYPE_CHECKING:
    from ._chain import Chain
    from ._pricing import Rate
    from ._windows import Window


# -- before a call ---------------------------------------------------------------------------


def hold(
    chain: Chain,
    usd: Nanos,
    tokens: int,
    llm_calls: int,
    tools: int = 0,
    *,
    need_headroom: bool = False,
    tool_name: str | None = None,
) -> Hold:
    """Reserve amounts on ``chain``; ``BudgetExceededError(sent=False)`` when refused
    (nothing held)."""
    result = chain.ledger.reserve(
        chain.current_links(), usd, tokens, llm_calls, tools, need_headroom=need_headroom
    )
    if isinstance(result, Overrun):
        asked = Asked(usd, tokens, llm_calls, tools, need_headroom)
        raise exceeded(chain, result, None, sent=False, tool_name=tool_name, asked=asked)
    if chain.ledger.default_ttl is not None:
        KEEPER.track(chain.ledger, result, chain.ledger.default_ttl)
    return result


def check(chain: Chain, usd: Nanos, tokens: int, llm_calls: int, tools: int) -> None:
    """Raise what :func:`hold` would raise, holding nothing."""
    over = chain.ledger.check(
        chain.current_links(), usd, tokens, llm_calls, tools, need_headroom=llm_calls > 0
    )
    if over is not None:
        asked = Asked(usd, tokens, llm_calls, tools, llm_calls > 0)
        raise exceeded(chain, over, None, sent=False, asked=asked)


def check_model(chain: Chain, model: str, provider: str | None) -> None:
    """Raise ``UnknownModelError`` if ``chain`` refuses models without a price and has none
    for ``model``."""
    if (chain.strict or chain.refuses_unknown) and price_of(chain, model, provider) is None:
        raise UnknownModelError(model, provider)


def price_of(chain: Chain, model: str, provider: str | None) -> Rate | None:
    """The rate ``chain`` charges for ``model``: its own or an ancestor's ``prices``, then
    the shared sources (plugins, genai-prices); ``None`` when nobody knows it."""
    return rate_for(chain.price_tables, model, provider)


def release(chain: Chain, held: Hold) -> None:
    chain.ledger.release(held)
    KEEPER.drop(chain.ledger, held.id)


def headroom(chain: Chain) -> tuple[Nanos, int]:
    """USD (nano-dollars) and tokens ``chain`` can still take, given its ancestors and every
    reservation outstanding; ``UNLIMITED`` where nothing is capped."""
    return chain.ledger.headroom(chain.current_links())


def fallback_model(chain: Chain) -> str | None:
    """The model requests should switch to, if ``chain`` or an ancestor switched."""
    for b in chain.lineage:
        if b.policy.switched_at is not None and b.config.fallback is not None:
            return b.config.fallback.model
    return None


# -- after a call ------------------------------------------------------------------------------


def price(chain: Chain, usage: TokenUsage, model: str | None, provider: str | None) -> Nanos | None:
    """Nano-dollars for ``usage`` on ``model``; ``None`` if the price is unknown (after the
    unknown-model policy ran: a warning once per model, or ``UnknownModelError``)."""
    if model is None:
        return None
    tables = chain.price_tables
    rate = rate_for(tables, model, provider) if tables else lookup_rate(model, provider)
    if rate is not None:
        return rate.cost(usage)
    unknown_model(model, provider, "error" if chain.refuses_unknown else "warn")
    return None


def charge(
    chain: Chain,
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
    """Record one call's spend on ``chain`` (the core of every recording path).

    Prices ``usage`` unless ``cost`` is given (or ``unpriced``: no price could be had, the
    tokens and the call still count), settles ``held`` if any, updates history, warnings,
    fallback and hooks, then raises ``BudgetExceededError`` if a cap is exceeded.
    """
    priced = not unpriced
    counted = usage.input_tokens + usage.output_tokens if tokens is None else tokens
    if unpriced:
        cost = 0
    elif cost is None:
        # ``price``, with the usual case (a model with a shared price) inlined.
        tables = chain.price_tables
        rate = None if tables or model is None else lookup_rate(model, provider)
        if rate is not None:
            cost = rate.cost(usage)
        else:
            try:
                cost = price(chain, usage, model, provider)
            except UnknownModelError:
                _settle(chain, held, 0, counted, llm_calls, tools)
                raise
            if cost is None:
                priced, cost = False, 0
    return book(
        chain,
        usage,
        model,
        provider,
        cost,
        counted,
        llm_calls,
        tools,
        held,
        priced,
        estimated,
        on_fallback,
        tool_name,
        call_id,
        source,
        response_model,
        operation,
    )


def book(
    chain: Chain,
    usage: TokenUsage,
    model: str | None,
    provider: str | None,
    cost: Nanos,
    tokens: int,
    llm_calls: int,
    tools: int,
    held: Hold | None,
    priced: bool,
    estimated: bool,
    on_fallback: bool,
    tool_name: str | None,
    call_id: str | None,
    source: str | None,
    response_model: str | None,
    operation: str | None,
) -> CallRecord:
    """:func:`charge` once the call is priced (``cost``) and its ``tokens`` counted: every
    argument given, in order, as the interceptor's usual call passes them (a call per field
    by name costs more than the booking itself)."""
    kept: BudgetStoreUnavailableError | None = None
    try:
        if held is None and not tools:  # ``_settle``, inlined on the hot path
            links = chain.links if not chain.timed else chain.current_links()
            over = chain.ledger.record(links, cost, tokens, llm_calls)
        else:
            over = _settle(chain, held, cost, tokens, llm_calls, tools)
    except BudgetStoreUnavailableError as exc:
        if not exc.sent:
            raise
        kept, over = exc, None  # the store will have it later: this process records it now
    call = new_record(
        (
            next_sequence(),
            chain.full_name,
            model,
            usage.input_tokens,
            usage.output_tokens,
            cost,
            tokens,
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
    )
    if kept is not None:
        kept.call = call
        with contextlib.suppress(Exception):  # what the caller must hear is the store's error
            after_charge(chain, call, None)
        raise kept
    after_charge(chain, call, over)
    return call


def _settle(
    chain: Chain, held: Hold | None, cost: Nanos, tokens: int, calls: int, tools: int
) -> Overrun | None:
    if held is None:
        return chain.ledger.record(chain.current_links(), cost, tokens, calls, tools)
    over = chain.ledger.commit(held, cost, tokens, calls, tools)
    KEEPER.drop(chain.ledger, held.id)  # not when the commit was kept: its lease goes on
    return over


def after_charge(chain: Chain, call: CallRecord, over: Overrun | None) -> None:
    queued = chain.history.queued  # ``SpendHistory.add``, inlined on the hot path
    queued.append(call)
    if len(queued) >= FOLD_EVERY:
        chain.history.fold()
    for b in chain.policed:
        policy = b.policy
        if policy.switched_at is not None:
            policy.add_fallback_spend(call.cost)
        if policy.watching:
            _check_policies(b)
    if LISTENING.shekel_spend_recorded:
        CALL.shekel_spend_recorded(budget=chain.budget, call=call)
    if over is not None:
        raise exceeded(chain, over, call, tool_name=call.tool_name)


def _check_policies(chain: Chain) -> None:
    caps, policy = chain.capped, chain.policy
    account, ledger = chain.read_account(), chain.ledger
    if caps.usd != UNLIMITED and ledger.used_usd(account) < policy.quiet_below(caps):
        return
    state = ledger.read(account)
    crossing, switched = policy.check(state, caps)
    config = chain.config
    if crossing is not None:
        emit_warning(config, chain.full_name, crossing)
        if LISTENING.shekel_warning_crossed:
            CALL.shekel_warning_crossed(
                budget=chain.budget, axis=crossing.axis, spent=crossing.spent, limit=crossing.limit
            )
    if switched and config.fallback is not None:
        spent, limit = nanos_to_usd(state.used[0]), nanos_to_usd(caps.usd)
        model = config.fallback.model
        if config.on_fallback is not None:
            config.on_fallback(spent, limit, model)
        if LISTENING.shekel_fallback_activated:
            CALL.shekel_fallback_activated(
                budget=chain.budget, spent=spent, limit=limit, fallback_model=model
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
    chain: Chain,
    over: Overrun,
    call: CallRecord | None,
    *,
    sent: bool = True,
    tool_name: str | None = None,
    asked: Asked | None = None,
) -> BudgetExceededError:
    """The error for ``over``, the ledger's first refusing link of ``chain``.

    ``asked``: what the refused request asked for (by default one more LLM call, or tool call
    with ``tool_name``: what the next call asks after spend went over)."""
    if chain.timed:
        if asked is None:
            asked = ONE_CALL if tool_name is None else ONE_TOOL_CALL
        over = _last_to_free(chain, over, asked)
    owner, over, window = _attribute(chain, over, sent)
    held = 0
    if not sent:  # say so when calls in flight hold what is missing
        link = chain.current_links()[over.position]
        held = owner.ledger.read(link[0]).reserved[AXES.index(over.axis)]
    error = overrun_error(over, owner.full_name, call, sent=sent, tool_name=tool_name, held=held)
    error.call = call
    if not sent:
        owner.policy.refused = True
    if window is not None:
        error.retry_after = max(window.period(_clock.now()).ends_at - _clock.now(), 0.0)
        error.window = window.spec
    if LISTENING.shekel_limit_exceeded:
        CALL.shekel_limit_exceeded(budget=owner.budget, error=error)
    return error


def _last_to_free(chain: Chain, over: Overrun, asked: Asked) -> Overrun:
    """Of the links of ``chain`` that refuse ``asked``, the one whose refusal lasts
    longest: one without a window (waiting frees nothing), else the window whose current
    period ends last. Waiting for the first refusing window alone is not enough when a
    longer one refuses too."""
    owners = chain.owners
    window = owners[over.position][1]
    if window is None:
        return over
    now = _clock.now()
    ends = window.period(now).ends_at
    links = chain.current_links()
    ledger = chain.ledger
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


def _attribute(chain: Chain, over: Overrun, sent: bool) -> tuple[Chain, Overrun, Window | None]:
    """The budget to name for ``over``. A refusal names the budget (and window) whose own cap
    refused: an auto-capped child of an exhausted parent would only say "$0 of $0". Spend that
    went over names the innermost budget whose limit, as it shows it (auto-capped to what its
    ancestors had left when it was entered), it went past."""
    owner, window = chain.owners[over.position]
    if window is not None or not sent:
        return owner, over, window
    axis = AXES.index(over.axis)
    for b in chain.lineage:
        if b is owner:
            break
        if b.config.windows:
            continue
        state = b.ledger.read(b.account)
        cap = b.capped[axis]
        if state.used[axis] > cap:
            return b, Overrun(over.position, over.axis, state.used[axis], cap), None
    return owner, over, None


def exhausted_error(chain: Chain, detail: str) -> BudgetExceededError:
    """An error naming the budget of the chain with the least USD left, for a stop that no
    single overrun explains (a strict stream cut off)."""
    tightest, left = chain, None
    for b in chain.lineage:
        snap = b.reading()[0]
        if snap.usd_remaining is not None and (left is None or snap.usd_remaining < left):
            tightest, left = b, snap.usd_remaining
    snap = tightest.reading()[0]
    error = BudgetExceededError(
        snap.usd_used,
        snap.usd_limit if snap.usd_limit is not None else snap.usd_used,
        budget_name=tightest.full_name,
        detail=detail,
    )
    if LISTENING.shekel_limit_exceeded:
        CALL.shekel_limit_exceeded(budget=tightest.budget, error=error)
    return error


# -- spend that started but is not recorded yet (streams being read) ---------------------------


# ``chain.pending`` is a set changed only by ``add`` and ``discard`` and read only through
# ``copy``: each is one operation on the set, atomic with or without the GIL, so no lock is
# taken on every stream.


def add_pending(chain: Chain, spend: Any) -> None:
    """``spend`` needs ``owner`` (the thread or task that started it) and ``interrupt()``: if
    the budget's block ends with an exception in that thread or task, ``interrupt()`` records
    it before the error propagates."""
    chain.pending.add(spend)


def discard_pending(chain: Chain, spend: Any) -> None:
    chain.pending.discard(spend)


def settle_interrupted(chain: Chain) -> None:
    here = current_owner()
    mine = [p for p in chain.pending.copy() if p.owner == here]
    for spend in mine:
        spend.interrupt()
