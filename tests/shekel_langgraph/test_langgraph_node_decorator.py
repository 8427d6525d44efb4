"""``@budgeted_node``: each run of a node charges one child of the active budget, named after the
node and reused across loops, retries and parallel ``Send`` branches (threads and tasks)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_stream_writer
from langgraph.errors import GraphRecursionError
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from langgraph.types import Command, RetryPolicy, Send, StreamWriter, interrupt
from lg_support import CALL, State, ask, chat, log_counts, log_spend

from shekel import BudgetConfigError, BudgetExceededError, budget, current_budget
from shekel.integration import OutsideBudgetWarning
from shekel.testing import FakeProvider, Reply
from shekel_langgraph import NodeBudgetExceededError, budgeted_node

FANOUT = 5


def fan_out_graph(model: ChatOpenAI, *, worker_usd: float | None = None) -> Any:
    """plan -> Send("worker") x FANOUT -> END; the worker is decorated."""

    def plan(state: State) -> dict[str, Any]:
        model.invoke(ask("plan"))
        return {"notes": ["plan"]}

    @budgeted_node(max_usd=worker_usd)
    def worker(state: State) -> dict[str, Any]:
        seen = current_budget()
        model.invoke(ask("worker", state["topic"]))
        return {"notes": [f"{seen.full_name if seen else None}@{threading.get_ident()}"]}

    def fan(state: State) -> list[Send]:
        return [Send("worker", {"topic": f"t{i}"}) for i in range(FANOUT)]

    graph = StateGraph(State)
    graph.add_node("plan", budgeted_node(plan))
    graph.add_node("worker", worker)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan, ["worker"])
    graph.add_edge("worker", END)
    return graph.compile()


def test_send_fan_out_in_threads_charges_one_child_per_node(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    app = fan_out_graph(model)
    with budget(max_usd=5, name="root") as root:
        result = app.invoke({"topic": "x", "notes": []})
    workers = [note for note in result["notes"] if note != "plan"]
    assert {note.split("@")[0] for note in workers} == {"root.worker"}
    assert len({note.split("@")[1] for note in workers}) > 1, "branches ran in parallel threads"
    assert [child.name for child in root.children] == ["plan", "worker"]
    plan, worker = root.children
    assert log_counts(fake) == {"plan": 1, "worker": FANOUT}
    assert worker.snapshot().llm_calls_used == FANOUT
    assert worker.spent == pytest.approx(log_spend(fake, "worker"))
    assert plan.spent == pytest.approx(log_spend(fake, "plan"))
    assert root.spent_direct == 0
    assert root.spent == pytest.approx((FANOUT + 1) * CALL)


def test_send_fan_out_in_async_tasks(fake: FakeProvider) -> None:
    async def main() -> tuple[Any, Any]:
        model = chat(fake)

        async def plan(state: State) -> dict[str, Any]:
            await model.ainvoke(ask("plan"))
            return {"notes": ["plan"]}

        @budgeted_node
        async def worker(state: State) -> dict[str, Any]:
            seen = current_budget()
            await model.ainvoke(ask("worker", state["topic"]))
            return {"notes": [seen.full_name if seen else "none"]}

        graph = StateGraph(State)
        graph.add_node("plan", budgeted_node(plan))
        graph.add_node("worker", worker)
        graph.add_edge(START, "plan")
        graph.add_conditional_edges(
            "plan", lambda s: [Send("worker", {"topic": f"t{i}"}) for i in range(FANOUT)]
        )
        graph.add_edge("worker", END)
        async with budget(max_usd=5, name="root") as root:
            result = await graph.compile().ainvoke({"topic": "x", "notes": []})
        assert current_budget() is None
        return root, result

    root, result = asyncio.run(main())
    assert sorted(result["notes"]) == ["plan"] + ["root.worker"] * FANOUT
    worker = root.child("worker")
    assert worker.snapshot().llm_calls_used == FANOUT
    assert worker.spent == pytest.approx(log_spend(fake, "worker"))
    assert root.child("plan").spent == pytest.approx(log_spend(fake, "plan"))


def test_a_sync_node_under_ainvoke_runs_in_a_worker_thread_with_its_budget(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    app = fan_out_graph(model)

    async def main() -> Any:
        async with budget(max_usd=5, name="root") as root:
            await app.ainvoke({"topic": "x", "notes": []})
        return root

    root = asyncio.run(main())
    assert root.child("worker").snapshot().llm_calls_used == FANOUT
    assert root.child("worker").spent == pytest.approx(log_spend(fake, "worker"))


def test_parallel_distinct_nodes_each_charge_their_own(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    def make(name: str, calls: int) -> Any:
        @budgeted_node
        def node(state: State) -> dict[str, Any]:
            for _ in range(calls):
                model.invoke(ask(name))
            return {"notes": [name]}

        return node

    graph = StateGraph(State)
    for name, calls in (("search", 1), ("summarize", 2), ("critique", 3)):
        graph.add_node(name, make(name, calls))
        graph.add_edge(START, name)
        graph.add_edge(name, END)
    with budget(max_usd=5, name="root") as root:
        graph.compile().invoke({"notes": []})
    assert log_counts(fake) == {"search": 1, "summarize": 2, "critique": 3}
    for name in ("search", "summarize", "critique"):
        assert root.child(name).spent == pytest.approx(log_spend(fake, name)), name
    assert root.spent == pytest.approx(6 * CALL)


def test_a_loop_revisiting_a_node_adds_to_the_same_child(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    @budgeted_node(max_usd=1.0)
    def draft(state: State) -> dict[str, Any]:
        model.invoke(ask("draft"))
        return {"rounds": state.get("rounds", 0) + 1}

    graph = StateGraph(State)
    graph.add_node("draft", draft)
    graph.add_edge(START, "draft")
    graph.add_conditional_edges("draft", lambda s: "draft" if s["rounds"] < 4 else END)
    with budget(max_usd=5, name="root") as root:
        graph.compile().invoke({"rounds": 0})
    assert [child.name for child in root.children] == ["draft"]
    assert root.child("draft").snapshot().llm_calls_used == 4 == log_counts(fake)["draft"]
    assert root.child("draft").spent == pytest.approx(log_spend(fake, "draft"))


def test_a_node_cap_stops_the_loop_before_the_node_runs_again(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    runs = []

    @budgeted_node(max_usd=2.5 * CALL)
    def draft(state: State) -> dict[str, Any]:
        runs.append(1)
        model.invoke(ask("draft"))
        return {"rounds": state.get("rounds", 0) + 1}

    graph = StateGraph(State)
    graph.add_node("draft", draft)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "draft")
    with budget(max_usd=5, name="root") as root, pytest.raises(BudgetExceededError) as caught:
        graph.compile().invoke({"rounds": 0})
    # Three runs fit under 2.5 calls' worth only because the cap is checked between calls:
    # the third call crosses it and is recorded; no fourth request is sent.
    assert len(fake.requests) == 3
    assert root.child("draft").spent == pytest.approx(log_spend(fake, "draft"))
    assert caught.value.budget_name == "root.draft"
    assert len(runs) == 3


def test_node_budget_exceeded_before_the_node_starts(fake: FakeProvider, model: ChatOpenAI) -> None:
    runs = []

    @budgeted_node(max_llm_calls=2)
    def draft(state: State) -> dict[str, Any]:
        runs.append(1)
        model.invoke(ask("draft"))
        return {"rounds": state.get("rounds", 0) + 1}

    graph = StateGraph(State)
    graph.add_node("draft", draft)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "draft")
    with budget(max_usd=5, name="root") as root, pytest.raises(NodeBudgetExceededError) as caught:
        graph.compile().invoke({"rounds": 0})
    error = caught.value
    assert len(runs) == 2 == len(fake.requests), "the third run never started"
    assert isinstance(error, BudgetExceededError)
    assert isinstance(error, RuntimeError)
    assert (error.node, error.node_budget, error.budget_name) == (
        "draft",
        "root.draft",
        "root.draft",
    )
    assert (error.axis, error.spent, error.limit, error.sent) == ("llm_calls", 2, 2, False)
    assert str(error).startswith(
        "LangGraph node 'draft' was not started: budget 'root.draft' has no room left for this "
        "call under its limit of 2 LLM calls (2 LLM calls used)"
    )
    assert "Raise the limit" in str(error)
    assert "pass on_exhausted='interrupt'" in str(error)
    assert root.child("draft").snapshot().llm_calls_used == 2


def test_an_exhausted_ancestor_stops_a_node(fake: FakeProvider, model: ChatOpenAI) -> None:
    @budgeted_node(max_usd=10)
    def draft(state: State) -> dict[str, Any]:
        model.invoke(ask("draft"))
        return {}

    graph = StateGraph(State)
    graph.add_node("draft", draft)
    graph.add_edge(START, "draft")
    app = graph.compile()
    with budget(max_llm_calls=1, name="root"), pytest.raises(NodeBudgetExceededError) as caught:
        app.invoke({})
        app.invoke({})
    assert len(fake.requests) == 1
    # The node's budget has room; the refusal names the budget whose own cap refused.
    assert (caught.value.budget_name, caught.value.node_budget) == ("root", "root.draft")
    assert "node 'draft' was not started: budget 'root' has no room left" in str(caught.value)


def test_retries_reuse_the_child_and_budget_errors_are_not_retried(fake: FakeProvider) -> None:
    model = ChatOpenAI(model="gpt-4o", base_url=fake.openai_base_url, api_key="t", max_retries=0)
    attempts = []

    @budgeted_node(max_llm_calls=2)
    def flaky(state: State) -> dict[str, Any]:
        attempts.append(current_budget().full_name)  # type: ignore[union-attr]
        model.invoke(ask("flaky"))
        return {"rounds": state.get("rounds", 0) + 1}

    graph = StateGraph(State)
    graph.add_node("flaky", flaky, retry_policy=RetryPolicy(initial_interval=0, jitter=False))
    graph.add_edge(START, "flaky")
    graph.add_edge("flaky", "flaky")
    fake.enqueue(Reply.error(500), Reply(), Reply.error(500), Reply())  # one retry per run
    with budget(max_usd=5, name="root") as root, pytest.raises(NodeBudgetExceededError):
        graph.compile().invoke({"rounds": 0})
    # run 1: 500 then retried and answered; run 2 the same; run 3 refused before it started,
    # and LangGraph's default retry policy does not retry the refusal.
    assert attempts == ["root.flaky"] * 4
    assert len(fake.requests) == 4
    assert root.child("flaky").snapshot().llm_calls_used == 2
    assert root.child("flaky").spent == pytest.approx(2 * CALL)
    assert [child.name for child in root.children] == ["flaky"]


def test_a_refusal_inside_the_node_is_not_retried(fake: FakeProvider, model: ChatOpenAI) -> None:
    attempts = []

    @budgeted_node(max_llm_calls=1)
    def twice(state: State) -> dict[str, Any]:
        attempts.append(1)
        model.invoke(ask("twice"))
        model.invoke(ask("twice"))
        return {}

    graph = StateGraph(State)
    graph.add_node("twice", twice, retry_policy=RetryPolicy(initial_interval=0))
    graph.add_edge(START, "twice")
    with budget(max_usd=5, name="root") as root, pytest.raises(BudgetExceededError) as caught:
        graph.compile().invoke({})
    assert attempts == [1]
    assert caught.value.sent is False
    assert len(fake.requests) == 1
    assert root.child("twice").snapshot().llm_calls_used == 1


def test_recursion_limit_still_stops_a_budgeted_loop(fake: FakeProvider, model: ChatOpenAI) -> None:
    @budgeted_node
    def spin(state: State) -> dict[str, Any]:
        model.invoke(ask("spin"))
        return {}

    graph = StateGraph(State)
    graph.add_node("spin", spin)
    graph.add_edge(START, "spin")
    graph.add_edge("spin", "spin")
    with budget(max_usd=5, name="root") as root, pytest.raises(GraphRecursionError):
        graph.compile().invoke({}, {"recursion_limit": 4})
    assert len(fake.requests) == 4
    assert root.child("spin").spent == pytest.approx(log_spend(fake, "spin"))


def test_the_nodes_own_interrupt_passes_through_untouched(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    @budgeted_node(max_usd=1)
    def review(state: State) -> dict[str, Any]:
        model.invoke(ask("review"))
        answer = interrupt({"question": "ship it?"})
        return {"notes": [answer]}

    graph = StateGraph(State)
    graph.add_node("review", review)
    graph.add_edge(START, "review")
    app = graph.compile(checkpointer=InMemorySaver())
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}
    with budget(max_usd=5, name="root") as root:
        paused = app.invoke({"notes": []}, config)
        assert current_budget() is root
        done = app.invoke(Command(resume="yes"), config)
    assert [i.value for i in paused["__interrupt__"]] == [{"question": "ship it?"}]
    assert done["notes"] == ["yes"]
    assert (
        root.child("review").snapshot().llm_calls_used == 2 == len(fake.requests)
    )  # the node ran twice


def test_injection_of_config_runtime_store_and_writer_is_kept(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    seen: dict[str, Any] = {}

    @budgeted_node
    def with_config(state: State, config: RunnableConfig) -> dict[str, Any]:
        seen["config"] = config["metadata"]["langgraph_node"]
        return {}

    @budgeted_node
    def with_runtime(state: State, runtime: Runtime[None]) -> dict[str, Any]:
        seen["runtime"] = type(runtime).__name__
        return {}

    @budgeted_node
    def with_store(state: State, *, store: BaseStore) -> dict[str, Any]:
        seen["store"] = type(store).__name__
        return {}

    @budgeted_node
    async def with_writer(state: State, writer: StreamWriter) -> dict[str, Any]:
        writer({"from": "writer"})
        get_stream_writer()({"from": "get_stream_writer"})
        seen["writer"] = current_budget().full_name  # type: ignore[union-attr]
        return {}

    graph = StateGraph(State)
    for node in (with_config, with_runtime, with_store, with_writer):
        graph.add_node(node.__name__, node)
    graph.add_edge(START, "with_config")
    graph.add_edge("with_config", "with_runtime")
    graph.add_edge("with_runtime", "with_store")
    graph.add_edge("with_store", "with_writer")
    app = graph.compile(store=InMemoryStore())

    async def main() -> list[Any]:
        async with budget(max_usd=1, name="root"):
            return [c async for c in app.astream({}, stream_mode="custom")]

    custom = asyncio.run(main())
    assert seen == {
        "config": "with_config",
        "runtime": "Runtime",
        "store": "InMemoryStore",
        "writer": "root.with_writer",
    }
    assert custom == [{"from": "writer"}, {"from": "get_stream_writer"}]


def test_a_raw_sdk_call_in_a_node_is_charged_to_the_node(fake: FakeProvider, oai: Any) -> None:
    @budgeted_node
    def raw(state: State) -> dict[str, Any]:
        oai.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": ask("raw")}]
        )
        return {}

    graph = StateGraph(State)
    graph.add_node("raw", raw)
    graph.add_edge(START, "raw")
    with budget(max_usd=1, name="root") as root:
        graph.compile().invoke({})
    assert root.child("raw").spent == pytest.approx(log_spend(fake, "raw")) == pytest.approx(CALL)


def test_without_an_active_budget_the_node_runs_as_it_is(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    @budgeted_node(max_usd=0.000_001)
    def draft(state: State) -> dict[str, Any]:
        model.invoke(ask("draft"))
        return {"notes": [str(current_budget())]}

    graph = StateGraph(State)
    graph.add_node("draft", draft)
    graph.add_edge(START, "draft")
    with pytest.warns(OutsideBudgetWarning, match="'draft' ran outside any budget"):
        assert graph.compile().invoke({"notes": []}) == {"notes": ["None"]}
    assert len(fake.requests) == 1


def test_a_node_name_with_dots_and_spaces_becomes_a_valid_budget_name(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    @budgeted_node
    def node(state: State) -> dict[str, Any]:
        model.invoke(ask("dotted"))
        return {}

    graph = StateGraph(State)
    graph.add_node("Step 1.a", node)
    graph.add_edge(START, "Step 1.a")
    with budget(max_usd=1, name="root") as root:
        graph.compile().invoke({})
    assert [child.name for child in root.children] == ["Step 1%2Ea"]
    assert root.children[0].spent == pytest.approx(CALL)


def test_an_explicit_name_and_a_decorated_helper_nest(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    @budgeted_node(max_usd=1)
    def summarize_part(text: str) -> str:
        model.invoke(ask("helper", text))
        return text

    @budgeted_node(name="research phase")
    def research(state: State) -> dict[str, Any]:
        model.invoke(ask("research"))
        return {"notes": [summarize_part("a"), summarize_part("b")]}

    graph = StateGraph(State)
    graph.add_node("research", research)
    graph.add_edge(START, "research")
    with budget(max_usd=5, name="root") as root:
        graph.compile().invoke({"notes": []})
    phase = root.child("research phase")
    assert [child.name for child in root.children] == ["research phase"]
    assert [child.name for child in phase.children] == ["summarize_part"]
    assert phase.child("summarize_part").spent == pytest.approx(log_spend(fake, "helper"))
    assert phase.spent == pytest.approx(3 * CALL)


def test_limits_raised_with_set_limits_are_kept_by_later_runs(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    @budgeted_node(max_llm_calls=1)
    def draft(state: State) -> dict[str, Any]:
        model.invoke(ask("draft"))
        return {}

    graph = StateGraph(State)
    graph.add_node("draft", draft)
    graph.add_edge(START, "draft")
    app = graph.compile()
    with budget(max_usd=5, name="root") as root:
        app.invoke({})
        with pytest.raises(NodeBudgetExceededError):
            app.invoke({})
        root.child("draft").set_limits(max_llm_calls=3)
        app.invoke({})
        app.invoke({})
        with pytest.raises(NodeBudgetExceededError):
            app.invoke({})
    assert root.child("draft").snapshot().llm_calls_used == 3 == len(fake.requests)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_usd": -1}, "budgeted_node['draft']: max_usd"),
        ({"max_usd": 1, "max_tokns": 5}, "max_tokns"),
        ({"name": "phase one", "max_usd": "1"}, "budgeted_node['phase one']"),
        ({"name": 3}, "name must be a string"),
        ({"on_exhausted": "pause"}, "on_exhausted must be 'raise'"),
        ({"ledger": object()}, "may not set 'ledger'"),
    ],
)
def test_bad_arguments_fail_when_decorating(kwargs: dict[str, Any], message: str) -> None:
    def draft(state: State) -> dict[str, Any]:
        return {}

    with pytest.raises(BudgetConfigError) as caught:
        budgeted_node(**kwargs)(draft)
    assert message in str(caught.value)


def test_decorating_something_else_than_a_node_function_says_what_to_do() -> None:
    graph = StateGraph(State)
    graph.add_node("n", lambda s: {})
    graph.add_edge(START, "n")
    with pytest.raises(BudgetConfigError, match="budgeted_graph"):
        budgeted_node(graph.compile())

    def gen(state: State) -> Any:
        yield {}

    with pytest.raises(BudgetConfigError, match="generator"):
        budgeted_node(gen)


def test_called_outside_a_graph_the_node_is_charged_by_its_function_name(
    fake: FakeProvider, model: ChatOpenAI
) -> None:
    @budgeted_node(max_llm_calls=1)
    def summarize(state: State) -> dict[str, Any]:
        model.invoke(ask("direct"))
        return {"notes": ["ok"]}

    with pytest.warns(OutsideBudgetWarning):
        assert summarize({}) == {"notes": ["ok"]}  # no budget: runs as it is
    with budget(max_usd=1, name="unit") as unit:
        assert summarize({}) == {"notes": ["ok"]}
        with pytest.raises(NodeBudgetExceededError, match="'summarize' was not started"):
            summarize({})
    assert unit.child("summarize").snapshot().llm_calls_used == 1
    assert len(fake.requests) == 2

    @budgeted_node(max_llm_calls=1, on_exhausted="interrupt")
    def pausing(state: State) -> dict[str, Any]:
        model.invoke(ask("direct"))
        return {}

    with budget(max_usd=1, name="unit"):
        pausing({})
        # Outside a graph there is nothing to pause: it raises instead.
        with pytest.raises(NodeBudgetExceededError, match="'pausing' was not started"):
            pausing({})


def test_async_nodes_without_a_budget_and_with_a_refusal_inside(fake: FakeProvider) -> None:
    async def main() -> tuple[dict[str, Any], Any]:
        model = chat(fake)

        @budgeted_node(max_llm_calls=1)
        async def twice(state: State) -> dict[str, Any]:
            await model.ainvoke(ask("twice"))
            await model.ainvoke(ask("twice"))
            return {"notes": ["twice"]}

        graph = StateGraph(State)
        graph.add_node("twice", twice)
        graph.add_edge(START, "twice")
        app = graph.compile()
        with pytest.warns(OutsideBudgetWarning):
            unbudgeted = await app.ainvoke({"notes": []})
        async with budget(max_usd=1, name="root") as root:
            with pytest.raises(BudgetExceededError) as caught:
                await app.ainvoke({"notes": []})
        assert caught.value.sent is False
        assert not isinstance(caught.value, NodeBudgetExceededError)
        return unbudgeted, root

    unbudgeted, root = asyncio.run(main())
    assert unbudgeted == {"notes": ["twice"]}
    assert root.child("twice").snapshot().llm_calls_used == 1
    assert len(fake.requests) == 3


def test_an_unnamed_enclosing_budget_gets_the_nodes_child(model: ChatOpenAI) -> None:
    seen: list[str] = []

    @budgeted_node
    def node(state: State) -> dict[str, Any]:
        active = current_budget()
        assert active is not None
        seen.append(active.full_name)
        return {}

    graph = StateGraph(State)
    graph.add_node("node", node)
    graph.add_edge(START, "node")
    with budget(max_usd=1) as root:
        graph.compile().invoke({})
    assert seen == ["budget.node"]
    assert [c.name for c in root.children] == ["node"]


def test_a_node_budget_made_elsewhere_is_used_with_its_limits(model: ChatOpenAI) -> None:
    def build(limit: float) -> Any:
        @budgeted_node(max_usd=limit)
        def draft(state: State) -> dict[str, Any]:
            return {}

        graph = StateGraph(State)
        graph.add_node("draft", draft)
        graph.add_edge(START, "draft")
        return graph.compile()

    with budget(max_usd=5, name="root") as root:
        build(1.0).invoke({})
        build(2.0).invoke({})  # options apply when the child is made: it exists, as it is
    assert [child.name for child in root.children] == ["draft"]
    assert root.child("draft").config.max_usd == 1.0
