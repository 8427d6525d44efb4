"""Requests the real APIs refuse, refused by the fake provider the same way."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from fake_support import CHAT, needs_responses, needs_thinking, post_raw

from shekel.testing import FakeProvider, Reply


def openai_error(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    return error


def test_chat_limit_above_model_maximum_is_refused_like_openai(
    fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    fake_llm.enqueue(Reply(text="kept for the next valid request", ignore_max_tokens=True))
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(model="gpt-4o-mini", messages=CHAT, max_tokens=499995)
    assert refused.value.status_code == 400
    assert openai_error(refused.value) == {
        "message": "max_tokens is too large: 499995. This model supports at most 16384 "
        "completion tokens, whereas you provided 499995.",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "invalid_value",
    }
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(
            model="gpt-4o-2024-08-06", messages=CHAT, max_completion_tokens=16385, stream=True
        )
    error = openai_error(refused.value)
    assert error["param"] == "max_completion_tokens"
    assert error["message"].startswith("max_completion_tokens is too large: 16385. ")
    # refused requests are recorded but take no scripted reply
    assert len(fake_llm.requests) == 2
    assert fake_llm.pending == 1
    at_limit = oai.chat.completions.create(model="gpt-4o-mini", messages=CHAT, max_tokens=16384)
    assert at_limit.choices[0].message.content == "kept for the next valid request"
    # the table has no output maximum for this model, so the fake cannot refuse any limit
    unknown = oai.chat.completions.create(model="my-local-llm", messages=CHAT, max_tokens=10**7)
    assert unknown.choices[0].finish_reason == "stop"


def test_chat_limit_combination_type_and_minimum_are_checked(
    fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as both:
        oai.chat.completions.create(
            model="m", messages=CHAT, max_tokens=10, max_completion_tokens=10
        )
    assert openai_error(both.value) == {
        "message": "Setting 'max_tokens' and 'max_completion_tokens' at the same time is not "
        "supported.",
        "type": "invalid_request_error",
        "param": "max_tokens",
        "code": "invalid_parameter_combination",
    }
    with pytest.raises(openai.BadRequestError) as zero:
        oai.chat.completions.create(model="m", messages=CHAT, max_completion_tokens=0)
    assert openai_error(zero.value)["message"] == (
        "Invalid 'max_completion_tokens': integer below minimum value. "
        "Expected a value >= 1, but got 0 instead."
    )
    assert openai_error(zero.value)["code"] == "integer_below_min_value"
    text = post_raw(fake_llm, "/v1/chat/completions", {"messages": CHAT, "max_tokens": "64"})
    assert text.status_code == 400
    assert text.json()["error"]["code"] == "invalid_type"
    assert text.json()["error"]["message"] == (
        "Invalid type for 'max_tokens': expected an integer, but got a string instead."
    )
    # null means "no limit", as in the real API
    assert post_raw(fake_llm, "/v1/chat/completions", {"max_tokens": None}).status_code == 200


def test_chat_stream_options_need_a_stream(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(
            model="m", messages=CHAT, stream_options={"include_usage": True}
        )
    assert openai_error(refused.value)["param"] == "stream_options"
    assert openai_error(refused.value)["message"] == (
        "The 'stream_options' parameter is only allowed when 'stream' is enabled."
    )
    body = {"model": "m", "stream": False, "stream_options": None}
    assert post_raw(fake_llm, "/v1/chat/completions", body).status_code == 200


@needs_responses
def test_responses_limit_outside_range_is_refused(
    fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as low:
        oai.responses.create(model="gpt-4o", input="q", max_output_tokens=15)
    assert openai_error(low.value) == {
        "message": "Invalid 'max_output_tokens': integer below minimum value. "
        "Expected a value >= 16, but got 15 instead.",
        "type": "invalid_request_error",
        "param": "max_output_tokens",
        "code": "integer_below_min_value",
    }
    with pytest.raises(openai.BadRequestError) as high:
        oai.responses.create(model="gpt-4.1-mini", input="q", max_output_tokens=40000, stream=True)
    assert openai_error(high.value) == {
        "message": "Invalid 'max_output_tokens': integer above maximum value. "
        "Expected a value <= 32768, but got 40000 instead.",
        "type": "invalid_request_error",
        "param": "max_output_tokens",
        "code": "integer_above_max_value",
    }
    assert oai.responses.create(model="gpt-4.1-mini", input="q", max_output_tokens=16).usage
    assert oai.responses.create(model="gpt-4.1-mini", input="q", max_output_tokens=32768).usage


def test_messages_limit_above_model_maximum_is_refused_like_anthropic(
    fake_llm: FakeProvider, claude: anthropic.Anthropic
) -> None:
    model = "claude-haiku-4-5-20251001"
    fake_llm.enqueue(Reply(text="still queued"))
    with pytest.raises(anthropic.BadRequestError) as refused:
        # an explicit timeout turns off the SDK's own "use streaming for long requests" check
        claude.messages.create(model=model, max_tokens=100000, messages=CHAT, timeout=30)
    assert refused.value.status_code == 400
    assert refused.value.response.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "max_tokens: 100000 > 64000, which is the maximum allowed number of "
            "output tokens for claude-haiku-4-5-20251001",
        },
    }
    with (
        pytest.raises(anthropic.BadRequestError) as streamed,
        claude.messages.stream(model="claude-opus-4-1-20250805", max_tokens=32001, messages=CHAT),
    ):
        pass
    assert "max_tokens: 32001 > 32000, which" in str(streamed.value)
    assert fake_llm.pending == 1
    message = claude.messages.create(model=model, max_tokens=64000, messages=CHAT, timeout=30)
    assert message.content[0].type == "text"
    assert message.content[0].text == "still queued"
    unknown = claude.messages.create(model="local", max_tokens=10**7, messages=CHAT, timeout=30)
    assert unknown.stop_reason == "end_turn"


def test_messages_need_a_positive_integer_max_tokens(fake_llm: FakeProvider) -> None:
    expected = {
        "max_tokens: Field required": {"model": "c", "messages": CHAT},
        "max_tokens: Input should be greater than or equal to 1": {
            "model": "c",
            "messages": CHAT,
            "max_tokens": 0,
        },
        "max_tokens: Input should be a valid integer": {
            "model": "c",
            "messages": CHAT,
            "max_tokens": None,
            "stream": True,
        },
    }
    for message, body in expected.items():
        response = post_raw(fake_llm, "/v1/messages", body)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"] == {"type": "invalid_request_error", "message": message}
    # counting tokens takes no max_tokens
    count = post_raw(fake_llm, "/v1/messages/count_tokens", {"model": "c", "messages": CHAT})
    assert count.status_code == 200


@needs_thinking
def test_messages_max_tokens_must_leave_room_above_the_thinking_budget(
    fake_llm: FakeProvider, claude: anthropic.Anthropic
) -> None:
    def think(max_tokens: int, budget: int) -> anthropic.types.Message:
        return claude.messages.create(
            model="claude-haiku-4-5",
            max_tokens=max_tokens,
            messages=CHAT,
            thinking={"type": "enabled", "budget_tokens": budget},
        )

    with pytest.raises(anthropic.BadRequestError) as tight:
        think(2000, 2000)
    assert tight.value.response.json()["error"] == {
        "type": "invalid_request_error",
        "message": "`max_tokens` must be greater than `thinking.budget_tokens`.",
    }
    with pytest.raises(anthropic.BadRequestError) as small:
        think(5000, 1023)
    assert "budget_tokens: Input should be greater than or equal to 1024" in str(small.value)
    assert think(2001, 2000).stop_reason == "end_turn"
    disabled = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=10, messages=CHAT, thinking={"type": "disabled"}
    )
    assert disabled.stop_reason == "end_turn"


@needs_responses
def test_reply_reports_another_model(
    fake_llm: FakeProvider, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    snapshot = "gpt-4o-mini-2024-07-18"
    fake_llm.enqueue(*(Reply(model=snapshot) for _ in range(4)))
    assert oai.chat.completions.create(model="gpt-4o-mini", messages=CHAT).model == snapshot
    chunks = list(oai.chat.completions.create(model="gpt-4o-mini", messages=CHAT, stream=True))
    assert {chunk.model for chunk in chunks} == {snapshot}
    assert oai.responses.create(model="gpt-4o-mini", input="q").model == snapshot
    assert oai.embeddings.create(model="e", input="x").model == snapshot
    fake_llm.enqueue(Reply(model="claude-haiku-4-5-20251001"))
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=9, messages=CHAT) as stream:
        assert stream.get_final_message().model == "claude-haiku-4-5-20251001"
    # the limit is checked against the model asked for, not the one reported
    fake_llm.enqueue(Reply(model="gpt-5"))
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="gpt-4o", messages=CHAT, max_tokens=20000)
    assert oai.chat.completions.create(model="gpt-4o", messages=CHAT).model == "gpt-5"
