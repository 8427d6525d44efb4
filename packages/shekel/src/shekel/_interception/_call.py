"""One intercepted LLM call, from the request about to be sent to the recorded spend.

Before sending: refuse if the budget chain is exhausted, switch to the fallback model, and in
strict mode reserve the worst case (lowering the request's output limit so it fits). After the
response: record the real usage against the reservation, once, whatever way the call ends.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from .._budget import Budget
from .._context import current_owner
from .._errors import (
    BudgetConfigError,
    BudgetExceededError,
    UnknownModelError,
    UsageMissingError,
)
from .._ledger import UNLIMITED, Hold
from .._money import Nanos
from .._pricing import Rate, TokenUsage
from ._adapter import ProtocolAdapter, StreamTally, find_stream_and_model, peek_string


class UsageMissingWarning(UserWarning):
    """A response carried no usage; shekel recorded an estimate instead."""


class InterceptedCall:
    """Book-keeping of one request: the budget it was made under and what is held for it."""

    __slots__ = (
        "adapter",
        "body_size",
        "budget",
        "hide_usage",
        "hold",
        "model",
        "on_fallback",
        "output_allowed",
        "owner",
        "settled",
        "stream",
        "tally",
    )

    def __init__(self, budget: Budget, adapter: ProtocolAdapter) -> None:
        self.budget = budget
        self.adapter = adapter
        self.hold: Hold | None = None
        self.model: str | None = None
        self.on_fallback = False
        self.output_allowed: int | None = None
        self.settled = False
        self.stream = False
        self.body_size = 0
        self.hide_usage = False
        self.owner: tuple[int, int] | None = None
        self.tally: StreamTally | None = None

    # -- before sending ----------------------------------------------------------------

    def prepare(self, content: bytes) -> bytes | None:
        """Check and reserve; return a rewritten request body, or None to send it unchanged.

        Raises ``BudgetExceededError`` (nothing sent, nothing held) when the call may not go.
        """
        self.body_size = len(content)
        adapter, budget = self.adapter, self.budget
        streamed, model_at = find_stream_and_model(content)
        if (
            not streamed
            and not budget._strict  # ``strict`` and ``refuses_unknown_models``, unwrapped
            and not budget._refuses_unknown
            and budget.fallback_model() is None
        ):
            # The common case needs no rewrite: read the model without decoding the body.
            self.model = peek_string(content, b'"model"', model_at)
            self.hold = budget.hold(0, 0, 1, need_headroom=True)
            return None
        try:
            body = json.loads(content) if content else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):  # not JSON we understand: count it, rewrite nothing
            self.model = peek_string(content, b'"model"')
            self.hold = budget.hold(0, 0, 1, need_headroom=True)
            return None
        info = adapter.inspect(body)
        model = info.model if isinstance(info.model, str) else None
        self.stream = info.stream
        changed = False
        fallback = budget.fallback_model()
        if fallback is not None and model is not None:
            if fallback != model:
                if not adapter.accepts_model(fallback):
                    raise BudgetConfigError(
                        f"the fallback model {fallback!r} is not served by {adapter.provider}, "
                        f"which this request for {model!r} goes to; choose a fallback model "
                        "from the same provider"
                    )
                adapter.set_model(body, fallback)
                model, changed = fallback, True
            self.on_fallback = True
        self.model = model
        strict = budget.strict
        if strict or budget.refuses_unknown_models:
            rate = None if model is None else budget.rate_for(model, adapter.provider)
            if rate is None and model is not None:
                raise UnknownModelError(model, adapter.provider)
        if strict:
            limit = self._reserve_strict(rate, model, info.max_output_tokens, content)
            if limit is not None:
                adapter.set_max_output(body, limit)
                changed = True
        else:
            self.hold = budget.hold(0, 0, 1, need_headroom=True)
        if info.stream and adapter.ask_for_stream_usage(body):
            changed = True
            self.hide_usage = True
        return json.dumps(body).encode() if changed else None

    def _reserve_strict(
        self, rate: Rate | None, model: str | None, max_output: int | None, content: bytes
    ) -> int | None:
        """Reserve input plus the output the budget can pay for; return a lowered output limit
        for the request, or None when the request's own limit already fits."""
        if rate is None:
            raise UnknownModelError(model or "(no model in request)", self.adapter.provider)
        budget = self.budget
        prompt = self.adapter.estimate_input_tokens(content)
        wanted = UNLIMITED if max_output is None else max_output
        for _ in range(3):
            room_usd, room_tokens = budget.headroom()
            output = _affordable_output(rate, prompt, min(wanted, room_tokens - prompt), room_usd)
            if output < 1 and wanted != 0:
                output = 1  # too poor for one token: the hold below is refused with a clear error
            cost = rate.cost(TokenUsage(prompt, output))
            try:
                self.hold = budget.hold(cost, prompt + output, 1, need_headroom=True)
            except BudgetExceededError:
                if budget.headroom() != (room_usd, room_tokens):
                    continue  # another call took the room meanwhile: size the request again
                raise
            self.output_allowed = output
            return output if output < wanted else None
        self.hold = budget.hold(rate.cost(TokenUsage(prompt, 1)), prompt + 1, 1, need_headroom=True)
        self.output_allowed = 1
        return 1

    # -- after the response ------------------------------------------------------------

    def watch(self, tally: StreamTally | None) -> None:
        """A stream is being read: have the budget record it if its block fails first."""
        self.tally = tally
        self.owner = current_owner()
        self.budget.add_pending(self)

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
            self.budget.discard_pending(self)
            if self.hold is not None:
                self.budget.release(self.hold)

    def settle(
        self,
        usage: TokenUsage | None,
        reported_model: str | None,
        *,
        estimated: bool = False,
        raise_over: bool = True,
        output_guess: int = 0,
    ) -> None:
        """Record the call's spend exactly once; raise if a cap is now exceeded.

        ``usage=None`` means the response had none: an estimate is recorded and flagged.
        """
        if self.settled:
            return
        self.settled = True
        if self.owner is not None:
            self.budget.discard_pending(self)
        missing = usage is None
        if usage is None:
            usage = TokenUsage(self.estimated_prompt(), output_guess)
            estimated = True
        model, rate = self._pricing(reported_model)
        try:
            self.budget.charge(
                usage,
                model,
                self.adapter.provider,
                # Priced here with the rate just looked up (``charge`` would look it up again);
                # an unknown model goes to ``charge`` unpriced, which applies the policy.
                cost=None if rate is None else rate.cost(usage),
                hold=self.hold,
                estimated=estimated,
                on_fallback=self.on_fallback,
            )
        except Exception:
            if raise_over:
                raise
            return
        if missing:
            self._usage_missing(model, raise_over)

    def settle_stream(self, tally: StreamTally, *, complete: bool, raise_over: bool) -> None:
        """Record a stream's spend: its reported usage, or what was seen of it so far."""
        if tally.usage is not None:  # the final figures arrived, whatever happened next
            self.settle(tally.usage, tally.model, raise_over=raise_over)
            return
        seen = tally.partial or tally.usage
        prompt = seen.input_tokens if seen is not None else self.estimated_prompt()
        output = max(tally.output_estimate, seen.output_tokens if seen is not None else 0)
        usage = TokenUsage(
            prompt,
            output,
            seen.cache_read_tokens if seen is not None else 0,
            seen.cache_write_tokens if seen is not None else 0,
        )
        self.settle(usage, tally.model, estimated=True, raise_over=raise_over)
        if complete and tally.usage is None:
            self._usage_missing(self._pricing(tally.model)[0], raise_over)

    def estimated_prompt(self) -> int:
        return max(self.body_size // 4, 1)

    def _pricing(self, reported: str | None) -> tuple[str | None, Rate | None]:
        """The model to price the call as (the requested one, or the reported one when only
        that one has a price), and its rate (``None`` when unknown)."""
        requested = self.model
        rate_for = self.budget.rate_for
        provider = self.adapter.provider
        if requested is None:
            return reported, None if reported is None else rate_for(reported, provider)
        rate = rate_for(requested, provider)
        if rate is None and reported and reported != requested:
            reported_rate = rate_for(reported, provider)
            if reported_rate is not None:
                return reported, reported_rate  # e.g. a dated model id the price table knows
        return requested, rate

    def _usage_missing(self, model: str | None, raise_over: bool) -> None:
        message = (
            f"the response to a {model or 'model'} request had no usage figures, so shekel "
            "recorded an estimate. For OpenAI-compatible servers, make sure they honour "
            "stream_options.include_usage"
        )
        if self.budget.strict and raise_over:
            raise UsageMissingError(message + "; strict budgets refuse to guess")
        warnings.warn(message, UsageMissingWarning, stacklevel=2)


def _affordable_output(rate: Rate, prompt: int, wanted: int, room: Nanos) -> int:
    """The largest output (<= wanted) whose cost with the prompt fits in ``room``."""
    if wanted <= 0:
        return 0
    if room == UNLIMITED:
        return wanted
    if rate.cost(TokenUsage(prompt, wanted)) <= room:
        return wanted
    low, high = 0, wanted
    if rate.tiered is None and rate.output > 0:
        guess = max(((room - rate.cost(TokenUsage(prompt, 0))) * 1000) // rate.output, 0)
        high = min(high, guess + 1)
    while low < high:
        middle = (low + high + 1) // 2
        if rate.cost(TokenUsage(prompt, middle)) <= room:
            low = middle
        else:
            high = middle - 1
    return low


def response_json(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return None
