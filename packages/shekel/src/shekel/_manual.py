"""Spend that users and integrations report by hand: ``Budget.record``, ``tool_call``,
``reserve`` and ``check``, validated here and handed to the recording engine (``_spend``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from . import _call_ids, _loops, _spend
from ._call_ids import first_report
from ._config import MAX_COUNT, SURELY_A_COUNT, check_counts, check_text
from ._context import active_budget
from ._errors import BudgetConfigError, BudgetStateError
from ._history import CallRecord, new_record, next_sequence
from ._money import MAX_USD, spend_to_nanos
from ._pricing import Rate, TokenUsage, cached_rate
from ._reservation import Reservation, ToolCall

if TYPE_CHECKING:
    from ._chain import Chain


def record(
    chain: Chain,
    usd: float | None,
    tokens: int | None,
    model: str | None,
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int,
    cache_write_tokens: int,
    provider: str | None,
    llm_calls: int,
    call_id: str | None,
    source: str | None,
    estimated: bool,
) -> CallRecord:
    """``Budget.record``: one call id is recorded once, whoever reports it first."""
    if chain.quick and usd is None and tokens is None and provider is None:
        call = _one_step(
            chain,
            model,
            input_tokens,
            output_tokens,
            cached_input_tokens,
            cache_write_tokens,
            llm_calls,
            call_id,
            source,
            estimated,
        )
        if call is not None:
            return call
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
        return _record(chain, *args, None)
    check_text("call_id", call_id)
    first = _call_ids.claim(call_id, source or "manual")
    if first is not None:
        return first
    try:
        call = _record(chain, *args, call_id)
    except BaseException as exc:
        _call_ids.claimed(call_id, getattr(exc, "call", None))
        raise
    _call_ids.claimed(call_id, call)
    return call


def _one_step(
    chain: Chain,
    model: str | None,
    input_tokens: int,
    output_tokens: int,
    read: int,
    write: int,
    llm_calls: int,
    call_id: str | None,
    source: str | None,
    estimated: bool,
) -> CallRecord | None:
    """Record the usual report in one step: exact token counts of a model with a flat shared
    price, on a ``quick`` chain, under a call id not reported yet (or none). ``None``, having
    recorded nothing, for any other: the full path then validates, claims and charges it.

    A framework reports every call it makes, and the full path's layers (``_record``,
    ``charge``, ``book``, a ``TokenUsage``) cost more than the booking itself. The record is
    built before it is booked, so that one ``setdefault`` claims its id: no mark to make and
    replace, and a report that finds the id taken has changed nothing.
    """
    if not (
        input_tokens.__class__ is int
        and output_tokens.__class__ is int
        and read.__class__ is int
        and write.__class__ is int
        and 0 <= input_tokens | output_tokens | read | write < SURELY_A_COUNT
        and read + write <= input_tokens
        and llm_calls == 1
        and llm_calls.__class__ is int
        and estimated is False
        and model.__class__ is str
        and model
        and not model.isspace()
    ):
        return None
    if source is None:
        source = "manual"
    elif source.__class__ is not str or not source or source.isspace():
        return None
    if not call_id:
        call_id = None
    elif call_id.__class__ is not str or call_id.isspace() or first_report(call_id) is not None:
        return None  # a report of an id already claimed gets the first record: the full path
    rate = cached_rate((model, None))
    if rate is None:  # not looked up yet: the full path looks it up
        return None
    if rate.__class__ is not Rate or rate.tiered is not None:
        return None
    active = active_budget()
    if active is not None and active is not chain.budget:  # recorded where it is active: never
        check_not_locked(chain)
    tokens = input_tokens + output_tokens
    cost = rate.flat_cost(input_tokens, output_tokens, read, write)
    call = new_record(
        (
            next_sequence(),
            chain.full_name,
            model,
            input_tokens,
            output_tokens,
            cost,
            tokens,
            read,
            write,
            0,  # reasoning
            None,  # provider
            True,  # priced
            False,  # estimated
            False,  # on_fallback
            None,  # tool_name
            call_id,
            source,
            None,  # response_model
            None,  # operation
        )
    )
    if call_id is not None and _call_ids.first_claim(call_id, call) is not call:
        return None  # reported meanwhile, from another thread: the full path returns the first
    try:
        over = chain.ledger.record(chain.links, cost, tokens, 1)
        _spend.after_charge(chain, call, over)
    except BaseException as exc:
        if call_id is not None:
            _call_ids.claimed(call_id, getattr(exc, "call", None))
        raise
    return call


def _record(
    chain: Chain,
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
    here = _active_chain()
    if here is not None and here is not chain:  # the usual cases need no more checks
        check_not_locked(chain, here)
    # One expression for the usual, valid arguments; the checks below name what is wrong.
    if not (
        type(input_tokens) is int
        and type(output_tokens) is int
        and type(cached_input_tokens) is int
        and type(cache_write_tokens) is int
        and type(llm_calls) is int
        and (tokens is None or type(tokens) is int)
        and 0
        <= input_tokens | output_tokens | cached_input_tokens | cache_write_tokens | llm_calls
        < SURELY_A_COUNT
        and (tokens is None or 0 <= tokens < MAX_COUNT)
        and (model is None or (type(model) is str and model and not model.isspace()))
        and (provider is None or type(provider) is str)
        and (source is None or (type(source) is str and source and not source.isspace()))
        and cached_input_tokens + cache_write_tokens <= input_tokens
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
        check_text("source", source)
        if cached_input_tokens + cache_write_tokens > input_tokens:
            raise BudgetConfigError(
                f"cached_input_tokens ({cached_input_tokens}) and cache_write_tokens "
                f"({cache_write_tokens}) add up to more than input_tokens ({input_tokens}): "
                "they count prompt tokens read from and written to a cache, which are part of "
                "input_tokens; pass every prompt token in input_tokens"
            )
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
        chain,
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


_FAST_LIMIT: Final = float(MAX_USD)
"""Floats below this many dollars take the inlined conversion; larger ones are validated."""
_NO_USAGE: Final = TokenUsage()
"""Shared by records without token counts (never passed where it could be changed)."""


def tool_call(chain: Chain, tool_name: str, usd: float | None, arguments: object) -> ToolCall:
    """``Budget.tool_call``: count the call and hold its price, or raise before the tool runs."""
    check_not_locked(chain)
    check_text("tool_name", tool_name, required=True)
    price = spend_to_nanos(usd) if usd is not None else chain.tool_price(tool_name)
    if chain.guarded:
        _loops.admit(
            chain,
            _loops.tool_key(tool_name, arguments),
            lambda: _loops.describe_tool(tool_name, arguments),
            tool=True,
        )
    held = _spend.hold(chain, price, 0, 0, 1, tool_name=tool_name)
    return ToolCall(chain, tool_name, held)


def reserve(chain: Chain, usd: float, tokens: int) -> Reservation:
    check_not_locked(chain)
    check_counts(tokens=tokens)
    return Reservation(chain, _spend.hold(chain, spend_to_nanos(usd), tokens, 0))


def check(
    chain: Chain,
    usd: float,
    tokens: int,
    llm_calls: int,
    tool_calls: int,
    model: str | None,
    provider: str | None,
) -> None:
    """``Budget.check``: raise what a call needing these amounts would meet, holding nothing."""
    # A model checked where no budget refuses unknown models needs only its name validated.
    if model is not None and not (
        provider is None
        and type(model) is str
        and model
        and not model.isspace()
        and not (chain.strict or chain.refuses_unknown)
    ):
        check_text("model", model)
        check_text("provider", provider)
        _spend.check_model(chain, model, provider)
    if not (usd == 0 and tokens == 0 and llm_calls == 1 and tool_calls == 0):
        check_counts(tokens=tokens, llm_calls=llm_calls, tool_calls=tool_calls)
        _spend.check(chain, spend_to_nanos(usd), tokens, llm_calls, tool_calls)
        return
    # "May one more call go?": nothing to validate, and the ledger's unlocked test says yes
    # without the lock (its locked check then only describes a refusal).
    if not chain.ledger.may_call(chain.current_links()):
        _spend.check(chain, 0, 0, 1, 0)


def _active_chain() -> Chain | None:
    current = active_budget()
    return None if current is None else current._c


def check_not_locked(chain: Chain, here: Chain | None = None) -> None:
    """Refuse to charge a budget while one of its descendants is active here (``here``, the
    chain of the budget active in this thread or task, if the caller has it): the spend would
    skip the child's limits."""
    if here is None:
        here = _active_chain()
    if here is not None and here is not chain and chain in here.lineage:
        raise BudgetStateError(
            f"cannot record on {chain.full_name!r} while its child {here.full_name!r} is "
            "active here; record on the child, or after the child's block ends"
        )
