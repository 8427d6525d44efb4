"""One intercepted LLM call, from the request about to be sent to the recorded spend.

Before sending: refuse if the budget chain is exhausted, switch to the fallback model, and in
strict mode reserve the worst case (lowering the request's output limit so it fits). After the
response: record the real usage against the reservation, once, whatever way the call ends.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import TYPE_CHECKING, Any, TypeVar

from .. import _call_ids, _loops, _spend
from .._budget import Budget
from .._call_ids import SDK
from .._context import current_owner
from .._errors import (
    BudgetConfigError,
    CallbackError,
    ShekelError,
    UnknownModelError,
    UsageMissingError,
)
from .._leases import KEEPER
from .._ledger import Hold, Overrun
from .._pricing import Rate, TokenUsage, lookup_rate, rate_for
from . import _strict
from ._adapter import (
    PathInfo,
    ProtocolAdapter,
    StreamTally,
    find_stream_and_model,
    peek_string,
)

if TYPE_CHECKING:
    from .._chain import Chain
    from .._money import Nanos


class UsageMissingWarning(UserWarning):
    """A response carried no usable usage; shekel recorded an estimate instead."""


def as_shekel_error(exc: Exception, *, sent: bool) -> ShekelError:
    """``exc`` if it is shekel's own, else a :class:`CallbackError` with ``exc`` as cause: an
    SDK must never take a callback's failure for a connection error and retry. ``sent``: the
    failure came after the request was sent (while recording it), not while checking it."""
    if isinstance(exc, ShekelError):
        return exc
    if sent:
        when = "while shekel recorded an LLM call after the call was sent (its spend was recorded)"
    else:
        when = "while shekel checked an LLM call before sending it (the request was not sent)"
    error = CallbackError(
        f"{type(exc).__name__} raised {when}: {exc}. It came from a callback, a plugin hook or a "
        "warnings filter set to 'error' (the original exception is this error's __cause__)"
    )
    error.sent = sent
    error.__cause__ = exc
    return error


# Errors raised inside ``send``, or from a response body the SDK reads, must look like the SDK's
# own: the SDK wraps anything else in a connection error (anthropic 2.17 reads every body as a
# stream) and may retry it. Each adapter names its SDK's base error (``sdk_error``).
_flavours: dict[tuple[type, type], type] = {}
_E = TypeVar("_E", bound=ShekelError)


def for_sdk(exc: _E, adapter: ProtocolAdapter) -> _E:
    """Give ``exc`` the SDK's base error class too, so the SDK lets it through untouched."""
    spec = adapter.sdk_error
    module = sys.modules.get(spec[0]) if spec else None
    base = getattr(module, spec[1], None) if spec and module else None
    if base is None or isinstance(exc, base):
        return exc
    key = (type(exc), base)
    flavour = _flavours.get(key)
    if flavour is None:
        flavour = type(type(exc).__name__, (type(exc), base), {"__module__": "shekel"})
        _flavours[key] = flavour
    exc.__class__ = flavour
    return exc


class InterceptedCall:
    """Book-keeping of one request: the budget it was made under and what is held for it."""

    __slots__ = (
        "adapter",
        "body_size",
        "budget",
        "caller",
        "chain",
        "fixed",
        "hide_usage",
        "hold",
        "holder",
        "model",
        "new_path",
        "on_fallback",
        "output_allowed",
        "owner",
        "settled",
        "show_usage",
        "stream",
        "taking",
        "tally",
        "ticket",
        "tree",
        "wait_until",
    )

    def __init__(self, budget: Budget, adapter: ProtocolAdapter) -> None:
        self.budget = budget
        self.chain = budget._c
        self.adapter = adapter
        self.hold: Hold | None = None
        self.model: str | None = None
        self.new_path: str | None = None  # the URL path to send to, when the check changed it
        # The request is signed (AWS SigV4 by LiteLLM): its body and path must go as they are.
        self.fixed = False
        self.on_fallback = False
        self.output_allowed: int | None = None
        self.settled = False
        self.stream = False
        self.body_size = 0
        self.hide_usage = False
        self.show_usage = False
        self.owner: tuple[int, int] | None = None
        self.holder: tuple[int, int] | None = None
        # Who made the call, when its bookkeeping runs elsewhere (a worker thread for a store
        # that blocks): None means the thread or task running the bookkeeping.
        self.caller: tuple[int, int] | None = None
        self.tally: StreamTally | None = None
        self.wait_until: float | None = None
        self.ticket = 0  # strict calls: the order they began reserving in (see _others_in_flight)
        # Strict calls: the USD and tokens being reserved, from just before the ledger is asked
        # until ``hold`` is set (the ledger holds them before this call's ``hold`` shows it).
        self.taking: tuple[Nanos, int] | None = None
        self.tree: tuple[int, Any] | None = None

    # -- before sending ----------------------------------------------------------------

    def prepare(self, content: bytes, path: str = "") -> bytes | None:
        """Check and reserve; return a rewritten request body, or None to send it unchanged
        (:attr:`new_path` says when the URL path must change too: a fallback model named in it).

        Raises ``BudgetExceededError`` (nothing sent, nothing held) when the call may not go.
        """
        self.body_size = len(content)
        adapter, chain = self.adapter, self.chain
        in_path = adapter.path_info(path) if adapter.model_in_path else None
        if in_path is None:
            streamed, model_at = find_stream_and_model(content)
        else:
            streamed, model_at = in_path.stream, -1
        if not streamed and chain.plain:
            # The common case needs no rewrite: read the model without decoding the body, and
            # hold one call where a call cap needs it (an exhausted budget refuses either way).
            self.model = self._model_of(content, model_at, in_path)
            if chain.unheld:
                if not chain.ledger.may_call(chain.links):
                    over = chain.ledger.check(chain.links, 0, 0, 1, need_headroom=True)
                    if over is not None:
                        raise _spend.exceeded(chain, over, None, sent=False)
                return None
            held = chain.ledger.reserve(chain.links, 0, 0, 1, need_headroom=True)
            if isinstance(held, Overrun):
                raise _spend.exceeded(chain, held, None, sent=False)
            self.hold = held
            if chain.ledger.default_ttl is not None:
                KEEPER.track(chain.ledger, held, chain.ledger.default_ttl)
            return None
        if (
            not streamed
            and not chain.strict  # ``strict`` and ``refuses_unknown_models``, unwrapped
            and not chain.refuses_unknown
            and not chain.guarded
            and _spend.fallback_model(chain) is None
        ):
            self.model = self._model_of(content, model_at, in_path)
            self.stream = streamed
            self.hold = _spend.hold(chain, 0, 0, 1, need_headroom=True)
            return None
        try:
            body = json.loads(content) if content else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):  # not JSON we understand: count it, rewrite nothing
            self.model = self._model_of(content, 0, in_path)
            self.stream = streamed
            self.hold = _spend.hold(chain, 0, 0, 1, need_headroom=True)
            return None
        info = adapter.inspect(body)
        if in_path is not None:
            info.model, info.stream = in_path.model, in_path.stream
        model = info.model if isinstance(info.model, str) else None
        if chain.guarded:
            _loops.admit(
                chain,
                _loops.request_key(model, body),
                lambda: _loops.describe_request(model, body),
                tool=False,
            )
        self.stream = info.stream
        changed = False
        fallback = None if self.fixed else _spend.fallback_model(chain)
        if fallback is not None and model is not None:
            if fallback != model:
                if not adapter.accepts_model(fallback):
                    raise BudgetConfigError(
                        f"the fallback model {fallback!r} is not served by {adapter.provider}, "
                        f"which this request for {model!r} goes to; choose a fallback model "
                        "from the same provider"
                    )
                if in_path is None:
                    adapter.set_model(body, fallback)
                    changed = True
                else:
                    self.new_path = adapter.set_path_model(path, fallback)
                model = fallback
            self.on_fallback = True
        self.model = model
        strict = chain.strict
        if strict or chain.refuses_unknown:
            rate = None if model is None else _spend.price_of(chain, model, adapter.provider)
            if rate is None and model is not None:
                raise UnknownModelError(model, adapter.provider)
        if strict:
            limit = _strict.reserve(self, rate, model, info.max_output_tokens, content)
            if limit is not None and not self.fixed:
                adapter.set_max_output(body, limit)
                changed = True
        else:
            self.hold = _spend.hold(chain, 0, 0, 1, need_headroom=True)
        if info.stream and adapter.ask_for_stream_usage(body):
            changed = True
            self.hide_usage = not self.show_usage
        return json.dumps(body).encode() if changed else None

    @staticmethod
    def _model_of(content: bytes, model_at: int, in_path: PathInfo | None) -> str | None:
        if in_path is not None:
            return in_path.model
        return peek_string(content, b'"model"', model_at)

    def _caller(self) -> tuple[int, int]:
        return current_owner() if self.caller is None else self.caller

    def _hold_ended(self) -> None:
        if self.holder is not None:
            _strict.ended(self)

    # -- after the response ------------------------------------------------------------

    def watch(self, tally: StreamTally | None) -> None:
        """A stream is being read: have the budget record it if its block fails first."""
        self.tally = tally
        self.owner = self._caller()
        _spend.add_pending(self.chain, self)

    def interrupt(self) -> None:
        """The budget's block ended with an exception while this stream was open."""
        if self.tally is not None:
            self.settle_stream(self.tally, complete=False, raise_over=False)
        else:
            self.abandon()

    def abandon(self) -> None:
        """The call ended with no usage to read (cancelled, timed out, body never read): the
        provider had the prompt, so record it, estimated."""
        usage = TokenUsage(self.estimated_prompt(), 0)
        self.settle(usage, None, estimated=True, raise_over=False)

    def release(self) -> None:
        """Nothing was spent (the request failed before reaching the model)."""
        if not self.settled:
            self.settled = True
            _spend.discard_pending(self.chain, self)
            if self.hold is not None:
                _spend.release(self.chain, self.hold)
                self._hold_ended()

    def settle(
        self,
        usage: TokenUsage | None,
        reported_model: str | None,
        *,
        estimated: bool = False,
        raise_over: bool = True,
        output_guess: int = 0,
        call_id: str | None = None,
    ) -> bool:
        """Record the call's spend exactly once; raise if a cap is now exceeded. False when
        there was nothing to record (already settled, or reported by a framework first).

        ``usage=None`` means the response had none: an estimate is recorded and flagged.
        ``call_id`` is the provider's id of the response: a call a framework already reported
        under that id is not recorded again.
        """
        if self.settled:
            return False
        self.settled = True
        if self.owner is not None:
            _spend.discard_pending(self.chain, self)
        try:
            return self._record(usage, reported_model, estimated, raise_over, output_guess, call_id)
        finally:
            # Only now: until its hold is settled in the ledger, the room it holds is in use,
            # and other strict calls waiting for it must still see it in flight.
            if self.holder is not None:
                self._hold_ended()

    def _record(
        self,
        usage: TokenUsage | None,
        reported_model: str | None,
        estimated: bool,
        raise_over: bool,
        output_guess: int,
        call_id: str | None,
    ) -> bool:
        missing = usage is None
        if usage is None:
            usage = TokenUsage(self.estimated_prompt(), output_guess)
            estimated = True
        recorded, model = charge_call(
            self.chain,
            self.adapter,
            self.model,
            usage,
            reported_model,
            call_id,
            held=self.hold,
            estimated=estimated,
            on_fallback=self.on_fallback,
            raise_over=raise_over,
        )
        if recorded and missing:
            self._usage_missing(model, raise_over)
        return recorded

    def settle_stream(self, tally: StreamTally, *, complete: bool, raise_over: bool) -> None:
        """Record a stream's spend: its reported usage, or what was seen of it so far."""
        if tally.usage is not None:  # the final figures arrived, whatever happened next
            self.settle(tally.usage, tally.model, raise_over=raise_over, call_id=tally.call_id)
            return
        seen = tally.reported_so_far() or tally.usage
        prompt = seen.input_tokens if seen is not None else self.estimated_prompt()
        output = max(tally.output_estimate, seen.output_tokens if seen is not None else 0)
        usage = TokenUsage(
            prompt,
            output,
            seen.cache_read_tokens if seen is not None else 0,
            seen.cache_write_tokens if seen is not None else 0,
        )
        recorded = self.settle(
            usage, tally.model, estimated=True, raise_over=raise_over, call_id=tally.call_id
        )
        if recorded and complete:
            self._usage_missing(self._pricing(tally.model)[0], raise_over)

    def estimated_prompt(self) -> int:
        return max(self.body_size // 4, 1)

    def _pricing(self, reported: str | None) -> tuple[str | None, Rate | None]:
        return pricing(self.chain, self.adapter, self.model, reported)

    def _usage_missing(self, model: str | None, raise_over: bool) -> None:
        message = (
            f"the response to a {model or 'model'} request had no usable usage figures "
            "(missing, or token counts that are not whole numbers >= 0), so shekel recorded "
            "an estimate. For OpenAI-compatible servers, make sure they honour "
            "stream_options.include_usage"
        )
        if self.chain.strict and raise_over:
            raise UsageMissingError(message + "; strict budgets refuse to guess")
        warnings.warn(message, UsageMissingWarning, stacklevel=2)


def pricing(
    chain: Chain, adapter: ProtocolAdapter, requested: str | None, reported: str | None
) -> tuple[str | None, Rate | None]:
    """The model to price a call as (the requested one, or the reported one when only that one
    has a price), and its rate (``None`` when unknown)."""
    tables = chain.price_tables
    provider = adapter.provider
    if requested is None:
        return reported, None if reported is None else rate_for(tables, reported, provider)
    rate = rate_for(tables, requested, provider) if tables else lookup_rate(requested, provider)
    if rate is None and reported and reported != requested:
        reported_rate = rate_for(tables, reported, provider)
        if reported_rate is not None:
            return reported, reported_rate  # e.g. a dated model id the price table knows
    return requested, rate


def charge_call(
    chain: Chain,
    adapter: ProtocolAdapter,
    requested: str | None,
    usage: TokenUsage,
    reported: str | None,
    call_id: str | None,
    *,
    held: Hold | None = None,
    estimated: bool = False,
    on_fallback: bool = False,
    raise_over: bool = True,
) -> tuple[bool, str | None]:
    """Record one intercepted call's ``usage`` on ``chain``, priced; raise if a cap is now
    exceeded (unless not ``raise_over``). Returns whether it was recorded (not when a framework
    reported ``call_id`` first) and the model it was priced as."""
    claimed = False
    if not call_id:
        call_id = None  # an empty id names nothing
    elif _call_ids.reported_elsewhere(call_id):  # by a framework, or being reported: claim it
        if _call_ids.claim(call_id, SDK) is not None:
            if held is not None:
                _spend.release(chain, held)
            return False, requested
        claimed = True
    # An id no framework reported yet is not claimed before it is recorded: a framework reports
    # a call only after the SDK returned it to the framework, which is after this.
    price_failed: Exception | None = None
    provider = adapter.provider
    try:
        model, rate = pricing(chain, adapter, requested, reported)
    except Exception as exc:  # a price plugin failed: the call still counts, unpriced
        price_failed, model, rate = exc, requested or reported, None
    try:
        if rate is not None:  # priced here: ``charge`` would look the rate up again
            call = _spend.book(
                chain,
                usage,
                model,
                provider,
                rate.cost(usage),
                usage.input_tokens + usage.output_tokens,
                1,  # llm_calls
                0,  # tools
                held,
                True,  # priced
                estimated,
                on_fallback,
                None,  # tool_name
                call_id,
                SDK,  # source
                reported,  # response_model
                adapter.operation,
            )
        else:  # ``charge`` applies the unknown-model policy
            call = _spend.charge(
                chain,
                usage,
                model,
                provider,
                unpriced=price_failed is not None,
                held=held,
                estimated=estimated,
                on_fallback=on_fallback,
                call_id=call_id,
                source=SDK,
                response_model=reported,
                operation=adapter.operation,
            )
    except BaseException as exc:
        if call_id is not None:
            recorded = getattr(exc, "call", None)
            if claimed:
                _call_ids.claimed(call_id, recorded)
            elif recorded is not None:
                _call_ids.remember(call_id, recorded)
        if raise_over or not isinstance(exc, Exception):
            raise
        return True, model
    if call_id is not None:
        if claimed:
            _call_ids.claimed(call_id, call)
        else:
            _call_ids.remember(call_id, call)
    if price_failed is not None:
        raise price_failed
    return True, model
