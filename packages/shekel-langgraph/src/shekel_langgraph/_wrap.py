"""A copy of a compiled graph whose nodes run inside their budgets.

The compiled graph is left as it is. The copy shares its channels, edges, checkpointer and
store (so it reads and writes the same checkpoints); only the ``bound`` runnable of each node is
wrapped, and a subgraph used as a node is copied the same way, one level down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.constants import END, START
from langgraph.pregel import Pregel

from ._decorator import MARK
from ._node import NodeSpec, run_async, run_sync


class BudgetedNode(Runnable[Any, Any]):
    """A node's runnable, run as one run of a budgeted node (see ``_node``)."""

    def __init__(self, name: str, inner: Runnable[Any, Any], spec: NodeSpec) -> None:
        self.node_name = name
        self.inner = inner
        self.spec = spec

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return run_sync(
            self.spec, config, self.node_name, lambda: self.inner.invoke(input, config, **kwargs)
        )

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await run_async(
            self.spec, config, self.node_name, lambda: self.inner.ainvoke(input, config, **kwargs)
        )

    def __repr__(self) -> str:
        return f"BudgetedNode({self.node_name!r}, {self.inner!r})"


def decorated(bound: Runnable[Any, Any]) -> NodeSpec | None:
    """The spec of a node function decorated with ``@budgeted_node``, if ``bound`` runs one."""
    for attribute in ("func", "afunc"):
        function = getattr(bound, attribute, None)
        spec = getattr(function, MARK, None)
        if isinstance(spec, NodeSpec):
            return spec
    return None


def node_names(graph: Pregel[Any, Any, Any, Any]) -> list[str]:
    """The graph's own nodes, as written in ``add_node``."""
    return [name for name in graph.nodes if name not in (START, END)]


def budgeted_copy(
    graph: Pregel[Any, Any, Any, Any], spec_for: Callable[[str], NodeSpec]
) -> Pregel[Any, Any, Any, Any]:
    """A copy of ``graph`` whose nodes (and the nodes of subgraphs used as nodes) run inside
    their budgets; nodes decorated with ``@budgeted_node`` are left to the decorator."""
    nodes = dict(graph.nodes)
    for name in node_names(graph):
        node = nodes[name]
        bound = node.bound
        if decorated(bound) is not None:
            continue
        update: dict[str, Any] = {}
        if isinstance(bound, Pregel):
            bound = budgeted_copy(bound, lambda _: NodeSpec())
            update["subgraphs"] = [bound]
        update["bound"] = BudgetedNode(name, bound, spec_for(name))
        nodes[name] = node.copy(update)
    return graph.copy({"nodes": nodes})
