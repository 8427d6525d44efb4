"""Tool calls of LlamaIndex's workflow agents: counted in the agent's budget before the tool
runs, refused at ``max_tool_calls``, released when the tool fails."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from li_models import LOCAL_PRICES, ToolCallingLLM, local
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.core.tools import FunctionTool

from shekel import Budget, LoopGuardError, ToolBudgetExceededError, budget

LOOKUP_PRICE = 0.01


class Lookup:
    """A tool that remembers each time it really ran; its first ``failures`` runs fail."""

    def __init__(self, failures: int = 0) -> None:
        self.runs = 0
        self.failures = failures

    def __call__(self, query: str) -> str:
        """Look the query up."""
        self.runs += 1
        if self.runs <= self.failures:
            raise ConnectionError("the lookup service is down")
        return f"found {query}"

    def tool(self) -> FunctionTool:
        return FunctionTool.from_defaults(self.__call__, name="lookup")


def run_agent(app: Budget, llm: ToolCallingLLM, lookup: Lookup, *, workflow: bool = False) -> Any:
    agent = FunctionAgent(name="Researcher", llm=llm, tools=[lookup.tool()], streaming=False)
    runner: Any = AgentWorkflow(agents=[agent]) if workflow else agent

    async def run() -> Any:
        async with app:
            return await runner.run("Find it")

    return asyncio.run(run())


def app_budget(**limits: Any) -> Budget:
    return budget(name="app", prices=LOCAL_PRICES, tool_prices={"lookup": LOOKUP_PRICE}, **limits)


def test_an_agents_tool_calls_are_counted_and_priced_in_its_budget() -> None:
    app, lookup = app_budget(), Lookup()
    llm = ToolCallingLLM(tool_turns=2, calls_per_turn=2)
    result = run_agent(app, llm, lookup)

    assert str(result) == "local answer"
    assert lookup.runs == 4
    step = app.child("Researcher")
    assert (step.snapshot().tool_calls_used, app.snapshot().tool_calls_used) == (4, 4)
    tools = [(c.tool_name, c.source) for c in step.history().calls if c.tool_name]
    assert tools == [("lookup", "tool")] * 4
    assert step.spent == app.spent == pytest.approx(4 * LOOKUP_PRICE + 3 * local(100, 10))


@pytest.mark.parametrize("workflow", [False, True], ids=["FunctionAgent", "AgentWorkflow"])
def test_max_tool_calls_stops_the_agent_before_the_next_tool_runs(workflow: bool) -> None:
    app, lookup = app_budget(max_tool_calls=2), Lookup()
    llm = ToolCallingLLM(tool_turns=5)
    with pytest.raises(ToolBudgetExceededError) as refused:
        run_agent(app, llm, lookup, workflow=workflow)

    assert refused.value.sent is False
    assert refused.value.tool_name == "lookup"
    assert refused.value.budget_name == "app"
    assert lookup.runs == 2  # the third call was refused before the tool ran
    assert llm.turns == 3  # and the agent asked the model nothing more
    assert app.snapshot().tool_calls_used == 2


def test_a_tool_price_over_the_usd_limit_is_refused_before_the_tool_runs() -> None:
    app, lookup = app_budget(max_usd=LOOKUP_PRICE * 1.5), Lookup()
    with pytest.raises(ToolBudgetExceededError) as refused:
        run_agent(app, ToolCallingLLM(tool_turns=3), lookup)

    assert refused.value.axis == "usd"
    assert lookup.runs == 1
    assert app.snapshot().tool_calls_used == 1


def test_a_tool_that_fails_is_not_counted_and_the_agent_goes_on() -> None:
    app, lookup = app_budget(max_tool_calls=1), Lookup(failures=2)
    llm = ToolCallingLLM(tool_turns=3)
    result = run_agent(app, llm, lookup)

    assert str(result) == "local answer"  # LlamaIndex gave the model each error
    assert lookup.runs == 3  # the two failures took no room from the one call allowed
    assert app.snapshot().tool_calls_used == 1
    assert app.spent == pytest.approx(LOOKUP_PRICE + 4 * local(100, 10))


def test_an_agents_limits_apply_to_its_tools() -> None:
    app, lookup = app_budget(), Lookup()
    app.child("Researcher", max_tool_calls=1)
    with pytest.raises(ToolBudgetExceededError) as refused:
        run_agent(app, ToolCallingLLM(tool_turns=2), lookup)

    assert refused.value.budget_name == "app.Researcher"
    assert lookup.runs == 1


def test_loop_guard_tells_an_agents_tool_calls_apart_by_their_arguments() -> None:
    app, lookup = app_budget(loop_guard=2), Lookup()

    async def run() -> None:
        async with app:
            for query in ("alpha", "beta", "alpha"):
                llm = ToolCallingLLM(tool_kwargs={"query": query})
                tools = [lookup.tool()]
                agent = FunctionAgent(name="Researcher", llm=llm, tools=tools, streaming=False)
                await agent.run("Find it")

    with pytest.raises(LoopGuardError, match="lookup"):
        asyncio.run(run())
    assert lookup.runs == 2  # alpha, beta; alpha again was stopped before it ran
    assert app.snapshot().tool_calls_used == 2


def test_tools_run_uncounted_outside_a_budget() -> None:
    lookup = Lookup()
    agent = FunctionAgent(
        name="Researcher", llm=ToolCallingLLM(tool_turns=2), tools=[lookup.tool()], streaming=False
    )

    async def run() -> Any:
        return await agent.run("Find it")

    result = asyncio.run(run())
    assert (str(result), lookup.runs) == ("local answer", 2)


def test_parallel_tool_calls_of_one_turn_share_the_cap() -> None:
    """One turn asking for five calls: LlamaIndex runs them as concurrent steps. The first
    refusal ends the run (sibling steps still waiting are cancelled or finish, as the release
    schedules them): never more than the cap run, and what ran is what counts."""
    app, lookup = app_budget(max_tool_calls=3), Lookup()
    with pytest.raises(ToolBudgetExceededError):
        run_agent(app, ToolCallingLLM(tool_turns=1, calls_per_turn=5), lookup)

    assert 1 <= lookup.runs <= 3
    assert app.snapshot().tool_calls_used == lookup.runs
    assert app.spent == pytest.approx(lookup.runs * LOOKUP_PRICE + local(100, 10))
