"""boto3's bedrock-runtime client against the fake Bedrock: converse, converse_stream (AWS's
binary event stream) and invoke_model with an Anthropic body, priced from genai-prices' Bedrock
ids once; refused before sending and before signing; output lowered in strict mode.

boto3 sends through botocore and urllib3, not httpx: shekel hooks botocore's Endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from prices import BEDROCK_CLAUDE_HAIKU, BEDROCK_NOVA_LITE, cost

from shekel import BudgetConfigError, BudgetExceededError, budget
from shekel.testing import FakeProvider, Reply, ToolCall

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
NOVA = "amazon.nova-lite-v1:0"
USER = [{"role": "user", "content": [{"text": "Say hello"}]}]


@pytest.fixture
def bedrock(fake: FakeProvider) -> Iterator[Any]:
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=fake.url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )
    yield client
    client.close()


def _anthropic_body(max_tokens: int = 100) -> str:
    return json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": "Say hello"}],
        }
    )


def test_converse(fake: FakeProvider, bedrock: Any) -> None:
    fake.enqueue(Reply(text="hello", input_tokens=1000, output_tokens=100))
    with budget(max_usd=1.0) as b:
        response = bedrock.converse(modelId=HAIKU, messages=USER)
    assert response["output"]["message"]["content"] == [{"text": "hello"}]
    assert b.spent == pytest.approx(cost(BEDROCK_CLAUDE_HAIKU, 1000, 100), abs=1e-12)
    call = b.summary_data()["calls"][0]
    assert (call["model"], call["input_tokens"], call["output_tokens"]) == (HAIKU, 1000, 100)
    assert not call["estimated"]


def test_converse_with_cache_reads(fake: FakeProvider, bedrock: Any) -> None:
    # Converse reports the uncached prompt apart from cache reads; Nova prices them lower
    fake.enqueue(Reply(text="hi", input_tokens=300, cached_input_tokens=700, output_tokens=50))
    with budget(max_usd=1.0) as b:
        bedrock.converse(modelId=NOVA, messages=USER)
    call = b.summary_data()["calls"][0]
    assert (call["input_tokens"], call["cache_read_tokens"]) == (1000, 700)
    assert b.spent == pytest.approx(cost(BEDROCK_NOVA_LITE, 1000, 50, cached=700), abs=1e-12)


def test_converse_stream(fake: FakeProvider, bedrock: Any) -> None:
    fake.enqueue(Reply(text="one two three", input_tokens=400, output_tokens=3))
    with budget(max_usd=1.0) as b:
        response = bedrock.converse_stream(modelId=HAIKU, messages=USER)
        events = list(response["stream"])
    text = "".join(
        e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e
    )
    assert text == "one two three"
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 3
    assert b.spent == pytest.approx(cost(BEDROCK_CLAUDE_HAIKU, 400, 3), abs=1e-12)
    assert b.snapshot().llm_calls_used == 1
    assert not b.summary_data()["calls"][0]["estimated"]


def test_a_stream_left_early_is_recorded(fake: FakeProvider, bedrock: Any) -> None:
    fake.enqueue(Reply(text="a b c d e f g h", input_tokens=400, stream_framing="split"))
    with budget(max_usd=1.0) as b:
        stream = bedrock.converse_stream(modelId=HAIKU, messages=USER)["stream"]
        for event in stream:
            if "contentBlockDelta" in event:
                break
        stream.close()
    call = b.summary_data()["calls"][0]
    assert call["estimated"]
    assert call["output_tokens"] >= 1
    assert b.spent > 0


def test_a_stream_that_crosses_the_cap_raises_in_the_loop(fake: FakeProvider, bedrock: Any) -> None:
    fake.enqueue(Reply(text="x y", input_tokens=1_000_000, output_tokens=2))
    with budget(max_usd=0.10) as b:
        with pytest.raises(BudgetExceededError) as crossed:
            for _ in bedrock.converse_stream(modelId=HAIKU, messages=USER)["stream"]:
                pass
    assert crossed.value.sent is True
    assert b.spent == pytest.approx(cost(BEDROCK_CLAUDE_HAIKU, 1_000_000, 2), abs=1e-12)


def test_invoke_model_with_an_anthropic_body(fake: FakeProvider, bedrock: Any) -> None:
    fake.enqueue(Reply(text="invoked", input_tokens=2000, output_tokens=20))
    with budget(max_usd=1.0) as b:
        response = bedrock.invoke_model(modelId=HAIKU, body=_anthropic_body())
        message = json.loads(response["body"].read())  # the caller still gets the body
    assert message["content"][0]["text"] == "invoked"
    assert b.spent == pytest.approx(cost(BEDROCK_CLAUDE_HAIKU, 2000, 20), abs=1e-12)


def test_refused_before_sending(fake: FakeProvider, bedrock: Any) -> None:
    fake.enqueue(Reply(input_tokens=1_000_000, output_tokens=10))
    with budget(max_usd=0.10) as b:
        with pytest.raises(BudgetExceededError):
            bedrock.converse(modelId=HAIKU, messages=USER)
        with pytest.raises(BudgetExceededError) as refused:
            bedrock.converse(modelId=HAIKU, messages=USER)
    assert refused.value.sent is False
    assert len(fake.requests) == 1
    assert b.snapshot().llm_calls_used == 1


def test_strict_mode_lowers_max_tokens_before_signing(fake: FakeProvider, bedrock: Any) -> None:
    fake.enqueue(Reply(text="word " * 40, input_tokens=20))
    with budget(max_usd=0.00002, strict=True) as b:
        response = bedrock.converse(
            modelId=HAIKU, messages=USER, inferenceConfig={"maxTokens": 4000}
        )
    sent = fake.requests[0].body["inferenceConfig"]["maxTokens"]
    assert 1 <= sent < 4000  # and the signature still matched: the fake got the call
    assert sent <= 0.00002 * 1_000_000 / BEDROCK_CLAUDE_HAIKU["output"]
    assert response["stopReason"] == "max_tokens"
    assert b.spent <= 0.00002


def test_strict_mode_on_invoke_model(fake: FakeProvider, bedrock: Any) -> None:
    with budget(max_usd=0.00002, strict=True):
        bedrock.invoke_model(modelId=HAIKU, body=_anthropic_body(max_tokens=4000))
    assert 1 <= fake.requests[0].body["max_tokens"] < 4000


def test_fallback_to_another_bedrock_model(fake: FakeProvider, bedrock: Any) -> None:
    fake.enqueue(Reply(input_tokens=100_000, output_tokens=1000), Reply(output_tokens=5))
    with budget(max_usd=1.0, fallback={"at_pct": 0.01, "model": NOVA}) as b:
        bedrock.converse(modelId=HAIKU, messages=USER)
        bedrock.converse(modelId=HAIKU, messages=USER)
    assert fake.requests[1].path == "/model/amazon.nova-lite-v1%3A0/converse"
    assert b.spent == pytest.approx(
        cost(BEDROCK_CLAUDE_HAIKU, 100_000, 1000) + cost(BEDROCK_NOVA_LITE, 12, 5), abs=1e-12
    )


def test_the_fake_refuses_what_bedrock_refuses(fake: FakeProvider, bedrock: Any) -> None:
    with budget(max_usd=1.0) as b:
        with pytest.raises(ClientError) as refused:
            bedrock.converse(modelId=HAIKU, messages=USER, inferenceConfig={"maxTokens": 100_000})
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert b.snapshot().llm_calls_used == 0


def test_throttling_costs_nothing(fake: FakeProvider, bedrock: Any) -> None:
    fake.enqueue(Reply.error(429))
    with budget(max_usd=1.0) as b:
        with pytest.raises(ClientError) as refused:
            bedrock.converse(modelId=HAIKU, messages=USER)
    assert refused.value.response["Error"]["Code"] == "ThrottlingException"
    assert b.snapshot().llm_calls_used == 0


def test_a_tool_call(fake: FakeProvider, bedrock: Any) -> None:
    asks = Reply(tool_calls=[ToolCall("lookup", {"id": 7})], output_tokens=15)
    fake.enqueue(asks, asks)
    with budget(max_usd=1.0):
        response = bedrock.converse(modelId=HAIKU, messages=USER)
        streamed = list(bedrock.converse_stream(modelId=HAIKU, messages=USER)["stream"])
    assert response["stopReason"] == "tool_use"
    use = response["output"]["message"]["content"][-1]["toolUse"]
    assert (use["name"], use["input"]) == ("lookup", {"id": 7})
    starts = [
        e["contentBlockStart"]["start"]["toolUse"]["name"]
        for e in streamed
        if "contentBlockStart" in e
    ]
    assert starts == ["lookup"]


def test_no_budget_no_interference(fake: FakeProvider, bedrock: Any) -> None:
    assert bedrock.converse(modelId=HAIKU, messages=USER)["usage"]["inputTokens"] == 12


def test_fallback_to_a_model_bedrock_does_not_name(fake: FakeProvider, bedrock: Any) -> None:
    fake.enqueue(Reply(input_tokens=100_000, output_tokens=1000))
    with budget(max_usd=1.0, fallback={"at_pct": 0.01, "model": "gemini-2.5-flash"}):
        bedrock.converse(modelId=HAIKU, messages=USER)
        with pytest.raises(BudgetConfigError, match="same provider"):
            bedrock.converse(modelId=HAIKU, messages=USER)
    assert len(fake.requests) == 1
