"""The fake provider's OpenAI Responses API through the real openai SDK."""

from __future__ import annotations

import json

import openai
from fake_support import needs_responses, post_raw, sse_events

from shekel.testing import FakeProvider, Reply


@needs_responses
def test_responses_plain(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(
        Reply(
            text="the answer",
            input_tokens=70,
            output_tokens=9,
            cached_input_tokens=30,
            reasoning_tokens=4,
        )
    )
    response = oai.responses.create(model="gpt-r", input="question?")
    assert response.object == "response"
    assert response.model == "gpt-r"
    assert response.status == "completed"
    assert response.output_text == "the answer"
    usage = response.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (70, 9, 79)
    assert usage.input_tokens_details.cached_tokens == 30
    assert usage.output_tokens_details.reasoning_tokens == 4


@needs_responses
def test_responses_truncated_is_incomplete(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(Reply(text="a b c d e f g h", output_tokens=20))
    response = oai.responses.create(model="m", input="q", max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "a b c d e f g h"
    assert response.usage is not None
    assert response.usage.output_tokens == 16


@needs_responses
def test_responses_stream_event_sequence(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(Reply(text="red green blue", input_tokens=11))
    events = list(oai.responses.create(model="m", input="colors", stream=True))
    types = [event.type for event in events]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert deltas == ["red ", "green ", "blue"]
    done = events[-1]
    assert done.type == "response.completed"
    assert done.response.output_text == "red green blue"
    assert done.response.usage is not None
    assert (done.response.usage.input_tokens, done.response.usage.output_tokens) == (11, 3)


def test_responses_stream_wire_layout_and_truncation(fake_llm: FakeProvider) -> None:
    words = [f"w{i}" for i in range(20)]
    fake_llm.enqueue(Reply(text=" ".join(words)))
    body = {"model": "m", "input": "q", "stream": True, "max_output_tokens": 16}
    events = sse_events(post_raw(fake_llm, "/v1/responses", body).text)
    for name, data in events:
        assert json.loads(data)["type"] == name
    assert events[-1][0] == "response.incomplete"
    final = json.loads(events[-1][1])["response"]
    assert final["status"] == "incomplete"
    assert final["usage"]["output_tokens"] == 16
    assert final["output"][0]["content"][0]["text"] == " ".join(words[:16])
    created = json.loads(events[0][1])["response"]
    assert (created["status"], created["usage"]) == ("in_progress", None)
    deltas = [json.loads(data) for name, data in events if name == "response.output_text.delta"]
    assert all(delta["obfuscation"] for delta in deltas)  # OpenAI's padding, on by default
    body["stream_options"] = {"include_obfuscation": False}
    events = sse_events(post_raw(fake_llm, "/v1/responses", body).text)
    assert not any('"obfuscation"' in data for _, data in events)


@needs_responses
def test_responses_stream_helper(fake_llm: FakeProvider, oai: openai.OpenAI) -> None:
    fake_llm.enqueue(Reply(text="helper text here", input_tokens=21, output_tokens=6))
    with oai.responses.stream(model="m", input="q") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas == ["helper ", "text ", "here"]
    assert final.output_text == "helper text here"
    assert final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (21, 6)
