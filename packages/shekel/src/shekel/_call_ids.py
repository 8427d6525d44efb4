"""Calls already recorded, by the provider's id: a call that both the interceptor and a
framework (or ``Budget.record(call_id=...)``) report is recorded once, by whoever is first."""

from __future__ import annotations

import itertools
import time
from typing import Final

from ._history import CallRecord

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
RECORDED: Final = _recorded
"""The registry itself, for a recording path that writes its entry inline (see :func:`remember`)."""
first_report: Final = _recorded.get
"""``first_report(call_id)``: the :class:`CallRecord` (or the report in progress) the registry
holds for ``call_id``, if any: :func:`reported_elsewhere` without a call of its own."""


def reported_elsewhere(call_id: str) -> bool:
    """Whether ``call_id`` is recorded, or being recorded, by anyone but the interceptor: the
    interceptor's cheap test before it claims (:func:`claim` costs a mark and two writes)."""
    first = _recorded.get(call_id)
    return first is not None and (first.__class__ is _Recording or first.source != SDK)


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
                forget_oldest()
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


def forget_oldest() -> None:
    """Trim the registry to its newest ids (called once it holds more than ``RECENT_CALL_IDS``)."""
    try:
        oldest = list(itertools.islice(_recorded, RECENT_CALL_IDS // 4))
    except RuntimeError:  # another thread changed the registry meanwhile: trim next time
        return
    for call_id in oldest:
        _recorded.pop(call_id, None)


def remember(call_id: str, call: CallRecord) -> None:
    """``call`` was recorded by the interceptor without a :func:`claim` (its id was unknown):
    a framework that reports it later finds it."""
    _recorded[call_id] = call
    if len(_recorded) > RECENT_CALL_IDS:
        forget_oldest()


def first_claim(call_id: str, call: CallRecord) -> CallRecord | _Recording:
    """Make ``call``, about to be booked, the first report of ``call_id`` unless the registry
    holds one already; what it holds: ``call`` when it was the first, else the earlier report,
    left as it is (the caller then goes the way of :func:`claim`)."""
    first = _recorded.setdefault(call_id, call)
    if first is call and len(_recorded) > RECENT_CALL_IDS:
        forget_oldest()
    return first


def claimed(call_id: str, call: CallRecord | None) -> None:
    """The first report of ``call_id`` was recorded as ``call`` (``None``: it failed and the id
    is free again)."""
    if call is None:
        _recorded.pop(call_id, None)
    else:
        _recorded[call_id] = call
