"""``on_exhausted="interrupt"``: a graph that pauses at its cap, has the limit raised on the live
budget, and goes on from where it stopped (with an in-memory checkpointer)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Interrupt, Send, interrupt
from lg_support import CALL, State, ask, chat, log_counts, log_spend

from shekel import BudgetExceededError, budget, current_budget
from shekel.testing import FakeProvider
from shekel_langgraph import BudgetedGraph, budgeted_graph, budgeted_node, is_budget_pause

FANOUT = 5


def pipeline(model: ChatOpenAI) -> Any:
    """research (1 call) -> analyze (2 calls) -> write (1 call), with a checkpointer."""

    def research(state: State) -> dict[str, Any]:
        model.invoke(ask("research"))
        return {"notes": ["research"]}

    def analyze(state: State) -> dict[str, Any]:
        model.invoke(ask("analyze"))
        model.invoke(ask("analyze"))
        return {"notes": ["analyze"]}

    def write(state: State) -> dict[str, Any]:
        model.invoke(ask("write"))
        return {"notes": ["write"]}

    graph = StateGraph(State)
    graph.add_node("research", research)
    graph.add_node("analyze", analyze)
    graph.add_node("write", write)
    graph.add_edge(START, "research")
    graph.add_edge("research", "analyze")
    graph.add_edge("analyze", "write")
    graph.add_edge("write", END)
    return graph.compile(checkpointer=InMemorySaver())


def pauses(result: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[Interrupt] = result.get("__interrupt__", [])
    assert all(is_budget_pause(i.value) for i in found)
    return [i.value for i in found]


def thread(name: str) -> RunnableConfig:
    return {"configurable": {"thread_id": name}}


def test_pause_before_a_node_then_raise_the_limit_and_resume(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    app = budgeted_graph(pipeline(model), max_llm_calls=3, on_exhausted="interrupt")
    config = thread("pre")
    paused = app.invoke({"notes": []}, config)
    [pause] = pauses(paused)
    assert pause["node"] == "write"
    assert pause["started"] is False
    assert (pause["budget"], pause["node_budget"]) == ("graph", "graph.write")
    assert (pause["axis"], pause["spent"], pause["limit"]) == ("llm_calls", 3, 3)
    assert paused["notes"] == ["research", "analyze"]
    assert app.get_state(config).next == ("write",)
    assert log_counts(fake) == {"research": 1, "analyze": 2}

    app.budget.set_limits(max_llm_calls=10)
    done = app.invoke(Command(resume="go on"), config)
    assert done["notes"] == ["research", "analyze", "write"]
    assert "__interrupt__" not in done
    assert log_counts(fake) == {"research": 1, "analyze": 2, "write": 1}, "nothing re-ran"
    for node in ("research", "analyze", "write"):
        assert app.node_budget(node).spent == pytest.approx(log_spend(fake, node))
    assert app.budget.spent == pytest.approx(4 * CALL)


def test_pause_inside_a_node_reruns_the_node_on_resume(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    app = budgeted_graph(
        pipeline(model),
        max_usd=5,
        nodes={"analyze": {"max_llm_calls": 1}},
        on_exhausted="interrupt",
    )
    config = thread("mid")
    [pause] = pauses(app.invoke({"notes": []}, config))
    # The node's first call went out; its second was refused before it was sent.
    assert pause["node"] == "analyze"
    assert pause["started"] is True
    assert pause["budget"] == "graph.analyze"
    assert pause["axis"] == "llm_calls"
    assert log_counts(fake) == {"research": 1, "analyze": 1}
    assert app.node_budget("analyze").spent == pytest.approx(CALL), "spend is kept"

    app.node_budget("analyze").set_limits(max_llm_calls=3)
    done = app.invoke(Command(resume=True), config)
    assert done["notes"] == ["research", "analyze", "write"]
    # LangGraph restarts the interrupted node: both of its calls are made (and paid) again.
    assert log_counts(fake) == {"research": 1, "analyze": 3, "write": 1}
    assert app.node_budget("analyze").spent == pytest.approx(log_spend(fake, "analyze"))
    assert app.budget.spent == pytest.approx(5 * CALL)


def test_a_pause_after_a_call_that_went_over_says_the_call_was_sent(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    app = budgeted_graph(
        pipeline(model),
        max_usd=5,
        nodes={"analyze": {"max_usd": 1.5 * CALL}},
        on_exhausted="interrupt",
    )
    [pause] = pauses(app.invoke({"notes": []}, thread("over")))
    # analyze's second call was allowed (half a call's room left), sent, and went over.
    assert log_counts(fake) == {"research": 1, "analyze": 2}
    assert (pause["node"], pause["budget"], pause["started"]) == ("analyze", "graph.analyze", True)
    assert (pause["spent"], pause["limit"]) == (pytest.approx(2 * CALL), pytest.approx(1.5 * CALL))
    assert pause["message"].startswith(
        "budget 'graph.analyze' exceeded its limit of $0.0675: $0.09 spent (last call: gpt-4o"
    )
    assert "not sent" not in pause["message"]


def test_resuming_without_raising_the_limit_pauses_again_sending_nothing(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    app = budgeted_graph(pipeline(model), max_llm_calls=1, on_exhausted="interrupt")
    config = thread("again")
    assert pauses(app.invoke({"notes": []}, config))[0]["node"] == "analyze"
    sent = len(fake.requests)
    for resume in (Command(resume=1), None, Command(resume=2)):
        again = app.invoke(resume, config)
        assert [p["node"] for p in pauses(again)] == ["analyze"]
    assert len(fake.requests) == sent == 1
    app.budget.set_limits(max_llm_calls=None)
    assert app.invoke(None, config)["notes"] == ["research", "analyze", "write"]
    assert log_counts(fake) == {"research": 1, "analyze": 2, "write": 1}


def test_parallel_branches_pause_and_resume_together(fake: FakeProvider, model: ChatOpenAI) -> None:
    def plan(state: State) -> dict[str, Any]:
        model.invoke(ask("plan"))
        return {}

    def worker(state: State) -> dict[str, Any]:
        model.invoke(ask("worker", state["topic"]))
        model.invoke(ask("worker", state["topic"]))
        return {"notes": [state["topic"]]}

    graph = StateGraph(State)
    graph.add_node("plan", plan)
    graph.add_node("worker", worker)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges(
        "plan", lambda s: [Send("worker", {"topic": f"t{i}"}) for i in range(FANOUT)], ["worker"]
    )
    graph.add_edge("worker", END)
    # Room for plan and 4 worker calls: some branches finish (or not), the rest pause.
    app = budgeted_graph(
        graph.compile(checkpointer=InMemorySaver()),
        max_usd=5,
        nodes={"worker": {"max_llm_calls": 4}},
        on_exhausted="interrupt",
        strict=True,
    )
    config = thread("fan")
    first = app.invoke({"notes": []}, config)
    paused = pauses(first)
    finished = len(first["notes"])
    assert paused
    assert {p["node"] for p in paused} == {"worker"}
    assert finished + len(paused) == FANOUT
    assert log_counts(fake)["worker"] == 4
    app.node_budget("worker").set_limits(max_llm_calls=None)
    assert len(paused) >= 3  # at most two branches can finish on four calls
    with pytest.raises(RuntimeError, match="multiple pending interrupts"):
        app.invoke(Command(resume=True), config)  # LangGraph wants ids, or None
    done = app.invoke(None, config)
    assert sorted(done["notes"]) == [f"t{i}" for i in range(FANOUT)]
    # Finished branches kept their writes; only the paused ones re-ran, from their start.
    assert log_counts(fake)["worker"] == 4 + 2 * len(paused)
    assert log_counts(fake)["plan"] == 1
    assert app.node_budget("worker").spent == pytest.approx(log_spend(fake, "worker"))
    assert app.budget.spent == pytest.approx(len(fake.requests) * CALL)


def test_async_pause_and_resume(fake: FakeProvider) -> None:
    async def main() -> tuple[BudgetedGraph, list[Any], dict[str, Any]]:
        model = chat(fake)

        async def research(state: State) -> dict[str, Any]:
            await model.ainvoke(ask("research"))
            return {"notes": ["research"]}

        async def write(state: State) -> dict[str, Any]:
            await model.ainvoke(ask("write"))
            return {"notes": ["write"]}

        graph = StateGraph(State)
        graph.add_node("research", research)
        graph.add_node("write", write)
        graph.add_edge(START, "research")
        graph.add_edge("research", "write")
        app = budgeted_graph(
            graph.compile(checkpointer=InMemorySaver()),
            max_usd=1.5 * CALL,
            on_exhausted="interrupt",
        )
        config = thread("async")
        chunks = [c async for c in app.astream({"notes": []}, config, stream_mode="updates")]
        assert current_budget() is None
        app.budget.set_limits(max_usd=5)
        done = await app.ainvoke(Command(resume=True), config)
        return app, chunks, done

    app, chunks, done = asyncio.run(main())
    [interrupted] = [c["__interrupt__"] for c in chunks if "__interrupt__" in c]
    # write's call was allowed (half a call's room left), crossed the cap and was recorded:
    # the graph paused after the call, and on resume the node ran (and paid) again.
    assert interrupted[0].value["node"] == "write"
    assert interrupted[0].value["started"] is True
    assert interrupted[0].value["spent"] == pytest.approx(2 * CALL)
    assert interrupted[0].value["budget"] == "graph"
    assert interrupted[0].value["message"].startswith("budget 'graph' exceeded its limit of $")
    assert "not sent" not in interrupted[0].value["message"]
    assert done["notes"] == ["research", "write"]
    assert log_counts(fake) == {"research": 1, "write": 2}
    assert app.node_budget("write").spent == pytest.approx(log_spend(fake, "write"))
    assert app.budget.spent == pytest.approx(3 * CALL)


def test_a_decorated_node_pauses_under_a_plain_budget(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    @budgeted_node(max_llm_calls=1, on_exhausted="interrupt")
    def draft(state: State) -> dict[str, Any]:
        model.invoke(ask("draft"))
        return {"rounds": state.get("rounds", 0) + 1}

    graph = StateGraph(State)
    graph.add_node("draft", draft)
    graph.add_edge(START, "draft")
    graph.add_conditional_edges("draft", lambda s: "draft" if s["rounds"] < 3 else END)
    app = graph.compile(checkpointer=InMemorySaver())
    config = thread("deco")
    with budget(max_usd=5, name="root") as root:
        first = app.invoke({"rounds": 0}, config)
        [pause] = pauses(first)
        assert (pause["node_budget"], pause["started"]) == ("root.draft", False)
        root.child("draft").set_limits(max_llm_calls=3)
        done = app.invoke(Command(resume="ok"), config)
    assert done["rounds"] == 3
    assert root.child("draft").snapshot().llm_calls_used == 3 == len(fake.requests)


def review_graph(model: ChatOpenAI, **options: Any) -> BudgetedGraph:
    """prep (1 call) -> review (1 call, then asks a human with interrupt())."""

    def prep(state: State) -> dict[str, Any]:
        model.invoke(ask("prep"))
        return {}

    def review(state: State) -> dict[str, Any]:
        model.invoke(ask("review"))
        approved = interrupt("approve the draft?")
        return {"notes": [f"approved={approved}"]}

    graph = StateGraph(State)
    graph.add_node("prep", prep)
    graph.add_node("review", review)
    graph.add_edge(START, "prep")
    graph.add_edge("prep", "review")
    compiled = graph.compile(checkpointer=InMemorySaver())
    return budgeted_graph(compiled, on_exhausted="interrupt", **options)


def test_a_budget_pause_keeps_the_humans_answer(fake: FakeProvider, model: ChatOpenAI) -> None:
    app = review_graph(model, max_usd=5, nodes={"review": {"max_llm_calls": 1}})
    config = thread("own")
    question = app.invoke({"notes": []}, config)
    assert [i.value for i in question["__interrupt__"]] == ["approve the draft?"]
    # The human answers; the node re-runs, and its call is refused before it starts.
    paused = app.invoke(Command(resume="yes"), config)
    [pause] = pauses(paused)
    assert pause["node"] == "review"
    assert pause["started"] is False
    app.node_budget("review").set_limits(max_llm_calls=2)
    # Resumed by the pause's id: the node's own interrupt() still gets the human's answer.
    done = app.invoke(Command(resume={paused["__interrupt__"][0].id: "raised"}), config)
    assert done["notes"] == ["approved=yes"]
    assert log_counts(fake) == {"prep": 1, "review": 2}
    assert app.node_budget("review").spent == pytest.approx(log_spend(fake, "review"))


def test_resuming_with_none_leaves_the_nodes_own_interrupt_unanswered(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    app = review_graph(model, max_llm_calls=1)
    config = thread("none")
    [pause] = pauses(app.invoke({"notes": []}, config))
    assert (pause["node"], pause["budget"], pause["started"]) == ("review", "graph", False)
    app.budget.set_limits(max_llm_calls=5)
    asked = app.invoke(None, config)
    assert [i.value for i in asked["__interrupt__"]] == ["approve the draft?"]
    assert app.invoke(Command(resume="yes"), config)["notes"] == ["approved=yes"]
    assert log_counts(fake) == {"prep": 1, "review": 2}


def test_limitation_a_plain_resume_value_reaches_the_nodes_own_interrupt(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    """Documented limitation: LangGraph hands a plain ``Command(resume=value)`` to the first
    ``interrupt()`` in the resumed node that has no answer yet. A budget pause takes none, so
    in a node that asks its own question, that value answers the question."""
    app = review_graph(model, max_llm_calls=1)
    config = thread("plain")
    pauses(app.invoke({"notes": []}, config))
    app.budget.set_limits(max_llm_calls=5)
    done = app.invoke(Command(resume="budget raised"), config)
    assert done["notes"] == ["approved=budget raised"]


def test_a_pause_inside_a_subgraph(fake: FakeProvider, model: ChatOpenAI) -> None:
    def fetch(state: State) -> dict[str, Any]:
        model.invoke(ask("fetch"))
        return {"notes": ["fetch"]}

    def digest(state: State) -> dict[str, Any]:
        model.invoke(ask("digest"))
        return {"notes": ["digest"]}

    inner = StateGraph(State)
    inner.add_node("fetch", fetch)
    inner.add_node("digest", digest)
    inner.add_edge(START, "fetch")
    inner.add_edge("fetch", "digest")
    outer = StateGraph(State)
    outer.add_node("gather", inner.compile())
    outer.add_edge(START, "gather")
    app = budgeted_graph(
        outer.compile(checkpointer=InMemorySaver()),
        max_usd=5,
        nodes={"gather": {"max_llm_calls": 1}},
        on_exhausted="interrupt",
    )
    config = thread("sub")
    [pause] = pauses(app.invoke({"notes": []}, config))
    assert (pause["node"], pause["node_budget"]) == ("digest", "graph.gather.digest")
    assert pause["budget"] == "graph.gather"
    assert pause["started"] is False
    app.node_budget("gather").set_limits(max_llm_calls=2)
    assert app.invoke(Command(resume=True), config)["notes"] == ["fetch", "digest"]
    assert log_counts(fake) == {"fetch": 1, "digest": 1}, "the subgraph went on from digest"
    assert app.node_budget("gather", "digest").spent == pytest.approx(log_spend(fake, "digest"))
    assert app.node_budget("gather").spent == pytest.approx(2 * CALL)


def test_is_budget_pause_tells_budget_pauses_from_other_interrupts() -> None:
    assert is_budget_pause({"kind": "shekel.budget_exhausted", "node": "n"})
    assert not is_budget_pause({"kind": "other"})
    assert not is_budget_pause("approve?")


def test_a_budget_the_node_opens_itself_raises_instead_of_pausing(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    """Only the node's budget and its ancestors pause the graph: a budget made inside the node
    is new at every run, so raising its limit could not let a resumed node go on."""

    def tight(state: State) -> dict[str, Any]:
        with budget(max_llm_calls=1, name="inner"):
            model.invoke(ask("tight"))
            model.invoke(ask("tight"))
        return {}

    graph = StateGraph(State)
    graph.add_node("tight", tight)
    graph.add_edge(START, "tight")
    app = budgeted_graph(
        graph.compile(checkpointer=InMemorySaver()), max_usd=5, on_exhausted="interrupt"
    )
    with pytest.raises(BudgetExceededError) as caught:
        app.invoke({}, thread("inner"))
    assert caught.value.budget_name == "graph.tight.inner"
    assert len(fake.requests) == 1
