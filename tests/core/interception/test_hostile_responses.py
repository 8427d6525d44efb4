"""Usage figures a server should not send are never silently $0: token counts written as
``1000.0`` are counted, anything else that is not a whole number >= 0 makes the usage unusable
(recorded as an estimate with a warning; a strict budget raises after recording). A gateway's
own nested ``usage`` object never decides the charge."""

from __future__ import annotations

import warnings
from typing import Any

import anthropic
import openai
import pytest
from wire import (
    USER,
    anthropic_client,
    chat_chunk,
    chat_completion,
    http_library,
    json_handler,
    message_events,
    openai_client,
    sse_handler,
)

from shekel import UsageMissingError, budget

GPT4O_1000_1000 = 1000 * 2.5e-6 + 1000 * 10e-6  # $0.0125


def _call_openai(data: object, *, strict: bool = False) -> tuple[Any, list[str], type | None]:
    client = openai_client(json_handler(http_library(openai), data), max_retries=2)
    b = budget(max_usd=1, strict=strict)
    error: type | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with b:
                client.chat.completions.create(model="gpt-4o", messages=USER, max_tokens=100)
        except Exception as exc:
            error = type(exc)
    return b, [type(w.message).__name__ for w in caught], error


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": 1000.0, "completion_tokens": 1000.0},
        {"prompt_tokens": 1e3, "completion_tokens": 1000},
    ],
    ids=["floats", "exponent"],
)
def test_whole_numbers_written_as_floats_are_counted(usage: dict[str, object]) -> None:
    b, warned, error = _call_openai(chat_completion(usage), strict=True)
    assert (error, warned) == (None, [])
    assert b.spent == pytest.approx(GPT4O_1000_1000, abs=1e-12)
    assert b.history().calls[0].estimated is False


def test_counts_beyond_the_quick_test_are_counted_exactly() -> None:
    # 2**49 and more are still token counts: the slower test takes them (and prices them).
    client = openai_client(
        json_handler(
            http_library(openai),
            chat_completion({"prompt_tokens": 2**49 + 1, "completion_tokens": 3}),
        )
    )
    with budget() as b:
        client.chat.completions.create(model="gpt-4o", messages=USER, max_tokens=100)
    call = b.history().calls[0]
    assert (call.input_tokens, call.output_tokens, call.estimated) == (2**49 + 1, 3, False)
    assert call.cost == (2**49 + 1) * 2_500 + 3 * 10_000  # nano-dollars (gpt-4o: 2.5 and 10 $/M)


HOSTILE = {
    "negative": {"prompt_tokens": -1000, "completion_tokens": -1000},
    "strings": {"prompt_tokens": "1000", "completion_tokens": "1000"},
    "fractions": {"prompt_tokens": 10.5, "completion_tokens": 3},
    "boolean": {"prompt_tokens": True, "completion_tokens": 3},
    "beyond any count": {"prompt_tokens": 10**15, "completion_tokens": 3},
    "cached more than prompt": {
        "prompt_tokens": "x",
        "completion_tokens": 1,
        "prompt_tokens_details": {"cached_tokens": -5},
    },
}


@pytest.mark.parametrize("usage", HOSTILE.values(), ids=HOSTILE.keys())
def test_malformed_counts_are_an_estimate_with_a_warning(usage: dict[str, object]) -> None:
    b, warned, error = _call_openai(chat_completion(usage))
    assert error is None
    assert warned == ["UsageMissingWarning"]
    call = b.history().calls[0]
    assert call.estimated is True
    assert call.input_tokens > 0
    assert b.spent > 0


@pytest.mark.parametrize("usage", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_strict_budget_raises_on_malformed_counts(usage: dict[str, object]) -> None:
    b, warned, error = _call_openai(chat_completion(usage), strict=True)
    assert error is not None
    assert issubclass(error, UsageMissingError)
    assert warned == []  # raised instead of warned
    assert b.spent > 0  # recorded first


def test_a_later_nested_usage_object_does_not_decide_the_charge() -> None:
    data = chat_completion(
        {"prompt_tokens": 1000, "completion_tokens": 1000},
        x_gateway={"usage": {"prompt_tokens": 0, "completion_tokens": 0}, "model": "free"},
    )
    b, warned, error = _call_openai(data)
    assert (error, warned) == (None, [])
    assert b.spent == pytest.approx(GPT4O_1000_1000, abs=1e-12)


def test_malformed_streamed_usage_is_an_estimate() -> None:
    usage = {"prompt_tokens": -100, "completion_tokens": 2.5}
    parts = [chat_chunk("hi"), chat_chunk(usage=usage) + b"data: [DONE]\n\n"]
    client = openai_client(sse_handler(http_library(openai), parts))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with budget(max_usd=1) as b:
            for _ in client.chat.completions.create(model="gpt-4o", messages=USER, stream=True):
                pass
    assert [type(w.message).__name__ for w in caught] == ["UsageMissingWarning"]
    assert b.history().calls[0].estimated is True
    assert b.spent > 0


@pytest.mark.parametrize("counts", [(-1000, -1000), (1000.5, 10), ("1000", 10)])
def test_malformed_anthropic_usage_is_an_estimate(counts: tuple[object, object]) -> None:
    parts = message_events(*counts)
    client = anthropic_client(sse_handler(http_library(anthropic), parts))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with (
            budget(max_usd=1) as b,
            client.messages.stream(
                model="claude-haiku-4-5", max_tokens=100, messages=USER
            ) as stream,
        ):
            stream.until_done()
    assert "UsageMissingWarning" in [type(w.message).__name__ for w in caught]
    assert b.history().calls[0].estimated is True
    assert b.spent > 0


@pytest.mark.parametrize("counts", [(-1000, 10), (10**15, 10), (10, True), (10, "10")])
def test_malformed_counts_of_an_anthropic_message_are_an_estimate(
    counts: tuple[object, object],
) -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5-20251001",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": counts[0], "output_tokens": counts[1]},
    }
    client = anthropic_client(json_handler(http_library(anthropic), message))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with budget(max_usd=1) as b:
            client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=USER)
    assert "UsageMissingWarning" in [type(w.message).__name__ for w in caught]
    assert b.history().calls[0].estimated is True
    assert b.spent > 0


def test_anthropic_counts_written_as_floats_are_counted() -> None:
    client = anthropic_client(sse_handler(http_library(anthropic), message_events(100.0, 200.0)))
    with (
        budget(max_usd=1) as b,
        client.messages.stream(model="claude-haiku-4-5", max_tokens=500, messages=USER) as stream,
    ):
        stream.until_done()
    assert b.spent == pytest.approx(100 * 1e-6 + 200 * 5e-6, abs=1e-12)
    assert b.history().calls[0].estimated is False


def test_the_sdk_and_later_readers_each_get_the_whole_body() -> None:
    """shekel decodes a JSON body once and hands that to the SDK; anyone reading the raw
    response afterwards still gets a fresh, complete decode."""
    data = chat_completion({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
    client = openai_client(json_handler(http_library(openai), data))
    with budget(max_usd=1) as b:
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER)
        completion = raw.parse()
        first = raw.http_response.json()
        first["usage"] = None
        again = raw.http_response.json()
    assert completion.usage is not None
    assert completion.usage.total_tokens == 15
    assert again == data
    assert b.spent == pytest.approx(10 * 2.5e-6 + 5 * 10e-6)
