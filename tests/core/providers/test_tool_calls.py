"""The fake provider scripts a reply that asks for a tool, in OpenAI's and Anthropic's
protocols, plain and streamed, as their SDKs read it (the other protocols test theirs in
their own files)."""

from __future__ import annotations

import json

import anthropic
import openai

from shekel import budget
from shekel.testing import FakeProvider, Reply, ToolCall

USER = [{"role": "user", "content": "What is the weather in Oslo?"}]
ASK = Reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"}, id="call_1")], output_tokens=9)


def test_openai_chat(fake: FakeProvider) -> None:
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test")
    fake.enqueue(ASK, ASK)
    with budget(max_usd=1.0) as b:
        plain = client.chat.completions.create(model="gpt-4o-mini", messages=USER)  # type: ignore[arg-type]
        chunks = list(
            client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)  # type: ignore[arg-type]
        )
    choice = plain.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (  # type: ignore[union-attr]
        "call_1",
        "get_weather",
        {"city": "Oslo"},
    )
    deltas = [
        c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls
    ]
    assert deltas[0][0].function.name == "get_weather"  # type: ignore[index,union-attr]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert b.snapshot().llm_calls_used == 2


def test_openai_responses(fake: FakeProvider) -> None:
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test")
    fake.enqueue(ASK)
    with budget(max_usd=1.0):
        response = client.responses.create(model="gpt-4o-mini", input="weather?")
    calls = [item for item in response.output if item.type == "function_call"]
    assert [(c.name, json.loads(c.arguments), c.call_id) for c in calls] == [  # type: ignore[union-attr]
        ("get_weather", {"city": "Oslo"}, "call_1")
    ]


def test_anthropic_messages(fake: FakeProvider) -> None:
    client = anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="test")
    fake.enqueue(ASK, ASK)
    model = "claude-3-haiku-20240307"
    with budget(max_usd=1.0) as b:
        plain = client.messages.create(model=model, max_tokens=100, messages=USER)  # type: ignore[arg-type]
        with client.messages.stream(model=model, max_tokens=100, messages=USER) as stream:  # type: ignore[arg-type]
            final = stream.get_final_message()
    for message in (plain, final):
        assert message.stop_reason == "tool_use"
        uses = [block for block in message.content if block.type == "tool_use"]
        assert [(u.name, u.input, u.id) for u in uses] == [  # type: ignore[union-attr]
            ("get_weather", {"city": "Oslo"}, "call_1")
        ]
    assert b.snapshot().llm_calls_used == 2
