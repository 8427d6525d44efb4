"""The integration contract with the real openai-agents: a step is an agent (by name), run by
``Runner.run`` with the Responses model against the fake provider; limits are an
``agent_budgets(agents=...)`` block around the runs."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence

from agents import Agent, Runner, function_tool
from oa_support import LocalModel, responses

from shekel.integration import Limits
from shekel.testing import Reply, ToolCall
from shekel.testing.integration_contract import IntegrationContract, ToolFailed
from shekel_openai_agents import agent_budgets

_runs = itertools.count(1)


class TestOpenAIAgentsContract(IntegrationContract):
    limits_param = "agents"

    def _run(self, agents: Sequence[Agent], prompt: str, limits: object) -> None:
        async def run() -> None:
            for agent in agents:
                await Runner.run(agent, prompt)

        with agent_budgets(limits):  # type: ignore[arg-type]
            asyncio.run(run())

    def run_steps(self, steps: Sequence[str], limits: Mapping[str, Limits] | None = None) -> None:
        self._run([Agent(name=step, model=responses(self.fake)) for step in steps], "Hi", limits)

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
            runs.append(tool)
            if fails:
                raise ToolFailed(f"{tool} failed")
            return "found"

        if not isinstance(arguments, dict):
            arguments = {} if arguments is None else {"value": arguments}
        self.fake.enqueue(Reply(tool_calls=(ToolCall(tool, arguments),)))
        agent = Agent(
            name=step,
            model=responses(self.fake),
            tools=[function_tool(body, name_override=tool, description_override="Look it up.")],
        )
        # A new prompt each run: loop_guard then sees the same tool call, not the same request.
        self._run([agent], f"Run {next(_runs)}: use {tool}", limits)

    def run_unreported(self, step: str, prompt: str) -> None:
        self._run([Agent(name=step, model=LocalModel())], prompt, None)
