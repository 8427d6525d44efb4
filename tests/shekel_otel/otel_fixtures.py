"""Fixtures: shekel-otel reporting to the real OpenTelemetry SDK; the real openai and anthropic
SDKs against shekel's fake provider (the ``fake_llm`` fixture of shekel's pytest plugin).

Global providers can be set once per process: tests of the zero-config path run in a
subprocess of their own, and the tests here wire providers with ``shekel_otel.instrument``.

Test modules import these fixtures (``*_fixture``, each registered under its short name).
This folder has no ``conftest.py``: pytest keeps
the last conftest it imports as the module ``conftest``, and tests of another folder that
read types from ``conftest`` at run time would find this one instead of theirs.
"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest
from otel_support import Telemetry

import shekel_otel
from shekel import current_budget
from shekel.testing import FakeProvider


@pytest.fixture(name="telemetry")
def telemetry_fixture() -> Iterator[Telemetry]:
    """An SDK meter provider and tracer provider, wired with ``instrument()``; undone after."""
    found = Telemetry.create()
    shekel_otel.instrument(
        meter_provider=found.meter_provider, tracer_provider=found.tracer_provider
    )
    try:
        yield found
    finally:
        shekel_otel.uninstrument()
        found.shutdown()
        assert current_budget() is None


@pytest.fixture(name="oai")
def oai_fixture(fake_llm: FakeProvider) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)
    yield client
    client.close()


@pytest.fixture(name="aoai")
def aoai_fixture(fake_llm: FakeProvider) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)


@pytest.fixture(name="claude")
def claude_fixture(fake_llm: FakeProvider) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(
        base_url=fake_llm.anthropic_base_url, api_key="test", max_retries=0
    )
    yield client
    client.close()


@pytest.fixture(name="aclaude")
def aclaude_fixture(fake_llm: FakeProvider) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=fake_llm.anthropic_base_url, api_key="test", max_retries=0
    )
