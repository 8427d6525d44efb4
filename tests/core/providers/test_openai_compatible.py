"""OpenAI-compatible servers, through the openai SDK: each call is priced with the prices of the
provider whose host it goes to (Groq, DeepSeek, Mistral, xAI, Together, OpenRouter), and a
local Ollama's /v1 costs nothing. The requests go to those hosts as far as shekel can see;
a transport below it delivers them to the fake provider."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import openai
import pytest
from redirect import redirecting_client

from shekel import budget
from shekel.testing import FakeProvider, Reply, use_clock

USER = [{"role": "user", "content": "Say hello"}]

# DeepSeek's prices depend on the time of day (genai-prices has its off-peak hours): the
# prices below are those of 12:00 UTC, and the test reads the time there.
NOON_UTC = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()
EVENING_UTC = datetime(2026, 12, 1, 20, 0, tzinfo=UTC).timestamp()

# base URL, model, USD per 1M input and output tokens (genai-prices, that provider's entry)
PROVIDERS = [
    ("https://api.groq.com/openai/v1", "llama-3.3-70b-versatile", 0.59, 0.79),
    ("https://api.deepseek.com/v1", "deepseek-chat", 0.27, 1.10),
    ("https://api.mistral.ai/v1", "mistral-small-latest", 0.15, 0.60),
    ("https://api.x.ai/v1", "grok-3-mini", 0.30, 0.50),
    ("https://api.together.xyz/v1", "meta-llama/Llama-3.3-70B-Instruct-Turbo", 0.88, 0.88),
    ("https://openrouter.ai/api/v1", "anthropic/claude-3.5-haiku", 0.80, 4.00),
]


@pytest.mark.parametrize(("base_url", "model", "price_in", "price_out"), PROVIDERS)
def test_priced_by_the_host_provider(
    fake: FakeProvider, base_url: str, model: str, price_in: float, price_out: float
) -> None:
    client = openai.OpenAI(
        base_url=base_url, api_key="test", http_client=redirecting_client(httpx, fake)
    )
    fake.enqueue(Reply(text="hi", input_tokens=10_000, output_tokens=1_000))
    with use_clock(lambda: NOON_UTC), budget(max_usd=1.0) as b:
        client.chat.completions.create(model=model, messages=USER)  # type: ignore[arg-type]
    assert b.spent == pytest.approx((10_000 * price_in + 1_000 * price_out) / 1e6, abs=1e-12)
    assert not b.summary_data()["calls"][0]["estimated"]


def test_a_price_that_depends_on_the_time_of_day_is_read_at_each_call(
    fake: FakeProvider,
) -> None:
    """The rate of a model is looked up once per process; DeepSeek's price at 20:00 UTC is not
    the price at noon, so the same process must price the second call differently."""
    client = openai.OpenAI(
        base_url="https://api.deepseek.com/v1",
        api_key="test",
        http_client=redirecting_client(httpx, fake),
    )
    now = [NOON_UTC]
    with use_clock(lambda: now[0]), budget(max_usd=1.0) as b:
        fake.enqueue(Reply(text="hi", input_tokens=10_000, output_tokens=1_000))
        client.chat.completions.create(model="deepseek-chat", messages=USER)  # type: ignore[arg-type]
        at_noon = b.spent
        now[0] = EVENING_UTC
        fake.enqueue(Reply(text="hi", input_tokens=10_000, output_tokens=1_000))
        client.chat.completions.create(model="deepseek-chat", messages=USER)  # type: ignore[arg-type]
    assert at_noon == pytest.approx((10_000 * 0.27 + 1_000 * 1.10) / 1e6, abs=1e-12)
    # off-peak: half price, $0.135 and $0.55 per 1M
    assert b.spent - at_noon == pytest.approx((10_000 * 0.135 + 1_000 * 0.55) / 1e6, abs=1e-12)


def test_streams_too(fake: FakeProvider) -> None:
    client = openai.OpenAI(
        base_url="https://api.groq.com/openai/v1",
        api_key="test",
        http_client=redirecting_client(httpx, fake),
    )
    fake.enqueue(Reply(text="a b c", input_tokens=1000, output_tokens=3))
    with budget(max_usd=1.0) as b:
        stream = client.chat.completions.create(
            model="llama-3.3-70b-versatile",
            messages=USER,
            stream=True,  # type: ignore[arg-type]
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream) == "a b c"
    assert b.spent == pytest.approx((1000 * 0.59 + 3 * 0.79) / 1e6, abs=1e-12)


def test_ollama_v1_is_free_but_counted(fake: FakeProvider) -> None:
    client = openai.OpenAI(
        base_url="http://localhost:11434/v1",
        api_key="ollama",
        http_client=redirecting_client(httpx, fake),
    )
    fake.enqueue(Reply(text="local", input_tokens=300, output_tokens=20))
    with budget(max_usd=0.01, max_tokens=1000) as b:
        client.chat.completions.create(model="llama3.2", messages=USER)  # type: ignore[arg-type]
    assert b.spent == 0
    assert b.snapshot().tokens_used == 320
    assert b.snapshot().llm_calls_used == 1


def test_a_gateway_accepts_a_fallback_of_any_family(fake: FakeProvider) -> None:
    client = openai.OpenAI(
        base_url="https://openrouter.ai/api/v1",
        api_key="test",
        http_client=redirecting_client(httpx, fake),
    )
    fake.enqueue(Reply(input_tokens=100_000, output_tokens=1_000), Reply())
    fallback = {"at_pct": 0.01, "model": "mistralai/mistral-small"}
    with budget(max_usd=1.0, fallback=fallback):
        for _ in range(2):
            client.chat.completions.create(model="anthropic/claude-3.5-haiku", messages=USER)  # type: ignore[arg-type]
    assert fake.requests[1].body["model"] == "mistralai/mistral-small"
