"""LangGraph node budgets: what ``@budgeted_node`` and ``budgeted_graph`` add to each node run.

Run ``python benchmarks/bench_langgraph.py`` (or ``nox -s bench`` for every suite). Prints one
JSON document (see ``_harness.py``). ``--quick`` runs fewer, shorter repeats.

One graph of ``NODES`` trivial nodes in a chain (each returns a one-key update; no LLM call, so
nothing but LangGraph and shekel is timed), built three ways from the same node functions:
undecorated, every node ``@budgeted_node``, and undecorated under ``budgeted_graph``. All three
are invoked inside the same ``with budget(...)`` block, in the same process, in repeats that
rotate their order (this machine's speed drifts over minutes). A figure is µs per node run
(invoke time / ``NODES``); an overhead is median(with shekel) − median(undecorated), with the
best case min − min in brackets.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Callable
from typing import Any, TypedDict

import langgraph
from langgraph.graph import END, START, StateGraph

import _harness as h
import shekel
import shekel_langgraph
from shekel_langgraph import budgeted_graph, budgeted_node

NODES = 10

NOTES = [
    f"- A chain of {NODES} trivial nodes (each returns a one-key state update, no LLM call),"
    " invoked with `graph.invoke(...)` / `await graph.ainvoke(...)` inside"
    " `with budget(max_usd=1e9, name='bench')`. *Per node run* = invoke time / nodes.",
    "- *Undecorated*: the plain graph, the budget active around it (shekel's HTTP interception"
    " would still charge the active budget). *@budgeted_node*: every node decorated, each run"
    " charging `bench.<node>` (get the child, check it, enter and leave it). *budgeted_graph*:"
    " the undecorated graph wrapped, each run charging `bench.graph.<node>`.",
    "- *Overhead* = median(per node run with shekel) − median(per node run undecorated), in"
    " brackets min − min (the best repeats); `paired_median` is the median of the per-round"
    " differences. LangGraph's own cost per node run is the undecorated figure.",
]


class State(TypedDict, total=False):
    step: int


def sizes_for(quick: bool) -> dict[str, int]:
    if quick:
        return {"invokes": 20, "repeats": 3}
    return {"invokes": 200, "repeats": 15}


def chain(decorate: Callable[[Any], Any], *, is_async: bool) -> Any:
    graph = StateGraph(State)
    previous = START
    for i in range(NODES):
        if is_async:

            async def node(state: State, i: int = i) -> dict[str, int]:
                return {"step": i}

        else:

            def node(state: State, i: int = i) -> dict[str, int]:  # type: ignore[misc]
                return {"step": i}

        name = f"n{i}"
        graph.add_node(name, decorate(node))
        graph.add_edge(previous, name)
        previous = name
    graph.add_edge(previous, END)
    return graph.compile()


def variants(is_async: bool) -> dict[str, Any]:
    return {
        "plain": chain(lambda f: f, is_async=is_async),
        "decorated": chain(budgeted_node, is_async=is_async),
        "graph": budgeted_graph(chain(lambda f: f, is_async=is_async), name="graph"),
    }


def measure(is_async: bool, sizes: dict[str, int]) -> dict[str, list[float]]:
    graphs = variants(is_async)
    samples: dict[str, list[float]] = {name: [] for name in graphs}
    invokes = sizes["invokes"]
    loop = asyncio.new_event_loop() if is_async else None

    def run(graph: Any, n: int) -> None:
        if loop is not None:

            async def many() -> None:
                for _ in range(n):
                    await graph.ainvoke({"step": -1})

            loop.run_until_complete(many())
        else:
            for _ in range(n):
                graph.invoke({"step": -1})

    try:
        with shekel.budget(max_usd=1e9, name="bench"):
            for graph in graphs.values():
                run(graph, max(invokes // 10, 1))  # warm-up
            order = list(graphs)
            for repeat in range(sizes["repeats"]):
                for name in order[repeat % 3 :] + order[: repeat % 3]:
                    t0 = time.perf_counter_ns()
                    run(graphs[name], invokes)
                    samples[name].append((time.perf_counter_ns() - t0) / invokes / NODES / 1_000)
    finally:
        if loop is not None:
            loop.close()
    return samples


def overhead_figure(
    key: str, label: str, samples: dict[str, list[float]], name: str
) -> dict[str, Any]:
    """median(ours) - median(undecorated), best case min(ours) - min(undecorated) in brackets,
    and the median of per-round differences as ``paired_median``."""
    ours, plain = samples[name], samples["plain"]
    return h.figure(
        key,
        label,
        "µs/op",
        value=statistics.median(ours) - statistics.median(plain),
        extra={
            "min": min(ours) - min(plain),
            "max": None,
            "repeats": len(ours),
            "paired_median": statistics.median(a - b for a, b in zip(ours, plain, strict=True)),
        },
    )


def build_figures(sync: dict[str, list[float]], aio: dict[str, list[float]]) -> list[Any]:
    figures = []
    for mode, samples in (("sync", sync), ("async", aio)):
        call = "invoke" if mode == "sync" else "ainvoke"
        figures += [
            h.figure(
                f"langgraph.{mode}.node_run.plain",
                f"{mode} node run, undecorated ({call}, budget active)",
                "µs/op",
                samples["plain"],
            ),
            h.figure(
                f"langgraph.{mode}.node_run.budgeted_node",
                f"{mode} node run with @budgeted_node",
                "µs/op",
                samples["decorated"],
            ),
            h.figure(
                f"langgraph.{mode}.node_run.budgeted_graph",
                f"{mode} node run under budgeted_graph",
                "µs/op",
                samples["graph"],
            ),
            overhead_figure(
                f"langgraph.{mode}.overhead.budgeted_node",
                f"{mode}: overhead of @budgeted_node per node run",
                samples,
                "decorated",
            ),
            overhead_figure(
                f"langgraph.{mode}.overhead.budgeted_graph",
                f"{mode}: overhead of budgeted_graph per node run",
                samples,
                "graph",
            ),
        ]
    return figures


def main(argv: list[str] | None = None) -> None:
    args, sizes = h.suite_args(argv, __doc__.splitlines()[0], sizes_for)
    h.log("langgraph: measuring sync node runs ...")
    sync = measure(False, sizes)
    h.log("langgraph: measuring async node runs ...")
    aio = measure(True, sizes)
    h.log(
        "langgraph: median µs per node run "
        + ", ".join(f"{k}={statistics.median(v):.1f}" for k, v in sync.items())
    )
    h.emit(
        {
            "suite": "langgraph",
            "shekel_version": shekel.__version__,
            "shekel_langgraph_version": shekel_langgraph.__version__,
            "langgraph_version": getattr(langgraph, "__version__", None) or _version("langgraph"),
            "quick": args.quick,
            "sizes": {**sizes, "nodes": NODES},
            "figures": build_figures(sync, aio),
            "notes": NOTES,
        }
    )


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
