"""``budgeted_graph``: budgets for a compiled graph and its nodes, with no change to node code."""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping
from typing import Any

from langchain_core.runnables import Runnable
from langgraph.constants import END, START
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from shekel import Budget, BudgetConfigError, budget, budget_name, current_budget
from shekel.integration import Limits, UnmatchedNameWarning, child_of, parse_limits

from . import _node
from ._decorator import MARK
from ._errors import OnExhausted
from ._node import BudgetedNode, GraphSpec, NodeSpec, check_on_exhausted

AnyGraph = Pregel[Any, Any, Any, Any]


class BudgetedGraph(Pregel[Any, Any, Any, Any]):
    """A compiled graph (of the class given, e.g. ``CompiledStateGraph``) whose node runnables
    run inside their budgets; everything else is LangGraph's, with the same checkpoints. Made
    by :func:`budgeted_graph`; ``with_config()`` and LangGraph's copies keep it budgeted."""

    @property
    def budget(self) -> Budget:
        """The budget the nodes of a run started here nest under: the graph's child of the
        active budget (made now if the graph has not run there), else, outside any budget,
        the graph's own; with no level of its own, the active budget."""
        found = self._spec().budget_under(current_budget())
        if found is None:
            raise BudgetConfigError(
                f"the graph {self.get_name()!r} has no budget here: run it inside a budget, or "
                "give budgeted_graph limits of its own (max_usd=...)"
            )
        return found

    def node_budget(self, *path: str) -> Budget:
        """A node's budget under :attr:`budget` (made now, with its limits, if the node has not
        run there): ``node_budget("research")``, or ``node_budget("sub", "inner")`` for a node
        of a subgraph added as a node. For ``set_limits()`` before resuming a paused graph."""
        if not path:
            raise BudgetConfigError("node_budget() needs a node name, e.g. node_budget('research')")
        found = self.budget
        graph: AnyGraph | None = self
        for depth, name in enumerate(path):
            if graph is None:
                raise BudgetConfigError(
                    f"node_budget{path!r}: {path[depth - 1]!r} is not a subgraph added as a node"
                )
            _known(graph, name, "node_budget")
            bound = graph.nodes[name].bound
            inner = bound.inner if isinstance(bound, BudgetedNode) else bound
            spec = _decorated(inner) or getattr(bound, "spec", None) or NodeSpec()
            found = child_of(found, spec.name or budget_name(name), spec.options)
            graph = inner if isinstance(inner, Pregel) else None
        return found

    def _spec(self) -> GraphSpec:
        # Kept by the node wrappers, not on the graph: LangGraph's copies pass on its nodes.
        for node in self.nodes.values():
            if isinstance(node.bound, BudgetedNode) and node.bound.graph is not None:
                return node.bound.graph
        raise AssertionError("a budgeted graph's nodes are budgeted")


def budgeted_graph(
    graph: AnyGraph,
    max_usd: float | None = None,
    *,
    nodes: Mapping[str, Limits] | None = None,
    name: str | None = None,
    on_exhausted: OnExhausted = "raise",
    **options: Any,
) -> BudgetedGraph:
    """A copy of a compiled graph whose runs are budgeted; the graph itself is left as it is.

    Each node charges a child named after it (limits in ``nodes``) of the graph's budget: the
    child ``name`` (``"graph"`` when it has limits: ``max_usd`` and ``options``, any
    ``budget()`` option, applied when that child is made) of the budget active where the graph
    runs, so one wrapped graph serves every caller's budget; outside any budget, a budget of
    its own. With neither ``name`` nor limits, the nodes' children are made directly under the
    active budget. A subgraph added as a node nests its nodes under it. A node with no room
    left does not start: :class:`NodeBudgetExceededError` (``on_exhausted="raise"``) or a
    pause, a LangGraph interrupt carrying a :class:`BudgetPause` (``"interrupt"``).
    """
    given: object = graph  # checked at run time: callers without a type checker pass anything
    if isinstance(given, StateGraph):
        raise BudgetConfigError(
            "budgeted_graph takes a compiled graph: call .compile() on the StateGraph first "
            "(with checkpointer=... to pause and resume)"
        )
    if isinstance(given, BudgetedGraph):
        raise BudgetConfigError(
            "this graph is budgeted already; wrap the compiled graph it was made from"
        )
    if not isinstance(given, Pregel):
        raise BudgetConfigError(
            f"budgeted_graph takes a compiled LangGraph graph (StateGraph(...).compile() or an "
            f"@entrypoint), got {type(given).__name__}"
        )
    if max_usd is not None:
        options["max_usd"] = max_usd
    mode = check_on_exhausted(on_exhausted)
    if name is None and options:
        name = "graph"
    level_limits = {"graph" if name is None else name: options}
    [own] = parse_limits(level_limits, param="budgeted_graph", steps="names").values()
    limits = parse_limits(nodes, param="nodes", steps="LangGraph nodes")
    for node in limits:
        if node not in graph.nodes:
            _unmatched(graph, node)
        elif _decorated(graph.nodes[node].bound) is not None:
            raise BudgetConfigError(
                f"nodes[{node!r}]: node {node!r} is decorated with @budgeted_node, which sets its "
                "budget; give its limits in one place (the decorator, or nodes= without it)"
            )
    level = None if name is None else own.budget_name
    root = None if level is None else budget(name=level, **own.options)
    spec = GraphSpec(level, own.options, root, mode)
    _node.INTEGRATION.supported()  # warns once when this LangGraph is not one we support
    copy = _budgeted_copy(graph, spec, {n: NodeSpec(options=s.options) for n, s in limits.items()})
    cls = type(graph)
    if cls not in _CLASSES:  # the graph's own class (CompiledStateGraph...), budgeted
        _CLASSES[cls] = type(f"Budgeted{cls.__name__}", (BudgetedGraph, cls), {})
    copy.__class__ = _CLASSES[cls]
    return copy  # type: ignore[return-value]


_CLASSES: dict[type[AnyGraph], type[BudgetedGraph]] = {}


def _budgeted_copy(
    graph: AnyGraph, spec: GraphSpec | None, limits: Mapping[str, NodeSpec]
) -> AnyGraph:
    """A copy of ``graph`` (sharing its channels, edges, checkpointer and store) whose node
    runnables, and those of subgraphs added as nodes, run inside their budgets."""
    nodes = dict(graph.nodes)
    for name in _node_names(graph):
        bound = nodes[name].bound
        update: dict[str, Any] = {}
        if isinstance(bound, Pregel) and not isinstance(bound, BudgetedGraph):  # a subgraph
            bound = _budgeted_copy(bound, None, {})
            update["subgraphs"] = [bound]
        node = None if _decorated(bound) else limits.get(name, NodeSpec())
        update["bound"] = BudgetedNode(name, bound, node, spec)
        nodes[name] = nodes[name].copy(update)
    return graph.copy({"nodes": nodes})


def _decorated(bound: Runnable[Any, Any]) -> NodeSpec | None:
    """The spec of a node function decorated with ``@budgeted_node``, if ``bound`` runs one."""
    for attribute in ("func", "afunc"):
        spec = getattr(getattr(bound, attribute, None), MARK, None)
        if isinstance(spec, NodeSpec):
            return spec
    return None


def _node_names(graph: AnyGraph) -> list[str]:
    return [name for name in graph.nodes if name not in (START, END)]


def _close(graph: AnyGraph, node: str) -> str:
    close = difflib.get_close_matches(node, _node_names(graph), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _known(graph: AnyGraph, node: str, where: str) -> None:
    if node not in _node_names(graph):
        raise BudgetConfigError(f"{where}: the graph has no node {node!r}{_close(graph, node)}")


def _unmatched(graph: AnyGraph, node: str) -> None:
    warnings.warn(
        f"nodes[{node!r}] names no node of the graph {graph.get_name()!r}, so its limits apply "
        f"to nothing{_close(graph, node)}",
        UnmatchedNameWarning,
        stacklevel=3,
    )
