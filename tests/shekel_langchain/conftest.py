"""Real LangChain models and the real SDKs against shekel's fake provider.

The fake runs in echo mode: every answer repeats the request's last user message, so a test
sends a distinct prompt per call and then knows, from the answer's id and shekel's record of
that id, which budget paid for which request the fake received.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI
from lc_support import CLAUDE, GPT

from shekel import current_budget
from shekel.integration import forget_warnings
from shekel.testing import FakeProvider
from shekel_langchain._runs import RUNS


@pytest.fixture(autouse=True)
def _nothing_left_behind() -> Iterator[None]:
    """Every test gets the warnings given once per process; after it, no budget is active in
    its context and no run is still followed."""
    RUNS.clear()
    forget_warnings()
    yield
    assert current_budget() is None
    assert not RUNS, f"runs still followed after the test: {list(RUNS.values())}"


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider(echo=True) as provider:
        yield provider


@pytest.fixture
def gpt(fake: FakeProvider) -> Callable[..., ChatOpenAI]:
    """A ChatOpenAI on the fake provider (make one per event loop)."""

    def make(**options: Any) -> ChatOpenAI:
        return ChatOpenAI(
            model=GPT, base_url=fake.openai_base_url, api_key="test", max_retries=2, **options
        )

    return make


@pytest.fixture
def claude(fake: FakeProvider) -> Callable[..., ChatAnthropic]:
    def make(**options: Any) -> ChatAnthropic:
        return ChatAnthropic(
            model_name=CLAUDE,
            base_url=fake.anthropic_base_url,
            api_key="test",  # type: ignore[arg-type]
            max_retries=2,
            timeout=None,
            stop=None,
            **options,
        )

    return make
