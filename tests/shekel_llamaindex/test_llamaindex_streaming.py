"""Streaming query and chat engines send their request when the stream is read, after the
synthesize span ended: the request is still charged to the step that made the stream."""

from __future__ import annotations

import asyncio

import pytest
from li_models import LOCAL_PRICES, UsageLLM, gpt4o_mini, paths, tree_of
from li_support import INPUT, OUTPUT
from llama_index.core import VectorStoreIndex
from llama_index.core.base.response.schema import AsyncStreamingResponse, StreamingResponse
from llama_index.core.llms import ChatMessage
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.llms.openai import OpenAI

from shekel import BudgetExceededError, budget
from shekel.testing import FakeProvider, Reply

EMBEDDINGS, CHAT = "/v1/embeddings", "/v1/chat/completions"
QUERY_TREE = {"rag": 2, "rag.query": 2, "rag.query.retrieve": 1, "rag.query.synthesize": 1}


def test_a_streaming_query_is_charged_to_synthesize(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    fake.enqueue(Reply(), Reply(text="one two three"))
    with budget(max_usd=1, name="rag") as rag:
        response = index.as_query_engine(llm=llm, streaming=True).query("Who?")
        assert isinstance(response, StreamingResponse)
        assert paths(fake.requests) == [EMBEDDINGS]  # nothing asked of the LLM yet
        text = "".join(response.response_gen)
    assert text == "one two three"
    assert paths(fake.requests) == [EMBEDDINGS, CHAT]
    assert tree_of(rag) == QUERY_TREE
    assert rag.child("query").child("synthesize").spent == pytest.approx(
        gpt4o_mini(INPUT, 3), abs=1e-12
    )


def test_a_stream_read_after_the_budget_block_still_charges_its_step(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    with budget(max_usd=1, name="rag") as rag:
        response = index.as_query_engine(llm=llm, streaming=True).query("Who?")
    assert isinstance(response, StreamingResponse)
    response.print_response_stream()
    assert tree_of(rag) == QUERY_TREE


def test_a_streaming_query_stopped_before_its_request(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    """Stopped when the LLM stream is opened: by ``query()`` or when the response is read,
    depending on the LlamaIndex release; never after the request went out."""
    engine = index.as_query_engine(llm=llm, streaming=True)
    with budget(name="rag") as rag:
        rag.child("query").child("synthesize", max_llm_calls=1)
        str(engine.query("first?"))
        with pytest.raises(BudgetExceededError) as stopped:
            str(engine.query("second?"))
    assert stopped.value.budget_name == "rag.query.synthesize"
    assert stopped.value.sent is False
    assert paths(fake.requests) == [EMBEDDINGS, CHAT, EMBEDDINGS]


def test_an_async_streaming_query_is_charged_to_synthesize(fake: FakeProvider) -> None:
    from li_support import DOCUMENTS
    from llama_index.core import Document

    rag = budget(max_usd=1, name="rag")

    async def run() -> str:
        llm = OpenAI(model="gpt-4o-mini", api_base=fake.openai_base_url, api_key="t")
        embed = OpenAIEmbedding(api_base=fake.openai_base_url, api_key="t")
        index = VectorStoreIndex.from_documents(
            [Document(text=text) for text in DOCUMENTS], embed_model=embed
        )
        fake.reset()
        fake.set_usage(input_tokens=INPUT, output_tokens=OUTPUT)
        async with rag:
            response = await index.as_query_engine(llm=llm, streaming=True).aquery("Who?")
            assert isinstance(response, AsyncStreamingResponse)
            return "".join([token async for token in response.async_response_gen()])

    assert "fake provider" in asyncio.run(run())
    assert paths(fake.requests) == [EMBEDDINGS, CHAT]
    assert tree_of(rag) == QUERY_TREE


def test_a_streaming_chat_engine_charges_its_synthesis(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    """``stream_chat`` reads the stream in a thread of its own (which writes the memory)."""
    engine = index.as_chat_engine(chat_mode="condense_plus_context", llm=llm)
    with budget(max_usd=1, name="rag") as rag:
        answer = engine.stream_chat("Who founded Y Combinator?")
        text = "".join(answer.response_gen)
    assert "fake provider" in text
    assert paths(fake.requests) == [EMBEDDINGS, CHAT]
    assert tree_of(rag) == {
        "rag": 2,
        "rag.chat": 2,
        "rag.chat.retrieve": 1,
        "rag.chat.synthesize": 1,
    }


def test_a_simple_streaming_chat_is_charged_to_chat(fake: FakeProvider, llm: OpenAI) -> None:
    """The simple chat engine streams straight from the LLM, read in the engine's thread,
    which started inside the chat step."""
    from llama_index.core.chat_engine import SimpleChatEngine

    engine = SimpleChatEngine.from_defaults(llm=llm)
    with budget(max_usd=1, name="app") as app:
        "".join(engine.stream_chat("Hello?").response_gen)
        engine.chat("And again?")
    assert paths(fake.requests) == [CHAT, CHAT]
    assert tree_of(app) == {"app": 2, "app.chat": 2}


def test_a_local_stream_read_later_is_charged_where_it_was_opened() -> None:
    model = UsageLLM()
    with budget(name="app", prices=LOCAL_PRICES) as app:
        stream = model.stream_chat([ChatMessage(role="user", content="hi")])
    for _ in stream:
        pass
    assert app.snapshot().llm_calls_used == 1
    assert app.snapshot().tokens_used == 110


def test_an_llm_stream_opened_by_the_caller_is_charged_to_the_active_budget(
    fake: FakeProvider, llm: OpenAI
) -> None:
    with budget(name="app") as app:
        for _ in llm.stream_complete("Say hello"):
            pass
    assert app.snapshot().llm_calls_used == 1
    assert app.children == []
