"""Runs in parallel threads and tasks are attributed one by one; children are made once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.runnables import RunnableLambda, RunnableParallel
from langchain_openai import ChatOpenAI
from lc_support import fake_model, paid, prompts_sent, run

from shekel import budget
from shekel.testing import FakeProvider
from shekel_langchain import ShekelCallbackHandler, run_budgets

# Each test runs some of the mapped names only: the others are not typos.
pytestmark = pytest.mark.filterwarnings("ignore::shekel.integration.UnmatchedNameWarning")

NAMES = {"summarize": 1.0, "translate": 1.0}


def pipeline(model: Any) -> Any:
    """Two mapped branches per input, each sending its own prompt."""

    def branch(name: str) -> Any:
        return (RunnableLambda(lambda text: f"{name}: {text}") | model).with_config(run_name=name)

    return RunnableParallel(summarize=branch("summarize"), translate=branch("translate"))


def expected(inputs: list[str]) -> dict[str, str]:
    return {
        f"{name}: {text}": f"root.{name}" for text in inputs for name in ("summarize", "translate")
    }


def answers_of(inputs: list[str], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for text, out in zip(inputs, outputs, strict=True):
        found[f"summarize: {text}"] = out["summarize"]
        found[f"translate: {text}"] = out["translate"]
    return found


def test_threads_of_a_batch_are_attributed_one_by_one(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI]
) -> None:
    inputs = [f"t{n}" for n in range(16)]
    handler = ShekelCallbackHandler(budgets=NAMES)
    with budget(max_usd=5, name="root") as root:
        outputs = pipeline(gpt()).batch(
            inputs, config={"callbacks": [handler], "max_concurrency": 8}
        )
    assert paid(root, answers_of(inputs, outputs)) == expected(inputs)
    assert sorted(prompts_sent(fake)) == sorted(expected(inputs))
    assert sorted(c.full_name for c in root.children) == ["root.summarize", "root.translate"]
    assert root.snapshot().llm_calls_used == 32


def test_tasks_of_an_abatch_are_attributed_one_by_one(
    fake: FakeProvider, gpt: Callable[..., ChatOpenAI]
) -> None:
    inputs = [f"a{n}" for n in range(20)]

    async def main() -> tuple[Any, list[dict[str, Any]]]:
        async with budget(max_usd=5, name="root") as root:
            with run_budgets(NAMES):
                outputs = await pipeline(gpt()).abatch(inputs, config={"max_concurrency": 10})
        return root, outputs

    root, outputs = run(main())
    assert paid(root, answers_of(inputs, outputs)) == expected(inputs)
    assert len(root.children) == 2
    assert root.snapshot().llm_calls_used == len(fake.requests) == 40


def test_local_models_in_parallel_are_all_recorded() -> None:
    model = fake_model(input_tokens=10, output_tokens=1)
    chain = (RunnableLambda(lambda text: text) | model).with_config(run_name="summarize")

    async def main() -> Any:
        async with budget(max_usd=5, name="root") as root:
            with run_budgets(NAMES):
                await chain.abatch([str(n) for n in range(30)], config={"max_concurrency": 10})
                chain.batch([str(n) for n in range(30)], config={"max_concurrency": 10})
        return root

    root = run(main())
    summarize = root.child("summarize")
    assert (summarize.snapshot().llm_calls_used, summarize.snapshot().tokens_used) == (60, 660)
    assert root.spent_direct == 0
