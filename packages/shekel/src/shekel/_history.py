"""What a budget remembers about individual calls.

Per-model totals are kept exactly and forever; the per-call list is bounded (the newest
``history_size`` calls), so a budget that records millions of calls stays small.
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Final, NamedTuple, cast

from ._money import Nanos, nanos_to_usd

DEFAULT_HISTORY_SIZE: Final = 1_000
FOLD_EVERY: Final = 256
_sequence = itertools.count(1)


class CallRecord(NamedTuple):
    """One recorded piece of spend.

    ``cost`` is in nano-dollars (``cost_usd`` in dollars). ``priced`` is False when no price was
    known for the model, so ``cost`` is missing from it; ``estimated`` is True when the token
    counts were estimated (an interrupted stream, a response without usage). ``call_id`` is
    the provider's id of the response (``chatcmpl-...``, ``msg_...``) when known; ``source``
    says who reported the call (``"sdk"`` for the interceptor, ``"manual"`` for ``record()``,
    or an integration's name). ``response_model`` is the model the response named (a dated
    snapshot such as ``gpt-4o-mini-2024-07-18`` where ``model`` is the alias priced) and
    ``operation`` the kind of request (``"chat"``, ``"embeddings"``: OpenTelemetry's
    ``gen_ai.operation.name``), both set by the interceptor and ``None`` when unknown.

    A named tuple (immutable): one is built for every recorded call, and a tuple is the
    cheapest object to build and to sum over.
    """

    seq: int
    budget_path: str
    model: str | None
    input_tokens: int
    output_tokens: int
    cost: Nanos
    tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    provider: str | None = None
    priced: bool = True
    estimated: bool = False
    on_fallback: bool = False
    tool_name: str | None = None
    call_id: str | None = None
    source: str | None = None
    response_model: str | None = None
    operation: str | None = None

    @property
    def cost_usd(self) -> float:
        return nanos_to_usd(self.cost)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost": self.cost_usd,
            "budget": self.budget_path,
            "provider": self.provider,
            "priced": self.priced,
            "estimated": self.estimated,
            "fallback": self.on_fallback,
            "tool": self.tool_name,
            "call_id": self.call_id,
            "source": self.source,
            "response_model": self.response_model,
            "operation": self.operation,
        }


new_record: Final = cast(
    "Callable[[tuple[Any, ...]], CallRecord]", functools.partial(tuple.__new__, CallRecord)
)
"""A :class:`CallRecord` from every field, in order: what the recording path builds, without
the Python-level constructor's frame and keyword handling."""

_MODEL, _INPUT, _OUTPUT, _COST, _PRICED, _ESTIMATED = (
    CallRecord._fields.index(name)
    for name in ("model", "input_tokens", "output_tokens", "cost", "priced", "estimated")
)


next_sequence: Final[Callable[[], int]] = _sequence.__next__
"""The next call sequence number (process-wide, increasing; thread-safe)."""


class ModelTotals:
    """Exact running totals for one model within one budget."""

    __slots__ = ("calls", "cost", "input_tokens", "output_tokens", "unpriced_calls")

    def __init__(self) -> None:
        self.calls = self.input_tokens = self.output_tokens = self.cost = self.unpriced_calls = 0

    def merge(self, other: ModelTotals, sign: int = 1) -> None:
        """Add ``other`` (``sign=-1``: take it away)."""
        self.calls += sign * other.calls
        self.input_tokens += sign * other.input_tokens
        self.output_tokens += sign * other.output_tokens
        self.cost += sign * other.cost
        self.unpriced_calls += sign * other.unpriced_calls


class SpendHistory:
    """Calls recorded directly into one budget (not its children).

    Recording a call only appends it to :attr:`queued` (atomic, no lock), and calls
    :meth:`fold` once ``FOLD_EVERY`` calls wait there (``_spend.after_charge``); the per-model
    totals also take the queue in when they are read. A call costs the recording thread as
    little as possible, and a budget nobody reads stays small."""

    __slots__ = (
        "_by_model",
        "_calls",
        "_estimated_calls",
        "_lock",
        "_total_calls",
        "_unpriced_calls",
        "queued",
    )

    def __init__(self, size: int = DEFAULT_HISTORY_SIZE) -> None:
        self._lock = threading.Lock()
        self._calls: deque[CallRecord] = deque(maxlen=size)
        self.queued: deque[CallRecord] = deque()
        self._by_model: dict[str, ModelTotals] = {}
        self._total_calls = 0
        self._unpriced_calls = 0
        self._estimated_calls = 0

    def add(self, call: CallRecord) -> None:
        """Record ``call`` (a budget's own recording path does the same inline, in
        ``_spend.after_charge``)."""
        queued = self.queued
        queued.append(call)
        if len(queued) >= FOLD_EVERY:
            self.fold()

    def fold(self) -> None:
        """Count the queued calls into the totals now."""
        with self._lock:
            self._fold()

    def _fold(self) -> None:
        """Count the queued calls into the totals (the caller holds the lock): a model's
        calls turned into columns (``zip``) and each column summed, all in C."""
        queued = self.queued  # only ever emptied under the lock: no other thread takes from it
        batch = list(itertools.starmap(queued.popleft, itertools.repeat((), len(queued))))
        if not batch:
            return
        self._calls.extend(batch)
        columns = tuple(zip(*batch, strict=True))
        keys: tuple[Any, ...] | list[Any] = columns[_MODEL]
        models = dict.fromkeys(keys)  # in the order first seen, as tables show
        if None in models or "" in models:  # unnamed spend counts under its tool, or manual
            keys = [call.model or call.tool_name or "(manual)" for call in batch]
            models = dict.fromkeys(keys)
        if len(models) == 1:
            self._count(next(iter(models)), columns)
            return
        for model in models:
            calls = [call for call, key in zip(batch, keys, strict=True) if key == model]
            self._count(model, tuple(zip(*calls, strict=True)))

    def _count(self, model: str, columns: tuple[tuple[Any, ...], ...]) -> None:
        """Add one model's calls, given as columns (one tuple per field)."""
        totals = self._by_model.get(model)
        if totals is None:
            totals = self._by_model[model] = ModelTotals()
        count = len(columns[0])
        unpriced = count - sum(columns[_PRICED])
        totals.calls += count
        totals.input_tokens += sum(columns[_INPUT])
        totals.output_tokens += sum(columns[_OUTPUT])
        totals.cost += sum(columns[_COST])
        totals.unpriced_calls += unpriced
        self._total_calls += count
        self._unpriced_calls += unpriced
        self._estimated_calls += sum(columns[_ESTIMATED])

    def _folded(self) -> None:
        if self.queued:
            with self._lock:
                self._fold()

    @property
    def calls(self) -> deque[CallRecord]:
        """The newest calls kept (at most ``history_size``), oldest first."""
        self._folded()
        return self._calls

    @property
    def by_model(self) -> dict[str, ModelTotals]:
        self._folded()
        return self._by_model

    @property
    def total_calls(self) -> int:
        self._folded()
        return self._total_calls

    @property
    def unpriced_calls(self) -> int:
        self._folded()
        return self._unpriced_calls

    @property
    def estimated_calls(self) -> int:
        self._folded()
        return self._estimated_calls

    def recent(self) -> list[CallRecord]:
        """The newest calls kept (at most ``history_size``), oldest first."""
        with self._lock:
            self._fold()
            return list(self._calls)

    def snapshot(self) -> tuple[list[CallRecord], dict[str, ModelTotals], int, int, int]:
        with self._lock:
            self._fold()
            copies = {}
            for model, totals in self._by_model.items():
                copy = ModelTotals()
                copy.merge(totals)
                copies[model] = copy
            return (
                list(self._calls),
                copies,
                self._total_calls,
                self._unpriced_calls,
                self._estimated_calls,
            )

    def clear(self) -> None:
        with self._lock:
            self.queued.clear()
            self._calls.clear()
            self._by_model.clear()
            self._total_calls = self._unpriced_calls = self._estimated_calls = 0
