"""An exhausted agent, with the real openai-agents: stopped before its request is sent, by an
error no retry policy sees, and the run ends cleanly (every span and trace closed)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agents import (
    Agent,
    ModelRetrySettings,
    ModelSettings,
    RetryPolicyContext,
    Runner,
    Usage,
    function_tool,
)
from agents.tracing import get_current_span, get_current_trace
from oa_support import LocalModel, SpanLog, responses

from shekel import BudgetExceededError, budget
from shekel.testing import FakeProvider, Reply, ToolCall
from shekel_openai_agents import AgentBudgetExceededError

consulted: list[RetryPolicyContext] = []


def retry_everything(context: RetryPolicyContext) -> bool:
    consulted.append(context)
    return True


@function_tool
def lookup(topic: str) -> str:
    """Look a topic up."""
    return "facts"


def triage(fake: FakeProvider) -> Agent:
    """Triage hands off to Researcher, whose first answer calls a tool (a second call follows);
    both retry any failed model call three times."""
    retry = ModelSettings(retry=ModelRetrySettings(max_retries=3, policy=retry_everything))
    researcher = Agent(
        name="Researcher", model=responses(fake), tools=[lookup], model_settings=retry
    )
    fake.enqueue(
        Reply(tool_calls=(ToolCall("transfer_to_researcher", {}),)),
        Reply(tool_calls=(ToolCall("lookup", {"topic": "budgets"}),)),
    )
    return Agent(name="Triage", model=responses(fake), handoffs=[researcher], model_settings=retry)


def run(how: str, agent: Agent) -> Any:
    if how == "run_sync":
        return Runner.run_sync(agent, "Research budgets")
    if how == "run":
        return asyncio.run(Runner.run(agent, "Research budgets"))

    async def consume() -> Any:
        result = Runner.run_streamed(agent, "Research budgets")
        async for _ in result.stream_events():
            pass
        return result

    return asyncio.run(consume())


@pytest.fixture(autouse=True)
def _nothing_consulted() -> None:
    consulted.clear()


@pytest.mark.parametrize("how", ["run_sync", "run", "run_streamed"])
def test_an_exhausted_agent_is_stopped_before_its_request(
    fake: FakeProvider, spans: SpanLog, how: str
) -> None:
    with budget(max_usd=1, name="app") as app:
        app.child("Researcher", max_llm_calls=1)
        with pytest.raises(AgentBudgetExceededError) as caught:
            run(how, triage(fake))
    error = caught.value
    assert isinstance(error, BudgetExceededError)
    assert error.sent is False
    assert (error.agent_name, error.budget_name) == ("Researcher", "app.Researcher")
    assert "agent 'Researcher' was stopped before its model call" in str(error)
    assert "the request was not sent. Raise the limit" in str(error)
    assert len(fake.requests) == 2  # Triage's, and Researcher's first: nothing after
    assert app.snapshot().llm_calls_used == 2
    assert consulted == []  # no retry policy saw the refusal
    # The run ended cleanly: its trace and every span closed, nothing left current.
    assert spans.agent_spans() == ["Triage", "Researcher"]
    assert spans.open_spans() == []
    assert len(spans.traces_started) == 1 == len(spans.traces_ended)
    assert get_current_trace() is None
    assert get_current_span() is None


def test_an_agent_whose_parent_is_exhausted_is_stopped_naming_the_parent(
    fake: FakeProvider,
) -> None:
    with budget(max_usd=1, max_llm_calls=1, name="app"):
        with pytest.raises(AgentBudgetExceededError) as caught:
            Runner.run_sync(triage(fake), "Research budgets")
    assert (caught.value.agent_name, caught.value.budget_name) == ("Researcher", "app")
    assert len(fake.requests) == 1


def test_limits_for_an_agent_stop_it_in_every_run_under_that_budget(fake: FakeProvider) -> None:
    from shekel_openai_agents import agent_budgets

    with budget(max_usd=1, name="app") as app, agent_budgets({"Triage": {"max_llm_calls": 1}}):
        Runner.run_sync(triage(fake), "First")
        with pytest.raises(AgentBudgetExceededError) as caught:
            Runner.run_sync(triage(fake), "Second")
    assert caught.value.budget_name == "app.Triage"
    assert app.find_child("Triage").snapshot().llm_calls_used == 1  # type: ignore[union-attr]
    assert len(fake.requests) == 3


def test_a_local_model_is_stopped_too(fake: FakeProvider) -> None:
    """Usage a model reports that crosses a cap is recorded without failing the run; the
    agent's next call is refused before the model runs."""
    model = LocalModel(usage=Usage(requests=1, input_tokens=1_000_000, total_tokens=1_000_000))
    agent = Agent(name="Local", model=model)
    with budget(max_usd=0.10, name="app") as app:
        assert Runner.run_sync(agent, "Once").final_output == "local answer"
        assert app.spent == pytest.approx(0.15)  # 1M input tokens of gpt-4o-mini, over the cap
        with pytest.raises(AgentBudgetExceededError) as caught:
            Runner.run_sync(agent, "Twice")
    assert caught.value.budget_name == "app"  # its own cap: Local has none
    assert model.calls == 1
    calls = list(app.find_child("Local").history().calls)  # type: ignore[union-attr]
    assert [(c.source, c.input_tokens, c.estimated) for c in calls] == [
        ("openai-agents", 1_000_000, False)
    ]
