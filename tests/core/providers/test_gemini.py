"""google-genai against the fake Gemini API: every entry point priced at Google's list price
once, refused before sending, output lowered in strict mode, fallback to another Gemini model.

Sync calls go through httpx2; ``client.aio`` goes through aiohttp (installed here), or through
httpx when the client is given an httpx one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx2
import pytest
from google import genai
from google.genai import errors, types
from google.oauth2 import credentials
from prices import GEMINI_EMBEDDING, GEMINI_FLASH, GEMINI_FLASH_LITE, cost

from shekel import BudgetConfigError, BudgetExceededError, budget
from shekel.testing import FakeProvider, Reply, ToolCall

MODEL = "gemini-2.5-flash"


@pytest.fixture
def gemini(fake: FakeProvider) -> Iterator[genai.Client]:
    client = genai.Client(api_key="test", http_options=types.HttpOptions(base_url=fake.url))
    yield client
    client.close()


def _generate(client: genai.Client, **config: object) -> types.GenerateContentResponse:
    settings = types.GenerateContentConfig(**config) if config else None  # type: ignore[arg-type]
    return client.models.generate_content(model=MODEL, contents="Say hello", config=settings)


def test_generate_content_with_thinking_and_cached_tokens(
    fake: FakeProvider, gemini: genai.Client
) -> None:
    fake.enqueue(
        Reply(
            text="hello there",
            input_tokens=1000,
            cached_input_tokens=400,
            output_tokens=300,
            reasoning_tokens=100,
        )
    )
    with budget(max_usd=1.0) as b:
        response = _generate(gemini)
    assert response.text == "hello there"
    assert response.usage_metadata is not None
    assert response.usage_metadata.thoughts_token_count == 100
    assert response.usage_metadata.candidates_token_count == 200
    # thoughts are billed as output, cached prompt tokens at the cache price
    assert b.spent == pytest.approx(cost(GEMINI_FLASH, 1000, 300, cached=400), abs=1e-12)
    call = b.summary_data()["calls"][0]
    assert (call["model"], call["input_tokens"], call["output_tokens"]) == (MODEL, 1000, 300)
    assert call["cache_read_tokens"] == 400
    assert not call["estimated"]
    assert b.snapshot().llm_calls_used == 1


def test_generate_content_stream(fake: FakeProvider, gemini: genai.Client) -> None:
    fake.enqueue(Reply(text="one two three", input_tokens=500, output_tokens=3))
    with budget(max_usd=1.0) as b:
        pieces = [
            chunk.text
            for chunk in gemini.models.generate_content_stream(model=MODEL, contents="count")
        ]
    assert "".join(p or "" for p in pieces) == "one two three"
    assert fake.requests[0].path.endswith(f"/models/{MODEL}:streamGenerateContent")
    assert b.spent == pytest.approx(cost(GEMINI_FLASH, 500, 3), abs=1e-12)
    assert b.snapshot().llm_calls_used == 1
    assert not b.summary_data()["calls"][0]["estimated"]


def test_an_interrupted_stream_is_recorded(fake: FakeProvider, gemini: genai.Client) -> None:
    fake.enqueue(Reply(text="one two three four five", input_tokens=800, drop_after_chunks=2))
    with budget(max_usd=1.0) as b:
        with pytest.raises(Exception):  # the connection drops mid-stream
            for _ in gemini.models.generate_content_stream(model=MODEL, contents="count"):
                pass
    call = b.summary_data()["calls"][0]
    assert call["estimated"]
    assert call["input_tokens"] == 800  # reported by the first chunk, not guessed
    assert call["output_tokens"] >= 2
    assert b.spent >= cost(GEMINI_FLASH, 800, 2)


def test_aio_through_aiohttp(fake: FakeProvider) -> None:
    async def calls() -> list[str]:
        client = genai.Client(api_key="test", http_options=types.HttpOptions(base_url=fake.url))
        try:
            plain = await client.aio.models.generate_content(model=MODEL, contents="hi")
            streamed = [
                chunk.text or ""
                for chunk in [
                    c
                    async for c in await client.aio.models.generate_content_stream(
                        model=MODEL, contents="hi"
                    )
                ]
            ]
            return [plain.text or "", "".join(streamed)]
        finally:
            await client.aio.aclose()

    fake.enqueue(
        Reply(text="async hello", input_tokens=100, output_tokens=2),
        Reply(text="a b c", input_tokens=200, output_tokens=3),
    )
    with budget(max_usd=1.0) as b:
        texts = asyncio.run(calls())
    assert texts == ["async hello", "a b c"]
    assert b.snapshot().llm_calls_used == 2
    assert b.spent == pytest.approx(
        cost(GEMINI_FLASH, 100, 2) + cost(GEMINI_FLASH, 200, 3), abs=1e-12
    )


def test_aio_through_httpx(fake: FakeProvider) -> None:
    async def calls() -> str:
        options = types.HttpOptions(base_url=fake.url, httpx_async_client=httpx2.AsyncClient())
        client = genai.Client(api_key="test", http_options=options)
        try:
            chunks = await client.aio.models.generate_content_stream(model=MODEL, contents="x")
            return "".join([c.text or "" async for c in chunks])
        finally:
            await client.aio.aclose()

    fake.enqueue(Reply(text="via httpx", input_tokens=300, output_tokens=2))
    with budget(max_usd=1.0) as b:
        assert asyncio.run(calls()) == "via httpx"
    assert b.spent == pytest.approx(cost(GEMINI_FLASH, 300, 2), abs=1e-12)


def test_embed_content(fake: FakeProvider, gemini: genai.Client) -> None:
    fake.enqueue(Reply(input_tokens=40))
    with budget(max_usd=1.0) as b:
        result = gemini.models.embed_content(model="gemini-embedding-001", contents=["a", "b"])
    assert result.embeddings is not None
    assert len(result.embeddings) == 2
    assert b.spent == pytest.approx(cost(GEMINI_EMBEDDING, 40), abs=1e-12)
    assert b.snapshot().llm_calls_used == 1


def test_refused_before_sending(fake: FakeProvider, gemini: genai.Client) -> None:
    fake.enqueue(Reply(input_tokens=100_000, output_tokens=100_000))
    with budget(max_usd=0.10) as b:
        with pytest.raises(BudgetExceededError):  # this call crosses the cap, once recorded
            _generate(gemini)
        with pytest.raises(BudgetExceededError) as refused:
            _generate(gemini)
    assert refused.value.sent is False
    assert len(fake.requests) == 1  # the second request never left
    assert b.snapshot().llm_calls_used == 1


def test_max_llm_calls(fake: FakeProvider, gemini: genai.Client) -> None:
    with budget(max_llm_calls=2) as b:
        _generate(gemini)
        _generate(gemini)
        with pytest.raises(BudgetExceededError):
            _generate(gemini)
    assert len(fake.requests) == 2
    assert b.snapshot().llm_calls_used == 2


def test_strict_mode_lowers_max_output_tokens(fake: FakeProvider, gemini: genai.Client) -> None:
    fake.enqueue(Reply(text="word " * 50, input_tokens=20))
    with budget(max_usd=0.0001, strict=True) as b:
        response = _generate(gemini, max_output_tokens=60_000)
    sent = fake.requests[0].body["generationConfig"]["maxOutputTokens"]
    assert 1 <= sent < 60_000
    assert sent <= (0.0001 * 1_000_000) / GEMINI_FLASH["output"]
    assert response.candidates is not None
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert b.spent <= 0.0001


def test_strict_mode_sets_a_limit_where_none_was_given(
    fake: FakeProvider, gemini: genai.Client
) -> None:
    with budget(max_usd=1.0, strict=True):
        _generate(gemini)
    assert fake.requests[0].body["generationConfig"]["maxOutputTokens"] == 65536


def test_fallback_to_another_gemini_model(fake: FakeProvider, gemini: genai.Client) -> None:
    fake.enqueue(Reply(input_tokens=100_000, output_tokens=10_000), Reply(output_tokens=5))
    with budget(max_usd=1.0, fallback={"at_pct": 0.01, "model": "gemini-2.5-flash-lite"}) as b:
        _generate(gemini)
        _generate(gemini)
    assert fake.requests[1].path.endswith("/models/gemini-2.5-flash-lite:generateContent")
    assert b.model_switched
    assert b.spent == pytest.approx(
        cost(GEMINI_FLASH, 100_000, 10_000) + cost(GEMINI_FLASH_LITE, 12, 5), abs=1e-12
    )


def test_fallback_to_a_model_google_does_not_serve(
    fake: FakeProvider, gemini: genai.Client
) -> None:
    fake.enqueue(Reply(input_tokens=100_000, output_tokens=10_000))
    with budget(max_usd=1.0, fallback={"at_pct": 0.01, "model": "gpt-4o-mini"}):
        _generate(gemini)
        with pytest.raises(BudgetConfigError, match="same provider"):
            _generate(gemini)
    assert len(fake.requests) == 1


def test_the_fake_refuses_what_gemini_refuses(fake: FakeProvider, gemini: genai.Client) -> None:
    with budget(max_usd=1.0) as b:
        with pytest.raises(errors.ClientError, match="maxOutputTokens"):
            _generate(gemini, max_output_tokens=1_000_000)
    assert b.snapshot().llm_calls_used == 0
    assert b.spent == 0


def test_a_rate_limited_call_costs_nothing(fake: FakeProvider, gemini: genai.Client) -> None:
    fake.enqueue(Reply.error(429))
    with budget(max_usd=1.0) as b:
        with pytest.raises(errors.ClientError):
            _generate(gemini)
    assert b.snapshot().llm_calls_used == 0


def test_a_tool_call(fake: FakeProvider, gemini: genai.Client) -> None:
    fake.enqueue(Reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"})], output_tokens=9))
    with budget(max_usd=1.0) as b:
        response = _generate(gemini)
    assert response.function_calls is not None
    assert response.function_calls[0].name == "get_weather"
    assert response.function_calls[0].args == {"city": "Oslo"}
    assert b.spent == pytest.approx(cost(GEMINI_FLASH, 12, 9), abs=1e-12)


def test_vertex_ai(fake: FakeProvider) -> None:
    client = genai.Client(
        vertexai=True,
        project="proj",
        location="us-central1",
        credentials=credentials.Credentials(token="test-token"),
        http_options=types.HttpOptions(base_url=fake.url),
    )
    fake.enqueue(Reply(text="from vertex", input_tokens=700, output_tokens=2))
    with budget(max_usd=1.0) as b:
        assert _generate(client).text == "from vertex"
    path = fake.requests[0].path
    assert path.endswith(f"/locations/us-central1/publishers/google/models/{MODEL}:generateContent")
    assert b.spent == pytest.approx(cost(GEMINI_FLASH, 700, 2), abs=1e-12)
    client.close()
