"""Tool calls a ``ToolNode`` runs in an agent loop: counted in the node's budget before the tool
runs (by shekel-langchain: they are LangChain tool runs), and a loop repeating the same call is
stopped by ``loop_guard``. The ``ToolNode`` hands a refused call's error to the model as the
tool's answer (``handle_tool_errors=True``; langgraph-prebuilt 1.0.0 does so by default)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import StructuredTool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from lg_support import ask

from shekel import budget
from shekel.testing import FakeProvider
from shekel_langgraph import budgeted_graph


def agent_loop(model: ChatOpenAI, queries: list[str], searched: list[str]) -> Any:
    """agent -> tools -> agent...: each turn the agent calls the model, then asks for the next
    search in ``queries`` (the same tool call again when a query repeats); it stops when
    ``queries`` runs out."""

    def agent(state: MessagesState) -> dict[str, Any]:
        turn = sum(isinstance(m, AIMessage) for m in state["messages"])
        model.invoke(ask("agent", f"turn {turn}"))  # a new question each turn
        if turn == len(queries):
            return {"messages": [AIMessage(content="done")]}
        call = {"name": "search", "args": {"query": queries[turn]}, "id": f"call-{turn}"}
        return {"messages": [AIMessage(content="", tool_calls=[call])]}

    def search(query: str) -> str:
        searched.append(query)
        return f"results for {query}"

    tool = StructuredTool.from_function(search, description="Searches the web.")
    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([tool], handle_tool_errors=True))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", lambda s: "tools" if s["messages"][-1].tool_calls else END)
    graph.add_edge("tools", "agent")
    return graph.compile()


def test_loop_guard_stops_the_same_tool_call_before_it_runs_again(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    searched: list[str] = []
    app = budgeted_graph(agent_loop(model, ["shekel"] * 4, searched))
    with budget(max_usd=5, name="app", loop_guard=3) as scope:
        result = app.invoke({"messages": []})
    assert searched == ["shekel", "shekel"]  # the third and fourth identical calls never ran
    answers = [str(m.content) for m in result["messages"] if isinstance(m, ToolMessage)]
    assert answers[:2] == ["results for shekel"] * 2
    for refused in answers[2:]:  # the error, as the model reads it
        assert refused.startswith("Error: LoopGuardError(")
        assert "stopped a repeated call: the call of tool" in refused
        assert "was about to run for the 3rd time; it was not sent" in refused
    assert len(answers) == 4
    assert scope.child("tools").snapshot().tool_calls_used == 2
    assert scope.snapshot().tool_calls_used == 2


def test_loop_guard_tells_calls_apart_by_their_arguments(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    searched: list[str] = []
    queries = ["shekel", "budgets", "shekel", "budgets"]
    app = budgeted_graph(agent_loop(model, queries, searched), nodes={"tools": None})
    with budget(max_usd=5, name="app", loop_guard=3) as scope:
        app.invoke({"messages": []})
    assert searched == queries  # each call twice at most: no loop
    assert scope.child("tools").snapshot().tool_calls_used == 4


def test_a_tool_nodes_cap_stops_the_call_past_it(fake: FakeProvider, model: ChatOpenAI) -> None:
    searched: list[str] = []
    app = budgeted_graph(
        agent_loop(model, ["a", "b", "c"], searched), nodes={"tools": {"max_tool_calls": 2}}
    )
    with budget(max_usd=5, name="app") as scope:
        result = app.invoke({"messages": []})
    assert "Raise max_tool_calls" in result["messages"][-2].content  # the third call's answer
    assert searched == ["a", "b"]
    assert scope.child("tools").snapshot().tool_calls_used == 2
