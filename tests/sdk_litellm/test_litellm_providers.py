"""LiteLLM's Gemini and Bedrock paths, counted once at the provider's list price: LiteLLM sends
both through httpx itself (it signs Bedrock requests with SigV4 on its own, without boto3's
endpoint), so shekel sees each call once, at the HTTP layer."""

from __future__ import annotations

import asyncio
from typing import Any

import litellm
import pytest
from litellm_prices import BEDROCK_CLAUDE_HAIKU, GEMINI_FLASH, cost

from shekel import BudgetExceededError, budget
from shekel.testing import FakeProvider, Reply

USER = [{"role": "user", "content": "Say hello"}]
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


def _gemini(fake: FakeProvider, **kwargs: Any) -> dict[str, Any]:
    return {
        "model": "gemini/gemini-2.5-flash",
        "messages": USER,
        "api_base": fake.url + "/v1beta",
        "api_key": "test",
        "num_retries": 0,
        **kwargs,
    }


def _bedrock(fake: FakeProvider, **kwargs: Any) -> dict[str, Any]:
    return {
        "model": f"bedrock/{HAIKU}",
        "messages": USER,
        "aws_bedrock_runtime_endpoint": fake.url,
        "aws_access_key_id": "test",
        "aws_secret_access_key": "test",
        "aws_region_name": "us-east-1",
        "num_retries": 0,
        **kwargs,
    }


def test_gemini_completion_counted_once(fake: FakeProvider) -> None:
    fake.enqueue(Reply(text="gem", input_tokens=1000, output_tokens=10))
    with budget(max_usd=1.0) as b:
        response = litellm.completion(**_gemini(fake))
    assert response.choices[0].message.content == "gem"
    assert fake.requests[0].path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert b.snapshot().llm_calls_used == 1
    assert b.spent == pytest.approx(cost(GEMINI_FLASH, 1000, 10), abs=1e-12)


def test_gemini_streamed_and_async(fake: FakeProvider) -> None:
    async def acall() -> str:
        response = await litellm.acompletion(**_gemini(fake))
        return str(response.choices[0].message.content)

    fake.enqueue(
        Reply(text="a b c", input_tokens=500, output_tokens=3),
        Reply(text="async", input_tokens=200, output_tokens=1),
    )
    with budget(max_usd=1.0) as b:
        stream = litellm.completion(**_gemini(fake, stream=True))
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
        assert asyncio.run(acall()) == "async"
    assert text == "a b c"
    assert b.snapshot().llm_calls_used == 2
    assert b.spent == pytest.approx(
        cost(GEMINI_FLASH, 500, 3) + cost(GEMINI_FLASH, 200, 1), abs=1e-12
    )


def test_bedrock_completion_counted_once(fake: FakeProvider) -> None:
    fake.enqueue(Reply(text="bed", input_tokens=1000, output_tokens=10))
    with budget(max_usd=1.0) as b:
        response = litellm.completion(**_bedrock(fake))
    assert response.choices[0].message.content == "bed"
    assert fake.requests[0].path.endswith("/converse")
    assert b.snapshot().llm_calls_used == 1
    assert b.spent == pytest.approx(cost(BEDROCK_CLAUDE_HAIKU, 1000, 10), abs=1e-12)


def test_bedrock_streamed(fake: FakeProvider) -> None:
    fake.enqueue(Reply(text="x y z", input_tokens=300, output_tokens=3))
    with budget(max_usd=1.0) as b:
        stream = litellm.completion(**_bedrock(fake, stream=True))
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == "x y z"
    assert b.snapshot().llm_calls_used == 1
    assert b.spent == pytest.approx(cost(BEDROCK_CLAUDE_HAIKU, 300, 3), abs=1e-12)


def test_refused_before_sending(fake: FakeProvider) -> None:
    fake.enqueue(Reply(input_tokens=1_000_000, output_tokens=10))
    with budget(max_usd=0.10) as b:
        with pytest.raises(BudgetExceededError):
            litellm.completion(**_gemini(fake))
        with pytest.raises(BudgetExceededError) as refused:
            litellm.completion(**_gemini(fake))
    assert refused.value.sent is False
    assert len(fake.requests) == 1
    assert b.snapshot().llm_calls_used == 1


def test_strict_lowers_gemini_output(fake: FakeProvider) -> None:
    fake.enqueue(Reply(text="word " * 50, input_tokens=20))
    with budget(max_usd=0.0001, strict=True) as b:
        litellm.completion(**_gemini(fake, max_tokens=60_000))
    sent = fake.requests[0].body["generationConfig"]["maxOutputTokens"]
    assert 1 <= sent < 60_000
    assert b.spent <= 0.0001


def test_strict_never_rewrites_a_signed_bedrock_request(fake: FakeProvider) -> None:
    # LiteLLM signs the body: lowering maxTokens would break the signature, so strict mode
    # holds the whole limit instead, and refuses a request the budget cannot cover.
    with budget(max_usd=1.0, strict=True):
        litellm.completion(**_bedrock(fake, max_tokens=1000))
    assert fake.requests[0].body["inferenceConfig"]["maxTokens"] == 1000
    with budget(max_usd=0.0001, strict=True):
        with pytest.raises(BudgetExceededError) as refused:
            litellm.completion(**_bedrock(fake, max_tokens=4000))
    assert refused.value.sent is False
    assert len(fake.requests) == 1
