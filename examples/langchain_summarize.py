"""A LangChain summarizer with a budget per step, offline.

The pipeline splits a report into sections, summarizes every section in parallel (``batch``),
then writes one overview from the section summaries and translates it. Each step is a run with
a name, and ``ShekelCallbackHandler`` charges the runs of each name to a child of the active
budget::

    uv run python examples/langchain_summarize.py

``summarize`` gets $0.05 and at most 8 calls. The report has 10 sections: the first 8 are
summarized, the last 2 are refused before their requests are sent (the batch goes on with the
others), and the overview is written from what was summarized. ``tree()`` at the end shows where
the money went.

Nothing leaves the machine: ChatOpenAI talks to shekel's fake OpenAI server
(``shekel.testing.FakeProvider``), which answers every request with 1,500 input and 200 output
tokens of gpt-4o ($0.00575 a call).
"""

from __future__ import annotations

from typing import Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda
from langchain_openai import ChatOpenAI

from shekel import BudgetExceededError, budget
from shekel.testing import FakeProvider
from shekel_langchain import ShekelCallbackHandler

REPORT = "\n\n".join(
    f"Section {n}: findings on subsystem {n}, with measurements, open risks and next steps."
    for n in range(1, 11)
)

BUDGETS = {
    "summarize": {"max_usd": 0.05, "max_llm_calls": 8},
    "overview": 0.02,
    "translate": {"max_usd": 0.02, "max_tokens": 5_000},
}


def build(model: ChatOpenAI) -> Any:
    summarize = (
        ChatPromptTemplate.from_template("Summarize in one sentence:\n{section}")
        | model
        | StrOutputParser()
    ).with_config(run_name="summarize")
    overview = (
        ChatPromptTemplate.from_template("Write an overview of:\n{summaries}")
        | model
        | StrOutputParser()
    ).with_config(run_name="overview")
    translate = (
        ChatPromptTemplate.from_template("Translate into French:\n{text}")
        | model
        | StrOutputParser()
    ).with_config(run_name="translate")

    def split(report: str) -> list[dict[str, str]]:
        return [{"section": part} for part in report.split("\n\n")]

    def summarize_all(sections: list[dict[str, str]]) -> str:
        results = summarize.batch(sections, return_exceptions=True)
        done = [r for r in results if isinstance(r, str)]
        refused = [r for r in results if isinstance(r, BudgetExceededError)]
        print(f"summarized {len(done)} sections; {len(refused)} refused before sending", end="")
        if refused:
            first = refused[0]
            print(f" by {first.budget_name!r} (its {first.axis} limit)", end="")
        print()
        return "\n".join(done)

    return (
        RunnableLambda(split).with_config(run_name="split")
        | RunnableLambda(summarize_all)
        | (lambda summaries: {"summaries": summaries})
        | overview
        | (lambda text: {"text": text})
        | translate
    )


def main() -> None:
    with FakeProvider() as fake:
        fake.set_usage(input_tokens=1_500, output_tokens=200)
        model = ChatOpenAI(
            model="gpt-4o", base_url=fake.openai_base_url, api_key="offline", max_retries=2
        )
        pipeline = build(model)
        handler = ShekelCallbackHandler(budgets=BUDGETS)
        with budget(max_usd=0.10, name="report") as report:
            pipeline.invoke(REPORT, config={"callbacks": [handler], "max_concurrency": 4})
        print(f"{len(fake.requests)} requests reached the provider")
    print()
    print(report.tree())


if __name__ == "__main__":
    main()
