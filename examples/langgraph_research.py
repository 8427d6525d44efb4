"""A LangGraph research graph with per-node budgets that pauses at its cap instead of failing.

    uv run python examples/langgraph_research.py

The graph plans, searches three angles in parallel (``Send``), synthesizes, then writes. The
node code knows nothing of shekel: ``budgeted_graph`` gives the whole graph $0.054 (four calls)
and some nodes a cap of their own, and with ``on_exhausted="interrupt"`` the graph stops at the
cap with a LangGraph interrupt instead of an exception: here before ``synthesize`` starts. The
caller reads what ran out, raises the limit on the live budget, and resumes the same thread:
the graph goes on from the node that paused, and nothing before it runs again. (A node paused
in the middle, by a call refused or crossing the cap, is run again from its start.)

Offline: the models talk to shekel's fake OpenAI-compatible server
(``shekel.testing.FakeProvider``), which reports 3,000 input and 600 output tokens per call
(gpt-4o: $0.0135 a call).
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send

from shekel.testing import FakeProvider
from shekel_langgraph import budgeted_graph, is_budget_pause

ANGLES = ("market size", "competitors", "regulation")


class Research(TypedDict, total=False):
    topic: str
    angle: str
    findings: Annotated[list[str], operator.add]
    report: str


def build_graph(model: ChatOpenAI) -> Any:
    """An ordinary LangGraph graph, compiled with a checkpointer (needed to resume)."""

    def plan(state: Research) -> dict[str, Any]:
        model.invoke(f"Plan research on {state['topic']}")
        return {}

    def fan_out(state: Research) -> list[Send]:
        return [Send("search", {"topic": state["topic"], "angle": a}) for a in ANGLES]

    def search(state: Research) -> dict[str, Any]:
        answer = model.invoke(f"Research the {state['angle']} of {state['topic']}")
        return {"findings": [f"{state['angle']}: {answer.content}"]}

    def synthesize(state: Research) -> dict[str, Any]:
        model.invoke("Find the common threads in: " + "; ".join(state["findings"]))
        model.invoke("Rank the threads by importance")
        return {}

    def write(state: Research) -> dict[str, Any]:
        return {"report": str(model.invoke("Write the brief").content)}

    graph = StateGraph(Research)
    graph.add_node("plan", plan)
    graph.add_node("search", search)
    graph.add_node("synthesize", synthesize)
    graph.add_node("write", write)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan_out, ["search"])
    graph.add_edge("search", "synthesize")
    graph.add_edge("synthesize", "write")
    graph.add_edge("write", END)
    return graph.compile(checkpointer=InMemorySaver())


def main() -> None:
    with FakeProvider(default_text="a short finding") as fake:
        fake.set_usage(input_tokens=3_000, output_tokens=600)
        model = ChatOpenAI(model="gpt-4o", base_url=fake.openai_base_url, api_key="fake-key")

        app = budgeted_graph(
            build_graph(model),
            max_usd=0.054,
            name="research",
            nodes={"search": 0.05, "synthesize": 0.03, "write": 0.02},
            on_exhausted="interrupt",
        )
        thread: RunnableConfig = {"configurable": {"thread_id": "brief-1"}}

        result = app.invoke({"topic": "home batteries", "findings": []}, thread)
        for _ in range(3):  # a real caller would ask someone, or give up, before raising again
            if not result.get("__interrupt__"):
                break
            for pause in result["__interrupt__"]:
                if not is_budget_pause(pause.value):
                    raise SystemExit(f"the graph asks something else: {pause.value!r}")
                info = pause.value
                where = "before it started" if not info["started"] else "during a call"
                print(
                    f"Paused at node {info['node']!r} ({where}): budget {info['budget']!r} "
                    f"used ${info['spent']:.4f} of ${info['limit']:.4f}"
                )
            print(app.budget.tree())
            raised = round(app.budget.spent + 0.05, 2)
            print(f"Raising the graph's limit to ${raised:.2f} and resuming.\n")
            app.budget.set_limits(max_usd=raised)
            result = app.invoke(Command(resume="limit raised"), thread)

        print(f"Report: {result['report']}")
        print(f"Requests sent: {len(fake.requests)}, total ${app.budget.spent:.4f}")
        print(app.budget.tree())


if __name__ == "__main__":
    main()
