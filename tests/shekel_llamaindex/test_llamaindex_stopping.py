"""An exhausted budget stops the next LLM or embedding call before it runs: intercepted
models (nothing is sent) and models that never reach the intercepted SDKs alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from li_models import LOCAL_PRICES, LocalEmbedding, UsageLLM, gpt4o_mini, paths, tree_of
from li_support import DOCUMENTS, INPUT, OUTPUT
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.callbacks import CallbackManager
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.llms.openai import OpenAI

from shekel import BudgetExceededError, UsageMissingWarning, budget
from shekel.testing import FakeProvider
from shekel_llamaindex import LlamaIndexBudgetExceededError, ShekelCallbackHandler

EMBEDDINGS, CHAT = "/v1/embeddings", "/v1/chat/completions"


@pytest.fixture
def settings_manager() -> Iterator[None]:
    """Restores LlamaIndex's global callback manager after a test that sets it."""
    saved = Settings._callback_manager
    yield
    Settings._callback_manager = saved


def test_a_step_capped_by_the_handler_stops_its_next_call_before_it_is_sent(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    handler = ShekelCallbackHandler(budgets={"synthesize": {"max_llm_calls": 1}})
    # as_query_engine(callback_manager=...) fails in LlamaIndex 0.14: the engine is built
    engine = RetrieverQueryEngine.from_args(
        index.as_retriever(), llm=llm, callback_manager=CallbackManager([handler])
    )
    rag = budget(max_usd=1, name="rag")
    with rag:
        engine.query("first?")
        with pytest.raises(LlamaIndexBudgetExceededError) as stopped:
            engine.query("second?")
    error = stopped.value
    assert isinstance(error, BudgetExceededError)
    assert isinstance(error, RuntimeError)
    assert (error.sent, error.axis, error.budget_name) == (
        False,
        "llm_calls",
        "rag.query.synthesize",
    )
    assert (error.step, error.event) == ("rag.query.synthesize", "llm")
    assert "rag.query.synthesize" in str(error)
    assert "was not sent" in str(error)
    # the second query's retrieval went out, its synthesis did not
    assert paths(fake.requests) == [EMBEDDINGS, CHAT, EMBEDDINGS]
    assert tree_of(rag) == {
        "rag": 3,
        "rag.query": 3,
        "rag.query.retrieve": 2,
        "rag.query.synthesize": 1,
    }
    assert (
        rag.child("query").child("synthesize").config.max_usd is None
    )  # only the call cap was set


def test_a_step_budget_made_beforehand_caps_the_step_with_no_handler(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    engine = index.as_query_engine(llm=llm)
    with budget(max_usd=1, name="rag") as rag:
        rag.child("query").child("retrieve", max_llm_calls=1)
        engine.query("first?")
        with pytest.raises(LlamaIndexBudgetExceededError) as stopped:
            engine.query("second?")
    assert stopped.value.budget_name == "rag.query.retrieve"
    assert stopped.value.event == "embedding"
    assert paths(fake.requests) == [EMBEDDINGS, CHAT]


def test_the_enclosing_budget_stops_every_step(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    engine = index.as_query_engine(llm=llm)
    with budget(max_llm_calls=3, name="rag") as rag:
        engine.query("first?")
        with pytest.raises(BudgetExceededError) as stopped:
            engine.query("second?")
    assert stopped.value.sent is False
    assert stopped.value.budget_name == "rag"
    assert paths(fake.requests) == [EMBEDDINGS, CHAT, EMBEDDINGS]
    assert rag.snapshot().llm_calls_used == 3


def test_the_call_crossing_a_usd_cap_is_recorded_and_the_next_one_refused(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI, settings_manager: None
) -> None:
    Settings.callback_manager = CallbackManager(
        [ShekelCallbackHandler(budgets={"synthesize": 0.0001})]
    )
    engine = index.as_query_engine(llm=llm)  # built after the handler was set: it applies
    with budget(max_usd=1, name="rag") as rag:
        with pytest.raises(BudgetExceededError) as crossed:
            engine.query("first?")  # its answer costs more than the synthesize cap
        with pytest.raises(LlamaIndexBudgetExceededError):
            engine.query("second?")
    assert crossed.value.sent is True
    synthesize = rag.child("query").child("synthesize")
    assert synthesize.config.max_usd == 0.0001
    assert synthesize.spent == pytest.approx(gpt4o_mini(INPUT, OUTPUT), abs=1e-12)
    assert paths(fake.requests) == [EMBEDDINGS, CHAT, EMBEDDINGS]


def test_a_local_llm_is_stopped_before_it_runs() -> None:
    local = UsageLLM()
    with budget(max_llm_calls=2, name="rag", prices=LOCAL_PRICES) as rag:
        local.complete("one")
        local.chat([])  # nested events, one call
        with pytest.raises(LlamaIndexBudgetExceededError) as stopped:
            local.complete("three")
    assert local.runs == 2
    assert rag.snapshot().llm_calls_used == 2
    assert stopped.value.event == "llm"


def test_a_local_embedding_model_is_stopped_before_it_runs() -> None:
    embed = LocalEmbedding()
    index = VectorStoreIndex.from_documents(
        [Document(text=text) for text in DOCUMENTS], embed_model=embed
    )
    engine = index.as_retriever()
    runs_before = embed.runs
    with budget(name="rag", prices=LOCAL_PRICES) as rag:
        rag.child("retrieve", max_llm_calls=1)
        with pytest.warns(UsageMissingWarning, match="estimate"):
            engine.retrieve("first?")
        with pytest.raises(LlamaIndexBudgetExceededError) as stopped:
            engine.retrieve("second?")
    assert embed.runs == runs_before + 1
    assert stopped.value.budget_name == "rag.retrieve"
    assert stopped.value.event == "embedding"
    assert rag.child("retrieve").snapshot().llm_calls_used == 1


def test_a_stopped_query_can_go_on_once_the_limit_is_raised(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    engine = index.as_query_engine(llm=llm)
    with budget(name="rag") as rag:
        synthesize = rag.child("query").child("synthesize", max_llm_calls=1)
        engine.query("first?")
        with pytest.raises(LlamaIndexBudgetExceededError):
            engine.query("second?")
        synthesize.set_limits(max_llm_calls=2)
        engine.query("third?")
    assert synthesize.snapshot().llm_calls_used == 2
    assert paths(fake.requests) == [EMBEDDINGS, CHAT, EMBEDDINGS, EMBEDDINGS, CHAT]


def test_sdk_calls_made_by_hand_inside_a_step_are_routed_and_refused_by_the_interceptor(
    fake: FakeProvider,
) -> None:
    """LlamaIndex never sees these calls: the interceptor asks shekel-llamaindex which step
    is running when the request is sent, and refuses it on that step's budget."""
    import openai
    from llama_index.core.query_engine import CustomQueryEngine

    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test")
    messages = [{"role": "user", "content": "Say hello"}]

    class ByHand(CustomQueryEngine):
        def custom_query(self, query_str: str) -> str:
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
            return reply.choices[0].message.content or ""

    with budget(name="app") as app:
        app.child("query", max_llm_calls=1)
        ByHand().query("first?")
        with pytest.raises(BudgetExceededError) as refused:
            ByHand().query("second?")
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # app pays
    assert not isinstance(refused.value, LlamaIndexBudgetExceededError)  # the interceptor's
    assert (refused.value.sent, refused.value.budget_name) == (False, "app.query")
    assert len(fake.requests) == 2
    assert tree_of(app) == {"app": 2, "app.query": 1}
    client.close()
