"""Real LangGraph graphs calling real ``langchain-openai`` models and the real openai SDK over HTTP,
against shekel's fake provider.

Every generation request carries a ``node=<name>`` tag in its prompt, so that what each node
spent can be checked against the fake provider's own request log (:func:`log_spend`).
"""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from langchain_openai import ChatOpenAI
from lg_support import INPUT_TOKENS, OUTPUT_TOKENS, chat

from shekel import current_budget
from shekel.testing import FakeProvider
from shekel_langgraph._node import INTEGRATION


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        provider.set_usage(input_tokens=INPUT_TOKENS, output_tokens=OUTPUT_TOKENS)
        yield provider


@pytest.fixture
def model(fake: FakeProvider) -> ChatOpenAI:
    """A LangChain chat model on the fake provider. Async tests make their own per event loop
    (an httpx client does not survive its loop)."""
    return chat(fake)


@pytest.fixture
def oai(fake: FakeProvider) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=2)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def no_budget_left() -> Iterator[None]:
    """Every test ends with no budget active in the test's own context, and with the
    integration as a new process has it (its once-per-process warnings not given yet)."""
    assert current_budget() is None
    yield
    INTEGRATION.uninstall()
    assert current_budget() is None, "a budget was left active"
