"""The map from open LlamaIndex spans to the budgets that pay for their calls.

A span handler on LlamaIndex's root dispatcher sees every span of every component, in the
thread or task that runs it, before the method body starts and after it ends. Each span
started while a budget is active (or inside a span that was) gets a :class:`Span`, whose
``payer`` is the budget paying for requests sent directly inside it. A step span (``query``,
``retrieve``, ``synthesize``, ``chat``, a workflow run and its steps) starts a :class:`Step`,
which pays with a child of the enclosing step's budget (or of the budget active where it
began) named after the step: ``parent.child(name)``, one per parent and name, reused by every
query, and made only when something is charged to it. Any other span pays as its parent does.
A step directly inside a step of the same name (a retriever wrapping a retriever) does not
nest.

Nothing is activated: the interceptor asks :func:`payer_for_request` at send time
(``shekel_route_call``), which reads LlamaIndex's own ``active_span_id`` context variable.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from typing import Any, Final

from llama_index_instrumentation.span import active_span_id

from shekel import (
    Budget,
    BudgetConfigError,
    CallRoute,
    budget_name,
    current_budget,
    hookimpl,
    plugin_manager,
)

from . import _steps
from ._errors import ShekelLlamaIndexWarning
from ._handler import budgets_of


class Call:
    """One model call, shared by the nested LLM method spans that make it (a ``CustomLLM``'s
    ``achat`` runs ``chat``, which runs ``complete``), or one embedding method's calls."""

    __slots__ = ("kind", "reported", "sdk")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sdk = False  # a request of it went out through the intercepted SDKs
        self.reported = False  # its usage was recorded from LlamaIndex's events


class Step:
    """One step (a query, a retrieval, a workflow step...) and the budget paying for it: the
    child of its parent step's budget (or of the budget active where it began) named after it,
    made when something is first charged to it, so steps that spend nothing leave no line in
    ``tree()``."""

    __slots__ = ("_budget", "limits", "name", "parent", "root")

    def __init__(
        self,
        name: str,
        limits: dict[str, dict[str, Any]] | None,
        parent: Step | None,
        root: Budget,
    ) -> None:
        self.name = name
        self.limits = limits  # a ShekelCallbackHandler's, found here or on an enclosing step
        self.parent = parent
        self.root = root
        self._budget: Budget | None = None

    def budget(self) -> Budget:
        found = self._budget
        if found is None:
            above = self.parent.budget() if self.parent is not None else self.root
            options = self.limits.get(self.name, {}) if self.limits else {}
            found = self._budget = _child(above, self.name, options)
        return found


class Span:
    """What shekel-llamaindex knows of one open span."""

    __slots__ = ("base", "call", "model", "step", "workflow")

    def __init__(
        self,
        base: Budget,
        step: Step | None,
        call: Call | None,
        model: str | None,
        workflow: bool,
    ) -> None:
        self.base = base  # the budget active where the span (or its outermost step) began
        self.step = step  # the innermost step around (itself included)
        self.call = call
        self.model = model
        self.workflow = workflow  # a workflow's run: its child spans without instance are steps

    @property
    def payer(self) -> Budget:
        """The budget paying for requests sent directly inside this span."""
        return self.base if self.step is None else self.step.budget()


_LIVE: Final[dict[str, Span]] = {}
"""Open spans by id (dict operations are atomic: no lock on the hot path)."""

_STREAM_LIMIT: Final = 1024
_streams: OrderedDict[str, Span] = OrderedDict()
"""Spans that returned a stream: their calls run later, when the stream is read. The newest
``_STREAM_LIMIT`` are kept (a stream nobody reads leaves nothing behind for long)."""
_streams_lock = threading.Lock()

STREAM_PAYER: Final[contextvars.ContextVar[Span | None]] = contextvars.ContextVar(
    "shekel_llamaindex_stream", default=None
)
"""Set while a wrapped response stream of a step produces its next item."""


def find(span_id: str | None) -> Span | None:
    if span_id is None:
        return None
    span = _LIVE.get(span_id)
    if span is None:
        span = _streams.get(span_id)
    return span


def current_span() -> Span | None:
    """The span of the code running here: a step's stream being read, else the innermost open
    span started under the budget active now."""
    streaming = STREAM_PAYER.get()
    if streaming is not None:
        return streaming
    span = find(active_span_id.get())
    if span is None or span.base is not current_budget():
        return None  # a budget entered inside the span takes over from the step
    return span


def payer_here() -> Budget | None:
    """The budget paying for work done here: the current span's, else the active budget."""
    span = current_span()
    return span.payer if span is not None else current_budget()


def payer_for_request(active: Budget | None) -> Budget | None:
    """The budget an intercepted request sent here is charged to, or ``None`` (the active
    budget pays). Marks the model call it belongs to as seen by the interceptor."""
    streaming = STREAM_PAYER.get()
    if streaming is not None:
        if streaming.call is not None:
            streaming.call.sdk = True
        return streaming.payer
    span = find(active_span_id.get())
    if span is None:
        return None
    if span.call is not None:
        span.call.sdk = True
    return span.payer if span.base is active else None


class Router:
    """The ``shekel_route_call`` plugin: asked by the interceptor at every request."""

    @hookimpl
    def shekel_route_call(self, active: Budget | None) -> CallRoute | None:
        payer = payer_for_request(active)
        return None if payer is None else CallRoute(payer)


_routing = [False]
_routing_lock = threading.Lock()


def start_routing() -> None:
    """Register :class:`Router` with shekel, once per process."""
    with _routing_lock:
        if not _routing[0]:
            plugin_manager().register(Router(), name="shekel-llamaindex-router")
            _routing[0] = True


# -- spans starting and ending -------------------------------------------------------------


def enter(span_id: str, instance: Any, parent_id: str | None) -> None:
    parent = find(parent_id)
    active = current_budget()
    if parent is not None and parent.base is not active:
        parent = None  # a budget was entered inside the parent span: start over under it
    if parent is None:
        if active is None:
            return
        base, step, call, model = active, None, None, None
    else:
        base, step, call, model = parent.base, parent.step, parent.call, parent.model
    method = _steps.method_of(span_id)
    name = _steps.step_of(instance, method)
    if name is None and instance is None and parent is not None and parent.workflow:
        name = method  # a step of the workflow running around it
    if name is not None and (step is None or step.name != name):
        limits = budgets_of(instance) if instance is not None else None
        if limits is None and step is not None:
            limits = step.limits
        step = Step(name, limits, step, base)
    kind = _steps.call_kind(instance, method)
    if kind is not None:
        if call is None:
            call = Call(kind)
        model = _steps.model_of(instance) or model
    workflow = name is not None and method == "run" and _steps.is_workflow(instance)
    _LIVE[span_id] = Span(base, step, call, model, workflow)


def leave(span_id: str, result: Any) -> None:
    span = _LIVE.pop(span_id, None)
    if span is None or not _lazy(result):
        return
    with _streams_lock:
        _streams[span_id] = span
        while len(_streams) > _STREAM_LIMIT:
            _streams.popitem(last=False)
    if span.step is not None:
        _route_stream(result, span)


def drop(span_id: str) -> None:
    _LIVE.pop(span_id, None)


def stream_done(span_id: str | None) -> bool:
    """Forget a span whose stream ended; True if it was one."""
    if span_id is None:
        return False
    with _streams_lock:
        return _streams.pop(span_id, None) is not None


def _child(payer: Budget, name: str, options: dict[str, Any]) -> Budget:
    """``payer``'s child for step ``name``, with the limits a handler sets for it; ``payer``
    itself when no child can be made there (with a warning saying why)."""
    if payer.name is None:
        _warn(
            payer,
            "",
            "LlamaIndex steps under a budget without a name are charged to that budget "
            "directly: name it (budget(..., name='rag')) to see each step as a child budget",
        )
        return payer
    label = budget_name(name)
    if payer.name == label:
        return payer  # a budget named after the step, entered by hand: never nest it in itself
    try:
        return payer.child(label, **options)
    except (BudgetConfigError, ValueError) as error:
        try:
            existing = payer.child(label)
        except (BudgetConfigError, ValueError):
            _warn(
                payer,
                label,
                f"LlamaIndex step {name!r} is charged to {payer.full_name!r} itself: no "
                f"child budget can be made there ({error}); nest fewer budgets around it",
            )
            return payer
        _warn(
            payer,
            label,
            f"{existing.full_name!r} already exists with other limits than "
            f"ShekelCallbackHandler sets for step {name!r}; it keeps its own ({error})",
        )
        return existing


_warned: weakref.WeakKeyDictionary[Budget, set[str]] = weakref.WeakKeyDictionary()
_warned_lock = threading.Lock()


def _warn(where: Budget, about: str, message: str) -> None:
    """Warn once per budget and subject (every query makes its steps anew)."""
    with _warned_lock:
        seen = _warned.setdefault(where, set())
        if about in seen:
            return
        seen.add(about)
    warnings.warn(message, ShekelLlamaIndexWarning, stacklevel=4)


# -- streams a step returns ------------------------------------------------------------------


def _lazy(result: Any) -> bool:
    """True for results whose model calls run when they are read (generators, LlamaIndex's
    streaming responses)."""
    if inspect.isgenerator(result) or inspect.isasyncgen(result):
        return True
    return type(result).__name__ in _STREAMING_TYPES


_STREAMING_TYPES: Final = frozenset(
    {"StreamingResponse", "AsyncStreamingResponse", "StreamingAgentChatResponse"}
)


def _route_stream(result: Any, span: Span) -> None:
    """Make the stream a step returned charge the step when it is read (a query engine with
    ``streaming=True`` sends its request only then, after the step's span has ended)."""
    gen = getattr(result, "response_gen", None)
    if type(result).__name__ == "StreamingResponse" and inspect.isgenerator(gen):
        result.response_gen = _routed(gen, span)
    elif type(result).__name__ == "AsyncStreamingResponse" and inspect.isasyncgen(gen):
        result.response_gen = _arouted(gen, span)


def _routed(gen: Iterator[Any], span: Span) -> Iterator[Any]:
    try:
        while True:
            token = STREAM_PAYER.set(span)
            try:
                item = next(gen)
            except StopIteration:
                return
            finally:
                STREAM_PAYER.reset(token)
            yield item
    finally:
        close = getattr(gen, "close", None)
        if close is not None:
            close()


async def _arouted(gen: AsyncIterator[Any], span: Span) -> AsyncIterator[Any]:
    try:
        while True:
            token = STREAM_PAYER.set(span)
            try:
                item = await gen.__anext__()
            except StopAsyncIteration:
                return
            finally:
                STREAM_PAYER.reset(token)
            yield item
    finally:
        aclose = getattr(gen, "aclose", None)
        if aclose is not None:
            await aclose()
