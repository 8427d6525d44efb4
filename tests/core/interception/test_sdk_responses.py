"""The Responses API at the SDK layer: a response's usage read from the SDK's object, and a
stream's from its final event (what every kind of stream guarantees is in
``test_sdk_stream_kinds.py``), on both openai generations."""

from __future__ import annotations

import openai
import pytest
from sdk_figures import gpt4o_mini
from wire import http_library, json_handler, openai_client

from shekel import budget
from shekel.testing import FakeProvider, Reply

DETAILED = Reply(
    text="plain", input_tokens=1000, output_tokens=50, cached_input_tokens=600, reasoning_tokens=20
)


def test_a_response_records_its_cached_and_reasoning_tokens(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    fake.enqueue(DETAILED)
    with budget(max_usd=1.0) as b:
        response = oai.responses.create(model="gpt-4o-mini", input="hi")
    (call,) = b.history().calls
    assert (call.input_tokens, call.output_tokens) == (1000, 50)
    assert (call.cache_read_tokens, call.reasoning_tokens) == (600, 20)
    assert call.estimated is False
    assert call.call_id == response.id
    assert b.spent == pytest.approx(gpt4o_mini(1000, 50, cached=600), abs=1e-12)


def test_a_stream_records_the_usage_id_and_model_of_its_final_event(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    fake.enqueue(DETAILED)
    with budget(max_usd=1.0) as b:
        events = list(oai.responses.create(model="gpt-4o-mini", input="hi", stream=True))
    final = events[-1]
    assert final.type == "response.completed"
    (call,) = b.history().calls
    assert (call.input_tokens, call.output_tokens) == (1000, 50)
    assert (call.cache_read_tokens, call.reasoning_tokens) == (600, 20)
    assert call.estimated is False
    assert call.call_id == final.response.id
    assert call.response_model == final.response.model


def test_counts_written_as_floats_are_read_by_their_responses_names() -> None:
    """The one-step recorder takes plain ints only; the full path reads the Responses API's
    own field names (``input_tokens``...), not the chat completion's, and counts ``1000.0``."""
    response = {
        "id": "resp_floats",
        "object": "response",
        "created_at": 1,
        "status": "completed",
        "model": "gpt-4o",
        "output": [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 1000.0,
            "input_tokens_details": {"cached_tokens": 200.0},
            "output_tokens": 1000.0,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 2000.0,
        },
    }
    client = openai_client(json_handler(http_library(openai), response))
    with budget(max_usd=1.0) as b:
        client.responses.create(model="gpt-4o", input="hi")
    (call,) = b.history().calls
    assert (call.input_tokens, call.output_tokens, call.cache_read_tokens) == (1000, 1000, 200)
    assert call.estimated is False
    assert call.call_id == "resp_floats"
