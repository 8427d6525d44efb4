"""The real openai-agents, over the real openai SDK, against shekel's fake provider (Responses
and Chat Completions); tracing on, with no exporter (nothing leaves the machine), and a
processor tests read; no budget left active; warnings given once are given again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from agents import set_trace_processors, set_tracing_disabled
from oa_support import IN, OUT, SpanLog

import shekel.integration
from shekel import current_budget
from shekel.testing import FakeProvider

SPANS = SpanLog()
set_trace_processors([SPANS])  # instead of the exporter to OpenAI's servers
set_tracing_disabled(False)


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
        provider.set_usage(input_tokens=IN, output_tokens=OUT)
        yield provider


@pytest.fixture
def spans() -> SpanLog:
    """The spans and traces of this test (registered again: the example sets its own)."""
    set_trace_processors([SPANS])
    SPANS.clear()
    return SPANS
