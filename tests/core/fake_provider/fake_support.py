"""Helpers shared by the tests of the fake provider (shekel.testing) in this folder."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from shekel.testing import FakeProvider

SRC = Path(__file__).resolve().parents[3] / "packages" / "shekel" / "src"


CHAT: Any = [{"role": "user", "content": "Say something."}]


@pytest.fixture
def oai(fake_llm: FakeProvider) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="test", max_retries=0)
    yield client
    client.close()


@pytest.fixture
def claude(fake_llm: FakeProvider) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(
        base_url=fake_llm.anthropic_base_url, api_key="test", max_retries=0
    )
    yield client
    client.close()


def sse_events(raw: str) -> list[tuple[str | None, str]]:
    """(event name, data) pairs of an SSE body, checking the blank-line framing."""
    assert raw.endswith("\n\n")
    events = []
    for block in raw[:-2].split("\n\n"):
        name = None
        data = []
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            else:
                assert field == "data", line
                data.append(value)
        events.append((name, "\n".join(data)))
    return events


def post_raw(fake: FakeProvider, path: str, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(base_url=fake.url) as client:
        return client.post(path, json=body)


needs_responses = pytest.mark.skipif(
    not hasattr(openai.OpenAI, "responses"), reason="this openai has no Responses API"
)


needs_chat_helpers = pytest.mark.skipif(
    not hasattr(openai.resources.chat.Completions, "parse"),
    reason="this openai has chat.completions.parse/stream only under client.beta",
)


needs_count_tokens = pytest.mark.skipif(
    not hasattr(anthropic.resources.Messages, "count_tokens"),
    reason="this anthropic has messages.count_tokens only under client.beta",
)


needs_models = pytest.mark.skipif(
    not hasattr(anthropic.Anthropic, "models"), reason="this anthropic has no models API"
)


needs_thinking = pytest.mark.skipif(
    "thinking" not in inspect.signature(anthropic.resources.Messages.create).parameters,
    reason="this anthropic has no extended thinking",
)


def body_cut_off(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a response body that ended early. openai 2 lets httpx's
    RemoteProtocolError through; openai 3 wraps httpx2's in an APIConnectionError."""
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ == "RemoteProtocolError" and "incomplete" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
