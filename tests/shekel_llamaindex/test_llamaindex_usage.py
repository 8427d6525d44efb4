"""Models that never reach the intercepted SDKs: recorded from LlamaIndex's events exactly
once, however many nested events one call fires; intercepted ones never twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from li_models import (
    LOCAL,
    LOCAL_PRICES,
    LocalEmbedding,
    SilentLLM,
    UsageLLM,
    local,
    paths,
    tree_of,
)
from li_support import DOCUMENTS
from llama_index.core import Document, PromptTemplate, VectorStoreIndex
from llama_index.core.llms import ChatMessage
from llama_index.llms.openai import OpenAI

from shekel import UsageMissingWarning, budget
from shekel.testing import FakeProvider

MESSAGES = [ChatMessage(role="user", content="Say hello")]


def _stream(gen: Any) -> None:
    for _ in gen:
        pass


async def _astream(gen: Any) -> None:
    async for _ in await gen:
        pass


SYNC: dict[str, Callable[[UsageLLM], object]] = {
    "complete": lambda m: m.complete("Say hello"),
    "chat": lambda m: m.chat(MESSAGES),
    "stream_complete": lambda m: _stream(m.stream_complete("Say hello")),
    "stream_chat": lambda m: _stream(m.stream_chat(MESSAGES)),
    "predict": lambda m: m.predict(PromptTemplate("Say hello")),
}
ASYNC: dict[str, Callable[[UsageLLM], Any]] = {
    "acomplete": lambda m: m.acomplete("Say hello"),
    "achat": lambda m: m.achat(MESSAGES),
    "astream_complete": lambda m: _astream(m.astream_complete("Say hello")),
    "astream_chat": lambda m: _astream(m.astream_chat(MESSAGES)),
}


@pytest.mark.parametrize("method", list(SYNC))
def test_a_local_llm_call_is_recorded_once_from_its_reported_usage(method: str) -> None:
    model = UsageLLM()
    with budget(name="app", prices=LOCAL_PRICES) as app:
        SYNC[method](model)
        SYNC[method](model)
    assert model.runs == 2
    assert (app.snapshot().llm_calls_used, app.snapshot().tokens_used) == (2, 220)
    assert app.spent == pytest.approx(2 * local(100, 10), abs=1e-12)
    calls = app.history().calls
    assert [(c.model, c.input_tokens, c.output_tokens, c.source) for c in calls] == [
        (LOCAL, 100, 10, "llamaindex")
    ] * 2


@pytest.mark.parametrize("method", list(ASYNC))
def test_an_async_local_llm_call_is_recorded_once(method: str) -> None:
    model = UsageLLM()

    app = budget(name="app", prices=LOCAL_PRICES)

    async def run() -> None:
        async with app:
            await ASYNC[method](model)
            await ASYNC[method](model)

    asyncio.run(run())
    assert model.runs == 2
    assert (app.snapshot().llm_calls_used, app.snapshot().tokens_used) == (2, 220)


def test_concurrent_local_calls_are_each_recorded_once() -> None:
    model = UsageLLM()
    app = budget(name="app", prices=LOCAL_PRICES)

    async def run() -> None:
        async with app:
            await asyncio.gather(
                *(model.achat(MESSAGES) for _ in range(10)),
                *(model.acomplete("x") for _ in range(10)),
            )

    asyncio.run(run())
    assert model.runs == 20
    assert app.snapshot().llm_calls_used == 20


def test_a_local_llm_in_a_query_is_charged_to_synthesize() -> None:
    embed, model = LocalEmbedding(), UsageLLM()
    index = VectorStoreIndex.from_documents(
        [Document(text=text) for text in DOCUMENTS], embed_model=embed
    )
    with (
        pytest.warns(UsageMissingWarning, match="local-embed"),
        budget(name="rag", prices=LOCAL_PRICES) as rag,
    ):
        index.as_query_engine(llm=model).query("Who founded Y Combinator?")
    assert model.runs == 1
    assert tree_of(rag) == {
        "rag": 2,
        "rag.query": 2,
        "rag.query.retrieve": 1,
        "rag.query.synthesize": 1,
    }
    synthesize = rag.child("query").child("synthesize")
    assert synthesize.spent == pytest.approx(local(100, 10), abs=1e-12)
    (embedded,) = rag.child("query").child("retrieve").history().calls
    assert embedded.model == "local-embed"
    assert embedded.input_tokens > 0  # estimated from the question's tokens
    assert (embedded.source, embedded.estimated) == ("llamaindex", True)
    assert synthesize.history().calls[0].estimated is False  # reported usage is exact


def test_a_local_embedding_batch_is_recorded_per_batch_with_estimated_tokens() -> None:
    embed = LocalEmbedding(embed_batch_size=2)
    texts = ["alpha beta gamma delta", "epsilon", "zeta eta theta iota kappa"]
    with pytest.warns(UsageMissingWarning), budget(name="app", prices=LOCAL_PRICES) as app:
        embed.get_text_embedding_batch(texts)
    assert app.snapshot().llm_calls_used == 2  # two batches: two calls
    assert app.snapshot().tokens_used == len("\n".join(texts[:2])) // 4 + len(texts[2]) // 4
    assert [call.estimated for call in app.history().calls] == [True, True]


def test_a_model_without_usage_is_recorded_as_an_estimate_with_a_warning() -> None:
    model = SilentLLM()
    with pytest.warns(UsageMissingWarning, match="'local-model' ran without token usage"):
        with budget(name="app", prices=LOCAL_PRICES) as app:
            model.complete("x" * 40)
    (call,) = app.history().calls
    assert call.input_tokens == 10  # a token per four characters
    assert call.output_tokens == 3  # "local answer"
    assert (call.source, call.estimated) == ("llamaindex", True)
    assert "~" in app.summary()


def test_intercepted_llm_calls_are_not_recorded_again(fake: FakeProvider, llm: OpenAI) -> None:
    """Every event of an OpenAI call fires too; the interceptor's record is the only one."""
    with budget(name="app") as app:
        llm.complete("Say hello")
        llm.chat(MESSAGES)
        _stream(llm.stream_chat(MESSAGES))
        _stream(llm.stream_complete("Say hello"))

        async def run() -> None:
            await llm.achat(MESSAGES)
            await _astream(llm.astream_chat(MESSAGES))

        asyncio.run(run())
    assert len(fake.requests) == 6
    assert app.snapshot().llm_calls_used == 6
    assert {call.source for call in app.history().calls} == {"sdk"}


def test_nothing_is_recorded_outside_a_budget(fake: FakeProvider, llm: OpenAI) -> None:
    model = UsageLLM()
    model.chat(MESSAGES)
    llm.chat(MESSAGES)
    with budget(name="app", prices=LOCAL_PRICES) as app:
        model.chat(MESSAGES)
    model.chat(MESSAGES)
    assert app.snapshot().llm_calls_used == 1
    assert paths(fake.requests) == ["/v1/chat/completions"]
