"""The integration contract, with the real LlamaIndex.

A step is a workflow agent (``FunctionAgent``) named after it: an agent is one step, its
workflow steps being LlamaIndex's own. Limits are a ``ShekelCallbackHandler``'s ``budgets=`` in
``Settings.callback_manager``, where agents (which have no callback manager) find it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from li_models import ToolCallingLLM
from llama_index.core import Settings
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.callbacks import CallbackManager
from llama_index.core.llms import LLM
from llama_index.core.tools import FunctionTool
from llama_index.llms.openai import OpenAI

from shekel.integration import Limits
from shekel.testing.integration_contract import IntegrationContract, ToolFailed
from shekel_llamaindex import ShekelCallbackHandler

# A local model (it never reaches the SDKs) named after one the contract's budgets can price.
LOCAL_MODEL = "gpt-4o-mini"


class TestLlamaIndexContract(IntegrationContract):
    limits_param = "budgets"

    @pytest.fixture(autouse=True)
    def _settings_restored(self) -> Iterator[None]:
        saved = Settings._callback_manager
        yield
        Settings._callback_manager = saved

    def _run(self, agents: Sequence[tuple[str, LLM, list[FunctionTool]]], prompt: str) -> None:
        async def run() -> None:
            for name, llm, tools in agents:
                await FunctionAgent(name=name, llm=llm, tools=tools, streaming=False).run(prompt)

        asyncio.run(run())

    def _limits(self, limits: Mapping[str, Limits] | None) -> None:
        Settings.callback_manager = CallbackManager([ShekelCallbackHandler(budgets=limits)])

    def run_steps(self, steps: Sequence[str], limits: Mapping[str, Limits] | None = None) -> None:
        self._limits(limits)
        url = self.fake.openai_base_url
        # Models made after the handler was set: they take Settings' callback manager.
        agents = [
            (step, OpenAI(model="gpt-4o-mini", api_base=url, api_key="t", max_retries=0), [])
            for step in steps
        ]
        self._run(agents, "Hello")

    def run_tool(
        self,
        step: str,
        tool: str,
        *,
        fails: bool = False,
        arguments: object = None,
        limits: Mapping[str, Limits] | None = None,
    ) -> None:
        self._limits(limits)

        def body(arguments: Any = None) -> str:
            self.tool_runs.append(tool)
            if fails:
                raise ToolFailed(f"{tool} failed")
            return "found"

        function = FunctionTool.from_defaults(body, name=tool, description="Look it up.")
        kwargs = {"arguments": arguments}
        llm = ToolCallingLLM(model_name=LOCAL_MODEL, tool=tool, tool_kwargs=kwargs)
        self._run([(step, llm, [function])], "Find it")

    def run_unreported(self, step: str, prompt: str) -> None:
        llm = ToolCallingLLM(model_name=LOCAL_MODEL, tool_turns=0, silent=True)
        self._run([(step, llm, [])], prompt)
