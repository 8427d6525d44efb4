"""Open LlamaIndex spans, and the budget paying for what runs inside each.

A span started while a budget is active, or inside a span that was, gets a :class:`Span`. A
step span (``_steps``) starts a :class:`Step`, paid by the child named after it of the enclosing
step's budget, or of the budget active where the outermost step began; other spans pay as their
parent does. Children are made on first charge: steps that spend nothing leave no line in
``tree()``. Nothing is activated: at send time the core asks :func:`route`, which reads
LlamaIndex's own ``active_span_id``, so ``current_budget()`` in a step stays the caller's.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, Generator
from contextlib import aclosing, closing
from dataclasses import dataclass
from typing import Any, Final

from llama_index_instrumentation.span import active_span_id

from shekel import Budget, CallRoute, budget_name, current_budget
from shekel.integration import child_of

from . import _steps
from ._handler import ShekelCallbackHandler, handler_of


@dataclass(slots=True)
class Call:
    """One model call, shared by the nested LLM method spans that make it."""

    kind: str
    sdk: bool = False  # a request of it went out through the intercepted SDKs
    reported: bool = False  # its usage was recorded from LlamaIndex's events


@dataclass(slots=True)
class Step:
    name: str
    handler: ShekelCallbackHandler | None  # its component's, or an enclosing step's
    parent: Step | None
    root: Budget
    paid_by: Budget | None = None

    def budget(self) -> Budget:
        if self.paid_by is None:
            above = self.parent.budget() if self.parent is not None else self.root
            label = budget_name(self.name)
            mapped = self.handler.limits.get(self.name) if self.handler else None
            if above.name == label:  # run in a budget of its name (entered by hand): not in it
                self.paid_by = above
            else:
                self.paid_by = child_of(above, label, mapped.options if mapped else None)
        return self.paid_by


@dataclass(slots=True)
class Span:
    base: Budget  # the budget active where the span (or its outermost step) began
    step: Step | None  # the innermost step around, itself included
    call: Call | None
    model: str | None
    workflow: bool  # a custom workflow's run: its child spans without instance are its steps

    @property
    def payer(self) -> Budget:
        return self.base if self.step is None else self.step.budget()


_STREAMING: Final = ("StreamingResponse", "AsyncStreamingResponse", "StreamingAgentChatResponse")
_LIVE: Final[dict[str, Span]] = {}  # by span id (no lock: dict operations are atomic)
_streams: OrderedDict[str, Span] = OrderedDict()  # spans whose result is read later (newest)
_streams_lock = threading.Lock()
STREAM_PAYER: Final = contextvars.ContextVar[Span | None]("shekel_stream", default=None)
"""Set while a step's stream produces its next item (its request goes out then)."""


def find(span_id: str | None) -> Span | None:
    return None if span_id is None else _LIVE.get(span_id) or _streams.get(span_id)


def current_span() -> Span | None:
    """The span of the code running here, unless a budget was entered inside it."""
    streaming = STREAM_PAYER.get()
    if streaming is not None:
        return streaming
    span = find(active_span_id.get())
    return span if span is not None and span.base is current_budget() else None


def payer_here() -> Budget | None:
    span = current_span()
    return span.payer if span is not None else current_budget()


def route(active: Budget | None) -> CallRoute | None:
    """The router: which step's budget pays for a request sent here (it marks the model call
    the request belongs to as seen by the interceptor)."""
    streaming = STREAM_PAYER.get()
    span = streaming or find(active_span_id.get())
    if span is None:
        return None
    if span.call is not None:
        span.call.sdk = True
    if streaming is None and span.base is not active:
        return None  # a budget entered inside the span pays
    return CallRoute(span.payer)


def enter(span_id: str, instance: Any, parent_id: str | None) -> None:
    parent, active = find(parent_id), current_budget()
    if parent is None or parent.base is not active:  # a budget entered inside: start over
        if active is None:
            return
        parent = None
        base, step, call, model = active, None, None, None
    else:
        base, step, call, model = parent.base, parent.step, parent.call, parent.model
    method = _steps.method_of(span_id)
    name = _steps.step_of(instance, method)
    if name is None and instance is None and parent is not None and parent.workflow:
        name = method  # a step of the workflow running around it
    if name is not None and (step is None or step.name != name):
        handler = handler_of(instance) or (step.handler if step is not None else None)
        if handler is not None:
            handler.saw(base, name)
        step = Step(name, handler, step, base)
    kind = _steps.call_kind(instance, method)
    if kind is not None:
        call = call or Call(kind)
        model = _steps.model_of(instance) or model
    workflow = name is not None and method == "run" and _steps.runs_steps(instance)
    _LIVE[span_id] = Span(base, step, call, model, workflow)


def leave(span_id: str, result: Any) -> None:
    span = _LIVE.pop(span_id, None)
    kind = type(result).__name__
    if span is None or not (
        inspect.isgenerator(result) or inspect.isasyncgen(result) or kind in _STREAMING
    ):
        return
    with _streams_lock:
        _streams[span_id] = span
        while len(_streams) > 1024:
            _streams.popitem(last=False)
    if span.step is not None and kind in _STREAMING[:2]:  # a query engine's: its request later
        gen = result.response_gen
        if inspect.isgenerator(gen):
            result.response_gen = _routed(gen, span)
        elif inspect.isasyncgen(gen):
            result.response_gen = _arouted(gen, span)


def drop(span_id: str) -> None:
    _LIVE.pop(span_id, None)


def stream_done(span_id: str | None) -> bool:
    """Forget a span whose stream ended; True if it was one."""
    with _streams_lock:
        return span_id is not None and _streams.pop(span_id, None) is not None


def _routed(gen: Generator[Any, Any, Any], span: Span) -> Generator[Any, Any, None]:
    with closing(gen):
        while True:
            token = STREAM_PAYER.set(span)
            try:
                item = next(gen)
            except StopIteration:
                return
            finally:
                STREAM_PAYER.reset(token)
            yield item


async def _arouted(gen: AsyncGenerator[Any, Any], span: Span) -> AsyncGenerator[Any, None]:
    async with aclosing(gen):
        while True:
            token = STREAM_PAYER.set(span)
            try:
                item = await gen.__anext__()
            except StopAsyncIteration:
                return
            finally:
                STREAM_PAYER.reset(token)
            yield item
