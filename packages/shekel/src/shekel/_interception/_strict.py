"""Strict mode before sending: hold what the call may cost, lowering its output limit to what the
budget can pay for, and wait (within a process) for room that other calls in flight hold."""

from __future__ import annotations

import itertools
import threading
import time
from typing import TYPE_CHECKING, Any, Final

from .. import _spend
from .._errors import BudgetExceededError, UnknownModelError
from .._ledger import UNLIMITED
from .._money import Nanos
from .._output_limits import UNKNOWN_MODEL_MAX_OUTPUT, listed_max_output
from .._pricing import Rate, TokenUsage

if TYPE_CHECKING:
    from .._chain import Chain
    from ._call import InterceptedCall

STRICT_WAIT_SECONDS: Final = 30.0
"""How long a strict call waits for room that other in-flight calls hold before it settles for
what is free (a smaller output limit, or a refusal)."""


class WaitForRoom(Exception):
    """Strict mode: other in-flight calls hold room this request needs; retry ``prepare``
    after a short wait (nothing is held meanwhile)."""


_inflight_lock = threading.Lock()
_inflight: set[InterceptedCall] = set()
"""Strict calls reserving or holding room, so that another call can tell whether waiting for
them would free the room it needs."""
_tickets = itertools.count()


def tree_of(chain: Chain) -> tuple[int, Any]:
    """What identifies the tree of accounts ``chain`` spends on: its outermost account, by key
    on a store (where two budget objects of one name are one account), else by identity."""
    account = chain.links[-1][0]
    if chain.ledger.shares_keys:
        return id(chain.ledger), getattr(account, "key", id(account))
    return id(chain.ledger), id(account)


def others_in_flight(
    me: InterceptedCall, *, any_reserving: bool = False
) -> tuple[Nanos, int, bool]:
    """USD and tokens held by the strict calls of other threads or tasks on ``me``'s tree, and
    whether one that began before ``me`` is still taking its hold (whose size is not known yet:
    waiting for it, never for later ones, is what lets the first of them always go on).
    ``any_reserving``: whether any other is taking its hold, earlier or later (after a refusal,
    its hold may be the room that is missing, in the store but not yet in ``call.hold``)."""
    usd = tokens = 0
    reserving = False
    with _inflight_lock:
        for call in _inflight:
            if call is me or call.holder == me.holder or call.tree != me.tree:
                continue
            hold, taking = call.hold, call.taking
            if hold is not None:
                usd += hold.usd
                tokens += hold.tokens
            elif taking is not None:  # in the ledger already, or about to be
                usd += taking[0]
                tokens += taking[1]
            elif any_reserving or call.ticket < me.ticket:
                reserving = True
    return usd, tokens, reserving


def reserve(
    call: InterceptedCall,
    rate: Rate | None,
    model: str | None,
    max_output: int | None,
    content: bytes,
) -> int | None:
    """Reserve the prompt plus the output the budget can pay for, never more than the model
    accepts; return the output limit to write into the request, or None when the
    request's own limit already fits. Raises :class:`WaitForRoom` when other calls in
    flight hold (or are taking) room that would let this one ask for more."""
    if rate is None:
        raise UnknownModelError(model or "(no model in request)", call.adapter.provider)
    if call.tree is None:
        call.ticket = next(_tickets)
        call.tree = tree_of(call.chain)
    call.holder = call._caller()
    with _inflight_lock:  # seen by the others from now on, while taking its hold too
        _inflight.add(call)
    try:
        return _take(call, rate, model, max_output, content)
    except BaseException:
        call._hold_ended()
        raise


def _take(
    call: InterceptedCall, rate: Rate, model: str | None, max_output: int | None, content: bytes
) -> int | None:
    chain = call.chain
    prompt = call.adapter.estimate_input_tokens(content)
    listed = listed_max_output(model) if model is not None else None
    ceiling = rate.max_output or listed or UNKNOWN_MODEL_MAX_OUTPUT
    wanted = ceiling if max_output is None else max_output
    # A stream is cut off a little past its output limit (when a gateway ignores it), so
    # its reservation covers that margin too: the cap holds either way.
    margin = cut_off_point if call.stream else _no_margin
    if call.fixed:  # the limit cannot be lowered: hold all of it, or refuse
        held = margin(wanted)
        _hold(call, rate.cost(TokenUsage(prompt, held)), prompt + held)
        call.output_allowed = wanted
        return None
    for _ in range(3):
        room_usd, room_tokens = _spend.headroom(chain)
        held = _affordable_output(rate, prompt, min(margin(wanted), room_tokens - prompt), room_usd)
        output = _within(held, margin) if held < margin(wanted) else wanted
        if output < wanted:
            _wait_if_others_hold(call, rate, prompt, wanted, output, room_usd, room_tokens)
            if _spend.headroom(chain) != (room_usd, room_tokens):
                continue  # a call settled while this one looked: size the request again
        if output < 1 and wanted != 0:
            output = 1  # too poor for one token: the hold below is refused with a clear error
        held = max(held, margin(output))
        try:
            _hold(call, rate.cost(TokenUsage(prompt, held)), prompt + held)
        except BudgetExceededError:
            if _spend.headroom(chain) != (room_usd, room_tokens):
                continue  # another call took the room meanwhile: size the request again
            _wait_if_any_in_flight(call)
            raise
        call.output_allowed = output
        return output if output < wanted or max_output is None else None
    _wait_if_any_in_flight(call)  # the room kept changing: wait rather than take one token
    try:
        _hold(call, rate.cost(TokenUsage(prompt, margin(1))), prompt + margin(1))
    except BudgetExceededError:
        _wait_if_any_in_flight(call)
        raise
    call.output_allowed = 1
    return 1


def _hold(call: InterceptedCall, usd: Nanos, tokens: int) -> None:
    """Reserve ``usd`` and ``tokens`` for ``call``, shown to the others while the ledger takes
    them: otherwise a call looking meanwhile would find the room gone and nobody holding it,
    and send its request with an output limit of one token instead of waiting."""
    call.taking = (usd, tokens)
    try:
        call.hold = _spend.hold(call.chain, usd, tokens, 1, need_headroom=True)
    finally:
        call.taking = None


def _wait_if_any_in_flight(call: InterceptedCall) -> None:
    """Refused: wait instead while other calls of this process on the tree are in flight
    (their room comes back when they settle)."""
    if any(others_in_flight(call, any_reserving=True)) and _may_wait(call):
        raise WaitForRoom from None


def _may_wait(call: InterceptedCall) -> bool:
    """False once this call waited long enough (it then takes what is free)."""
    now = time.monotonic()
    if call.wait_until is None:
        call.wait_until = now + STRICT_WAIT_SECONDS
    return now < call.wait_until


def _wait_if_others_hold(
    call: InterceptedCall,
    rate: Rate,
    prompt: int,
    wanted: int,
    output: int,
    room_usd: Nanos,
    room_tokens: int,
) -> None:
    if call.wait_until is not None and time.monotonic() >= call.wait_until:
        return  # waited long enough: take what is free
    with _inflight_lock:
        mine = any(
            other is not call and other.holder == call.holder and other.hold is not None
            for other in _inflight
        )
    if mine:
        return  # what is held is this thread's or task's own (an open stream): no waiting
    held_usd, held_tokens, reserving = others_in_flight(call)
    if reserving and _may_wait(call):
        raise WaitForRoom  # an earlier call is taking its hold: see what it leaves
    if not (held_usd or held_tokens):
        return
    free_usd = room_usd if room_usd == UNLIMITED else room_usd + held_usd
    free_tokens = room_tokens if room_tokens == UNLIMITED else room_tokens + held_tokens
    more = _affordable_output(rate, prompt, min(wanted, free_tokens - prompt), free_usd)
    if more > output and _may_wait(call):
        raise WaitForRoom


def cut_off_point(allowed: int) -> int:
    """Output tokens (as estimated from the events) after which a strict stream is stopped.

    A provider that honours the request's output limit stops at ``allowed``; the estimate is
    rough, so only a stream clearly beyond it (a gateway ignoring ``max_tokens``) is cut."""
    return allowed + max(16, allowed // 4)


def _no_margin(allowed: int) -> int:
    return allowed


def _within(reserved: int, margin: Any) -> int:
    """The largest output limit whose margin fits in ``reserved`` tokens."""
    output = max(reserved - 16, (reserved * 4) // 5, 0)
    while output > 0 and margin(output) > reserved:
        output -= 1
    return output


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


def ended(call: InterceptedCall) -> None:
    """``call`` holds nothing any more: it no longer counts for the others."""
    with _inflight_lock:
        _inflight.discard(call)
