"""Published prices and shared request bits for the interception tests."""

from __future__ import annotations

GPT4O_MINI = (0.15, 0.60, 0.075)  # USD per 1M input / output / cached-input tokens
GPT4O = (2.50, 10.00, 1.25)
CLAUDE_HAIKU = (0.25, 1.25, 0.03, 0.30)  # input / output / cache read / cache write

USER = [{"role": "user", "content": "Say hello"}]


def usd(per_million: float, tokens: int) -> float:
    return per_million * tokens / 1_000_000


def gpt4o_mini(inp: int, out: int, cached: int = 0) -> float:
    """Expected cost of a gpt-4o-mini call (OpenAI counts cached tokens inside input)."""
    price_in, price_out, price_cached = GPT4O_MINI
    return usd(price_in, inp - cached) + usd(price_cached, cached) + usd(price_out, out)


def haiku(inp: int, out: int, read: int = 0, write: int = 0) -> float:
    """Expected cost of a claude-3-haiku call (Anthropic counts cache tokens apart)."""
    price_in, price_out, price_read, price_write = CLAUDE_HAIKU
    return (
        usd(price_in, inp) + usd(price_out, out) + usd(price_read, read) + usd(price_write, write)
    )
