"""Tool runs count against ``max_tool_calls`` and ``tool_prices``, are checked before the tool
runs, and are not counted when the tool fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import StructuredTool, ToolException, tool
from langchain_openai import ChatOpenAI
from lc_support import Tracer, run

from shekel import LoopGuardError, ToolBudgetExceededError, budget
from shekel.testing import FakeProvider
from shekel_langchain import ShekelCallbackHandler, run_budgets


def counting_tool(calls: list[str], *, fail: Exception | None = None) -> StructuredTool:
    def lookup(query: str) -> str:
        """Look something up."""
        calls.append(query)
        if fail is not None:
            raise fail
        return f"found {query}"

    return StructuredTool.from_function(lookup, handle_tool_error=isinstance(fail, ToolException))


@pytest.mark.parametrize("explicit", [True, False], ids=["handler", "zero-config"])
def test_a_tool_is_refused_before_it_runs_at_max_tool_calls(explicit: bool) -> None:
    calls: list[str] = []
    lookup = counting_tool(calls)
    config: Any = {"callbacks": [ShekelCallbackHandler()]} if explicit else {}
    with budget(max_tool_calls=2, name="root") as root:
        lookup.invoke("a", config=config)
        lookup.invoke("b", config=config)
        with pytest.raises(ToolBudgetExceededError) as refused:
            lookup.invoke("c", config=config)
    assert calls == ["a", "b"]
    assert (refused.value.sent, refused.value.tool_name) == (False, "lookup")
    assert root.snapshot().tool_calls_used == 2


def test_tool_prices_are_charged_and_checked_before_the_tool_runs() -> None:
    calls: list[str] = []
    lookup = counting_tool(calls)
    with budget(max_usd=0.025, name="root", tool_prices={"lookup": 0.01}) as root:
        lookup.invoke("a")
        lookup.invoke("b")
        with pytest.raises(ToolBudgetExceededError):
            lookup.invoke("c")  # a third would take the budget to $0.03
    assert calls == ["a", "b"]
    assert root.spent == pytest.approx(0.02, abs=1e-12)


def test_a_failing_tool_is_not_counted() -> None:
    calls: list[str] = []
    broken = counting_tool(calls, fail=ValueError("backend down"))
    handled = counting_tool(calls, fail=ToolException("no such page"))
    with budget(max_tool_calls=1, name="root", tool_prices={"lookup": 0.01}) as root:
        with pytest.raises(ValueError, match="backend down"):
            broken.invoke("a")
        answer = handled.invoke(
            {"type": "tool_call", "name": "lookup", "id": "call-1", "args": {"query": "b"}}
        )
        assert isinstance(answer, ToolMessage)
        assert answer.status == "error"
        counting_tool(calls).invoke("c")  # the one call the budget allows
    assert calls == ["a", "b", "c"]
    assert (root.snapshot().tool_calls_used, root.spent) == (1, pytest.approx(0.01, abs=1e-12))


def test_loop_guard_compares_a_tools_arguments() -> None:
    calls: list[str] = []
    lookup = counting_tool(calls)
    with budget(max_usd=1, name="root", loop_guard=2) as root:
        lookup.invoke({"query": "tides"})
        lookup.invoke({"query": "moons"})  # other arguments: not a repeat
        with pytest.raises(LoopGuardError, match="tool 'lookup'"):
            lookup.invoke({"query": "tides"})
    assert calls == ["tides", "moons"]
    assert root.snapshot().tool_calls_used == 2


def test_a_mapped_tool_charges_its_child_for_itself_and_the_calls_it_makes(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI]
) -> None:
    model = gpt()

    @tool
    def research(topic: str) -> str:
        """Research a topic with the model."""
        return str(model.invoke(f"research {topic}").content)

    handler = ShekelCallbackHandler(budgets={"research": {"max_tool_calls": 1}})
    tracer = Tracer()
    with budget(max_usd=5, name="root") as root:
        assert research.invoke("tides", config={"callbacks": [handler, tracer]}) == (
            "research tides"
        )
        with pytest.raises(ToolBudgetExceededError) as refused:
            research.invoke("moons", config={"callbacks": [handler, tracer]})
    child = root.child("research")
    assert (child.snapshot().tool_calls_used, child.snapshot().llm_calls_used) == (1, 1)
    assert refused.value.budget_name == "root.research"
    assert len(fake.requests) == 1
    assert tracer.open_runs == []  # shekel's handler came first: no one saw the refused run


def test_async_tools_are_counted_and_released() -> None:
    calls: list[str] = []

    async def fetch(url: str) -> str:
        """Fetch a page."""
        calls.append(url)
        if url == "bad":
            raise ConnectionError("unreachable")
        return url

    fetcher = StructuredTool.from_function(coroutine=fetch)

    async def main() -> Any:
        async with budget(max_tool_calls=2, name="root") as root:
            with run_budgets({"fetch": None}):
                await fetcher.ainvoke("one")
                with pytest.raises(ConnectionError):
                    await fetcher.ainvoke("bad")
                await fetcher.ainvoke("two")
                with pytest.raises(ToolBudgetExceededError):
                    await fetcher.ainvoke("three")
        return root

    root = run(main())
    assert calls == ["one", "bad", "two"]
    assert root.child("fetch").snapshot().tool_calls_used == 2


def test_a_langgraph_tool_node_is_stopped_at_max_tool_calls() -> None:
    """LangGraph's ToolNode runs LangChain tools, one thread each: with no wiring, their runs
    share the budget's tool calls, and the one past the cap never runs (the graph raises the
    refusal, or hands it to the model, as the ToolNode's version handles tool errors)."""
    from langchain_core.messages import AIMessage
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode

    calls: list[str] = []
    graph = StateGraph(MessagesState)
    graph.add_node("tools", ToolNode([counting_tool(calls)]))
    graph.add_edge(START, "tools")
    graph.add_edge("tools", END)
    app = graph.compile()
    wanted = [{"name": "lookup", "args": {"query": f"q{i}"}, "id": f"c{i}"} for i in range(3)]
    asked = AIMessage(content="", tool_calls=wanted)
    with budget(max_tool_calls=2, tool_prices={"lookup": 0.01}, name="root") as root:
        refusal: ToolBudgetExceededError | None = None
        out: dict[str, Any] = {}
        try:
            out = app.invoke({"messages": [asked]})
        except ToolBudgetExceededError as refused:  # newer langgraph-prebuilt releases
            refusal = refused
    if refusal is not None:
        assert refusal.tool_name == "lookup"
    else:  # 1.0.0's ToolNode hands every tool error to the model as the tool's answer
        errors = [m.content for m in out["messages"] if getattr(m, "status", "") == "error"]
        assert len(errors) == 1
        assert "ToolBudgetExceededError" in errors[0]
    assert len(calls) == 2
    assert root.snapshot().tool_calls_used == 2
    assert root.spent == pytest.approx(0.02)
