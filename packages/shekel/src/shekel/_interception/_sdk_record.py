"""After the response of a call the SDK layer (``_sdk_patch``) took: its usage read from the
SDK's own objects and the call recorded.

The usual call (a chat completion, a Responses API response or a message with plain token
counts, a model with a flat price, a budget with nothing held and no price table of its own) is
read and booked in two frames (the :data:`RECORDERS` entry of its adapter, then
:func:`book_usual`): each layer of the full path (``charge_call``, ``book``, ``TokenUsage``)
costs about as much as the booking. Any other call takes the full path.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from .._call_ids import RECENT_CALL_IDS, RECORDED, SDK, first_report, forget_oldest
from .._config import SURELY_A_COUNT
from .._history import CallRecord, new_record, next_sequence
from .._pricing import Rate, TokenUsage, cached_rate, lookup_rate
from .._spend import after_charge
from ._adapter import ProtocolAdapter
from ._anthropic import MessagesAdapter, message_counts
from ._call import InterceptedCall, as_shekel_error, charge_call, for_sdk
from ._openai import (
    ChatCompletionsAdapter,
    ResponsesAdapter,
    chat_counts,
    chat_usage,
)
from ._transport import cause

if TYPE_CHECKING:
    from .._chain import Chain


def _usage(adapter: ProtocolAdapter, usage: Any) -> TokenUsage | None:
    """The parsed response's ``usage`` object as shekel counts it (``None``: unusable)."""
    if adapter.__class__ is not MessagesAdapter:
        try:  # a chat completion's usage, read plainly; a Responses one's by chat_usage
            prompt, output = usage.prompt_tokens_details, usage.completion_tokens_details
            return chat_counts(
                usage.prompt_tokens,
                usage.completion_tokens,
                None if prompt is None else prompt.cached_tokens,
                None if output is None else output.reasoning_tokens,
            )
        except AttributeError:  # a Responses usage, or another shape: read what it has
            return chat_usage(usage)
    try:
        plain, output = usage.input_tokens, usage.output_tokens
        read, write = usage.cache_read_input_tokens, usage.cache_creation_input_tokens
    except AttributeError:
        plain, output = getattr(usage, "input_tokens", None), getattr(usage, "output_tokens", None)
        read = getattr(usage, "cache_read_input_tokens", None)
        write = getattr(usage, "cache_creation_input_tokens", None)
    if plain is None and output is None:
        return None
    return message_counts(plain, output, read, write)


def _size(result: Any) -> int:
    """About the size of the response's JSON (for an estimate of its output)."""
    try:
        return len(result.model_dump_json(warnings=False))
    except Exception:  # not a pydantic model, or one the serializer refuses
        return len(repr(result))


def record(
    chain: Any, adapter: ProtocolAdapter, data: dict[str, Any], model: Any, result: Any
) -> None:
    """Record the call (``model``: the request's); an error that is not shekel's (a plugin's, a
    warnings filter's) comes out as a ``CallbackError``; both carry the SDK's base error class,
    as from the HTTP layer."""
    try:
        requested = model if model.__class__ is str else None
        try:  # the SDK's response object has all three: read plainly, as on every call
            reported, usage, call_id = result.model, result.usage, result.id
        except AttributeError:  # an object of another shape: what it has
            reported, usage = getattr(result, "model", None), getattr(result, "usage", None)
            call_id = getattr(result, "id", None)
        if reported.__class__ is not str:
            reported = None
        if call_id.__class__ is not str or not call_id:
            call_id = None
        counted = None if usage is None else _usage(adapter, usage)
        if counted is None:  # estimated from the sizes, as the HTTP layer does
            call = InterceptedCall(chain.budget, adapter)
            call.model = requested
            call.body_size = len(json.dumps(data, default=str))
            call.settle(None, reported, output_guess=_size(result) >> 2)
            return
        charge_call(
            chain,
            adapter,
            requested,
            counted,
            reported,
            call_id,
        )
    except Exception as exc:
        raise for_sdk(as_shekel_error(exc, sent=True), adapter) from cause(exc)


def _openai_recorder(
    prompt_key: str, output_key: str, prompt_details_key: str, output_details_key: str
) -> Any:
    """:func:`record` of an openai chat completion or Responses API response (their usage
    fields named as given), the usual case read and booked in one go."""

    def record_openai(
        chain: Any, adapter: ProtocolAdapter, data: dict[str, Any], model: Any, result: Any
    ) -> None:
        try:
            try:  # fields from the SDK models' ``__dict__`` (see ``_begin``): every field is there
                fields = result.__dict__
                usage, reported, call_id = fields["usage"], fields["model"], fields["id"]
                counts = usage.__dict__
                prompt, output = counts[prompt_key], counts[output_key]
                details = counts[prompt_details_key]
                output_details = counts[output_details_key]
                read = 0 if details is None else details.cached_tokens
                reasoning = 0 if output_details is None else output_details.reasoning_tokens
            except (AttributeError, KeyError):  # no usage, or objects of another shape
                return record(chain, adapter, data, model, result)
            if read is None:
                read = 0
            if reasoning is None:
                reasoning = 0
            if not (
                type(prompt) is int
                and type(output) is int
                and type(read) is int
                and type(reasoning) is int
                and 0 <= prompt | output | read | reasoning < SURELY_A_COUNT
                and read <= prompt
                and reasoning <= output
            ):
                return record(chain, adapter, data, model, result)
            if model.__class__ is not str:
                return record(chain, adapter, data, model, result)
            if chain.quick and book_usual(
                chain, adapter, model, reported, call_id, prompt, output, read, 0, reasoning
            ):
                return None
            counted = TokenUsage(prompt, output, read, 0, reasoning)
        except Exception as exc:
            raise for_sdk(as_shekel_error(exc, sent=True), adapter) from cause(exc)
        return _charge(chain, adapter, model, counted, reported, call_id)

    return record_openai


def _record_message(
    chain: Any, adapter: ProtocolAdapter, data: dict[str, Any], model: Any, result: Any
) -> None:
    """:func:`record` of an anthropic message, its usual case read and booked in one go."""
    try:
        try:  # fields from the SDK models' ``__dict__`` (see ``_begin``): every field is there
            fields = result.__dict__
            usage, reported, call_id = fields["usage"], fields["model"], fields["id"]
            counts = usage.__dict__
            plain, output = counts["input_tokens"], counts["output_tokens"]
            read = counts["cache_read_input_tokens"]
            write = counts["cache_creation_input_tokens"]
        except (AttributeError, KeyError):  # no usage, or objects of another shape
            return record(chain, adapter, data, model, result)
        if read is None:
            read = 0
        if write is None:
            write = 0
        if not (
            type(plain) is int
            and type(output) is int
            and type(read) is int
            and type(write) is int
            and 0 <= plain | output | read | write < SURELY_A_COUNT
        ):
            return record(chain, adapter, data, model, result)
        if model.__class__ is not str:
            return record(chain, adapter, data, model, result)
        prompt = plain + read + write  # all prompt tokens are input
        if chain.quick and book_usual(
            chain, adapter, model, reported, call_id, prompt, output, read, write, 0
        ):
            return None
        usage = TokenUsage(prompt, output, read, write)
    except Exception as exc:
        raise for_sdk(as_shekel_error(exc, sent=True), adapter) from cause(exc)
    return _charge(chain, adapter, model, usage, reported, call_id)


def _charge(
    chain: Any, adapter: ProtocolAdapter, model: str, usage: TokenUsage, reported: Any, call_id: Any
) -> None:
    """The full path for checked counts: ``charge_call``."""
    try:
        charge_call(
            chain,
            adapter,
            model,
            usage,
            reported if reported.__class__ is str else None,
            call_id if call_id.__class__ is str and call_id else None,
        )
    except Exception as exc:
        raise for_sdk(as_shekel_error(exc, sent=True), adapter) from cause(exc)


RECORDERS: Final = {
    ChatCompletionsAdapter: _openai_recorder(
        "prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details"
    ),
    ResponsesAdapter: _openai_recorder(
        "input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details"
    ),
    MessagesAdapter: _record_message,
}


def book_usual(
    chain: Chain,
    adapter: Any,
    model: str,
    reported: Any,
    call_id: Any,
    input_tokens: int,
    output_tokens: int,
    read: int,
    write: int,
    reasoning: int,
) -> bool:
    """Book a call the SDK layer read, in one step, when it is the usual one: ``chain.quick``
    (checked by the caller), ``model`` priced by the shared rates at a flat price, and
    ``call_id`` (the response's ``id``, any object) not reported by a framework. False,
    booking nothing, for any other call: the caller then takes the full path
    (``charge_call``). The counts are checked token counts (``read`` and ``write``, the prompt
    tokens read from and written to a cache, are part of ``input_tokens``; ``reasoning`` of
    ``output_tokens``); ``reported`` is the response's ``model`` (any object)."""
    if call_id.__class__ is not str or not call_id:
        call_id = None
    else:
        first = first_report(call_id)
        if first is not None and (first.__class__ is not CallRecord or first.source != SDK):
            return False  # a framework reported it, or is reporting it: the full path claims
    provider = adapter.provider
    rate = cached_rate((model, provider))
    if rate is None:  # not looked up yet
        try:
            rate = lookup_rate(model, provider)
        except Exception:  # a price plugin failed: the full path counts the call unpriced
            return False
    if rate.__class__ is not Rate or rate.tiered is not None:
        return False
    if reported.__class__ is not str:
        reported = None
    cost = rate.flat_cost(input_tokens, output_tokens, read, write)
    tokens = input_tokens + output_tokens
    over = chain.ledger.record(chain.links, cost, tokens, 1)
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
            reasoning,
            provider,
            True,  # priced
            False,  # estimated
            False,  # on_fallback
            None,  # tool_name
            call_id,
            SDK,
            reported,
            adapter.operation,
        )
    )
    if call_id is not None:  # a framework that reports the call later finds it (``remember``)
        RECORDED[call_id] = call
        if len(RECORDED) > RECENT_CALL_IDS:
            forget_oldest()
    after_charge(chain, call, over)
    return True
