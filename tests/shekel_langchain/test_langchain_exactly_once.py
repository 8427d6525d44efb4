"""Every model call is counted once: SDK-backed models by shekel's interceptor (the handler
stays out), models that never reach an SDK from what LangChain reports (usage and model name)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import UsageMetadataCallbackHandler
from langchain_core.globals import set_llm_cache
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage
from langchain_openai import ChatOpenAI
from lc_support import (
    GPT,
    LocalTextLLM,
    SdkChatModel,
    StreamingLocalModel,
    fake_model,
    gpt_cost,
    run,
)

from shekel import (
    Budget,
    BudgetExceededError,
    UnknownModelWarning,
    UsageMissingWarning,
    budget,
)
from shekel.integration import OutsideBudgetWarning
from shekel.testing import FakeProvider
from shekel_langchain import RunBudgetExceededError, ShekelCallbackHandler
from shekel_langchain._runs import RUNS


def sources(b: Budget) -> list[str]:
    return [call["source"] for call in b.summary_data()["calls"]]


@pytest.fixture
def llm_cache() -> Iterator[InMemoryCache]:
    cache = InMemoryCache()
    set_llm_cache(cache)
    yield cache
    set_llm_cache(None)


# -- models on the SDKs: the interceptor's ------------------------------------------------------


@pytest.mark.parametrize("explicit", [True, False], ids=["handler", "zero-config"])
def test_sdk_models_are_counted_once_by_the_interceptor(
    fake: FakeProvider,
    gpt: Callable[..., ChatOpenAI],
    claude: Callable[..., ChatAnthropic],
    explicit: bool,
) -> None:
    config: Any = {"callbacks": [ShekelCallbackHandler()]} if explicit else {}
    openai_model, anthropic_model = gpt(), claude()
    responses_model = gpt(use_responses_api=True)
    with budget(max_usd=5, name="root") as root:
        openai_model.invoke("a", config=config)
        list(openai_model.stream("b", config=config))
        responses_model.invoke("c", config=config)
        list(responses_model.stream("d", config=config))
        anthropic_model.invoke("e", config=config)
        list(anthropic_model.stream("f", config=config))
        openai_model.batch(["g", "h"], config=config)
    assert root.snapshot().llm_calls_used == len(fake.requests) == 8
    assert set(sources(root)) == {"sdk"}
    assert root.summary_data()["estimated_calls"] == 0


def test_sdk_models_are_counted_once_in_async_code(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], claude: Callable[..., ChatAnthropic]
) -> None:
    async def main() -> Budget:
        openai_model, anthropic_model = gpt(), claude()
        handler = ShekelCallbackHandler()
        async with budget(max_usd=5, name="root") as root:
            await openai_model.ainvoke("a", config={"callbacks": [handler]})
            [c async for c in openai_model.astream("b")]
            await anthropic_model.ainvoke("c")
            [c async for c in anthropic_model.astream("d", config={"callbacks": [handler]})]
            await openai_model.abatch(["e", "f"])
        return root

    root = run(main())
    assert root.snapshot().llm_calls_used == len(fake.requests) == 6
    assert set(sources(root)) == {"sdk"}


def test_a_model_of_its_own_calling_the_openai_sdk_is_counted_once(fake: FakeProvider) -> None:
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=2)
    model = SdkChatModel(client=client)
    with budget(max_usd=5, name="root") as root:
        model.invoke("mine")
        model.with_config(run_name="summarize").invoke("mine again")
    assert root.snapshot().llm_calls_used == len(fake.requests) == 2
    assert sources(root) == ["sdk", "sdk"]
    client.close()


def test_langchain_sees_openai_stream_usage_with_a_budget(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI]
) -> None:
    model = gpt()
    seen = UsageMetadataCallbackHandler()
    with budget(max_usd=5, name="root") as root:
        list(model.stream("one", config={"callbacks": [seen]}))
        model.invoke("two", config={"callbacks": [seen]})
    assert seen.usage_metadata[GPT]["total_tokens"] == 30  # both calls, the stream included
    assert root.snapshot().tokens_used == 30


def test_raw_sdk_streams_keep_their_shape(fake: FakeProvider) -> None:
    """The usage chunk is handed on to LangChain's models only: raw SDK code in a runnable
    that reads ``chunk.choices[0]`` keeps working."""
    from langchain_core.runnables import RunnableLambda

    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=2)

    def read(text: str) -> str:
        stream = client.chat.completions.create(
            model=GPT, messages=[{"role": "user", "content": text}], stream=True
        )
        return "".join(chunk.choices[0].delta.content or "" for chunk in stream)

    with budget(max_usd=5, name="root") as root:
        text = RunnableLambda(read).with_config(run_name="summarize").invoke("raw stream")
    assert text == "raw stream"
    assert root.snapshot().llm_calls_used == 1
    client.close()


# -- models that never reach an SDK: reported ---------------------------------------------------


def test_a_local_model_is_recorded_from_its_usage_and_model_name() -> None:
    model = fake_model(input_tokens=1000, output_tokens=100)
    with budget(max_usd=5, name="root") as root:
        model.invoke("x")
        model.with_config(run_name="summarize").invoke("y", config={"callbacks": []})
    assert root.snapshot().llm_calls_used == 2
    assert root.snapshot().tokens_used == 2200
    assert root.spent == pytest.approx(gpt_cost(2, 1000, 100), abs=1e-12)
    call = root.summary_data()["calls"][0]
    assert (call["model"], call["source"], call["priced"]) == (GPT, "langchain", True)


def test_a_count_out_of_range_is_recorded_as_zero_and_the_run_ends() -> None:
    with budget(max_usd=5, name="root") as root:
        fake_model(input_tokens=-5, output_tokens=100).invoke("x")
        fake_model(input_tokens=1000, output_tokens=-1).invoke("y")
    assert (root.snapshot().llm_calls_used, root.snapshot().tokens_used) == (2, 1100)
    assert root.spent == pytest.approx(gpt_cost(1, 0, 100) + gpt_cost(1, 1000, 0), abs=1e-12)


def test_a_local_streamed_model_is_recorded_from_its_last_chunk() -> None:
    model = StreamingLocalModel()

    async def main() -> Budget:
        async with budget(max_usd=5, name="root") as root:
            [c async for c in model.astream("three little words")]
        return root

    with budget(max_usd=5, name="sync") as sync_root:
        list(model.stream("two words"))
    async_root = run(main())
    assert (sync_root.snapshot().llm_calls_used, sync_root.snapshot().tokens_used) == (1, 102)
    assert (async_root.snapshot().llm_calls_used, async_root.snapshot().tokens_used) == (1, 103)


def test_a_local_text_llm_is_recorded_from_its_llm_output() -> None:
    with budget(max_usd=5, name="root") as root:
        assert LocalTextLLM().invoke("shout") == "SHOUT"
    assert (root.snapshot().llm_calls_used, root.snapshot().tokens_used) == (1, 44)
    assert root.spent == pytest.approx(gpt_cost(1, 40, 4), abs=1e-12)


def test_a_model_without_a_name_is_priced_by_its_class_name() -> None:
    prices = {"GenericFakeChatModel": {"input": 1.0, "output": 2.0}}
    with budget(max_usd=5, name="root", prices=prices) as root:
        fake_model(input_tokens=1000, output_tokens=100, model=None).invoke("x")
    assert root.spent == pytest.approx(0.001 + 0.0002, abs=1e-12)


def test_an_unknown_local_model_is_counted_with_a_warning() -> None:
    model = fake_model(model="my-local-llama")
    with budget(max_usd=5, name="root") as root, pytest.warns(UnknownModelWarning):
        model.invoke("x")
    assert (root.snapshot().llm_calls_used, root.snapshot().tokens_used) == (1, 110)
    assert root.summary_data()["calls"][0]["priced"] is False


@pytest.mark.filterwarnings("ignore::shekel.UnknownModelWarning")  # and no price for the fakes
def test_a_model_reporting_no_usage_is_estimated_with_one_warning_per_model() -> None:
    chat = FakeListChatModel(responses=["no usage here"])  # 13 characters: 3 tokens
    text = FakeListLLM(responses=["nor here"])  # 2 tokens
    with budget(max_usd=5, name="root") as root, warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always", UsageMissingWarning)
        chat.invoke("x" * 40)  # a token per four characters: 10
        chat.invoke("x" * 40)
        text.invoke("y" * 80)
    missing = [str(w.message) for w in warned if w.category is UsageMissingWarning]
    assert len(missing) == 2
    assert "'FakeListChatModel' ran without token usage" in missing[0]
    assert "'FakeListLLM' ran without token usage" in missing[1]
    assert (root.snapshot().llm_calls_used, root.snapshot().tokens_used) == (
        3,
        2 * (10 + 3) + 20 + 2,
    )
    assert root.summary_data()["estimated_calls"] == 3  # the totals say they are estimates
    assert root.summary_data()["incomplete"] is True


def test_prompt_cache_reads_and_writes_are_priced_at_their_rates() -> None:
    prices = {
        "local-claude": {"input": 1.0, "output": 2.0, "cached_input": 0.1, "cache_write": 1.25}
    }
    usage: Any = {
        "input_tokens": 1000,  # LangChain counts cached tokens in the prompt, as shekel does
        "output_tokens": 100,
        "total_tokens": 1100,
        "input_token_details": {"cache_read": 200, "cache_creation": 300},
    }
    answer = AIMessage("x", usage_metadata=usage, response_metadata={"model_name": "local-claude"})
    model = GenericFakeChatModel(messages=iter([answer]))
    with budget(max_usd=5, name="root", prices=prices) as root:
        model.invoke("x")
    call = root.summary_data()["calls"][0]
    assert (call["cache_read_tokens"], call["cache_write_tokens"]) == (200, 300)
    assert root.spent == pytest.approx((500 * 1.0 + 200 * 0.1 + 300 * 1.25 + 100 * 2.0) / 1e6)


def test_an_answer_from_langchains_cache_is_not_charged(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], llm_cache: InMemoryCache
) -> None:
    model = gpt()
    local = fake_model()
    with budget(max_usd=5, name="root") as root:
        model.invoke("same question")
        model.invoke("same question")
        local.invoke("local question")
        local.invoke("local question")
    assert len(fake.requests) == 1
    assert root.snapshot().llm_calls_used == 2  # one SDK call, one local call


def test_a_report_that_crosses_the_cap_is_recorded_and_stops_the_next_call() -> None:
    model = fake_model(input_tokens=10_000, output_tokens=1_000, replies=2)
    limit = gpt_cost(1, 10_000, 1_000) * 1.5
    with budget(max_usd=limit, name="root") as root:
        model.invoke("first")
        model.invoke("crosses the cap")  # recorded; nothing raised from the end of the run
        with pytest.raises(RunBudgetExceededError) as refused:
            model.invoke("not started")
    assert root.spent == pytest.approx(gpt_cost(2, 10_000, 1_000), abs=1e-12)
    assert refused.value.sent is False
    assert isinstance(refused.value, BudgetExceededError)


def test_outside_a_budget_nothing_is_followed_or_recorded_and_budgets_warn_once(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI]
) -> None:
    handler = ShekelCallbackHandler(budgets={"summarize": 1.0})
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        gpt().with_config(run_name="summarize").invoke("x", config={"callbacks": [handler]})
        fake_model().with_config(run_name="summarize").invoke("y", config={"callbacks": [handler]})
    assert [w.category for w in warned] == [OutsideBudgetWarning]
    assert "its limits have nothing to apply to" in str(warned[0].message)
    assert len(fake.requests) == 1
    assert "stream_options" not in fake.requests[0].body
    assert not RUNS
