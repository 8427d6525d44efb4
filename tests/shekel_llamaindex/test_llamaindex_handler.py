"""ShekelCallbackHandler: step limits for the components whose callback manager holds it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from li_models import tree_of
from llama_index.core import Settings, VectorStoreIndex, get_response_synthesizer
from llama_index.core.callbacks import CallbackManager, CBEventType
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.llms.openai import OpenAI

from shekel import BudgetConfigError, budget
from shekel.testing import FakeProvider
from shekel_llamaindex import ShekelCallbackHandler, ShekelLlamaIndexWarning


@pytest.fixture
def settings_manager() -> Iterator[None]:
    saved = Settings._callback_manager
    yield
    Settings._callback_manager = saved


def test_limits_apply_to_the_steps_of_components_using_the_manager(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI, settings_manager: None
) -> None:
    Settings.callback_manager = CallbackManager(
        [ShekelCallbackHandler(budgets={"retrieve": 0.5, "synthesize": {"max_llm_calls": 10}})]
    )
    engine = index.as_query_engine(llm=llm)
    with budget(max_usd=1, name="rag") as rag:
        engine.query("Who?")
        engine.query("Who else?")
    retrieve = rag.child("query").child("retrieve")
    synthesize = rag.child("query").child("synthesize")
    assert (retrieve.max_usd, retrieve.calls_used) == (0.5, 2)
    assert (synthesize.max_usd, synthesize.config.caps.llm_calls) == (None, 10)


def test_limits_set_on_a_query_engine_reach_its_retrieval_and_synthesis(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    manager = CallbackManager([ShekelCallbackHandler(budgets={"query": 0.9, "synthesize": 0.2})])
    engine = RetrieverQueryEngine.from_args(index.as_retriever(), llm=llm, callback_manager=manager)
    with budget(max_usd=1, name="rag") as rag:
        engine.query("Who?")
    query = rag.child("query")
    assert query.max_usd == 0.9
    assert query.child("synthesize").max_usd == 0.2
    assert query.child("retrieve").max_usd is None


def test_components_without_the_handler_get_no_limits(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    handler = ShekelCallbackHandler(budgets={"synthesize": 0.2})
    synthesizer = get_response_synthesizer(llm=llm, callback_manager=CallbackManager([handler]))
    engine = RetrieverQueryEngine(index.as_retriever(), response_synthesizer=synthesizer)
    with budget(max_usd=1, name="rag") as rag:
        engine.query("Who?")
    assert tree_of(rag) == {
        "rag": 2,
        "rag.query": 2,
        "rag.query.retrieve": 1,
        "rag.query.synthesize": 1,
    }
    assert rag.child("query").child("synthesize").max_usd == 0.2
    assert rag.child("query").max_usd is None


def test_an_existing_step_budget_keeps_its_limits_with_a_warning(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    manager = CallbackManager([ShekelCallbackHandler(budgets={"synthesize": 0.2})])
    engine = RetrieverQueryEngine.from_args(index.as_retriever(), llm=llm, callback_manager=manager)
    with budget(max_usd=1, name="rag") as rag:
        mine = rag.child("query").child("synthesize", max_usd=0.5)
        with pytest.warns(ShekelLlamaIndexWarning, match="already exists with other limits"):
            engine.query("Who?")
    assert mine.max_usd == 0.5
    assert mine.calls_used == 1


def test_the_handler_listens_to_no_event() -> None:
    handler = ShekelCallbackHandler(budgets={"retrieve": 0.1})
    assert set(handler.event_starts_to_ignore) == set(CBEventType)
    assert set(handler.event_ends_to_ignore) == set(CBEventType)
    assert "retrieve" in repr(handler)


@pytest.mark.parametrize(
    ("budgets", "message"),
    [
        ([("retrieve", 0.1)], "must be a mapping of step name to limits"),
        ({"": 0.1}, "keys are step names"),
        ({"retrieve": 0}, r"budgets\['retrieve'\] is a USD limit and must be a finite number > 0"),
        ({"retrieve": float("nan")}, "finite number > 0"),
        ({"retrieve": True}, "must be a USD amount or a mapping"),
        ({"retrieve": "0.1"}, "must be a USD amount"),
        ({"retrieve": {"name": "x"}}, "may not set 'name'"),
        ({"retrieve": {"max_usdd": 1}}, r"budgets\['retrieve'\]: .*max_usd"),
        ({"retrieve": {"max_llm_calls": -1}}, r"budgets\['retrieve'\]: .*max_llm_calls"),
    ],
)
def test_bad_limits_are_refused_with_a_message_saying_what_to_fix(
    budgets: Any, message: str
) -> None:
    with pytest.raises(BudgetConfigError, match=message):
        ShekelCallbackHandler(budgets=budgets)
