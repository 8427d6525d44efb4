"""The integration contract with real CrewAI: a step is an agent (by role), doing one task per
step with one LLM call through CrewAI's OpenAI provider against the fake provider."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import pytest
from crewai import LLM, Agent, Crew, Task
from crewai.tools import tool as crewai_tool
from crews import FINAL, ScriptedLLM, ToolCallsFirst

from shekel.integration import Limits
from shekel.testing.integration_contract import IntegrationContract, ToolFailed
from shekel_crewai import crew_budget

_runs = itertools.count(1)

# The model of run_unreported has no price: its estimate counts tokens, not dollars.
pytestmark = pytest.mark.filterwarnings("ignore::shekel.UnknownModelWarning")


class TestCrewAIContract(IntegrationContract):
    limits_param = "agents"

    def _kickoff(self, agents: Sequence[Agent], tasks: Sequence[Task], limits: object) -> None:
        crew = Crew(agents=list(agents), tasks=list(tasks))
        crew_budget(crew, agents=limits, name=None).kickoff()  # type: ignore[arg-type]

    def _llm(self, *tool_calls: tuple[str, dict[str, object]]) -> LLM:
        self.fake.default_text = FINAL  # a final answer: one LLM call per task
        interceptor = ToolCallsFirst(*tool_calls) if tool_calls else None
        return LLM(
            model="gpt-4o-mini",
            base_url=self.fake.openai_base_url,
            api_key="test",
            interceptor=interceptor,
        )

    def run_steps(self, steps: Sequence[str], limits: Mapping[str, Limits] | None = None) -> None:
        agents = {
            role: Agent(role=role, goal="g", backstory="b", llm=self._llm())
            for role in dict.fromkeys(steps)
        }
        tasks = [
            Task(description=f"Do step {i}", expected_output="o", agent=agents[role])
            for i, role in enumerate(steps)
        ]
        self._kickoff(list(agents.values()), tasks, limits)

    def run_tool(
        self,
        step: str,
        tool: str,
        *,
        fails: bool = False,
        arguments: object = None,
        limits: Mapping[str, Limits] | None = None,
    ) -> None:
        runs = self.tool_runs

        def body(q: str = "", value: int = 0) -> str:
            """Look something up."""
            runs.append(tool)
            if fails:
                raise ToolFailed(f"{tool} failed")
            return "found"

        if not isinstance(arguments, dict):
            arguments = {} if arguments is None else {"value": arguments}
        llm = self._llm((tool, arguments))
        agent = Agent(role=step, goal="g", backstory="b", llm=llm, tools=[crewai_tool(tool)(body)])
        # A new task text each run: loop_guard then sees the same tool call, not the same request.
        task = Task(description=f"Run {next(_runs)}: use {tool}", expected_output="o", agent=agent)
        self._kickoff([agent], [task], limits)

    def run_unreported(self, step: str, prompt: str) -> None:
        llm = ScriptedLLM(model="contract-local-model", usage=None, sends=prompt)
        agent = Agent(role=step, goal="g", backstory="b", llm=llm)
        self._kickoff([agent], [Task(description="d", expected_output="o", agent=agent)], None)
