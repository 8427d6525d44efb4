"""One run of a LangGraph node inside its budgets, what ``@budgeted_node`` and ``budgeted_graph``
share: under the budget active where LangGraph runs the node, the graph's level (from
``budgeted_graph``), then the node's, each one child per parent and name (``child_of``: loops,
retries and ``Send`` branches add to it; not counted against the depth limit of hand-written
budgets). Nodes run with their budget active, so the interceptor charges their SDK calls to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final

from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.errors import GraphInterrupt
from langgraph.types import Interrupt

from shekel import Budget, BudgetConfigError, BudgetExceededError, budget_name, current_budget
from shekel.integration import Integration, activate, child_of, deactivate

from ._errors import NodeBudgetExceededError, OnExhausted, pause_of
from .package import _instruments

INTEGRATION = Integration(
    "shekel-langgraph", "LangGraph", _instruments, "langgraph", install=lambda: None
)
"""Nothing to install (no shekel plugin): the wrappers check the installed LangGraph when used
and run whatever it is."""

_OPEN: Final[ContextVar[str | None]] = ContextVar("shekel_langgraph_open_task", default=None)
"""The LangGraph task whose node budget is open here: a decorated helper called inside that
node nests under it by its own name instead of taking the node's name again."""

_MODE: Final[ContextVar[OnExhausted]] = ContextVar("shekel_langgraph_mode", default="raise")
"""``on_exhausted`` of the innermost ``budgeted_graph`` running here, for nodes that set none."""


def check_on_exhausted(value: object) -> OnExhausted:
    if value not in ("raise", "interrupt"):
        raise BudgetConfigError(
            f"on_exhausted must be 'raise' (NodeBudgetExceededError before the node starts) or "
            f"'interrupt' (pause the graph; needs a checkpointer to resume), got {value!r}"
        )
    return value


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A node's budget: its name (``None``: the LangGraph node's), the ``budget()`` options it
    is created with, and ``on_exhausted`` (``None``: the enclosing graph's, else raise)."""

    name: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    on_exhausted: OnExhausted | None = None


@dataclass(frozen=True, slots=True)
class GraphSpec:
    """A ``budgeted_graph``: the name and options of its own level (``name`` ``None``: no level,
    its nodes nest under the caller's budget), its budget for runs outside any budget, and
    ``on_exhausted`` for its nodes."""

    name: str | None
    options: Mapping[str, Any]
    own: Budget | None
    on_exhausted: OnExhausted

    def budget_under(self, parent: Budget | None) -> Budget | None:
        """The budget the graph's nodes nest under in a run where ``parent`` is active."""
        if parent is None or self.name is None:
            return parent or self.own
        return child_of(parent, self.name, self.options)


class NodeRun:
    """``with NodeRun(...):`` around one run of a node, sync or async: picks its budgets,
    refuses (or pauses) before the node starts, activates them while it runs, and turns a
    refusal inside it into a pause when the node may pause."""

    __slots__ = ("budget", "budgets", "graph", "mode", "node", "started", "task")

    def __init__(
        self,
        spec: NodeSpec | None,
        graph: GraphSpec | None,
        config: Mapping[str, Any] | None,
        fallback: str,
    ) -> None:
        metadata = (config or {}).get("metadata") or {}  # LangGraph's, inside a task
        node, task = metadata.get("langgraph_node"), metadata.get("langgraph_checkpoint_ns")
        self.node: str = node if isinstance(node, str) else fallback
        self.task: str | None = task if isinstance(task, str) else None
        self.graph = graph
        self.budget: Budget | None = None
        self.budgets: list[Budget] = []
        self.started: list[tuple[Any, Any]] = []  # what __exit__ ends, in order
        mode = spec.on_exhausted if spec is not None else None
        self.mode: OnExhausted = mode or (graph.on_exhausted if graph else _MODE.get())
        parent = current_budget()
        if graph is not None:
            under = graph.budget_under(parent)
            if under is None:
                INTEGRATION.warn_outside_budget("a graph made by budgeted_graph()")
                return
            if under is not parent:
                self.budgets.append(under)
            parent = under
        if spec is None:
            return
        if parent is None:
            if spec.options:
                INTEGRATION.warn_outside_budget(f"@budgeted_node {self.node!r}")
            return
        if spec.name is not None:
            name = spec.name
        elif self.task is not None and _OPEN.get() != self.task:
            name = budget_name(self.node)
        else:  # outside LangGraph, or a helper inside a node whose budget is open
            name = budget_name(fallback)
        self.budget = child_of(parent, name, spec.options)
        self.budgets.append(self.budget)

    def __enter__(self) -> NodeRun:
        if self.budget is not None:
            try:
                self.budget.check()
            except BudgetExceededError as refusal:
                if self.pauses:
                    raise self.pause(refusal, started=False) from None
                raise NodeBudgetExceededError.refusing(
                    refusal, node=self.node, node_budget=self.budget.full_name
                ) from None
            self.started.append((_OPEN, _OPEN.set(self.task)))
        if self.graph is not None:
            self.started.append((_MODE, _MODE.set(self.graph.on_exhausted)))
        try:
            for budget in self.budgets:
                self.started.append((budget, activate(budget)))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for owner, token in reversed(self.started):
            if isinstance(owner, Budget):
                deactivate(token)
            else:
                owner.reset(token)
        self.started.clear()
        if isinstance(error, BudgetExceededError) and self.pauses and self._owns(error):
            raise self.pause(error, started=True) from None

    @property
    def pauses(self) -> bool:
        """True if this run pauses the graph rather than raise: inside a LangGraph task, with
        ``on_exhausted="interrupt"``."""
        return self.task is not None and self.budget is not None and self.mode == "interrupt"

    def _owns(self, error: BudgetExceededError) -> bool:
        """True when ``error`` is of the node's budget or an ancestor: raising that limit lets
        the node go on (a budget the node opened itself is new at every run)."""
        walk = self.budget
        while walk is not None and walk.full_name != error.budget_name:
            walk = walk.parent
        return walk is not None

    def pause(self, error: BudgetExceededError, *, started: bool) -> GraphInterrupt:
        """The interrupt pausing the graph here. Raised as ``interrupt()`` raises it, but it takes
        no place among the node's own ``interrupt()`` answers: a budget pause needs none."""
        assert self.budget is not None
        value = pause_of(error, node=self.node, node_budget=self.budget.full_name, started=started)
        return GraphInterrupt((Interrupt.from_ns(value, f"{self.task}|shekel-budget"),))


class BudgetedNode(Runnable[Any, Any]):
    """A node's runnable inside the graph's level and the node's (``spec``: ``None`` for a
    node decorated with ``@budgeted_node``, which makes its own)."""

    def __init__(
        self, name: str, inner: Runnable[Any, Any], spec: NodeSpec | None, graph: GraphSpec | None
    ) -> None:
        self.node_name, self.inner, self.spec, self.graph = name, inner, spec, graph

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        with NodeRun(self.spec, self.graph, config, self.node_name):
            return self.inner.invoke(input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        with NodeRun(self.spec, self.graph, config, self.node_name):
            return await self.inner.ainvoke(input, config, **kwargs)

    def __repr__(self) -> str:
        return f"BudgetedNode({self.node_name!r}, {self.inner!r})"
