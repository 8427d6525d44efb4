"""The integration contract, with real LangGraph graphs: a step is a node, named after it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import openai
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import StructuredTool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode

from shekel.integration import Limits
from shekel.testing.integration_contract import IntegrationContract, ToolFailed
from shekel_langgraph import budgeted_graph


class Progress(TypedDict):
    done: int


class TestLangGraphContract(IntegrationContract):
    limits_param = "nodes"

    def run_steps(self, steps: Sequence[str], limits: Mapping[str, Limits] | None = None) -> None:
        client = openai.OpenAI(base_url=self.fake.openai_base_url, api_key="t")

        def node(step: str) -> Any:
            def call_the_model(state: Progress) -> Progress:
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": step}]
                )
                return {"done": state["done"] + 1}

            return call_the_model

        def next_step(state: Progress) -> str:
            return steps[state["done"]] if state["done"] < len(steps) else END

        graph = StateGraph(Progress)
        for step in dict.fromkeys(steps):  # a name given twice is one node, run twice
            graph.add_node(step, node(step))
            graph.add_conditional_edges(step, next_step)
        graph.add_conditional_edges(START, next_step)
        try:
            budgeted_graph(graph.compile(), nodes=limits).invoke({"done": 0})
        finally:
            client.close()

    def run_tool(
        self,
        step: str,
        tool: str,
        *,
        fails: bool = False,
        arguments: object = None,
        limits: Mapping[str, Limits] | None = None,
    ) -> None:
        def body(query: str) -> str:
            self.tool_runs.append(tool)
            if fails:
                raise ToolFailed(query)
            return "found"

        call = {"name": tool, "args": {"query": json.dumps(arguments)}, "id": "call-1"}
        graph = StateGraph(MessagesState)
        graph.add_node(
            step,
            ToolNode([StructuredTool.from_function(body, name=tool, description="Looks it up.")]),
        )
        graph.add_edge(START, step)
        asked = AIMessage(content="", tool_calls=[call])
        budgeted_graph(graph.compile(), nodes=limits).invoke({"messages": [asked]})

    def run_unreported(self, step: str, prompt: str) -> None:
        model = FakeListChatModel(responses=["done"])  # reports no usage

        def ask(state: MessagesState) -> dict[str, Any]:
            return {"messages": [model.invoke(prompt)]}

        graph = StateGraph(MessagesState)
        graph.add_node(step, ask)
        graph.add_edge(START, step)
        budgeted_graph(graph.compile()).invoke({"messages": []})
