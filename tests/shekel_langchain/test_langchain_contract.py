"""shekel-langchain against the integration contract, with the real LangChain.

A step is a LangChain run named with ``with_config(run_name=...)``, mapped by
``ShekelCallbackHandler(budgets=...)`` passed in ``callbacks``, or by ``run_budgets`` on the
zero-config path. Steps call the openai SDK in turns: through langchain-openai's
``ChatOpenAI``, and directly from a ``RunnableLambda``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from functools import reduce
from typing import Any

import openai
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.tools import tool as as_tool
from langchain_openai import ChatOpenAI

from shekel.integration import Limits
from shekel.testing.integration_contract import IntegrationContract, ToolFailed
from shekel_langchain import ShekelCallbackHandler, run_budgets

MODEL = "gpt-4o-mini"


class TestLangChainContract(IntegrationContract):
    limits_param = "budgets"

    def wiring(
        self, budgets: Mapping[str, Limits]
    ) -> tuple[RunnableConfig, contextlib.AbstractContextManager[None]]:
        """The config to run with, and the block to run it in."""
        return {"callbacks": [ShekelCallbackHandler(budgets=budgets)]}, contextlib.nullcontext()

    def run_steps(self, steps: Sequence[str], limits: Mapping[str, Limits] | None = None) -> None:
        config, scope = self.wiring(dict.fromkeys(steps) if limits is None else limits)
        client = openai.OpenAI(base_url=self.fake.openai_base_url, api_key="test")

        def ask(text: str) -> str:
            answer = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": text}]
            )
            return answer.choices[0].message.content or ""

        chat = ChatOpenAI(model=MODEL, base_url=self.fake.openai_base_url, api_key="test")
        runs: list[Runnable[Any, Any]] = [
            (chat | RunnableLambda(lambda m: m.content)) if n % 2 == 0 else RunnableLambda(ask)
            for n in range(len(steps))
        ]
        named = [run.with_config(run_name=step) for run, step in zip(runs, steps, strict=True)]
        with scope, client:
            reduce(lambda a, b: a | b, named).invoke("question", config=config)

    def run_tool(
        self,
        step: str,
        tool: str,
        *,
        fails: bool = False,
        arguments: object = None,
        limits: Mapping[str, Limits] | None = None,
    ) -> None:
        config, scope = self.wiring({step: None} if limits is None else limits)

        def body(q: Any = None) -> str:
            """Look something up."""
            self.tool_runs.append(tool)
            if fails:
                raise ToolFailed(tool)
            return "found"

        the_tool = as_tool(tool)(body)
        given = arguments if isinstance(arguments, dict) else {"q": arguments}
        calls_it = RunnableLambda(lambda _: the_tool.invoke(given)).with_config(run_name=step)
        with scope:
            calls_it.invoke("go", config=config)

    def run_unreported(self, step: str, prompt: str) -> None:
        config, scope = self.wiring({step: None})
        model = FakeListChatModel(responses=["an answer"]).with_config(run_name=step)
        with scope:
            model.invoke(prompt, config=config)


class TestLangChainZeroConfigContract(TestLangChainContract):
    """The same, with no handler passed: the one LangChain runs get inside a budget, with the
    names of ``run_budgets``."""

    def wiring(
        self, budgets: Mapping[str, Limits]
    ) -> tuple[RunnableConfig, contextlib.AbstractContextManager[None]]:
        return {}, run_budgets(budgets)
