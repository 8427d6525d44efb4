"""Errors and faults the fake provider injects, as the real APIs send them."""

from __future__ import annotations

import itertools
import time

import anthropic
import httpx
import openai
import pytest
from fake_support import CHAT, body_cut_off, needs_models, needs_responses

from shekel.testing import FakeProvider, Reply


@needs_responses
def test_rate_limit_and_server_errors_openai(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(Reply.error(429, retry_after=1.5), Reply.error(500, message="boom"))
    with pytest.raises(openai.RateLimitError) as limited:
        oai.chat.completions.create(model="m", messages=CHAT)
    assert limited.value.status_code == 429
    assert limited.value.response.headers["retry-after"] == "1.5"
    assert limited.value.response.headers["retry-after-ms"] == "1500"
    assert limited.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError) as failed:
        oai.responses.create(model="m", input="q")
    assert failed.value.status_code == 500
    assert isinstance(failed.value.body, dict)
    assert failed.value.body["message"] == "boom"
    assert failed.value.type == "server_error"


def test_rate_limit_and_server_errors_anthropic(
    fake_llm: FakeProvider, claude: anthropic.Anthropic
) -> None:
    fake_llm.enqueue(Reply.error(429, retry_after=2), Reply.error(500))
    with pytest.raises(anthropic.RateLimitError) as limited:
        claude.messages.create(model="c", max_tokens=5, messages=CHAT)
    assert limited.value.response.headers["retry-after"] == "2"
    assert limited.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Fake provider error 429."},
    }
    with (
        pytest.raises(anthropic.InternalServerError) as failed,
        claude.messages.stream(model="c", max_tokens=5, messages=CHAT) as stream,
    ):
        list(stream.text_stream)
    assert failed.value.status_code == 500
    assert isinstance(failed.value.body, dict)
    assert failed.value.body["error"]["type"] == "api_error"


@needs_models
def test_unknown_paths_get_404_in_each_shape(
    fake_llm: FakeProvider, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    with pytest.raises(openai.NotFoundError) as missing_openai:
        oai.models.list()
    assert missing_openai.value.type == "invalid_request_error"
    with pytest.raises(anthropic.NotFoundError) as missing_anthropic:
        claude.models.list()
    assert isinstance(missing_anthropic.value.body, dict)
    assert missing_anthropic.value.body["error"]["type"] == "not_found_error"
    assert [r.method for r in fake_llm.requests] == ["GET", "GET"]


def test_invalid_json_is_a_400(fake_llm: FakeProvider) -> None:
    with httpx.Client(base_url=fake_llm.url) as client:
        response = client.post("/v1/chat/completions", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_drop_mid_stream_openai(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(Reply(text="a b c d e f", drop_after_chunks=2))
    received: list[str] = []

    def consume() -> None:
        for chunk in oai.chat.completions.create(model="m", messages=CHAT, stream=True):
            received.append(chunk.choices[0].delta.content or "")

    with pytest.raises(Exception) as dropped:
        consume()
    assert body_cut_off(dropped.value)
    assert "".join(received) == "a b "
    # the pooled client recovers on a fresh connection
    assert oai.chat.completions.create(model="m", messages=CHAT).choices[0].message.content


def test_drop_mid_stream_anthropic_and_non_stream(
    fake_llm: FakeProvider, claude: anthropic.Anthropic
) -> None:
    fake_llm.enqueue(Reply(text="x y z", drop_after_chunks=1), Reply(drop_after_chunks=0))
    received: list[str] = []
    with (
        pytest.raises(Exception) as dropped,
        claude.messages.stream(model="c", max_tokens=50, messages=CHAT) as stream,
    ):
        received.extend(stream.text_stream)
    assert body_cut_off(dropped.value)
    assert received == ["x "]
    with pytest.raises(anthropic.APIConnectionError):
        claude.messages.create(model="c", max_tokens=50, messages=CHAT)


def test_latency_and_chunk_delay_are_observable(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(Reply(latency=0.15), Reply(text="p q r s", chunk_delay=0.04))
    started = time.monotonic()
    oai.chat.completions.create(model="m", messages=CHAT)
    assert time.monotonic() - started >= 0.15
    arrivals = []
    for chunk in oai.chat.completions.create(model="m", messages=CHAT, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic())
    assert len(arrivals) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.03
