"""Two agents and a handoff, with the real openai-agents against the fake provider: each
agent's model calls are charged to the budget named after it, once, whichever way the run is
made (``run_sync``, ``run``, ``run_streamed``), whichever OpenAI API the model speaks, with
tracing on or off."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, function_tool
from oa_support import CALL_USD, SpanLog, chat, client, responses

from shekel import budget
from shekel.testing import FakeProvider, Reply, ToolCall

MODELS = {"responses": responses, "chat": chat}


def run_sync(agent: Agent, prompt: str, config: RunConfig) -> Any:
    return Runner.run_sync(agent, prompt, run_config=config).final_output


def run_async(agent: Agent, prompt: str, config: RunConfig) -> Any:
    return asyncio.run(Runner.run(agent, prompt, run_config=config)).final_output


def run_streamed(agent: Agent, prompt: str, config: RunConfig) -> Any:
    async def consume() -> Any:
        result = Runner.run_streamed(agent, prompt, run_config=config)
        async for _ in result.stream_events():
            pass
        return result.final_output

    return asyncio.run(consume())


RUNS: dict[str, Callable[[Agent, str, RunConfig], Any]] = {
    "run_sync": run_sync,
    "run": run_async,
    "run_streamed": run_streamed,
}


def triage_and_researcher(fake: FakeProvider, api: str) -> Agent:
    researcher = Agent(name="Researcher", model=MODELS[api](fake))
    fake.enqueue(Reply(tool_calls=(ToolCall("transfer_to_researcher", {}),)))
    return Agent(name="Triage", model=MODELS[api](fake), handoffs=[researcher])


@pytest.mark.parametrize("tracing", ["tracing", "no-tracing"])
@pytest.mark.parametrize("api", sorted(MODELS))
@pytest.mark.parametrize("how", sorted(RUNS))
def test_a_handoff_moves_the_charge_to_the_agent_that_runs_next(
    fake: FakeProvider, spans: SpanLog, how: str, api: str, tracing: str
) -> None:
    triage = triage_and_researcher(fake, api)
    config = RunConfig(tracing_disabled=tracing == "no-tracing")
    with budget(max_usd=1, name="app") as app:
        output = RUNS[how](triage, "Find the answer", config)
    assert output == fake.default_text
    assert [child.name for child in app.children] == ["Triage", "Researcher"]
    for name in ("Triage", "Researcher"):
        child = app.find_child(name)
        assert child is not None
        assert child.snapshot().llm_calls_used == 1, name
        assert child.spent == pytest.approx(CALL_USD)
    assert app.snapshot().llm_calls_used == 2 == len(fake.requests)  # each call counted once
    assert app.spent_direct == 0
    path = "/v1/responses" if api == "responses" else "/v1/chat/completions"
    assert {request.path for request in fake.requests} == {path}
    if tracing == "tracing":
        assert spans.agent_spans() == ["Triage", "Researcher"]
    else:
        assert spans.started == {}


def test_agents_pay_under_an_unnamed_budget_and_nested_budgets(fake: FakeProvider) -> None:
    with budget(max_usd=1) as root:
        Runner.run_sync(triage_and_researcher(fake, "responses"), "Go")
    assert [child.full_name for child in root.children] == ["budget.Triage", "budget.Researcher"]
    with budget(max_usd=1, name="app"), budget(name="alice") as alice:
        Runner.run_sync(triage_and_researcher(fake, "responses"), "Go")
    assert [child.full_name for child in alice.children] == [
        "app.alice.Triage",
        "app.alice.Researcher",
    ]


def test_an_agent_run_twice_pays_into_the_same_child(fake: FakeProvider) -> None:
    with budget(max_usd=1, name="app") as app:
        Runner.run_sync(triage_and_researcher(fake, "responses"), "Once")
        Runner.run_sync(triage_and_researcher(fake, "responses"), "Twice")
    assert [child.name for child in app.children] == ["Triage", "Researcher"]
    assert [child.snapshot().llm_calls_used for child in app.children] == [2, 2]


def test_a_run_inside_a_budget_named_after_its_agent_pays_there(fake: FakeProvider) -> None:
    with budget(max_usd=1, name="app") as app, app.child("Triage") as triage_budget:
        Runner.run_sync(triage_and_researcher(fake, "responses"), "Go")
    assert triage_budget.snapshot().llm_calls_used == 2
    assert [child.name for child in triage_budget.children] == ["Researcher"]


def test_a_run_outside_any_budget_is_not_counted(fake: FakeProvider) -> None:
    output = Runner.run_sync(triage_and_researcher(fake, "responses"), "Go").final_output
    assert output == fake.default_text
    assert len(fake.requests) == 2


def test_a_budget_entered_inside_the_run_pays_for_what_is_sent_there(fake: FakeProvider) -> None:
    @function_tool
    async def ask_directly(question: str) -> str:
        """Ask the model directly."""
        with budget(name="direct") as direct:
            await client(fake).responses.create(model="gpt-4o-mini", input=question)
        seen.append(direct.snapshot().llm_calls_used)
        return "asked"

    seen: list[int] = []
    fake.enqueue(Reply(tool_calls=(ToolCall("ask_directly", {"question": "why"}),)))
    agent = Agent(name="Researcher", model=responses(fake), tools=[ask_directly])
    with budget(max_usd=1, name="app") as app:
        Runner.run_sync(agent, "Go")
    researcher = app.find_child("Researcher")
    assert researcher is not None
    assert seen == [1]
    assert researcher.snapshot().llm_calls_used == 2  # its own two model calls, not the tool's
    assert [child.name for child in app.children] == ["Researcher", "direct"]
    assert app.snapshot().llm_calls_used == 3
