"""The fake provider's lifecycle and scripting: start, stop, enqueue, reset."""

from __future__ import annotations

import socket
import time
from typing import Any

import anthropic
import openai
import pytest
from fake_support import CHAT, needs_responses

from shekel.testing import DEFAULT_TEXT, FakeProvider, Fault, Reply


def test_fixture_gives_running_provider_on_loopback(fake_llm: FakeProvider) -> None:
    assert fake_llm.url == f"http://127.0.0.1:{fake_llm.port}"
    assert fake_llm.port > 0
    assert fake_llm.openai_base_url == fake_llm.url + "/v1"
    assert fake_llm.anthropic_base_url == fake_llm.url
    with socket.create_connection(("127.0.0.1", fake_llm.port), timeout=2):
        pass
    assert fake_llm.running


def test_stop_closes_listener_and_idle_keepalive_connections() -> None:
    fake = FakeProvider()
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
    client.chat.completions.create(model="m", messages=CHAT)  # leaves a pooled connection
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 1.5
    fake.stop()  # idempotent
    assert not fake.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", fake.port), timeout=1).close()
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=CHAT)
    client.close()


def test_requests_are_recorded_with_path_body_and_headers(
    fake_llm: FakeProvider, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    oai.chat.completions.create(model="gpt-x", messages=CHAT, temperature=0.5)
    claude.messages.create(model="claude-x", max_tokens=10, messages=CHAT)
    first, second = fake_llm.requests
    assert first.path == "/v1/chat/completions"
    assert first.method == "POST"
    assert first.body["model"] == "gpt-x"
    assert first.body["temperature"] == 0.5
    assert first.headers["authorization"] == "Bearer test"
    assert second.path == "/v1/messages"
    assert second.headers["user-agent"].startswith("Anthropic/")
    assert "anthropic-version" in second.headers


def test_queue_is_fifo_then_default_and_reset_clears(
    fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    fake_llm.enqueue(Reply(text="first"), Reply(text="second"))
    assert fake_llm.pending == 2
    texts = [
        oai.chat.completions.create(model="m", messages=CHAT).choices[0].message.content
        for _ in range(3)
    ]
    assert texts == ["first", "second", DEFAULT_TEXT]
    assert fake_llm.pending == 0
    fake_llm.enqueue(Reply(text="never served"))
    fake_llm.set_usage(input_tokens=99, output_tokens=9)
    fake_llm.reset()
    assert fake_llm.requests == []
    assert fake_llm.pending == 0
    usage = oai.chat.completions.create(model="m", messages=CHAT).usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (12, 3)


def test_set_usage_and_word_count_defaults(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.set_usage(input_tokens=40, output_tokens=7)
    fake_llm.enqueue(Reply(), Reply(text="five words are in here"), Reply(text="x", input_tokens=1))
    usages = []
    for _ in range(3):
        usage = oai.chat.completions.create(model="m", messages=CHAT).usage
        assert usage is not None
        usages.append((usage.prompt_tokens, usage.completion_tokens, usage.total_tokens))
    assert usages == [(40, 7, 47), (40, 5, 45), (1, 1, 2)]


@needs_responses
def test_echo_mode_repeats_last_user_message() -> None:
    with FakeProvider(echo=True) as fake:
        oai = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)
        claude = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="t", max_retries=0)
        messages: Any = [
            {"role": "user", "content": "older"},
            {"role": "assistant", "content": "reply"},
            {"role": "user", "content": [{"type": "text", "text": "echo me please"}]},
        ]
        chat = oai.chat.completions.create(model="m", messages=messages)
        assert chat.choices[0].message.content == "echo me please"
        assert oai.responses.create(model="m", input="ping back").output_text == "ping back"
        message = claude.messages.create(model="c", max_tokens=50, messages=messages)
        assert message.content[0].type == "text"
        assert message.content[0].text == "echo me please"
        fake.enqueue(Reply(text="scripted wins"))
        chat = oai.chat.completions.create(model="m", messages=messages)
        assert chat.choices[0].message.content == "scripted wins"
        oai.close()
        claude.close()


def test_reply_and_fault_validation() -> None:
    with pytest.raises(ValueError, match="output_tokens"):
        Reply(output_tokens=-1)
    with pytest.raises(ValueError, match="4xx or 5xx"):
        Reply.error(200)
    assert Reply.error(429, retry_after=2.0).fault == Fault(429, retry_after=2.0)
    with FakeProvider() as fake, pytest.raises(TypeError):
        fake.enqueue("not a reply")  # type: ignore[arg-type]
