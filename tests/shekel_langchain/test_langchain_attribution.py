"""Which budget pays for each request: mapped runs charge their child, unmapped runs their nearest
mapped ancestor or the active budget, in every way LangChain runs things, sync and async, with
the handler passed explicitly and with the zero-config path.

Each request sends a distinct prompt; the fake provider echoes it, so the answer's response id
leads to shekel's record of that request and to the budget that paid for it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.messages import HumanMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig, RunnableLambda, RunnableParallel
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from lc_support import by_prompt, gpt_cost, models_charged, paid, payers, prompts_sent, run

from shekel import budget, current_budget
from shekel.testing import FakeProvider
from shekel_langchain import ShekelCallbackHandler, run_budgets

# Each test runs some of the mapped names only: the others are not typos.
pytestmark = pytest.mark.filterwarnings("ignore::shekel.integration.UnmatchedNameWarning")

NAMES: dict[str, Any] = {
    "summarize": 1.00,
    "translate": {"max_usd": 0.50, "max_tokens": 20_000},
    "outer": None,
}


class Wiring:
    """How a test hands its names to shekel-langchain: a handler in the config, or
    ``run_budgets`` around the zero-config path."""

    def __init__(self, explicit: bool) -> None:
        self.explicit = explicit
        self.config: RunnableConfig = (
            {"callbacks": [ShekelCallbackHandler(budgets=NAMES)]} if explicit else {}
        )

    def scope(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext() if self.explicit else run_budgets(NAMES)


@pytest.fixture(params=["handler", "zero-config"])
def wiring(request: pytest.FixtureRequest) -> Wiring:
    return Wiring(request.param == "handler")


def step(name: str, model: Any) -> Any:
    """``name: <input>`` sent to ``model``, as a chain run named ``name``."""
    return (RunnableLambda(lambda text: f"{name}: {text}") | model).with_config(run_name=name)


# -- sync -------------------------------------------------------------------------------------


def test_a_mapped_run_charges_its_child_and_other_calls_the_active_budget(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], wiring: Wiring
) -> None:
    model = gpt()
    with budget(max_usd=5, name="root") as root, wiring.scope():
        answers = {
            "summarize: a": step("summarize", model).invoke("a", config=wiring.config),
            "direct": model.invoke("direct", config=wiring.config),
        }
        assert current_budget() is root
    assert paid(root, answers) == {"summarize: a": "root.summarize", "direct": "root"}
    assert prompts_sent(fake) == ["summarize: a", "direct"]
    summarize = root.child("summarize")
    assert summarize.config.max_usd == 1.00
    assert summarize.spent == pytest.approx(gpt_cost(1), abs=1e-12)
    assert root.spent == pytest.approx(gpt_cost(2), abs=1e-12)


def test_repeated_runs_accumulate_into_one_child(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], wiring: Wiring
) -> None:
    chain = step("translate", gpt())
    with budget(max_usd=5, name="root") as root, wiring.scope():
        for text in ("a", "b", "c"):
            chain.invoke(text, config=wiring.config)
    assert [c.full_name for c in root.children] == ["root.translate"]
    translate = root.child("translate")
    assert (translate.snapshot().llm_calls_used, translate.config.max_usd) == (3, 0.50)
    assert translate.snapshot().tokens_used == 3 * 15
    assert len(fake.requests) == 3


def test_batch_charges_every_input_to_the_mapped_child(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], wiring: Wiring
) -> None:
    chain = step("summarize", gpt())
    inputs = [f"doc {n}" for n in range(6)]
    with budget(max_usd=5, name="root") as root, wiring.scope():
        answers = chain.batch(inputs, config={**wiring.config, "max_concurrency": 3})
    prompts = [f"summarize: {text}" for text in inputs]
    assert paid(root, by_prompt(prompts, answers)) == dict.fromkeys(prompts, "root.summarize")
    assert sorted(prompts_sent(fake)) == sorted(prompts)


def test_parallel_branches_charge_their_own_children(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], wiring: Wiring
) -> None:
    model = gpt()
    both = RunnableParallel(summary=step("summarize", model), french=step("translate", model))
    with budget(max_usd=5, name="root") as root, wiring.scope():
        out = both.invoke("p", config=wiring.config)
    answers = {"summarize: p": out["summary"], "translate: p": out["french"]}
    assert paid(root, answers) == {
        "summarize: p": "root.summarize",
        "translate: p": "root.translate",
    }
    assert root.spent_direct == 0


def test_mapped_runs_nest_and_unmapped_ones_charge_the_nearest_mapped_ancestor(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], wiring: Wiring
) -> None:
    model = gpt()
    summarize = step("summarize", model)
    plain = RunnableLambda(lambda text: model.invoke(f"plain: {text}"))  # an unmapped chain

    def outer_body(text: str) -> dict[str, Any]:
        return {"inner": summarize.invoke(text), "plain": plain.invoke(text)}

    outer = RunnableLambda(outer_body).with_config(run_name="outer")
    with budget(max_usd=5, name="root") as root, wiring.scope():
        out = outer.invoke("x", config=wiring.config)
    answers = {"summarize: x": out["inner"], "plain: x": out["plain"]}
    assert paid(root, answers) == {"summarize: x": "root.outer.summarize", "plain: x": "root.outer"}
    assert root.child("outer").config.max_usd is None  # mapped to None: a child that only tracks


def test_a_run_inside_its_own_child_does_not_nest_into_itself(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], wiring: Wiring
) -> None:
    inner = step("summarize", gpt())
    outer = RunnableLambda(lambda text: inner.invoke(text)).with_config(run_name="summarize")
    with budget(max_usd=5, name="root") as root, wiring.scope():
        outer.invoke("x", config=wiring.config)
    summarize = root.child("summarize")
    assert summarize.children == []
    assert summarize.snapshot().llm_calls_used == 1


def test_stream_charges_the_child_and_shows_langchain_the_usage(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], wiring: Wiring
) -> None:
    chain = step("summarize", gpt())
    with budget(max_usd=5, name="root") as root, wiring.scope():
        chunks = list(chain.stream("long text", config=wiring.config))
    assert "".join(str(c.content) for c in chunks).strip() == "summarize: long text"
    # LangChain does not ask a custom base_url for stream usage; shekel does and hands it on
    assert sum((c.usage_metadata or {}).get("total_tokens", 0) for c in chunks) == 15
    assert fake.requests[0].body["stream_options"] == {"include_usage": True}
    assert (root.child("summarize").snapshot().llm_calls_used, root.spent_direct) == (1, 0)
    assert root.child("summarize").spent == pytest.approx(gpt_cost(1), abs=1e-12)


def test_a_run_name_given_to_the_model_itself_maps_it(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], wiring: Wiring
) -> None:
    model = gpt()
    with budget(max_usd=5, name="root") as root, wiring.scope():
        named = model.with_config(run_name="translate").invoke("m", config=wiring.config)
        after = model.invoke("after", config=wiring.config)
    assert paid(root, {"m": named, "after": after}) == {"m": "root.translate", "after": "root"}


def test_raw_sdk_calls_inside_a_runnable_and_a_tool_charge_their_run(
    fake: FakeProvider, wiring: Wiring
) -> None:
    oai = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=2)
    claude = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=2)

    def ask_openai(text: str) -> Any:
        return oai.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
        )

    @tool
    def translate(text: str) -> str:
        """Translate a text (asks Claude through the raw SDK)."""
        answer = claude.messages.create(
            model="claude-3-haiku-20240307",
            max_tokens=50,
            messages=[{"role": "user", "content": text}],
        )
        return answer.id

    with budget(max_usd=5, name="root") as root, wiring.scope():
        summary = RunnableLambda(ask_openai).with_config(run_name="summarize")
        by_openai = summary.invoke("raw openai", config=wiring.config)
        claude_id = translate.invoke("raw claude", config=wiring.config)
        outside = ask_openai("outside any run")
    ids = payers(root)
    assert ids[by_openai.id] == "root.summarize"
    assert ids[claude_id] == "root.translate"
    assert ids[outside.id] == "root"
    assert root.child("translate").snapshot().tool_calls_used == 1
    oai.close()
    claude.close()


@pytest.mark.filterwarnings("ignore:Unexpected type for token usage")  # langchain-openai's own
def test_generate_with_several_prompts_counts_each_request_once(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], wiring: Wiring
) -> None:
    model = gpt()
    prompts = [[HumanMessage("g1")], [HumanMessage("g2")], [HumanMessage("g3")]]
    callbacks = wiring.config.get("callbacks")
    with budget(max_usd=5, name="root") as root, wiring.scope():
        model.generate(prompts, callbacks=callbacks, run_name="summarize")
    assert root.child("summarize").snapshot().llm_calls_used == 3
    assert root.snapshot().llm_calls_used == len(fake.requests) == 3


def test_anthropic_models_are_attributed_like_openai_ones(
    fake: FakeProvider, claude: Callable[..., ChatAnthropic], wiring: Wiring
) -> None:
    model = claude()
    with budget(max_usd=5, name="root") as root, wiring.scope():
        answers = {
            "translate: c": step("translate", model).invoke("c", config=wiring.config),
            "direct": model.invoke("direct", config=wiring.config),
        }
        streamed = list(step("summarize", model).stream("s", config=wiring.config))
    assert paid(root, answers) == {"translate: c": "root.translate", "direct": "root"}
    assert root.child("summarize").snapshot().llm_calls_used == 1
    assert sum((c.usage_metadata or {}).get("total_tokens", 0) for c in streamed) == 15
    assert root.snapshot().llm_calls_used == len(fake.requests) == 3


def test_the_callers_next_call_is_charged_to_the_callers_budget(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], wiring: Wiring
) -> None:
    model = gpt()
    with budget(max_usd=5, name="root") as root, wiring.scope():
        step("summarize", model).invoke("first", config=wiring.config)
        list(step("summarize", model).stream("second", config=wiring.config))
        follow_up = model.invoke("follow-up")
        assert current_budget() is root
    assert paid(root, {"follow-up": follow_up}) == {"follow-up": "root"}
    assert root.child("summarize").snapshot().llm_calls_used == 2


# -- async ------------------------------------------------------------------------------------


def test_async_modes_charge_the_right_budgets(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], wiring: Wiring
) -> None:
    async def main() -> tuple[Any, dict[str, Any], int]:
        model = gpt()  # one model per event loop
        summarize, translate = step("summarize", model), step("translate", model)
        async with budget(max_usd=5, name="root") as root:
            with wiring.scope():
                answers = {"summarize: a": await summarize.ainvoke("a", config=wiring.config)}
                batch = await translate.abatch(["b1", "b2", "b3"], config=wiring.config)
                answers |= by_prompt([f"translate: {t}" for t in ("b1", "b2", "b3")], batch)
                streamed = [c async for c in summarize.astream("s", config=wiring.config)]
                events = [
                    e["event"] async for e in translate.astream_events("e", config=wiring.config)
                ]
                both = RunnableParallel(x=summarize, y=translate)
                out = await both.ainvoke("p", config=wiring.config)
                answers |= {"summarize: p": out["x"], "translate: p": out["y"]}
                answers["after"] = await model.ainvoke("after")
                assert current_budget() is root
            assert "on_chat_model_stream" in events
        usage = sum((c.usage_metadata or {}).get("total_tokens", 0) for c in streamed)
        return root, answers, usage

    root, answers, streamed_usage = run(main())
    assert paid(root, answers) == {
        "summarize: a": "root.summarize",
        "translate: b1": "root.translate",
        "translate: b2": "root.translate",
        "translate: b3": "root.translate",
        "summarize: p": "root.summarize",
        "translate: p": "root.translate",
        "after": "root",
    }
    assert streamed_usage == 15
    # + the astream and the astream_events calls, which carry no response id into LangChain
    assert root.child("summarize").snapshot().llm_calls_used == 3
    assert root.child("translate").snapshot().llm_calls_used == 5
    assert root.snapshot().llm_calls_used == len(fake.requests) == 9


def test_async_nested_runs(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], wiring: Wiring
) -> None:
    async def main() -> tuple[Any, dict[str, Any]]:
        model = gpt()
        summarize = step("summarize", model)

        async def outer_body(text: str) -> dict[str, Any]:
            return {
                "summarize: x": await summarize.ainvoke(text),
                "plain: x": await model.ainvoke(f"plain: {text}"),
            }

        outer = RunnableLambda(outer_body).with_config(run_name="outer")
        async with budget(max_usd=5, name="root") as root:
            with wiring.scope():
                answers = await outer.ainvoke("x", config=wiring.config)
                answers["after"] = await model.ainvoke("after")
        return root, answers

    root, answers = run(main())
    assert paid(root, answers) == {
        "summarize: x": "root.outer.summarize",
        "plain: x": "root.outer",
        "after": "root",
    }


def test_async_raw_sdk_call_inside_a_runnable(fake: FakeProvider, wiring: Wiring) -> None:
    async def main() -> tuple[Any, Any, Any]:
        client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=2)

        async def ask(text: str) -> Any:
            return await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": text}]
            )

        async with budget(max_usd=5, name="root") as root:
            with wiring.scope():
                inside = (
                    await RunnableLambda(ask)
                    .with_config(run_name="translate")
                    .ainvoke("inside", config=wiring.config)
                )
                outside = await ask("outside")
        await client.close()
        return root, inside, outside

    root, inside, outside = run(main())
    assert paid(root, {"inside": inside, "outside": outside}) == {
        "inside": "root.translate",
        "outside": "root",
    }


# -- retrievers -------------------------------------------------------------------------------


class EmbeddingRetriever(BaseRetriever):
    """Embeds the query through LangChain's OpenAI embeddings (an SDK call no LangChain model
    run covers), then asks a mapped chain to rewrite it."""

    embeddings: Any
    rewrite: Any

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        vector = self.embeddings.embed_query(query)
        rewritten = self.rewrite.invoke(query, config={"callbacks": run_manager.get_child()})
        return [Document(page_content=str(rewritten.content), metadata={"dims": len(vector)})]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        vector = await self.embeddings.aembed_query(query)
        rewritten = await self.rewrite.ainvoke(query, config={"callbacks": run_manager.get_child()})
        return [Document(page_content=str(rewritten.content), metadata={"dims": len(vector)})]


def embeddings_on(fake: FakeProvider) -> OpenAIEmbeddings:
    return OpenAIEmbeddings(
        model="text-embedding-3-small",
        base_url=fake.openai_base_url,
        api_key="test",  # type: ignore[arg-type]
        check_embedding_ctx_length=False,  # no tokenizer download
        max_retries=2,
    )


def test_a_retriever_charges_its_embedding_calls_and_its_nested_runs(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], wiring: Wiring
) -> None:
    retriever = EmbeddingRetriever(
        embeddings=embeddings_on(fake), rewrite=step("summarize", gpt())
    ).with_config(run_name="outer")
    with budget(max_usd=5, name="root") as root, wiring.scope():
        docs = retriever.invoke("tides", config=wiring.config)
        embeddings_on(fake).embed_query("outside")
    assert docs[0].page_content == "summarize: tides"
    embedding, gpt_model = "text-embedding-3-small", "gpt-4o-mini"
    assert models_charged(root, "root.outer") == [embedding]
    assert models_charged(root, "root.outer.summarize") == [gpt_model]
    assert models_charged(root, "root") == [embedding]
    assert root.snapshot().llm_calls_used == len(fake.requests) == 3


def test_an_async_retriever_charges_its_embedding_calls(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], wiring: Wiring
) -> None:
    async def main() -> Any:
        retriever = EmbeddingRetriever(
            embeddings=embeddings_on(fake), rewrite=step("summarize", gpt())
        ).with_config(run_name="outer")
        async with budget(max_usd=5, name="root") as root:
            with wiring.scope():
                await retriever.ainvoke("tides", config=wiring.config)
                await embeddings_on(fake).aembed_query("outside")
        return root

    root = run(main())
    embedding, gpt_model = "text-embedding-3-small", "gpt-4o-mini"
    assert models_charged(root, "root.outer") == [embedding]
    assert models_charged(root, "root.outer.summarize") == [gpt_model]
    assert models_charged(root, "root") == [embedding]
    assert root.snapshot().llm_calls_used == len(fake.requests) == 3


def test_a_plain_thread_given_the_runs_config_charges_the_run(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], wiring: Wiring
) -> None:
    """A ``threading.Thread`` copies no context (no budget is active in it), but a model given
    the run's config there is a child of the run, and its request is routed to its budget."""
    model = gpt()
    answers: dict[str, Any] = {}

    def body(text: str, config: RunnableConfig) -> str:
        def work() -> None:
            assert current_budget() is None
            answers[text] = model.invoke(text, config)

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        return text

    chain = RunnableLambda(body).with_config(run_name="translate")
    with budget(max_usd=5, name="root") as root, wiring.scope():
        chain.invoke("in a thread", config=wiring.config)
    assert paid(root, answers) == {"in a thread": "root.translate"}


def test_a_budget_entered_inside_a_run_pays_for_what_is_sent_inside_it(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], wiring: Wiring
) -> None:
    """The caller's choice wins: a ``with budget(...)`` block in a run's body (as a LangGraph
    node decorator opens one) pays for the raw SDK calls and model runs inside it."""
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=2)
    model = gpt()
    answers: dict[str, Any] = {}

    def body(text: str) -> str:
        with budget(name="inner"):
            answers["raw"] = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "raw"}]
            )
            answers["model"] = model.invoke("model")
        answers["after"] = model.invoke("after")
        return text

    with budget(max_usd=5, name="root") as root, wiring.scope():
        RunnableLambda(body).with_config(run_name="summarize").invoke("x", config=wiring.config)
    assert paid(root, answers) == {
        "raw": "root.inner",
        "model": "root.inner",
        "after": "root.summarize",
    }
    client.close()


def test_langgraph_nodes_are_runs_named_after_them(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI], wiring: Wiring
) -> None:
    """A LangGraph node runs as a LangChain run of its name: mapping the name maps the node."""
    import langgraph.graph as graph_module  # installed wherever these tests run (noxfile)

    model = gpt()

    def ask(prompt: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def node(state: dict[str, Any]) -> dict[str, Any]:
            return {"answers": [*state["answers"], model.invoke(prompt)]}

        return node

    graph = graph_module.StateGraph(dict)
    graph.add_node("outer", ask("researched"))  # mapped: its calls charge root.outer
    graph.add_node("write", ask("written"))  # unmapped: the active budget's
    graph.add_edge(graph_module.START, "outer")
    graph.add_edge("outer", "write")
    with budget(max_usd=5, name="root") as root, wiring.scope():
        out = graph.compile().invoke({"answers": []}, config=wiring.config)
    researched, written = out["answers"]
    assert paid(root, {"researched": researched, "written": written}) == {
        "researched": "root.outer",
        "written": "root",
    }
