"""Tools with the real openai-agents: a tool call counts against the agent that made it
(``max_tool_calls``, ``tool_prices``), is refused before the tool runs, and is given back when
the tool raises; an agent used as a tool pays for its own model calls."""

from __future__ import annotations

import asyncio

import pytest
from agents import Agent, Runner, function_tool
from agents.exceptions import UserError
from oa_support import responses

from shekel import ToolBudgetExceededError, budget
from shekel.testing import FakeProvider, Reply, ToolCall

runs: list[str] = []


@function_tool
def search(query: str) -> str:
    """Search the web."""
    runs.append(query)
    if query == "broken":
        raise RuntimeError("the search engine is down")
    return f"results for {query}"


@pytest.fixture(autouse=True)
def _no_runs_yet() -> None:
    runs.clear()


def calls(*queries: str) -> Reply:
    return Reply(tool_calls=tuple(ToolCall("search", {"query": q}) for q in queries))


def researcher(fake: FakeProvider) -> Agent:
    return Agent(name="Researcher", model=responses(fake), tools=[search])


def test_tool_calls_count_against_the_agent_and_its_tool_prices(fake: FakeProvider) -> None:
    fake.enqueue(calls("a", "b"), calls("c"))  # two in parallel, then one more
    with budget(max_usd=1, name="app", tool_prices={"search": 0.25}) as app:
        Runner.run_sync(researcher(fake), "Research")
    child = app.find_child("Researcher")
    assert child is not None
    assert sorted(runs) == ["a", "b", "c"]
    assert child.snapshot().tool_calls_used == 3 == app.snapshot().tool_calls_used
    assert child.snapshot().llm_calls_used == 3
    tools = [c for c in child.history().calls if c.source == "tool"]
    assert [c.tool_name for c in tools] == ["search"] * 3
    assert sum(c.cost for c in tools) == 750_000_000  # nano-dollars: $0.25 each, in the agent's


def test_a_tool_over_max_tool_calls_is_refused_before_it_runs(fake: FakeProvider) -> None:
    fake.enqueue(calls("a"), calls("b"))
    with budget(max_usd=1, name="app") as app:
        app.child("Researcher", max_tool_calls=1)
        with pytest.raises(UserError) as caught:
            Runner.run_sync(researcher(fake), "Research")
    refusal = caught.value.__cause__
    assert isinstance(refusal, ToolBudgetExceededError)
    assert refusal.sent is False
    assert refusal.budget_name == "app.Researcher"
    assert runs == ["a"]  # "b" never ran
    assert app.snapshot().tool_calls_used == 1
    assert app.snapshot().usd_reserved == 0
    assert len(fake.requests) == 2  # no model call after the refusal


def test_a_tool_that_raises_is_given_back(fake: FakeProvider) -> None:
    fake.enqueue(calls("broken"), calls("fine"))
    with budget(max_usd=1, name="app", tool_prices={"search": 0.25}) as app:
        output = Runner.run_sync(researcher(fake), "Research").final_output
    assert output == fake.default_text  # the SDK told the model, and the run went on
    assert runs == ["broken", "fine"]
    assert app.snapshot().tool_calls_used == 1
    assert app.snapshot().usd_reserved == 0


def test_a_tool_that_raises_with_no_error_function_is_given_back(fake: FakeProvider) -> None:
    @function_tool(failure_error_function=None)
    def fragile(query: str) -> str:
        """Fail."""
        runs.append(query)
        raise RuntimeError("no luck")

    fake.enqueue(Reply(tool_calls=(ToolCall("fragile", {"query": "x"}),)))
    agent = Agent(name="Researcher", model=responses(fake), tools=[fragile])
    with budget(max_usd=1, name="app", tool_prices={"fragile": 0.25}) as app:
        with pytest.raises(UserError):
            Runner.run_sync(agent, "Research")
        assert app.snapshot().usd_reserved == 0
    assert runs == ["x"]
    assert app.snapshot().tool_calls_used == 0


def test_tools_in_a_streamed_run(fake: FakeProvider) -> None:
    fake.enqueue(calls("broken"), calls("a"))

    async def consume() -> None:
        result = Runner.run_streamed(researcher(fake), "Research")
        async for _ in result.stream_events():
            pass

    with budget(max_usd=1, name="app") as app:
        asyncio.run(consume())
    assert runs == ["broken", "a"]
    assert app.snapshot().tool_calls_used == 1
    assert app.find_child("Researcher").snapshot().tool_calls_used == 1  # type: ignore[union-attr]


def test_an_agent_used_as_a_tool_pays_for_its_own_calls(fake: FakeProvider) -> None:
    translator = Agent(name="Translator", model=responses(fake))
    manager = Agent(
        name="Manager",
        model=responses(fake),
        tools=[translator.as_tool(tool_name="translate", tool_description="Translate text.")],
    )
    fake.enqueue(Reply(tool_calls=(ToolCall("translate", {"input": "bonjour"}),)))
    with budget(max_usd=1, name="app") as app:
        Runner.run_sync(manager, "Translate bonjour")
    manager_budget, translator_budget = app.find_child("Manager"), app.find_child("Translator")
    assert manager_budget is not None
    assert translator_budget is not None
    assert (
        manager_budget.snapshot().llm_calls_used,
        manager_budget.snapshot().tool_calls_used,
    ) == (2, 1)
    assert (
        translator_budget.snapshot().llm_calls_used,
        translator_budget.snapshot().tool_calls_used,
    ) == (1, 0)
    assert app.snapshot().llm_calls_used == 3 == len(fake.requests)
