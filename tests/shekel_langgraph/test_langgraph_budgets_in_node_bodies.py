"""Seed 004's "LangGraph Integration" pattern, run as written: budgets opened in the node bodies
of a graph compiled and invoked inside an outer budget.

The seed leaves ``AgentState``, ``run_research`` and ``run_analysis`` to the reader; here they
call a real LangChain model on the fake provider. Its graph has no edge from ``START``, which
LangGraph refuses to compile (checked below); the one line ``add_edge(START, "research")`` is
added, nothing else changes.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest
from langchain_openai import ChatOpenAI
from langgraph.graph import START, StateGraph
from langgraph.types import Send
from lg_support import CALL, ask, log_spend

from shekel import BudgetConfigError, budget
from shekel.testing import FakeProvider
from shekel_langgraph import budgeted_node


class AgentState(TypedDict, total=False):
    query: str
    research: str
    analysis: str


def test_the_seed_pattern_works_as_written(
    fake: FakeProvider, model: ChatOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    def run_research(state: AgentState) -> str:
        return str(model.invoke(ask("research", state["query"])).content)

    def run_analysis(state: AgentState) -> str:
        model.invoke(ask("analysis"))
        return str(model.invoke(ask("analysis")).content)

    def create_workflow() -> tuple[Any, Any]:
        """LangGraph workflow with nested budgets."""

        workflow = StateGraph(AgentState)

        # Wrap entire workflow
        with budget(max_usd=20.00, name="langgraph_workflow") as main:
            # Research node
            def research_node(state):  # type: ignore[no-untyped-def]
                with budget(max_usd=5.00, name="research"):
                    return {"research": run_research(state)}

            # Analysis node
            def analysis_node(state):  # type: ignore[no-untyped-def]
                with budget(max_usd=10.00, name="analysis"):
                    return {"analysis": run_analysis(state)}

            workflow.add_node("research", research_node)
            workflow.add_node("analysis", analysis_node)
            workflow.add_edge(START, "research")  # the line LangGraph requires
            workflow.add_edge("research", "analysis")

            app = workflow.compile()
            result = app.invoke({"query": "..."})

        print(f"Total cost: ${main.spent:.2f}")
        print(main.tree())
        return main, result

    main, result = create_workflow()
    assert result["analysis"] == result["research"] == "Hello from the fake provider."
    research, analysis = main.children
    assert (research.full_name, research.config.max_usd) == ("langgraph_workflow.research", 5.0)
    assert (analysis.full_name, analysis.config.max_usd) == ("langgraph_workflow.analysis", 10.0)
    assert research.spent == pytest.approx(log_spend(fake, "research")) == pytest.approx(CALL)
    assert analysis.spent == pytest.approx(log_spend(fake, "analysis"))
    assert main.spent == pytest.approx(3 * CALL)
    out = capsys.readouterr().out
    assert out.startswith("Total cost: $0.14\nlanggraph_workflow: $0.135 / $20.00")
    assert "  research: $0.045 / $5.00 (direct: $0.045)" in out
    assert "  analysis: $0.09 / $10.00 (direct: $0.09)" in out


def test_without_the_entry_edge_langgraph_itself_refuses_the_graph() -> None:
    workflow = StateGraph(AgentState)
    workflow.add_node("research", lambda state: {})
    workflow.add_node("analysis", lambda state: {})
    workflow.add_edge("research", "analysis")
    with pytest.raises(ValueError, match="Graph must have an entrypoint"):
        workflow.compile()


def test_under_send_fan_out_a_budget_per_branch_collides_and_budgeted_node_does_not(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    """The seed's pattern makes a new budget per node run: parallel branches of one node then
    make same-named siblings, which shekel refuses. ``@budgeted_node`` reuses one child."""

    class Fan(TypedDict, total=False):
        topic: str
        notes: Annotated[list[str], operator.add]

    def seed_style(state: Fan) -> dict[str, Any]:
        with budget(max_usd=1.00, name="worker"):
            model.invoke(ask("worker"))
        return {"notes": ["done"]}

    def build(worker: Any) -> Any:
        graph = StateGraph(Fan)
        graph.add_node("worker", worker)
        graph.add_conditional_edges(
            START, lambda s: [Send("worker", {"topic": str(i)}) for i in range(3)], ["worker"]
        )
        return graph.compile()

    with budget(max_usd=5, name="root"), pytest.raises(BudgetConfigError, match="worker"):
        build(seed_style).invoke({"notes": []})
    fake.reset()
    fake.set_usage(input_tokens=10_000, output_tokens=2_000)

    @budgeted_node(max_usd=1.00)
    def decorated(state: Fan) -> dict[str, Any]:
        model.invoke(ask("worker"))
        return {"notes": ["done"]}

    with budget(max_usd=5, name="root") as root:
        assert build(decorated).invoke({"notes": []})["notes"] == ["done"] * 3
    assert root.child("worker").spent == pytest.approx(log_spend(fake, "worker"))
    assert root.child("worker").snapshot().llm_calls_used == 3
