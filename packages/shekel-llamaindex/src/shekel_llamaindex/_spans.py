"""Open LlamaIndex spans, which of them are steps, and the budget paying inside each: a step's
child of the budget of the step around it, or of the budget active where the outermost step
began, made on first charge (steps that spend nothing leave no line in ``tree()``). Nothing is
activated: the core asks :func:`route` at send time, which reads LlamaIndex's ``active_span_id``.

A span id is ``"<ConcreteClass>.<method>-<uuid4>"`` and comes with the instance: steps are
matched by base class and method. Classes are looked up in ``sys.modules``, importing nothing.
"""

from __future__ import annotations

import contextvars
import inspect
import sys
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, Generator
from contextlib import aclosing, closing
from dataclasses import dataclass
from typing import Any, Final

from llama_index.core import Settings
from llama_index_instrumentation.span import active_span_id

from shekel import Budget, budget_name, current_budget
from shekel.integration import CallRoute, child_of

from ._handler import ShekelCallbackHandler

_STEPS: Final = (  # the step, the base class (in llama_index.core), its methods that are it
    ("query", "base.base_query_engine.BaseQueryEngine", ("query", "aquery")),
    ("retrieve", "base.base_retriever.BaseRetriever", ("retrieve", "aretrieve")),
    ("synthesize", "response_synthesizers.base.BaseSynthesizer", ("synthesize", "asynthesize")),
    ("chat", "chat_engine.types.BaseChatEngine", ("chat", "achat", "stream_chat", "astream_chat")),
)
AGENTS: Final = (  # each is one step: its workflow steps are LlamaIndex's own
    "agent.workflow.base_agent.BaseWorkflowAgent",
    "agent.workflow.multi_agent_workflow.AgentWorkflow",
)
_LLM = ("chat", "complete", "stream_chat", "stream_complete")  # one model call each, nested too
_LLM_CALLS: Final = frozenset(prefix + method for method in _LLM for prefix in ("", "a", "_", "_a"))
_STREAMING: Final = ("StreamingResponse", "AsyncStreamingResponse", "StreamingAgentChatResponse")


@dataclass(slots=True)
class Call:  # one model call, shared by the nested LLM method spans that make it
    sdk: bool = False  # a request of it went out through the intercepted SDKs
    reported: bool = False  # its usage was recorded from LlamaIndex's events


@dataclass(slots=True)
class Step:
    name: str
    handler: ShekelCallbackHandler | None  # its component's, or the enclosing step's
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


_LIVE: Final[dict[str, Span]] = {}  # by span id (no lock: dict operations are atomic)
_streams: OrderedDict[str, Span] = OrderedDict()  # spans whose result is read later (newest)
_streams_lock = threading.Lock()
STREAM_PAYER: Final = contextvars.ContextVar[Span | None]("shekel_stream", default=None)
"""Set while a step's stream produces its next item (its request goes out then)."""


def find(span_id: str | None) -> Span | None:
    return None if span_id is None else _LIVE.get(span_id) or _streams.get(span_id)


def payer_here() -> Budget | None:
    """The budget paying for what runs here: a step's stream being read, else the innermost
    open span, unless a budget was entered inside it; else the active budget."""
    span = STREAM_PAYER.get()
    if span is None and (span := find(active_span_id.get())) is not None:
        span = span if span.base is current_budget() else None
    return span.payer if span is not None else current_budget()


def live() -> bool:
    """Whether :func:`route` could name a budget now: a step is open or its stream unread."""
    return bool(_LIVE or _streams) or STREAM_PAYER.get() is not None


def route(active: Budget | None) -> CallRoute | None:
    """The router: the budget paying for a request sent here, if a step's (the request's model
    call is marked as seen by the interceptor)."""
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
    method = span_id[:-37].rpartition(".")[2]  # "-" and a uuid4 end it
    name = step_of(instance, method)
    if name is None and instance is None and parent is not None and parent.workflow:
        name = method  # a step of the workflow running around it
    if name is not None and (step is None or step.name != name):
        handler = handler_of(instance) or (step.handler if step is not None else None)
        if handler is not None:
            handler.saw(base, name)
        step = Step(name, handler, step, base)
    llm = method in _LLM_CALLS and _is(instance, "base.llms.base.BaseLLM")
    if llm or _is(instance, "base.embeddings.base.BaseEmbedding"):
        call = call or Call()
        model = model_of(instance) or model
    workflow = name is not None and method == "run" and is_workflow(instance)
    workflow = workflow and not any(_is(instance, path) for path in AGENTS)
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


def loaded(path: str, root: str = "llama_index.core.") -> Any:
    module, _, name = (root + path).rpartition(".")
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) else None


def _is(instance: Any, path: str, root: str = "llama_index.core.") -> bool:
    cls = loaded(path, root)
    return cls is not None and isinstance(instance, cls)


def is_workflow(instance: Any) -> bool:
    return _is(instance, "workflow.Workflow", "workflows.")


def step_of(instance: Any, method: str) -> str | None:
    """The step a span is, if any: a workflow's ``run`` is named after its agent or class."""
    for step, path, methods in _STEPS:
        if method in methods and _is(instance, path):
            return step
    if method == "run" and is_workflow(instance):
        name = getattr(instance, "name", None) if _is(instance, AGENTS[0]) else None
        return name if isinstance(name, str) and name else type(instance).__name__
    return None


def model_of(instance: Any) -> str | None:
    try:  # a user's ``metadata`` property may raise: the name is only a label
        name = getattr(instance, "model", None) or getattr(instance, "model_name", None)
        name = name or instance.metadata.model_name
    except Exception:
        return None
    return name if isinstance(name, str) else None


def handler_of(instance: Any) -> ShekelCallbackHandler | None:
    """The handler in ``instance``'s callback manager (a workflow has none: Settings')."""
    try:
        manager = instance.callback_manager
    except AttributeError:
        manager = Settings.callback_manager if is_workflow(instance) else None
    except Exception:  # a property that raises: no usable manager
        return None
    handlers = getattr(manager, "handlers", None) or ()
    return next((h for h in handlers if isinstance(h, ShekelCallbackHandler)), None)
