"""Chat engines, workflows and agents, and how steps nest."""

from __future__ import annotations

import asyncio
from typing import Any

from li_models import LOCAL_PRICES, UsageLLM, paths, tree_of
from llama_index.core import QueryBundle, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.query_engine import CustomQueryEngine, RetrieverQueryEngine
from llama_index.core.schema import NodeWithScore
from llama_index.core.workflow import Event, StartEvent, StopEvent, Workflow, step
from llama_index.llms.openai import OpenAI

from shekel import budget
from shekel.testing import FakeProvider

EMBEDDINGS, CHAT = "/v1/embeddings", "/v1/chat/completions"


def test_a_chat_engine_charges_condensing_to_chat_and_its_steps_below(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    engine = index.as_chat_engine(chat_mode="condense_plus_context", llm=llm)
    with budget(max_usd=1, name="rag") as rag:
        engine.chat("Who founded Y Combinator?")
        engine.chat("And what did he paint?")  # with history: a condense call first
    assert paths(fake.requests) == [EMBEDDINGS, CHAT, CHAT, EMBEDDINGS, CHAT]
    assert tree_of(rag) == {
        "rag": 5,
        "rag.chat": 5,
        "rag.chat.retrieve": 2,
        "rag.chat.synthesize": 2,
    }
    assert rag.child("chat").history().calls[0].model == "gpt-4o-mini"  # the condense call


def test_an_async_chat_engine(fake: FakeProvider) -> None:
    from li_support import DOCUMENTS
    from llama_index.core import Document
    from llama_index.embeddings.openai import OpenAIEmbedding

    rag = budget(name="rag")

    async def run() -> None:
        llm = OpenAI(model="gpt-4o-mini", api_base=fake.openai_base_url, api_key="t")
        embed = OpenAIEmbedding(api_base=fake.openai_base_url, api_key="t")
        index = VectorStoreIndex.from_documents(
            [Document(text=text) for text in DOCUMENTS], embed_model=embed
        )
        engine = index.as_chat_engine(chat_mode="condense_plus_context", llm=llm)
        async with rag:
            await engine.achat("Who founded Y Combinator?")

    asyncio.run(run())
    assert tree_of(rag) == {
        "rag": 2,
        "rag.chat": 2,
        "rag.chat.retrieve": 1,
        "rag.chat.synthesize": 1,
    }


class Draft(Event):
    text: str


class Writer(Workflow):
    def __init__(self, llm: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.llm = llm

    @step
    async def draft(self, ev: StartEvent) -> Draft:
        return Draft(text=str(await self.llm.acomplete("Draft a line")))

    @step
    async def polish(self, ev: Draft) -> StopEvent:
        await self.llm.acomplete("Polish: " + ev.text)
        return StopEvent(result=str(await self.llm.acomplete("Once more")))

    @step
    async def unused(self, ev: Draft) -> None:  # a step that spends nothing
        return None


def test_workflow_steps_are_charged_to_children_of_the_workflow(fake: FakeProvider) -> None:
    app = budget(name="app")

    async def run() -> None:
        llm = OpenAI(model="gpt-4o-mini", api_base=fake.openai_base_url, api_key="t")
        async with app:
            await Writer(llm, timeout=10).run()
            await Writer(llm, timeout=10).run()

    asyncio.run(run())
    assert len(fake.requests) == 6
    assert tree_of(app) == {
        "app": 6,
        "app.Writer": 6,
        "app.Writer.draft": 2,
        "app.Writer.polish": 4,
    }


def test_an_agent_is_charged_under_its_name(fake: FakeProvider) -> None:
    app = budget(name="app")

    async def run() -> None:
        llm = OpenAI(model="gpt-4o-mini", api_base=fake.openai_base_url, api_key="t")
        agent = FunctionAgent(name="Research Analyst", llm=llm, tools=[], system_prompt="Be brief")
        async with app:
            await agent.run("Hello")

    asyncio.run(run())
    assert paths(fake.requests) == [CHAT]
    assert tree_of(app) == {"app": 1, "app.Research Analyst": 1}  # its workflow steps: its own


def test_a_workflow_of_local_models(fake: FakeProvider) -> None:
    app = budget(name="app", prices=LOCAL_PRICES)
    model = UsageLLM()

    async def run() -> None:
        async with app:
            await Writer(model, timeout=10).run()

    asyncio.run(run())
    assert model.runs == 3
    assert tree_of(app) == {
        "app": 3,
        "app.Writer": 3,
        "app.Writer.draft": 1,
        "app.Writer.polish": 2,
    }


class Wrapping(BaseRetriever):
    """A retriever around a retriever (as fusion and recursive retrievers are)."""

    def __init__(self, inner: BaseRetriever) -> None:
        super().__init__()
        self.inner = inner

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self.inner.retrieve(query_bundle)


def test_a_step_inside_a_step_of_its_kind_does_not_nest(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    engine = RetrieverQueryEngine.from_args(Wrapping(Wrapping(index.as_retriever())), llm=llm)

    class Outer(CustomQueryEngine):
        def custom_query(self, query_str: str) -> str:
            return str(engine.query(query_str))

    with budget(name="rag") as rag:
        Outer().query("Who?")
    assert tree_of(rag) == {
        "rag": 2,
        "rag.query": 2,
        "rag.query.retrieve": 1,
        "rag.query.synthesize": 1,
    }


def test_a_step_run_in_a_budget_of_its_name_does_not_nest_in_it(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    engine = index.as_query_engine(llm=llm)
    with budget(name="rag") as rag, rag.child("query"):
        engine.query("Who?")
    assert tree_of(rag) == {
        "rag": 2,
        "rag.query": 2,
        "rag.query.retrieve": 1,
        "rag.query.synthesize": 1,
    }


def test_a_budget_entered_inside_a_step_takes_its_calls(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    class Audited(CustomQueryEngine):
        def custom_query(self, query_str: str) -> str:
            with budget(name="audit"):
                llm.complete("Is this question allowed?")
            return str(llm.complete(query_str))

    with budget(name="app") as app:
        Audited().query("Who?")
    assert tree_of(app) == {"app": 2, "app.query": 1, "app.audit": 1}


def test_steps_nest_under_the_deepest_budgets_written_by_hand(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    """Five levels of budgets written by hand (the most there may be), then two of steps."""
    engine = index.as_query_engine(llm=llm)
    with budget(name="a"), budget(name="b"), budget(name="c"), budget(name="d"):
        with budget(name="e") as e:
            engine.query("Who?")
    assert tree_of(e) == {
        "a.b.c.d.e": 2,
        "a.b.c.d.e.query": 2,
        "a.b.c.d.e.query.retrieve": 1,
        "a.b.c.d.e.query.synthesize": 1,
    }


def test_steps_under_an_unnamed_budget_are_its_children(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    engine = index.as_query_engine(llm=llm)
    with budget(max_usd=1) as unnamed:
        engine.query("Who?")
        engine.query("Who again?")
    assert tree_of(unnamed) == {
        "budget": 4,
        "budget.query": 4,
        "budget.query.retrieve": 2,
        "budget.query.synthesize": 2,
    }
