"""A LlamaIndex RAG app under one budget: every step charged to its own child, offline.

Three documents are indexed, then a query engine answers questions (sync, and three at once
with ``aquery``) and a chat engine holds a short conversation. shekel-llamaindex needs no
wiring: inside ``with budget(...)``, each query's retrieval and synthesis, and each chat turn,
land in named children of the budget (``rag.query.retrieve``...), reused by every question.
The synthesis step is capped at four LLM calls by a ``ShekelCallbackHandler``: the fifth
question is stopped before its request is sent. Then ``tree()`` shows where the money went.

No API key is needed: the script starts shekel's fake OpenAI-compatible server in-process
(``shekel.testing.FakeProvider``), which answers every request with 2,000 input and 300
output tokens (gpt-4o: $0.008 a call). It needs LlamaIndex and its OpenAI integrations next
to shekel-llamaindex::

    pip install shekel-llamaindex llama-index-llms-openai llama-index-embeddings-openai
    python examples/llamaindex_rag.py

In this repository, ``uv run nox -s tests_llamaindex`` builds such an environment once;
then ``.nox/tests_llamaindex/bin/python examples/llamaindex_rag.py``.
"""

from __future__ import annotations

import asyncio

from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.callbacks import CallbackManager
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.llms.openai import OpenAI

from shekel import BudgetExceededError, budget
from shekel.testing import FakeProvider
from shekel_llamaindex import ShekelCallbackHandler

MODEL = "gpt-4o"
DOCUMENTS = [
    "Paul Graham wrote essays and co-founded Y Combinator in 2005.",
    "Before that he wrote Viaweb, an early web store builder, in Lisp.",
    "He studied painting at RISD and at the Accademia in Florence.",
]


def main() -> None:
    with FakeProvider() as fake:
        fake.set_usage(input_tokens=2_000, output_tokens=300)
        llm = OpenAI(model=MODEL, api_base=fake.openai_base_url, api_key="fake")
        embed = OpenAIEmbedding(api_base=fake.openai_base_url, api_key="fake")
        # Limits for steps: a handler in the callback manager of the components built after it.
        Settings.callback_manager = CallbackManager(
            [ShekelCallbackHandler(budgets={"synthesize": {"max_llm_calls": 4}})]
        )
        index = VectorStoreIndex.from_documents(
            [Document(text=text) for text in DOCUMENTS], embed_model=embed
        )
        engine = index.as_query_engine(llm=llm)

        with budget(max_usd=0.50, name="rag") as rag:
            print(engine.query("Who co-founded Y Combinator?"))

            async def three_at_once() -> None:
                # LlamaIndex's async clients belong to one event loop: fresh objects here
                allm = OpenAI(model=MODEL, api_base=fake.openai_base_url, api_key="fake")
                aengine = index.as_query_engine(llm=allm)
                questions = ("What did he write?", "Where did he paint?", "When was YC born?")
                await asyncio.gather(*(aengine.aquery(q) for q in questions))

            asyncio.run(three_at_once())

            chat = index.as_chat_engine(chat_mode="condense_plus_context", llm=llm)
            chat.chat("Tell me about Viaweb.")
            chat.chat("And what came after it?")

            try:
                engine.query("A fifth question for the query engine?")
            except BudgetExceededError as stopped:
                print(f"stopped: {stopped}")

        print(f"\n{len(fake.requests)} requests reached the provider\n")
        print(rag.tree())


if __name__ == "__main__":
    main()
