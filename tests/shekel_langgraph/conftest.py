"""Real LangGraph graphs calling real ``langchain-openai`` models and the real openai SDK over HTTP,
against shekel's fake provider.

Every generation request carries a ``node=<name>`` tag in its prompt, so that what each node
spent can be checked against the fake provider's own request log (:func:`log_spend`).
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import openai
import pytest
from langchain_openai import ChatOpenAI

from shekel import current_budget
from shekel.testing import FakeProvider
from shekel_langgraph._node import INTEGRATION

INPUT_TOKENS = 10_000
OUTPUT_TOKENS = 2_000
GPT4O = (2.50, 10.00)  # USD per 1M input / output tokens (the bundled price table's)
CALL = (GPT4O[0] * INPUT_TOKENS + GPT4O[1] * OUTPUT_TOKENS) / 1_000_000
"""What one gpt-4o call of the fake provider costs here: $0.045."""


class State(TypedDict, total=False):
    topic: str
    notes: Annotated[list[str], operator.add]
    rounds: int


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


def chat(fake: FakeProvider) -> ChatOpenAI:
    return ChatOpenAI(model="gpt-4o", base_url=fake.openai_base_url, api_key="test", max_retries=2)


@pytest.fixture
def oai(fake: FakeProvider) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=2)
    yield client
    client.close()


def ask(node: str, extra: str = "") -> str:
    """The prompt a node sends: tagged with the node, for :func:`log_counts`."""
    return f"node={node} {extra}".strip()


def log_counts(fake: FakeProvider) -> Counter[str]:
    """Generation requests the fake provider received, by the node that sent them."""
    counts: Counter[str] = Counter()
    for request in fake.requests:
        messages: list[dict[str, Any]] = request.body.get("messages", [])
        text = " ".join(str(m.get("content", "")) for m in messages)
        tag = next((word[5:] for word in text.split() if word.startswith("node=")), "?")
        counts[tag] += 1
    return counts


def log_spend(fake: FakeProvider, node: str) -> float:
    """What ``node`` cost, per the fake provider's request log (every call costs :data:`CALL`)."""
    return log_counts(fake)[node] * CALL


@pytest.fixture(autouse=True)
def no_budget_left() -> Iterator[None]:
    """Every test ends with no budget active in the test's own context, and with the
    integration as a new process has it (its once-per-process warnings not given yet)."""
    assert current_budget() is None
    yield
    INTEGRATION.uninstall()
    assert current_budget() is None, "a budget was left active"
