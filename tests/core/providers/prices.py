"""Published list prices (USD per 1M tokens) the provider tests check spend against."""

from __future__ import annotations

GEMINI_FLASH = {"input": 0.30, "output": 2.50, "cached": 0.03}
GEMINI_FLASH_LITE = {"input": 0.10, "output": 0.40, "cached": 0.01}
GEMINI_EMBEDDING = {"input": 0.15}
BEDROCK_CLAUDE_HAIKU = {"input": 0.25, "output": 1.25}  # anthropic.claude-3-haiku on Bedrock
BEDROCK_NOVA_LITE = {"input": 0.06, "output": 0.24, "cached": 0.015}
COHERE_COMMAND_R = {"input": 0.15, "output": 0.60}  # command-r-08-2024
COHERE_COMMAND_A = {"input": 2.50, "output": 10.00}  # command-a-03-2025
COHERE_COMMAND_R7B = {"input": 0.0375, "output": 0.15}  # command-r7b-12-2024
COHERE_EMBED_V4 = {"input": 0.12}  # embed-v4.0, text


def cost(price: dict[str, float], inp: int, out: int = 0, cached: int = 0) -> float:
    """What a call costs: ``inp`` prompt tokens (``cached`` of them read from cache)."""
    plain = (inp - cached) * price["input"] + cached * price.get("cached", price["input"])
    return (plain + out * price.get("output", 0.0)) / 1_000_000
