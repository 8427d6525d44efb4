"""``budgeted_graph``: a compiled graph, its node code untouched, charged to a graph budget with
one child per node (and per subgraph node, one level down), in every way a graph is run."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.func import entrypoint, task
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send
from lg_support import CALL, State, ask, chat, log_counts, log_spend

from shekel import Budget, BudgetConfigError, BudgetExceededError, budget, current_budget
from shekel.integration import UnmatchedNameWarning
from shekel.testing import FakeProvider
from shekel_langgraph import BudgetedGraph, NodeBudgetExceededError, budgeted_graph, budgeted_node

FANOUT = 5


def research_graph(model: ChatOpenAI, **compile_kwargs: Any) -> Any:
    """Compiled "elsewhere": plain node functions that know nothing of shekel.
    research -> Send("read") x FANOUT -> write -> END."""

    def research(state: State) -> dict[str, Any]:
        model.invoke(ask("research"))
        return {"notes": ["research"]}

    def read(state: State) -> dict[str, Any]:
        model.invoke(ask("read", state["topic"]))
        return {"notes": [f"read {state['topic']}"]}

    def write(state: State) -> dict[str, Any]:
        model.invoke(ask("write"))
        model.invoke(ask("write"))
        return {"notes": ["write"]}

    graph = StateGraph(State)
    graph.add_node("research", research)
    graph.add_node("read", read)
    graph.add_node("write", write)
    graph.add_edge(START, "research")
    graph.add_conditional_edges(
        "research", lambda s: [Send("read", {"topic": f"t{i}"}) for i in range(FANOUT)], ["read"]
    )
    graph.add_edge("read", "write")
    graph.add_edge("write", END)
    return graph.compile(**compile_kwargs)


def async_research_graph(model: ChatOpenAI) -> Any:
    async def research(state: State) -> dict[str, Any]:
        await model.ainvoke(ask("research"))
        return {"notes": ["research"]}

    async def read(state: State) -> dict[str, Any]:
        await model.ainvoke(ask("read", state["topic"]))
        return {"notes": ["read"]}

    async def write(state: State) -> dict[str, Any]:
        await model.ainvoke(ask("write"))
        await model.ainvoke(ask("write"))
        return {"notes": ["write"]}

    graph = StateGraph(State)
    graph.add_node("research", research)
    graph.add_node("read", read)
    graph.add_node("write", write)
    graph.add_edge(START, "research")
    graph.add_conditional_edges(
        "research", lambda s: [Send("read", {"topic": f"t{i}"}) for i in range(FANOUT)], ["read"]
    )
    graph.add_edge("read", "write")
    graph.add_edge("write", END)
    return graph.compile()


def assert_per_node(fake: FakeProvider, app: BudgetedGraph, runs: int = 1) -> None:
    """Each node's budget holds what the fake provider's log says it spent."""
    counts = log_counts(fake)
    assert counts == {"research": runs, "read": FANOUT * runs, "write": 2 * runs}
    for node in ("research", "read", "write"):
        assert app.node_budget(node).spent == pytest.approx(log_spend(fake, node)), node
        assert app.node_budget(node).snapshot().llm_calls_used == counts[node]
    assert app.budget.spent_direct == 0
    assert app.budget.spent == pytest.approx(sum(counts.values()) * CALL)


def test_invoke_charges_each_node_of_a_graph_compiled_elsewhere(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    compiled = research_graph(model)
    app = budgeted_graph(compiled, max_usd=5, nodes={"research": 0.5, "write": 1.0})
    result = app.invoke({"topic": "x", "notes": []})
    assert len(result["notes"]) == FANOUT + 2
    assert [child.name for child in app.budget.children] == ["research", "read", "write"]
    assert (
        app.node_budget("research").config.max_usd,
        app.node_budget("write").config.max_usd,
    ) == (0.5, 1.0)
    assert app.node_budget("read").config.max_usd is None
    assert_per_node(fake, app)
    assert [line.split(":")[0] for line in app.budget.tree().splitlines()] == [
        "graph",
        "  research",
        "  read",
        "  write",
    ]
    assert app.budget.name == "graph"
    assert current_budget() is None
    # The graph compiled elsewhere is untouched: run directly, it charges the active budget.
    with budget(max_usd=5, name="plain") as plain:
        compiled.invoke({"topic": "x", "notes": []})
    assert plain.children == []
    assert plain.spent == pytest.approx((FANOUT + 3) * CALL)


def test_spend_accumulates_across_invocations(fake: FakeProvider, model: ChatOpenAI) -> None:
    app = budgeted_graph(research_graph(model), max_usd=5)
    app.invoke({"topic": "x", "notes": []})
    app.invoke({"topic": "y", "notes": []})
    assert_per_node(fake, app, runs=2)
    assert [child.name for child in app.budget.children] == ["research", "read", "write"]


def test_under_a_callers_budget_the_graph_nests(fake: FakeProvider, model: ChatOpenAI) -> None:
    app = budgeted_graph(research_graph(model), max_usd=5, name="pipeline")
    with budget(max_usd=10, name="request") as request:
        app.invoke({"topic": "x", "notes": []})
        assert app.budget is request.find_child("pipeline")
        assert app.node_budget("read").full_name == "request.pipeline.read"
    pipeline = request.find_child("pipeline")
    assert pipeline is not None
    assert pipeline.config.max_usd == 5
    assert [child.name for child in pipeline.children] == ["research", "read", "write"]
    assert request.spent == pytest.approx(pipeline.spent) == pytest.approx((FANOUT + 3) * CALL)
    assert app.budget.spent == 0, "outside any budget, the graph's own budget: it did not run"


def test_without_a_name_or_limits_the_nodes_nest_under_the_callers_budget(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    app = budgeted_graph(research_graph(model), nodes={"write": 1.0})
    with budget(max_usd=10, name="request") as request:
        app.invoke({"topic": "x", "notes": []})
        assert app.budget is request
    assert [child.name for child in request.children] == ["research", "read", "write"]
    assert request.child("write").config.max_usd == 1.0
    assert request.child("read").spent == pytest.approx(log_spend(fake, "read"))


def test_ainvoke_with_async_nodes_in_tasks(fake: FakeProvider) -> None:
    async def main() -> BudgetedGraph:
        app = budgeted_graph(async_research_graph(chat(fake)), max_usd=5)
        await app.ainvoke({"topic": "x", "notes": []})
        assert current_budget() is None
        return app

    assert_per_node(fake, asyncio.run(main()))


def test_stream_in_every_mode_charges_per_node(fake: FakeProvider, model: ChatOpenAI) -> None:
    app = budgeted_graph(research_graph(model), max_usd=5)
    outside = []
    for _chunk in app.stream({"topic": "x", "notes": []}, stream_mode=["updates", "messages"]):
        outside.append(current_budget())
    assert outside, "the graph streamed"
    assert set(outside) == {None}, "the caller's code between chunks is not charged"
    assert_per_node(fake, app)


def test_a_stream_left_early_leaves_nothing_active(fake: FakeProvider, model: ChatOpenAI) -> None:
    app = budgeted_graph(research_graph(model), max_usd=5)
    stream = app.stream({"topic": "x", "notes": []}, stream_mode="updates")
    first = next(stream)
    assert "research" in first
    assert current_budget() is None
    stream.close()
    assert app.node_budget("research").spent == pytest.approx(log_spend(fake, "research"))
    assert not app.budget.is_active


@pytest.mark.filterwarnings("ignore:astream_log is deprecated")  # still budgeted while it exists
def test_astream_and_astream_events(fake: FakeProvider) -> None:
    async def main() -> tuple[BudgetedGraph, list[str]]:
        app = budgeted_graph(async_research_graph(chat(fake)), max_usd=5)
        async for _ in app.astream({"topic": "x", "notes": []}, subgraphs=True):
            assert current_budget() is None
        events = [
            event["event"]
            async for event in app.astream_events({"topic": "y", "notes": []}, version="v2")
        ]
        async for _ in app.astream_log({"topic": "z", "notes": []}):
            assert current_budget() is None
        done = [i async for i, _ in app.abatch_as_completed([{"notes": []}, {"notes": []}])]
        assert sorted(done) == [0, 1]
        return app, events

    app, events = asyncio.run(main())
    assert "on_chat_model_end" in events
    assert_per_node(fake, app, runs=5)


def test_batch_and_abatch(fake: FakeProvider, model: ChatOpenAI) -> None:
    app = budgeted_graph(research_graph(model), max_usd=5)
    results = app.batch([{"topic": "a", "notes": []}, {"topic": "b", "notes": []}])
    assert len(results) == 2
    assert_per_node(fake, app, runs=2)

    async def main() -> BudgetedGraph:
        again = budgeted_graph(async_research_graph(chat(fake)), max_usd=5)
        await again.abatch([{"topic": "a", "notes": []}, {"topic": "b", "notes": []}])
        return again

    fake.reset()
    fake.set_usage(input_tokens=10_000, output_tokens=2_000)
    assert_per_node(fake, asyncio.run(main()), runs=2)


def test_batch_as_completed(fake: FakeProvider, model: ChatOpenAI) -> None:
    app = budgeted_graph(research_graph(model), max_usd=5)
    done = sorted(i for i, _ in app.batch_as_completed([{"notes": []}, {"notes": []}]))
    assert done == [0, 1]
    assert_per_node(fake, app, runs=2)


def test_a_subgraph_nests_graph_then_subgraph_then_node(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
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
    sub = inner.compile()

    def plan(state: State) -> dict[str, Any]:
        model.invoke(ask("plan"))
        return {}

    outer = StateGraph(State)
    outer.add_node("plan", plan)
    outer.add_node("gather", sub)
    outer.add_edge(START, "plan")
    outer.add_edge("plan", "gather")
    outer.add_edge("gather", END)
    app = budgeted_graph(outer.compile(), max_usd=5, nodes={"gather": 3 * CALL})
    app.invoke({"notes": []})
    gather = app.node_budget("gather")
    assert [child.name for child in app.budget.children] == ["plan", "gather"]
    assert [child.name for child in gather.children] == ["fetch", "digest"]
    assert app.node_budget("gather", "fetch").full_name == "graph.gather.fetch"
    assert app.node_budget("gather", "digest").spent == pytest.approx(log_spend(fake, "digest"))
    assert gather.spent == pytest.approx(2 * CALL)
    assert gather.spent_direct == 0
    # The subgraph's cap holds for its nodes: a second run stops inside it.
    with pytest.raises(NodeBudgetExceededError) as caught:
        app.invoke({"notes": []})
    assert caught.value.node == "digest"
    assert caught.value.budget_name == "graph.gather"
    assert log_counts(fake) == {"plan": 2, "fetch": 2, "digest": 1}


def test_a_budgeted_graph_is_a_compiled_graph_other_graphs_take_as_a_node(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    def fetch(state: State) -> dict[str, Any]:
        model.invoke(ask("fetch"))
        return {}

    inner = StateGraph(State)
    inner.add_node("fetch", fetch)
    inner.add_edge(START, "fetch")
    searcher = budgeted_graph(inner.compile(), max_llm_calls=3, name="searcher")
    outer = StateGraph(State)
    outer.add_node("search", searcher)
    outer.add_edge(START, "search")
    app = budgeted_graph(outer.compile(), max_usd=5)
    with budget(max_usd=5, name="request") as request:
        app.invoke({})
    searcher_budget = request.child("graph").child("search").child("searcher")
    assert searcher_budget.snapshot().llm_calls_remaining == 2  # its own cap, under search
    assert searcher_budget.child("fetch").spent == pytest.approx(CALL)


def test_a_parent_command_from_a_subgraph_passes_through(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    def escalate(state: State) -> Command[Any]:
        model.invoke(ask("escalate"))
        return Command(graph=Command.PARENT, goto="human", update={"notes": ["escalated"]})

    inner = StateGraph(State)
    inner.add_node("escalate", escalate)
    inner.add_edge(START, "escalate")

    def human(state: State) -> dict[str, Any]:
        return {"notes": ["human"]}

    outer = StateGraph(State)
    outer.add_node("triage", inner.compile(), destinations=("human",))
    outer.add_node("human", human)
    outer.add_edge(START, "triage")
    app = budgeted_graph(outer.compile(), max_usd=5)
    result = app.invoke({"notes": []})
    assert result["notes"] == ["escalated", "human"]
    assert app.node_budget("triage", "escalate").spent == pytest.approx(CALL)


def test_a_node_cap_stops_one_branch_while_the_other_finishes(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    def cheap(state: State) -> dict[str, Any]:
        model.invoke(ask("cheap"))
        model.invoke(ask("cheap"))
        return {"notes": ["cheap"]}

    def greedy(state: State) -> dict[str, Any]:
        for _ in range(5):
            model.invoke(ask("greedy"))
        return {"notes": ["greedy"]}

    graph = StateGraph(State)
    graph.add_node("cheap", cheap)
    graph.add_node("greedy", greedy)
    graph.add_edge(START, "cheap")
    graph.add_edge(START, "greedy")
    app = budgeted_graph(graph.compile(), max_usd=5, nodes={"greedy": {"max_llm_calls": 2}})
    with pytest.raises(BudgetExceededError) as caught:
        app.invoke({"notes": []})
    assert caught.value.budget_name == "graph.greedy"
    assert caught.value.sent is False
    assert log_counts(fake) == {"cheap": 2, "greedy": 2}
    assert app.node_budget("cheap").spent == pytest.approx(log_spend(fake, "cheap"))
    assert app.node_budget("greedy").spent == pytest.approx(log_spend(fake, "greedy"))


def test_the_graph_cap_stops_the_next_node(fake: FakeProvider, model: ChatOpenAI) -> None:
    app = budgeted_graph(research_graph(model), max_llm_calls=FANOUT + 1)
    with pytest.raises(NodeBudgetExceededError) as caught:
        app.invoke({"topic": "x", "notes": []})
    assert (caught.value.node, caught.value.budget_name) == ("write", "graph")
    assert log_counts(fake) == {"research": 1, "read": FANOUT}


def test_the_error_names_the_graph_when_its_cap_binds_a_node_with_its_own(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    # The write node's own $1 is auto-capped to what the graph has left: nothing. The limit to
    # raise is the graph's, and the error says so.
    app = budgeted_graph(research_graph(model), max_usd=(FANOUT + 1) * CALL, nodes={"write": 1.0})
    with pytest.raises(NodeBudgetExceededError) as caught:
        app.invoke({"topic": "x", "notes": []})
    error = caught.value
    assert (error.node, error.node_budget, error.budget_name) == ("write", "graph.write", "graph")
    assert error.spent == pytest.approx((FANOUT + 1) * CALL)
    assert error.limit == pytest.approx((FANOUT + 1) * CALL)
    assert log_counts(fake) == {"research": 1, "read": FANOUT}


def test_a_decorated_node_keeps_its_decorator_under_budgeted_graph(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    @budgeted_node(max_llm_calls=1)
    def draft(state: State) -> dict[str, Any]:
        model.invoke(ask("draft"))
        return {}

    graph = StateGraph(State)
    graph.add_node("draft", draft)
    graph.add_edge(START, "draft")
    compiled = graph.compile()
    app = budgeted_graph(compiled, max_usd=5)
    app.invoke({})
    with pytest.raises(NodeBudgetExceededError):
        app.invoke({})
    assert [child.name for child in app.budget.children] == ["draft"]
    assert app.node_budget("draft").children == []
    assert app.node_budget("draft").snapshot().llm_calls_remaining == 0
    assert app.node_budget("draft").snapshot().llm_calls_used == 1 == len(fake.requests)
    with pytest.raises(BudgetConfigError, match="decorated with @budgeted_node"):
        budgeted_graph(compiled, nodes={"draft": 1.0})


def test_everything_else_is_the_compiled_graphs(fake: FakeProvider, model: ChatOpenAI) -> None:
    compiled = research_graph(model, checkpointer=InMemorySaver())
    app = budgeted_graph(compiled, max_usd=5)
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}
    app.invoke({"topic": "x", "notes": []}, config)
    assert app.get_state(config).values == compiled.get_state(config).values
    assert "write" in app.get_graph().nodes
    assert app.checkpointer is compiled.checkpointer
    assert isinstance(app, type(compiled))  # a compiled graph: LangGraph takes it as one
    assert compiled.nodes["write"].bound is not app.nodes["write"].bound
    bound = app.with_config(recursion_limit=2)
    assert isinstance(bound, BudgetedGraph)
    assert bound.budget is app.budget
    with pytest.raises(Exception, match="Recursion limit"):
        bound.invoke({"topic": "x", "notes": []}, {"configurable": {"thread_id": "u"}})


def test_bad_input_says_what_to_fix(model: ChatOpenAI) -> None:
    compiled = research_graph(model)
    with pytest.warns(UnmatchedNameWarning, match=r"'reserch'.*did you mean 'research'\?"):
        budgeted_graph(compiled, nodes={"reserch": 0.5})
    with pytest.raises(BudgetConfigError, match=r"nodes\['write'\]: .*max_usd"):
        budgeted_graph(compiled, nodes={"write": -1})
    with pytest.raises(BudgetConfigError, match=r"nodes\['write'\] must be a USD limit"):
        budgeted_graph(compiled, nodes={"write": [1]})  # type: ignore[dict-item]
    with pytest.raises(BudgetConfigError, match="max_tokns"):
        budgeted_graph(compiled, nodes={"write": {"max_tokns": 5}})
    with pytest.raises(BudgetConfigError, match="max_tokns"):
        budgeted_graph(compiled, max_tokns=5)
    with pytest.raises(BudgetConfigError, match="on_exhausted"):
        budgeted_graph(compiled, on_exhausted="wait")  # type: ignore[arg-type]
    with pytest.raises(BudgetConfigError, match=r"call \.compile\(\)"):
        budgeted_graph(StateGraph(State))  # type: ignore[arg-type]
    with pytest.raises(BudgetConfigError, match="compiled LangGraph graph"):
        budgeted_graph(lambda s: s)  # type: ignore[arg-type]
    with pytest.raises(BudgetConfigError, match="budgeted already"):
        budgeted_graph(budgeted_graph(compiled))
    app = budgeted_graph(compiled)
    with pytest.raises(BudgetConfigError, match="needs a node name"):
        app.node_budget()
    with pytest.raises(BudgetConfigError, match="has no budget here: run it inside a budget"):
        app.node_budget("write")
    with pytest.raises(BudgetConfigError, match="has no budget here"):
        _ = app.budget
    with budget(name="request"):
        with pytest.raises(BudgetConfigError, match="no node 'wirte'; did you mean 'write'"):
            app.node_budget("wirte")
        with pytest.raises(BudgetConfigError, match="'write' is not a subgraph"):
            app.node_budget("write", "inner")


def test_the_functional_api_entrypoint_and_budgeted_tasks(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    @task
    def plain(topic: str) -> str:
        return str(model.invoke(ask("plain", topic)).content)

    @task
    @budgeted_node(max_llm_calls=2)
    def searched(topic: str) -> str:
        return str(model.invoke(ask("searched", topic)).content)

    @entrypoint(checkpointer=InMemorySaver())
    def flow(topic: str) -> list[str]:
        futures = [plain("a"), searched("b"), searched("c")]
        return [f.result() for f in futures]

    app = budgeted_graph(flow, max_usd=5)
    assert len(app.invoke("x", {"configurable": {"thread_id": "f"}})) == 3
    entry = app.node_budget("flow")
    assert [child.name for child in entry.children] == ["searched"]
    assert entry.child("searched").spent == pytest.approx(log_spend(fake, "searched"))
    assert entry.spent_direct == pytest.approx(log_spend(fake, "plain"))
    assert app.budget.spent == pytest.approx(3 * CALL)


def test_one_wrapped_graph_serves_each_callers_budget(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    # Wrapped once, as a web app does at import, then run for one user after the other.
    app = budgeted_graph(research_graph(model), max_usd=5, nodes={"write": 1.0})
    for user in ("user_alice", "user_bob"):
        with budget(max_usd=2, name=user) as scope:
            app.invoke({"topic": user, "notes": []})
        graph = scope.find_child("graph")
        assert graph is not None
        assert (graph.full_name, graph.config.max_usd) == (f"{user}.graph", 5)
        assert graph.child("write").config.max_usd == 1.0
        assert graph.child("read").snapshot().llm_calls_used == FANOUT
        assert scope.spent == pytest.approx((FANOUT + 3) * CALL)
    assert len(fake.requests) == 2 * (FANOUT + 3)


def users_graph(model: ChatOpenAI, meet: threading.Barrier) -> Any:
    """ask -> answer; ``ask`` waits until every user's run is inside it."""

    def ask_node(state: State) -> dict[str, Any]:
        meet.wait(timeout=10)
        model.invoke(ask("ask", state["topic"]))
        return {}

    def answer(state: State) -> dict[str, Any]:
        model.invoke(ask("answer", state["topic"]))
        return {}

    graph = StateGraph(State)
    graph.add_node("ask", ask_node)
    graph.add_node("answer", answer)
    graph.add_edge(START, "ask")
    graph.add_edge("ask", "answer")
    return graph.compile()


def requests_of(fake: FakeProvider, user: str) -> int:
    return sum(user in str(request.body["messages"]) for request in fake.requests)


def test_concurrent_users_in_threads_each_pay_in_their_own_tree(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    users = ("user_alice", "user_bob", "user_carol")
    app = budgeted_graph(users_graph(model, threading.Barrier(len(users))), max_usd=5)
    scopes: dict[str, Budget] = {}

    def serve(user: str) -> None:
        with budget(max_usd=1, name=user) as scope:
            app.invoke({"topic": user})
        scopes[user] = scope

    threads = [threading.Thread(target=serve, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for user in users:
        graph = scopes[user].child("graph")
        assert requests_of(fake, user) == 2
        assert (
            graph.child("ask").snapshot().llm_calls_used,
            graph.child("answer").snapshot().llm_calls_used,
        ) == (1, 1)
        assert scopes[user].spent == pytest.approx(2 * CALL)


def test_concurrent_users_in_asyncio_tasks_each_pay_in_their_own_tree(fake: FakeProvider) -> None:
    users = ("user_alice", "user_bob")

    async def main() -> dict[str, Budget]:
        model = chat(fake)
        meet = asyncio.Barrier(len(users))

        async def ask_node(state: State) -> dict[str, Any]:
            await meet.wait()  # both runs are inside this node at once
            await model.ainvoke(ask("ask", state["topic"]))
            return {}

        graph = StateGraph(State)
        graph.add_node("ask", ask_node)
        graph.add_edge(START, "ask")
        app = budgeted_graph(graph.compile(), max_llm_calls=1)

        async def serve(user: str) -> Budget:
            async with budget(max_usd=1, name=user) as scope:
                await app.ainvoke({"topic": user})
            return scope

        scopes = await asyncio.gather(*(serve(user) for user in users))
        return dict(zip(users, scopes, strict=True))

    for user, scope in asyncio.run(main()).items():
        assert requests_of(fake, user) == 1
        assert (
            scope.child("graph").child("ask").snapshot().llm_calls_used == 1
        )  # each within its own cap
        assert scope.spent == pytest.approx(CALL)


def test_a_subgraph_node_under_shekel_run_leaves_room_for_hand_written_budgets(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    # shekel run's budget, the application's, the graph, its subgraph node and the subgraph's
    # node: only two of these five levels count against the depth limit, so three hand-written
    # levels still fit inside.
    def fetch(state: State) -> dict[str, Any]:
        with budget(name="retry"), budget(name="attempt"), budget(name="call") as deepest:
            model.invoke(ask("fetch"))
        return {"notes": [deepest.full_name]}

    inner = StateGraph(State)
    inner.add_node("fetch", fetch)
    inner.add_edge(START, "fetch")
    outer = StateGraph(State)
    outer.add_node("gather", inner.compile())
    outer.add_edge(START, "gather")
    app = budgeted_graph(outer.compile(), max_usd=5)
    with budget(name="run") as run, budget(max_usd=1, name="app"):
        result = app.invoke({"notes": []})
    assert result["notes"] == ["run.app.graph.gather.fetch.retry.attempt.call"]
    assert run.spent == pytest.approx(CALL)
