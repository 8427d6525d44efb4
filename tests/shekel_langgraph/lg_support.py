"""What the LangGraph tests share besides fixtures: the fake provider's figures, the graphs'
state, and the request log read by node (every generation request carries a ``node=<name>``
tag in its prompt)."""

from __future__ import annotations

import operator
from collections import Counter
from typing import Annotated, Any, TypedDict

from langchain_openai import ChatOpenAI

from shekel.testing import FakeProvider

INPUT_TOKENS = 10_000
OUTPUT_TOKENS = 2_000
GPT4O = (2.50, 10.00)  # USD per 1M input / output tokens (the bundled price table's)
CALL = (GPT4O[0] * INPUT_TOKENS + GPT4O[1] * OUTPUT_TOKENS) / 1_000_000
"""What one gpt-4o call of the fake provider costs here: $0.045."""


class State(TypedDict, total=False):
    topic: str
    notes: Annotated[list[str], operator.add]
    rounds: int


def chat(fake: FakeProvider) -> ChatOpenAI:
    return ChatOpenAI(model="gpt-4o", base_url=fake.openai_base_url, api_key="test", max_retries=2)


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
