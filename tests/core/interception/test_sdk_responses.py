"""The Responses API at the SDK layer: a response's usage read from the SDK's object, and a
stream's from its final event (what every kind of stream guarantees is in
``test_sdk_stream_kinds.py``), on both openai generations."""

from __future__ import annotations

import openai
import pytest
from sdk_figures import gpt4o_mini

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
