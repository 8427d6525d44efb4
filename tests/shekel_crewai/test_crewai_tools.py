"""Tool calls count against max_tool_calls, tool_prices and loop_guard before the tool runs. A
refused tool does not run: the agent is told it was blocked, and the agent and the crew go on.
A tool that fails is released, not counted."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from crewai import Agent, Crew, Task
from crewai.hooks import InterceptionPoint, register_hook, unregister_hook
from crewai.tools import tool
from crews import ANALYST, FINAL, PRICES, ScriptedLLM, ToolCallsFirst, child, cost, openai_llm

from shekel import budget
from shekel.testing import FakeProvider
from shekel_crewai import crew_budget


class Lookup:
    """A tool that counts its runs, and fails its first ``failures`` runs."""

    def __init__(self, failures: int = 0) -> None:
        self.runs = 0
        self.lock = threading.Lock()

        @tool("lookup")
        def lookup(query: str) -> str:
            """Look a fact up."""
            with self.lock:
                self.runs += 1
                if self.runs <= failures:
                    raise ConnectionError("the fact service is down")
            return f"fact about {query}"

        self.tool = lookup


def react(*queries: str) -> list[str]:
    """ReAct turns that use the lookup tool once per query (then the LLM's final answer)."""
    return [
        f'Thought: I should look it up\nAction: lookup\nAction Input: {{"query": "{q}"}}'
        for q in queries
    ]


def ours(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "shekel_crewai"]


def tool_crew(llm: Any, lookup: Lookup) -> Crew:
    analyst = Agent(role=ANALYST, goal="g", backstory="b", llm=llm, tools=[lookup.tool])
    task = Task(name="research", description="Research", expected_output="notes", agent=analyst)
    return Crew(agents=[analyst], tasks=[task])


def test_tool_calls_are_counted_on_the_agent_with_their_price() -> None:
    lookup = Lookup()
    crew = tool_crew(ScriptedLLM(model="scripted-1", script=react("a", "b")), lookup)
    with budget(
        name="crew", max_tool_calls=5, tool_prices={"lookup": 0.01}, prices=PRICES
    ) as spend:
        crew.kickoff()
    analyst = child(spend, ANALYST)
    assert lookup.runs == 2
    assert (analyst.snapshot().tool_calls_used, spend.snapshot().tool_calls_used) == (2, 2)
    assert analyst.spent == pytest.approx(0.02 + cost(3, "scripted-1"), abs=1e-12)
    assert [r.tool_name for r in analyst.history().calls if r.source == "tool"] == [
        "lookup",
        "lookup",
    ]


def test_a_refused_tool_does_not_run_and_the_crew_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lookup = Lookup()
    llm = ScriptedLLM(model="scripted-1", script=react("a", "b"))
    crew = crew_budget(tool_crew(llm, lookup), agents={ANALYST: {"max_tool_calls": 1}}, name=None)
    with (
        caplog.at_level(logging.WARNING, logger="shekel_crewai"),
        budget(name="crew", prices=PRICES) as spend,
    ):
        output = crew.kickoff()
    assert output.raw == "done"
    assert lookup.runs == 1
    assert child(spend, ANALYST).snapshot().tool_calls_used == 1
    assert llm.calls == 3  # the agent read the refusal and answered
    assert ours(caplog) == [
        "tool 'lookup' was not run: budget 'crew.Research Analyst' has no room left for it "
        "under its tool calls limit. CrewAI tells the agent that the tool was blocked, and the "
        "agent goes on; to let such calls run, raise max_tool_calls or the USD limit "
        "(set_limits() on that budget)"
    ]


def test_a_repeated_tool_call_is_stopped_by_loop_guard(
    fake: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    lookup = Lookup()
    same = ("lookup", {"query": "a"})
    llm = openai_llm(fake, interceptor=ToolCallsFirst(same, same))
    fake.default_text = FINAL
    with (
        caplog.at_level(logging.WARNING, logger="shekel_crewai"),
        budget(name="crew", loop_guard=2, prices=PRICES) as spend,
    ):
        tool_crew(llm, lookup).kickoff()
    assert lookup.runs == 1
    assert spend.snapshot().tool_calls_used == 1
    assert len(fake.requests) == 3
    assert ours(caplog)[0].startswith(
        "tool 'lookup' was not run: budget 'crew' already saw this exact call 1 time. CrewAI "
        "tells the agent that the tool was blocked"
    )


def test_a_tool_that_fails_is_released(fake: FakeProvider) -> None:
    lookup = Lookup(failures=1)
    llm = openai_llm(fake, interceptor=ToolCallsFirst(("lookup", {"query": "a"})))
    fake.default_text = FINAL
    with budget(name="crew", tool_prices={"lookup": 0.01}, prices=PRICES) as spend:
        tool_crew(llm, lookup).kickoff()
    assert lookup.runs == 1
    assert "the fact service is down" in str(fake.requests[1].body["messages"])
    assert (spend.snapshot().tool_calls_used, spend.snapshot().usd_reserved) == (0, 0)
    assert spend.spent == pytest.approx(cost(2), abs=1e-12)


def test_a_tool_that_succeeds_when_crewai_retries_it_counts_once() -> None:
    """CrewAI runs a ReAct agent's failing tool again within the same call (here: twice,
    reporting the failure, then once more)."""
    lookup = Lookup(failures=2)
    crew = tool_crew(ScriptedLLM(model="scripted-1", script=react("a")), lookup)
    with budget(name="crew", prices=PRICES) as spend:
        crew.kickoff()
    assert lookup.runs == 3
    assert spend.snapshot().tool_calls_used == 1


def test_native_function_calls_are_counted_and_refused_too(fake: FakeProvider) -> None:
    lookup = Lookup()
    calls = [("lookup", {"query": "a"}), ("lookup", {"query": "b"})]
    llm = openai_llm(fake, interceptor=ToolCallsFirst(*calls))
    fake.default_text = FINAL
    crew = crew_budget(tool_crew(llm, lookup), agents={ANALYST: {"max_tool_calls": 1}}, name=None)
    with budget(name="crew", prices=PRICES) as spend:
        crew.kickoff()
    assert lookup.runs == 1
    assert child(spend, ANALYST).snapshot().tool_calls_used == 1
    assert len(fake.requests) == 3
    assert child(spend, ANALYST).snapshot().llm_calls_used == 3
    assert "blocked" in str(fake.requests[2].body["messages"])


try:  # an executor older CrewAI releases still offer (Agent(executor_class=...))
    from crewai.agents.crew_agent_executor import CrewAgentExecutor
except ImportError:
    CrewAgentExecutor = None


@pytest.mark.skipif(CrewAgentExecutor is None, reason="this crewai has no CrewAgentExecutor")
@pytest.mark.parametrize("fails", [False, True], ids=["succeeds", "fails"])
def test_a_tool_without_arguments_is_settled_under_the_older_executor(
    fake: FakeProvider, fails: bool
) -> None:
    """That executor gives the hook after the tool a new empty dict of arguments."""

    @tool("ping")
    def ping() -> str:
        """Ping the service."""
        if fails:
            raise ConnectionError("down")
        return "pong"

    llm = openai_llm(fake, interceptor=ToolCallsFirst(("ping", {})))
    fake.default_text = FINAL
    analyst = Agent(
        role=ANALYST,
        goal="g",
        backstory="b",
        llm=llm,
        tools=[ping],
        executor_class=CrewAgentExecutor,
    )
    task = Task(description="Ping", expected_output="o", agent=analyst)
    with budget(name="crew", prices=PRICES) as spend:
        Crew(agents=[analyst], tasks=[task]).kickoff()
    assert len(fake.requests) == 2
    assert (spend.snapshot().tool_calls_used, spend.snapshot().usd_reserved) == (
        0 if fails else 1,
        0,
    )


def test_a_tool_that_a_later_hook_blocks_is_not_counted(fake: FakeProvider) -> None:
    def deny(context: Any) -> bool:  # a hook of the application's, registered after shekel's
        return False

    lookup = Lookup()
    llm = openai_llm(fake, interceptor=ToolCallsFirst(("lookup", {"query": "a"})))
    fake.default_text = FINAL
    register_hook(InterceptionPoint.PRE_TOOL_CALL, deny)
    try:
        with budget(name="crew", prices=PRICES) as spend:
            tool_crew(llm, lookup).kickoff()
    finally:
        unregister_hook(InterceptionPoint.PRE_TOOL_CALL, deny)
    assert lookup.runs == 0
    assert (spend.snapshot().tool_calls_used, spend.snapshot().usd_reserved) == (0, 0)
