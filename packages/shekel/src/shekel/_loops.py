"""``loop_guard=N``: the Nth identical call within a budget is stopped before it runs.

An agent in a loop repeats itself: the same tool with the same arguments, or the same question
to the model (a growing history whose newest message is the same retry instruction every time).
Two tool calls are identical when their tool and their arguments are equal; two model requests
when they ask the same model and their last message (or input) is equal, whatever came before
it. Calls are counted per budget that has a ``loop_guard`` (a parent's guard counts the calls of
all its children); the Nth is refused with :class:`LoopGuardError` and not counted.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Final

from ._errors import BudgetExceededError

if TYPE_CHECKING:
    from ._chain import Chain

REMEMBERED: Final = 4096
"""How many distinct calls each guard remembers (the least recent are forgotten)."""


class LoopGuardError(BudgetExceededError):
    """A call was about to repeat itself ``loop_guard`` times within a budget (``sent=False``:
    it was not made). ``repeated`` describes it; ``count`` is the number of identical calls
    including the refused one."""

    def __init__(self, budget_name: str | None, repeated: str, count: int, tool: bool) -> None:
        self.repeated = repeated
        self.count = count
        super().__init__(
            count - 1,
            count - 1,
            axis="tool_calls" if tool else "llm_calls",
            budget_name=budget_name,
            sent=False,
            detail=f"{repeated} was about to run for the {ordinal(count)} time",
            advice=(
                f"It looks like a loop: loop_guard={count} stops the {ordinal(count)} identical "
                "call. Change what the agent asks, give it a way to stop, or raise loop_guard"
            ),
        )

    def _message(self, detail: str | None, advice: str) -> str:
        who = f"budget {self.budget_name!r}" if self.budget_name else "budget"
        return f"{who} stopped a repeated call: {detail}; it was not sent. {advice}"


class LoopGuard:
    """The identical calls seen under one budget, by fingerprint."""

    __slots__ = ("_counts", "_lock", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: OrderedDict[bytes, int] = OrderedDict()
        self._lock = threading.Lock()

    def would_stop(self, key: bytes) -> int:
        """The count this call would reach, when that reaches the limit; else 0."""
        with self._lock:
            count = self._counts.get(key, 0) + 1
        return count if count >= self.limit else 0

    def count(self, key: bytes) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            self._counts.move_to_end(key)
            if len(self._counts) > REMEMBERED:
                self._counts.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


def admit(chain: Chain, key: bytes, describe: Any, *, tool: bool) -> None:
    """Count a call under every guarded budget of ``chain``'s lineage, or raise
    :class:`LoopGuardError` (counting nothing) when one of them has seen it enough.
    ``describe()`` says what the call is, for the message."""
    guards = [(c, c.loops) for c in chain.lineage if c.loops is not None]
    for owner, guard in guards:
        count = guard.would_stop(key)
        if count:
            owner.policy.looped = True
            raise LoopGuardError(owner.full_name, describe(), count, tool)
    for _, guard in guards:
        guard.count(key)


def tool_key(tool_name: str, arguments: object) -> bytes:
    return _digest(["tool", tool_name, arguments])


def request_key(model: object, body: object) -> bytes:
    """A model request's fingerprint: its model and its last message or input."""
    last: object = body
    if isinstance(body, dict):
        for field in ("messages", "input", "contents", "prompt"):
            value = body.get(field)
            if value is not None:
                last = value[-1] if isinstance(value, list) and value else value
                break
    return _digest(["model", model, last])


def describe_request(model: object, body: object) -> str:
    return f"the same request to {model or 'the model'}"


def describe_tool(tool_name: str, arguments: object) -> str:
    shown = "" if arguments is None else _short(arguments)
    return f"the call of tool {tool_name!r}{f' with {shown}' if shown else ''}"


def _digest(value: object) -> bytes:
    text = json.dumps(value, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _short(arguments: object) -> str:
    text = json.dumps(arguments, sort_keys=True, default=repr)
    return text if len(text) <= 80 else text[:77] + "..."


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
