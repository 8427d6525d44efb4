"""An exhausted budget stops work before it is sent or started, names the budget that refused,
and leaves other handlers (a tracer built like LangSmith's) with no run open; bad input gets an
error that says what to fix."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.runnables import RunnableLambda
from langchain_openai import ChatOpenAI
from lc_support import StreamingLocalModel, Tracer, fake_model, gpt_cost, prompts_sent, run

from shekel import (
    BudgetConfigError,
    BudgetExceededError,
    UnknownModelError,
    budget,
    current_budget,
)
from shekel.integration import UnmatchedNameWarning
from shekel.testing import FakeProvider
from shekel_langchain import RunBudgetExceededError, ShekelCallbackHandler, run_budgets


def two_calls() -> ShekelCallbackHandler:
    return ShekelCallbackHandler(budgets={"summarize": {"max_llm_calls": 2}})


def summarize(model: Any) -> Any:
    return (RunnableLambda(lambda text: f"summarize: {text}") | model).with_config(
        run_name="summarize"
    )


# -- models on the SDKs: refused by the interceptor, before sending ------------------------------


@pytest.mark.parametrize("mode", ["invoke", "stream"])
def test_an_exhausted_child_refuses_before_sending_and_tracers_see_an_error(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], mode: str
) -> None:
    chain = summarize(gpt())
    before, after = Tracer(), Tracer()
    config: Any = {"callbacks": [before, two_calls(), after]}
    call = chain.invoke if mode == "invoke" else (lambda x, config: list(chain.stream(x, config)))
    with budget(max_usd=5, name="root") as root:
        call("a", config=config)
        call("b", config=config)
        with pytest.raises(BudgetExceededError) as refused:
            call("c", config=config)
        assert current_budget() is root
    assert (refused.value.budget_name, refused.value.sent) == ("root.summarize", False)
    assert prompts_sent(fake) == ["summarize: a", "summarize: b"]
    for tracer in (before, after):
        assert tracer.open_runs == []
        last = tracer.finished[-1]
        assert "root.summarize" in (last.error or "")
        model_run = next(r for r in last.child_runs if r.run_type == "llm")
        assert model_run.error is not None  # the model run ended, with the refusal
    assert root.child("summarize").snapshot().llm_calls_used == 2


def test_an_exhausted_child_refuses_in_async_code_on_the_zero_config_path(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI]
) -> None:
    async def main() -> tuple[list[BaseException], Tracer]:
        chain = summarize(gpt())
        tracer = Tracer()
        refusals: list[BaseException] = []
        async with budget(max_usd=5, name="root"):
            with run_budgets({"summarize": {"max_llm_calls": 1}}):
                await chain.ainvoke("a", config={"callbacks": [tracer]})
                for text in ("b", "c"):
                    try:
                        [c async for c in chain.astream(text, config={"callbacks": [tracer]})]
                    except BudgetExceededError as exc:
                        refusals.append(exc)
        return refusals, tracer

    refusals, tracer = run(main())
    assert [getattr(e, "budget_name", None) for e in refusals] == ["root.summarize"] * 2
    assert prompts_sent(fake) == ["summarize: a"]
    assert tracer.open_runs == []


def test_a_batch_over_the_cap_sends_only_what_fits(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI]
) -> None:
    chain = summarize(gpt())
    with budget(max_usd=5, name="root") as root:
        results = chain.batch(
            ["a", "b", "c", "d"],
            config={"callbacks": [two_calls()], "max_concurrency": 1},
            return_exceptions=True,
        )
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert len(refused) == 2
    assert all(r.sent is False for r in refused)
    assert len(fake.requests) == root.snapshot().llm_calls_used == 2


def test_a_retried_refusal_sends_nothing(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI]
) -> None:
    chain = summarize(gpt()).with_retry(stop_after_attempt=3, wait_exponential_jitter=False)
    handler = ShekelCallbackHandler(budgets={"summarize": {"max_llm_calls": 1}})
    with budget(max_usd=5, name="root"):
        chain.invoke("a", config={"callbacks": [handler]})
        with pytest.raises(BudgetExceededError):
            chain.invoke("b", config={"callbacks": [handler]})
    assert len(fake.requests) == 1


def test_raising_a_refused_childs_limit_lets_the_next_run_go(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI]
) -> None:
    chain = summarize(gpt())
    handler = ShekelCallbackHandler(budgets={"summarize": {"max_llm_calls": 1}})
    with budget(max_usd=5, name="root") as root:
        chain.invoke("a", config={"callbacks": [handler]})
        with pytest.raises(BudgetExceededError):
            chain.invoke("b", config={"callbacks": [handler]})
        root.child("summarize").set_limits(max_llm_calls=2)
        chain.invoke("c", config={"callbacks": [handler]})  # the child, as it is now
    assert prompts_sent(fake) == ["summarize: a", "summarize: c"]


def test_a_parents_cap_stops_a_mapped_child(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI]
) -> None:
    chain = summarize(gpt())
    handler = ShekelCallbackHandler(budgets={"summarize": 1.00})
    with budget(max_llm_calls=1, name="root"):
        chain.invoke("a", config={"callbacks": [handler]})
        with pytest.raises(BudgetExceededError) as refused:
            chain.invoke("b", config={"callbacks": [handler]})
    assert refused.value.budget_name == "root"
    assert len(fake.requests) == 1


# -- models that never reach an SDK: refused by the handler, before they run ---------------------


def test_a_local_model_is_stopped_before_it_runs() -> None:
    model = fake_model(replies=2)
    chain = summarize(model)
    handler = two_calls()
    after = Tracer()
    with budget(max_usd=5, name="root") as root:
        chain.invoke("a", config={"callbacks": [handler, after]})
        chain.invoke("b", config={"callbacks": [handler, after]})
        model.messages = iter(["the answer a third run would take"])
        with pytest.raises(RunBudgetExceededError) as refused:
            chain.invoke("c", config={"callbacks": [handler, after]})
    error = refused.value
    assert (error.budget_name, error.run_name, error.sent) == (
        "root.summarize",
        "GenericFakeChatModel",
        False,
    )
    assert str(error).startswith("budget 'root.summarize' has no room left")
    assert next(model.messages) == "the answer a third run would take"  # never asked
    assert root.child("summarize").snapshot().llm_calls_used == 2
    assert after.open_runs == []  # a handler after shekel's never saw the model start


def test_a_local_model_is_stopped_in_async_code() -> None:
    async def main() -> BaseException | None:
        model = fake_model(replies=1)
        async with budget(max_llm_calls=1, name="root"):
            await model.ainvoke("a")
            try:
                await model.ainvoke("b")
            except RunBudgetExceededError as exc:
                return exc
        return None

    error = run(main())
    assert isinstance(error, RunBudgetExceededError)
    assert error.budget_name == "root"


def test_zero_config_refusal_of_a_local_model_leaves_earlier_handlers_a_run_open() -> None:
    """A known limit, written down in the README: LangChain calls the zero-config handler after
    every other one, and gives handlers no way to refuse a run cleanly, so handlers called
    before it saw the model run start and never see it end. Pass the handler first in
    ``callbacks`` (previous test) when that matters."""
    model = fake_model()
    tracer = Tracer()
    with budget(max_llm_calls=1, name="root"):
        model.invoke("a", config={"callbacks": [tracer]})
        with pytest.raises(RunBudgetExceededError):
            model.invoke("b", config={"callbacks": [tracer]})
    assert tracer.open_runs == ["GenericFakeChatModel"]


def test_an_unknown_local_model_is_refused_when_the_budget_says_so() -> None:
    unknown = StreamingLocalModel(model_name="my-local-llama")
    unnamed = fake_model(replies=1)  # names its model only in its answer
    with budget(max_usd=5, name="root", unknown_models="error") as root:
        with pytest.raises(UnknownModelError, match="my-local-llama"):
            unknown.invoke("a")
        with pytest.raises(UnknownModelError, match="GenericFakeChatModel"):
            unnamed.invoke("b")
        StreamingLocalModel().invoke("a known model runs")
    assert root.snapshot().llm_calls_used == 1
    assert root.spent == pytest.approx(gpt_cost(1, 100, 4), abs=1e-12)
    assert next(unnamed.messages).content == "a local answer"  # never asked


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("budgets", "message"),
    [
        ({"summarize": -1}, "budgets\\['summarize'\\]: .*max_usd"),
        ({"summarize": {"max_usdd": 1}}, "did you mean 'max_usd'"),
        ({"summarize": {"name": "other"}}, "may not set 'name'"),
        ({"summarize": True}, "must be a USD limit"),
        ({"summarize": [1]}, "must be a USD limit"),
        ({"summarize": "1"}, "must be a USD limit"),
        ({"": 1}, "non-empty strings"),
        ({3: 1}, "non-empty strings"),
        (["summarize"], "must map LangChain run names"),
    ],
)
def test_bad_budgets_say_what_to_fix(budgets: Any, message: str) -> None:
    with pytest.raises(BudgetConfigError, match=message):
        ShekelCallbackHandler(budgets=budgets)
    with pytest.raises(BudgetConfigError, match=message), run_budgets(budgets):
        pass


def test_a_mapped_run_under_an_unnamed_budget_gets_its_child() -> None:
    chain = summarize(fake_model())
    handler = ShekelCallbackHandler(budgets={"summarize": 1.0})
    with budget(max_usd=5) as root:
        chain.invoke("a", config={"callbacks": [handler]})
    assert [c.full_name for c in root.children] == ["budget.summarize"]
    assert root.children[0].snapshot().llm_calls_used == 1


def test_a_name_with_dots_becomes_a_valid_child_name() -> None:
    chain = (RunnableLambda(lambda x: x) | fake_model()).with_config(run_name="crew.lead v2")
    handler = ShekelCallbackHandler(budgets={"crew.lead v2": 1.0})
    with budget(max_usd=5, name="root") as root:
        chain.invoke("a", config={"callbacks": [handler]})
    assert [c.full_name for c in root.children] == ["root.crew%2Elead v2"]


def test_a_name_matched_inside_a_budget_entered_in_a_runs_body_is_not_reported() -> None:
    """Names are reported at the end of the budget the outermost run started in, and a mapped
    run inside a budget entered in a run's body (which pays for it) matched there."""

    def body(text: str) -> str:
        with budget(name="inner"):
            summarize(fake_model()).invoke(text)
        return text

    handler = ShekelCallbackHandler(budgets={"summarize": 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnmatchedNameWarning)
        with budget(max_usd=5, name="root") as root:
            RunnableLambda(body).invoke("a", config={"callbacks": [handler]})
    assert root.child("inner").child("summarize").snapshot().llm_calls_used == 1
