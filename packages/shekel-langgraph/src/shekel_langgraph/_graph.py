"""``budgeted_graph``: a budget for a compiled graph and one per node, with no change to node
code."""

from __future__ import annotations

import difflib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from shekel import Budget, BudgetConfigError, budget, budget_name

from ._errors import OnExhausted
from ._node import GRAPH_MODES, NodeSpec, check_on_exhausted, check_options, node_budget
from ._wrap import budgeted_copy, decorated, node_names
from .package import warn_if_unsupported

T = TypeVar("T")

AnyGraph = Pregel[Any, Any, Any, Any]
NodeLimit = float | int | Decimal | str | Mapping[str, Any]


class BudgetedGraph:
    """A compiled LangGraph graph whose runs are charged to :attr:`budget`, each node's to a
    child of it. Made by :func:`budgeted_graph`.

    ``invoke``, ``ainvoke``, ``stream``, ``astream``, ``astream_events``, ``astream_log``,
    ``batch``, ``abatch``, ``batch_as_completed`` and ``abatch_as_completed`` run the graph with
    its budget active (nested under the budget active where they are called, if any);
    ``with_config`` gives a budgeted graph sharing the budget. Every other attribute is the
    compiled graph's (:attr:`graph`): ``get_state``, ``update_state``, ``get_graph``... act on
    it directly, and read and write the same checkpoints.
    """

    def __init__(
        self,
        graph: AnyGraph,
        runner: AnyGraph,
        graph_budget: Budget,
        specs: Mapping[str, NodeSpec],
    ) -> None:
        self.graph = graph
        """The compiled graph, as given."""
        self.budget = graph_budget
        """The graph's budget: accumulates across runs until ``reset()``."""
        self._runner = runner
        self._specs = specs

    # -- runs ------------------------------------------------------------------------------

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        with self.budget:
            return self._runner.invoke(input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        async with self.budget:
            return await self._runner.ainvoke(input, config, **kwargs)

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        return _metered(self.budget, self._runner.stream(input, config, **kwargs))

    def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        return _ametered(self.budget, self._runner.astream(input, config, **kwargs))

    def astream_events(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        return _ametered(self.budget, self._runner.astream_events(input, config, **kwargs))

    def astream_log(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        return _ametered(self.budget, self._runner.astream_log(input, config, **kwargs))

    def batch(
        self,
        inputs: Sequence[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        **kwargs: Any,
    ) -> list[Any]:
        with self.budget:
            return self._runner.batch(list(inputs), config, **kwargs)

    async def abatch(
        self,
        inputs: Sequence[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        **kwargs: Any,
    ) -> list[Any]:
        async with self.budget:
            return await self._runner.abatch(list(inputs), config, **kwargs)

    def batch_as_completed(
        self,
        inputs: Sequence[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        **kwargs: Any,
    ) -> Iterator[tuple[int, Any]]:
        return _metered(
            self.budget, self._runner.batch_as_completed(list(inputs), config, **kwargs)
        )

    def abatch_as_completed(
        self,
        inputs: Sequence[Any],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[tuple[int, Any]]:
        return _ametered(
            self.budget, self._runner.abatch_as_completed(list(inputs), config, **kwargs)
        )

    def with_config(self, config: RunnableConfig | None = None, **kwargs: Any) -> BudgetedGraph:
        """The same budgeted graph with a config bound (``recursion_limit``, ``configurable``...);
        it shares this one's budget."""
        return BudgetedGraph(
            self.graph.with_config(config, **kwargs),
            self._runner.with_config(config, **kwargs),
            self.budget,
            self._specs,
        )

    # -- budgets ---------------------------------------------------------------------------

    def node_budget(self, *path: str) -> Budget:
        """The budget of a node (``node_budget("research")``), or of a node inside a subgraph
        used as a node (``node_budget("sub", "inner")``): the object whose ``spent`` and
        ``set_limits()`` are that node's. Created (with its configured limits) if the node has
        not run yet."""
        if not path:
            raise BudgetConfigError("node_budget() needs a node name, e.g. node_budget('research')")
        graph: AnyGraph | None = self.graph
        found = self.budget
        for depth, name in enumerate(path):
            if graph is None:
                raise BudgetConfigError(
                    f"node_budget{path!r}: {path[depth - 1]!r} is not a subgraph used as a node"
                )
            _known(graph, name, "node_budget")
            bound = graph.nodes[name].bound
            spec = decorated(bound) or (self._specs.get(name) if depth == 0 else None)
            spec = spec or NodeSpec()
            found = node_budget(found, spec.name or budget_name(name), spec)
            graph = bound if isinstance(bound, Pregel) else None
        return found

    # -- the rest is the compiled graph's -----------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        # Only called for names this object lacks; its own (and dunder lookups made before
        # __init__ ran, as copy and pickle do) must not recurse into the graph.
        if name.startswith("__") or name in ("graph", "budget", "_runner", "_specs"):
            raise AttributeError(name)
        return getattr(self.graph, name)

    def __repr__(self) -> str:
        return f"<BudgetedGraph {self.budget!r} over {self.graph.get_name()!r}>"


def budgeted_graph(
    graph: AnyGraph,
    max_usd: float | None = None,
    *,
    nodes: Mapping[str, NodeLimit] | None = None,
    name: str = "graph",
    on_exhausted: OnExhausted = "raise",
    **options: Any,
) -> BudgetedGraph:
    """Budget a compiled graph without touching its node code.

    Every run is charged to one budget named ``name`` (``max_usd`` and any other ``budget()``
    option: ``max_tokens``, ``max_llm_calls``, ``warn_at``...), which accumulates across runs
    and nests under the budget active where the graph is run. Each node's runs are charged to a
    child named after the node, reused across loops, retries and parallel ``Send`` branches; a
    subgraph added as a node nests its own nodes under it. ``nodes`` gives limits per node:
    ``{"research": 0.50}`` (USD) or ``{"research": {"max_usd": 0.5, "max_llm_calls": 3}}``.

    Before each node run its budget and every ancestor are checked: with no room for another
    LLM call the node does not start, and :class:`NodeBudgetExceededError` is raised
    (``on_exhausted="raise"``) or the graph pauses with a LangGraph interrupt carrying a
    :class:`BudgetPause` (``"interrupt"``; resuming needs a checkpointer). Nodes decorated
    with ``@budgeted_node`` keep their decorator's limits (and its ``on_exhausted``, if set).
    """
    given: object = graph  # checked at run time: callers without a type checker pass anything
    if isinstance(given, StateGraph):
        raise BudgetConfigError(
            "budgeted_graph takes a compiled graph: call .compile() on the StateGraph first "
            "(with checkpointer=... to pause and resume)"
        )
    if not isinstance(given, Pregel):
        raise BudgetConfigError(
            f"budgeted_graph takes a compiled LangGraph graph (StateGraph(...).compile() or an "
            f"@entrypoint), got {type(given).__name__}"
        )
    how = check_on_exhausted(on_exhausted)
    specs = _node_specs(graph, nodes or {})
    graph_budget = budget(max_usd, name=name, **options)
    GRAPH_MODES[graph_budget] = how
    warn_if_unsupported()
    runner = budgeted_copy(graph, lambda node: specs.get(node, NodeSpec()))
    return BudgetedGraph(graph, runner, graph_budget, specs)


def _node_specs(graph: AnyGraph, limits: Mapping[str, NodeLimit]) -> dict[str, NodeSpec]:
    specs: dict[str, NodeSpec] = {}
    for node, limit in limits.items():
        _known(graph, node, "nodes")
        where = f"nodes[{node!r}]"
        if isinstance(limit, Mapping):
            options = check_options(limit, where)
        elif isinstance(limit, float | int | Decimal | str) and not isinstance(limit, bool):
            options = check_options({"max_usd": limit}, where)
        else:
            raise BudgetConfigError(
                f"{where} must be a USD limit (0.5) or budget() options "
                f"({{'max_usd': 0.5, 'max_llm_calls': 3}}), got {limit!r}"
            )
        spec = decorated(graph.nodes[node].bound)
        if spec is not None:
            raise BudgetConfigError(
                f"{where}: node {node!r} is decorated with @budgeted_node, which sets its "
                "budget; give its limits in one place (the decorator, or nodes= without it)"
            )
        specs[node] = NodeSpec(options=options)
    return specs


def _known(graph: AnyGraph, node: object, where: str) -> None:
    known = node_names(graph)
    if node not in known:
        close = difflib.get_close_matches(str(node), known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        raise BudgetConfigError(
            f"{where}: the graph has no node {node!r}{hint} Its nodes are: "
            f"{', '.join(map(repr, known))}"
        )


def _metered(budget_: Budget, inner: Iterator[T]) -> Iterator[T]:
    """Yield ``inner``'s items, with ``budget_`` active only while ``inner`` computes the
    next one (never in the caller's code between items)."""
    try:
        while True:
            activation = budget_.activate()
            try:
                item = next(inner)
            except StopIteration:
                return
            finally:
                budget_.deactivate(activation)
            yield item
    finally:
        close = getattr(inner, "close", None)
        if close is not None:
            activation = budget_.activate()
            try:
                close()
            finally:
                budget_.deactivate(activation)


async def _ametered(budget_: Budget, inner: AsyncIterator[T]) -> AsyncIterator[T]:
    """The async counterpart of :func:`_metered`."""
    iterator = inner.__aiter__()
    try:
        while True:
            activation = budget_.activate()
            try:
                item = await iterator.__anext__()
            except StopAsyncIteration:
                return
            finally:
                budget_.deactivate(activation)
            yield item
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            activation = budget_.activate()
            try:
                await aclose()
            finally:
                budget_.deactivate(activation)
