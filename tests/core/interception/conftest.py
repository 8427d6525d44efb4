"""Real openai and anthropic SDK clients pointed at the fake provider."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest

from shekel.testing import FakeProvider


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@pytest.fixture
def oai(fake: FakeProvider) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=2)
    yield client
    client.close()


@pytest.fixture
def aoai(fake: FakeProvider) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=2)


@pytest.fixture
def claude(fake: FakeProvider) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=2)
    yield client
    client.close()


@pytest.fixture
def aclaude(fake: FakeProvider) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake.anthropic_base_url, api_key="test", max_retries=2)
