"""LlamaIndex's real OpenAI LLM and embeddings, over the real openai SDK, against shekel's fake
provider; a check that no test leaves a budget active; and each test sees the warnings that are
given once per process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from li_support import DOCUMENTS, INPUT, OUTPUT
from llama_index.core import Document, VectorStoreIndex
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.llms.openai import OpenAI

import shekel.integration
from shekel import current_budget
from shekel.testing import FakeProvider


@pytest.fixture(autouse=True)
def no_budget_left_active() -> Iterator[None]:
    assert current_budget() is None
    yield
    assert current_budget() is None, "a test left a budget active"


@pytest.fixture(autouse=True)
def warnings_given_once_are_given_again() -> None:
    shekel.integration.forget_warnings()


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        provider.set_usage(input_tokens=INPUT, output_tokens=OUTPUT)
        yield provider


@pytest.fixture
def llm(fake: FakeProvider) -> OpenAI:
    """A fresh LLM per test: one object must not be shared by two event loops (its pooled
    connections belong to the first)."""
    return OpenAI(model="gpt-4o-mini", api_base=fake.openai_base_url, api_key="test", max_retries=0)


@pytest.fixture
def embed(fake: FakeProvider) -> OpenAIEmbedding:
    return OpenAIEmbedding(
        model="text-embedding-3-small", api_base=fake.openai_base_url, api_key="test", max_retries=0
    )


@pytest.fixture
def index(fake: FakeProvider, embed: OpenAIEmbedding) -> VectorStoreIndex:
    """Three documents indexed with no budget active; the fake's log starts empty after it."""
    built = VectorStoreIndex.from_documents(
        [Document(text=text) for text in DOCUMENTS], embed_model=embed
    )
    assert [r.path for r in fake.requests] == ["/v1/embeddings"]
    fake.reset()
    fake.set_usage(input_tokens=INPUT, output_tokens=OUTPUT)
    return built


def pytest_configure(config: pytest.Config) -> None:
    # LlamaIndex's workflows list the members of pydantic models (agents), which touches
    # attributes pydantic deprecated: not this package's to fix. By category, since
    # ``pytest.warns`` gives the warnings it did not expect again from its own frame.
    config.addinivalue_line(
        "filterwarnings", "ignore::pydantic.warnings.PydanticDeprecationWarning"
    )
