"""A VectorStoreIndex queried under a budget: each step charged to its named child, every
request recorded once, sync, async and concurrently."""

from __future__ import annotations

import asyncio

import pytest
from li_models import embedding, gpt4o_mini, paths, tree_of
from li_support import DOCUMENTS, INPUT, OUTPUT
from llama_index.core import Document, VectorStoreIndex
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.llms.openai import OpenAI

from shekel import budget
from shekel.testing import FakeProvider, Reply

EMBEDDINGS, CHAT = "/v1/embeddings", "/v1/chat/completions"


def test_a_query_charges_retrieve_and_synthesize_under_query(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    with budget(max_usd=1, name="rag") as rag:
        response = index.as_query_engine(llm=llm).query("Who founded Y Combinator?")
    assert "fake provider" in str(response)
    assert paths(fake.requests) == [EMBEDDINGS, CHAT]
    assert tree_of(rag) == {
        "rag": 2,
        "rag.query": 2,
        "rag.query.retrieve": 1,
        "rag.query.synthesize": 1,
    }
    query = rag.child("query")
    retrieve, synthesize = query.child("retrieve"), query.child("synthesize")
    assert retrieve.spent == pytest.approx(embedding(INPUT), abs=1e-12)
    assert retrieve.snapshot().tokens_used == INPUT
    assert synthesize.spent == pytest.approx(gpt4o_mini(INPUT, OUTPUT), abs=1e-12)
    assert (rag.spent_direct, query.spent_direct) == (0, 0)
    assert rag.spent == pytest.approx(embedding(INPUT) + gpt4o_mini(INPUT, OUTPUT), abs=1e-12)
    calls = [*retrieve.history().calls, *synthesize.history().calls]
    assert [(call.model, call.source) for call in calls] == [
        ("text-embedding-3-small", "sdk"),
        ("gpt-4o-mini", "sdk"),
    ]


def test_embeddings_are_priced_per_input_token(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    fake.enqueue(Reply(input_tokens=7_000), Reply(input_tokens=10, output_tokens=2))
    with budget(name="rag") as rag:
        index.as_query_engine(llm=llm).query("Where did he study art?")
    retrieve = rag.child("query").child("retrieve")
    (call,) = retrieve.history().calls
    assert (call.model, call.input_tokens, call.output_tokens) == (
        "text-embedding-3-small",
        7000,
        0,
    )
    assert call.cost_usd == pytest.approx(embedding(7_000), abs=1e-12)


def test_repeated_queries_reuse_the_step_budgets(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    engine = index.as_query_engine(llm=llm)
    with budget(max_usd=1, name="rag") as rag:
        for question in ("one?", "two?", "three?"):
            engine.query(question)
        index.as_query_engine(llm=llm).query("a new engine, the same steps?")
    assert len(fake.requests) == 8
    assert tree_of(rag) == {
        "rag": 8,
        "rag.query": 8,
        "rag.query.retrieve": 4,
        "rag.query.synthesize": 4,
    }


def test_steps_are_charged_only_under_a_budget(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    engine = index.as_query_engine(llm=llm)
    engine.query("nobody pays for this one")
    with budget(name="rag") as rag:
        engine.query("this one is charged")
    engine.query("nor for this one")
    assert len(fake.requests) == 6
    assert rag.snapshot().llm_calls_used == 2
    assert tree_of(rag)["rag.query.synthesize"] == 1


def test_aquery_charges_the_same_steps(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    rag = budget(max_usd=1, name="rag")

    async def run() -> None:
        async with rag:
            await index.as_query_engine(llm=llm).aquery("Who founded Y Combinator?")

    asyncio.run(run())
    assert paths(fake.requests) == [EMBEDDINGS, CHAT]
    assert tree_of(rag) == {
        "rag": 2,
        "rag.query": 2,
        "rag.query.retrieve": 1,
        "rag.query.synthesize": 1,
    }


def test_concurrent_aqueries_are_each_charged_to_their_steps(fake: FakeProvider) -> None:
    """Ten queries at once, each request taking 0.2 s: they overlap, and each lands in its
    step; a budget entered inside one task charges that task's steps only."""
    rag = budget(max_usd=1, name="rag")

    async def main() -> float:
        # objects made inside the loop that uses them (their connection pools belong to it)
        llm = OpenAI(model="gpt-4o-mini", api_base=fake.openai_base_url, api_key="t")
        embed = OpenAIEmbedding(api_base=fake.openai_base_url, api_key="t")
        index = VectorStoreIndex.from_documents(
            [Document(text=text) for text in DOCUMENTS], embed_model=embed
        )
        fake.reset()
        fake.set_usage(input_tokens=INPUT, output_tokens=OUTPUT)
        fake.enqueue(*[Reply(latency=0.2) for _ in range(20)])
        engine = index.as_query_engine(llm=llm)

        async def own(question: str) -> None:
            async with budget(name="vip"):
                await engine.aquery(question)

        started = asyncio.get_running_loop().time()
        async with rag:
            await asyncio.gather(*(engine.aquery(f"q{i}?") for i in range(9)), own("vip?"))
        return asyncio.get_running_loop().time() - started

    elapsed = asyncio.run(main())
    assert elapsed < 2.0, f"the queries did not run concurrently ({elapsed:.2f} s)"
    assert len(fake.requests) == 20
    assert tree_of(rag) == {
        "rag": 20,
        "rag.query": 18,
        "rag.query.retrieve": 9,
        "rag.query.synthesize": 9,
        "rag.vip": 2,
        "rag.vip.query": 2,
        "rag.vip.query.retrieve": 1,
        "rag.vip.query.synthesize": 1,
    }
    assert rag.spent_direct == 0


def test_threads_started_with_the_context_charge_their_steps(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    engine = index.as_query_engine(llm=llm)
    with budget(name="rag") as rag, ThreadPoolExecutor(4) as pool:
        futures = [
            pool.submit(contextvars.copy_context().run, engine.query, f"q{i}?") for i in range(4)
        ]
        for future in futures:
            future.result()
    assert tree_of(rag) == {
        "rag": 8,
        "rag.query": 8,
        "rag.query.retrieve": 4,
        "rag.query.synthesize": 4,
    }


def test_a_synthesizer_running_async_work_under_a_sync_query_charges_synthesize(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    """``use_async=True`` makes a sync query run its summaries in an event loop of its own."""
    engine = index.as_query_engine(
        llm=llm, response_mode="tree_summarize", use_async=True, similarity_top_k=3
    )
    with budget(name="rag") as rag:
        engine.query("Summarise everything.")
    synthesize = rag.child("query").child("synthesize")
    assert synthesize.snapshot().llm_calls_used >= 1
    assert synthesize.snapshot().llm_calls_used == len(fake.requests) - 1
    assert rag.snapshot().llm_calls_used == len(fake.requests)
