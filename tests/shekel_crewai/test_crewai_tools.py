"""Tool calls count against max_tool_calls and tool_prices before the tool runs. A refused
tool does not run: the agent is told it was blocked, and the agent and the crew go on."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import httpx
import pytest
from crewai import Agent, Crew, Task
from crewai.llms.hooks.base import BaseInterceptor
from crewai.tools import tool
from crews import ANALYST, PRICES, ScriptedLLM, cost, openai_llm

from shekel.testing import FakeProvider
from shekel_crewai import crew_budget


class Lookup:
    """A tool that counts its runs."""

    def __init__(self) -> None:
        self.runs = 0
        self.lock = threading.Lock()

        @tool("lookup")
        def lookup(query: str) -> str:
            """Look a fact up."""
            with self.lock:
                self.runs += 1
            return f"fact about {query}"

        self.tool = lookup


def react(*queries: str) -> list[str]:
    """ReAct turns that use the lookup tool once per query (then the LLM's final answer)."""
    return [
        f'Thought: I should look it up\nAction: lookup\nAction Input: {{"query": "{q}"}}'
        for q in queries
    ]


def tool_crew(llm: Any, lookup: Lookup) -> Crew:
    analyst = Agent(role=ANALYST, goal="g", backstory="b", llm=llm, tools=[lookup.tool])
    task = Task(name="research", description="Research", expected_output="notes", agent=analyst)
    return Crew(agents=[analyst], tasks=[task])


def test_tool_calls_are_counted_on_the_agent_with_their_price() -> None:
    lookup = Lookup()
    crew = tool_crew(ScriptedLLM(model="scripted-1", script=react("a", "b")), lookup)
    with crew_budget(crew, max_tool_calls=5, tool_prices={"lookup": 0.01}, prices=PRICES) as spend:
        crew.kickoff()
    analyst = spend.agent(ANALYST)
    assert lookup.runs == 2
    assert (analyst.tool_calls_used, spend.tool_calls_used) == (2, 2)
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
    crew = tool_crew(llm, lookup)
    with (
        caplog.at_level(logging.WARNING, logger="shekel_crewai"),
        crew_budget(crew, agents={ANALYST: {"max_tool_calls": 1}}, prices=PRICES) as spend,
    ):
        output = crew.kickoff()
    assert output.raw == "done"
    assert lookup.runs == 1
    assert spend.agent(ANALYST).tool_calls_used == 1
    assert llm.calls == 3  # the agent read the refusal and answered
    assert "tool call refused" in caplog.text
    assert "max_tool_calls" in caplog.text or "tool calls limit" in caplog.text


class ToolCallsFirst(BaseInterceptor[httpx.Request, httpx.Response]):
    """A CrewAI transport interceptor that turns the fake provider's first answers into
    native tool calls (the fake only ever answers with text); usage and ids are the fake's."""

    def __init__(self, *queries: str) -> None:
        self.queries = list(queries)

    def on_outbound(self, message: httpx.Request) -> httpx.Request:
        return message

    def on_inbound(self, message: httpx.Response) -> httpx.Response:
        if not self.queries:
            return message
        body = json.loads(message.read())
        query = self.queries.pop(0)
        body["choices"][0]["finish_reason"] = "tool_calls"
        body["choices"][0]["message"] = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_{query}",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": json.dumps({"query": query})},
                }
            ],
        }
        return httpx.Response(message.status_code, json=body)


def test_native_function_calls_are_counted_and_refused_too(fake: FakeProvider) -> None:
    lookup = Lookup()
    llm = openai_llm(fake, interceptor=ToolCallsFirst("a", "b"))
    crew = tool_crew(llm, lookup)
    with crew_budget(crew, agents={ANALYST: {"max_tool_calls": 1}}, prices=PRICES) as spend:
        crew.kickoff()
    assert lookup.runs == 1
    assert spend.agent(ANALYST).tool_calls_used == 1
    assert len(fake.requests) == 3
    assert spend.agent(ANALYST).calls_used == 3
    assert "blocked" in str(fake.requests[2].body["messages"])
