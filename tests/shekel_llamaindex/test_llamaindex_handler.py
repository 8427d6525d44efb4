"""ShekelCallbackHandler: step limits for the components whose callback manager holds it."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from li_models import tree_of
from llama_index.core import Settings, VectorStoreIndex, get_response_synthesizer
from llama_index.core.callbacks import CallbackManager
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.llms.openai import OpenAI

from shekel import BudgetConfigError, budget
from shekel.integration import OutsideBudgetWarning, UnmatchedNameWarning
from shekel.testing import FakeProvider
from shekel_llamaindex import ShekelCallbackHandler


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
    assert (retrieve.config.max_usd, retrieve.snapshot().llm_calls_used) == (0.5, 2)
    assert (synthesize.config.max_usd, synthesize.config.caps.llm_calls) == (None, 10)


def test_limits_set_on_a_query_engine_reach_its_retrieval_and_synthesis(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    manager = CallbackManager([ShekelCallbackHandler(budgets={"query": 0.9, "synthesize": 0.2})])
    engine = RetrieverQueryEngine.from_args(index.as_retriever(), llm=llm, callback_manager=manager)
    with budget(max_usd=1, name="rag") as rag:
        engine.query("Who?")
    query = rag.child("query")
    assert query.config.max_usd == 0.9
    assert query.child("synthesize").config.max_usd == 0.2
    assert query.child("retrieve").config.max_usd is None


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
    assert rag.child("query").child("synthesize").config.max_usd == 0.2
    assert rag.child("query").config.max_usd is None


def test_an_existing_step_budget_keeps_its_limits(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    manager = CallbackManager([ShekelCallbackHandler(budgets={"synthesize": 0.2})])
    engine = RetrieverQueryEngine.from_args(index.as_retriever(), llm=llm, callback_manager=manager)
    with budget(max_usd=1, name="rag") as rag:
        mine = rag.child("query").child("synthesize", max_usd=0.5)
        engine.query("Who?")
    assert mine.config.max_usd == 0.5
    assert mine.snapshot().llm_calls_used == 1


def test_limits_used_outside_any_budget_warn_once_and_the_query_runs(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    manager = CallbackManager([ShekelCallbackHandler(budgets={"synthesize": 0.2})])
    engine = RetrieverQueryEngine.from_args(index.as_retriever(), llm=llm, callback_manager=manager)
    with pytest.warns(OutsideBudgetWarning, match="outside any budget"):
        engine.query("Who?")
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutsideBudgetWarning)  # once
        engine.query("Who else?")
    assert len(fake.requests) == 4


def test_a_step_name_that_matched_nothing_is_named_when_the_budget_ends(
    fake: FakeProvider, index: VectorStoreIndex, llm: OpenAI
) -> None:
    manager = CallbackManager([ShekelCallbackHandler(budgets={"synthesise": 0.2})])
    engine = RetrieverQueryEngine.from_args(index.as_retriever(), llm=llm, callback_manager=manager)
    expected = r"budgets\['synthesise'\] matched no LlamaIndex step under budget 'rag'"
    expected += r".*did you mean 'synthesize'\?"
    with pytest.warns(UnmatchedNameWarning, match=expected), budget(max_usd=1, name="rag"):
        engine.query("Who?")


@pytest.mark.parametrize(
    ("budgets", "message"),
    [
        ([("retrieve", 0.1)], "budgets must map LlamaIndex step names to limits"),
        ({"": 0.1}, "budgets keys are LlamaIndex step names"),
        ({"retrieve": 0}, r"budgets\['retrieve'\]: max_usd must be"),
        ({"retrieve": {"max_usdd": 1}}, r"budgets\['retrieve'\]: .*did you mean 'max_usd'"),
    ],
)
def test_bad_limits_are_refused_with_a_message_saying_what_to_fix(
    budgets: Any, message: str
) -> None:
    with pytest.raises(BudgetConfigError, match=message):
        ShekelCallbackHandler(budgets=budgets)
