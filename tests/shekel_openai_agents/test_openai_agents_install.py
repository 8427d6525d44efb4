"""Zero configuration with the real openai-agents: shekel's entry point installs the package
once ``agents`` is imported; the caller's own run hooks still run, and ``uninstall()`` takes
everything back."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

import pytest
from agents import Agent, AgentHooks, RunHooks, Runner, function_tool
from agents.run import AgentRunner
from oa_support import responses

import shekel_openai_agents
from shekel import budget
from shekel.testing import FakeProvider, Reply, ToolCall
from shekel_openai_agents._plugin import INTEGRATION


@function_tool
def lookup(topic: str) -> str:
    """Look a topic up."""
    return "facts"


def triage(fake: FakeProvider) -> Agent:
    researcher = Agent(name="Researcher", model=responses(fake), tools=[lookup])
    fake.enqueue(
        Reply(tool_calls=(ToolCall("transfer_to_researcher", {}),)),
        Reply(tool_calls=(ToolCall("lookup", {"topic": "x"}),)),
    )
    return Agent(name="Triage", model=responses(fake), handoffs=[researcher])


class Recorder(RunHooks[Any]):
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def on_agent_start(self, context: Any, agent: Any) -> None:
        self.seen.append(f"agent {agent.name}")

    async def on_llm_start(self, context: Any, agent: Any, *args: Any) -> None:
        self.seen.append(f"llm {agent.name}")

    async def on_handoff(self, context: Any, from_agent: Any, to_agent: Any) -> None:
        self.seen.append(f"handoff {from_agent.name} {to_agent.name}")

    async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: Any) -> None:
        self.seen.append(f"tool {tool.name} {result}")


def test_the_entry_point_names_the_plugin() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="shekel")}
    assert found["openai_agents"] == "shekel_openai_agents._plugin"


def test_entering_a_budget_installs_it(fake: FakeProvider) -> None:
    with budget(name="app"):
        assert INTEGRATION.installed
    assert shekel_openai_agents.supported()
    assert hasattr(AgentRunner.run, "__shekel_original__")


def test_the_callers_run_hooks_still_run(fake: FakeProvider) -> None:
    hooks = Recorder()
    with budget(max_usd=1, name="app") as app:
        Runner.run_sync(triage(fake), "Go", hooks=hooks)
    assert hooks.seen == [
        "agent Triage",
        "llm Triage",
        "handoff Triage Researcher",
        "agent Researcher",
        "llm Researcher",
        "tool lookup facts",
        "llm Researcher",
    ]
    assert [
        (c.name, c.snapshot().llm_calls_used, c.snapshot().tool_calls_used) for c in app.children
    ] == [
        ("Triage", 1, 0),
        ("Researcher", 2, 1),
    ]


def test_hooks_the_sdk_refuses_are_still_refused(fake: FakeProvider) -> None:
    with budget(max_usd=1, name="app"), pytest.raises(TypeError, match="RunHooks"):
        Runner.run_sync(triage(fake), "Go", hooks=AgentHooks())  # type: ignore[arg-type]


@pytest.fixture
def uninstalled() -> Iterator[None]:
    with budget(name="installing"):
        pass
    INTEGRATION.uninstall()
    try:
        yield
    finally:
        INTEGRATION.install()


@pytest.mark.usefixtures("uninstalled")
def test_uninstall_takes_everything_back(fake: FakeProvider) -> None:
    assert not hasattr(AgentRunner.run, "__shekel_original__")
    with budget(max_usd=1, name="app") as app:
        Runner.run_sync(triage(fake), "Go")
    assert app.children == []  # every call charged to the active budget, as without the package
    assert (app.snapshot().llm_calls_used, app.snapshot().tool_calls_used) == (3, 0)
