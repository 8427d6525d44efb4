"""The most output tokens each model may be asked for in one request.

Providers answer a request whose ``max_tokens`` (``max_completion_tokens``,
``max_output_tokens``) is above the model's maximum with HTTP 400, so strict mode never asks for
more than this. genai-prices knows context windows, not output maxima; this table is kept by
hand from the providers' model pages. A model id matches its longest listed prefix, so dated
snapshots (``gpt-4o-2024-08-06``, ``claude-sonnet-4-5-20250929``) inherit their family's limit;
a snapshot with another limit is listed itself.

The module imports nothing, so the fake provider (``shekel.testing``) answers with the same
figures as the code that sizes requests.
"""

from __future__ import annotations

from typing import Final

UNKNOWN_MODEL_MAX_OUTPUT: Final = 4096
"""Used for models the table does not list: no current chat model of the major providers
accepts fewer output tokens, so a request sized to it is never rejected for its size."""

MAX_OUTPUT_TOKENS: Final[dict[str, int]] = {
    # OpenAI
    "gpt-3.5-turbo": 4096,
    "gpt-4": 8192,
    "gpt-4-turbo": 4096,
    "gpt-4o": 16384,
    "gpt-4o-2024-05-13": 4096,
    "gpt-4o-mini": 16384,
    "chatgpt-4o-latest": 16384,
    "gpt-4.1": 32768,
    "gpt-4.5-preview": 16384,
    "gpt-5": 128000,
    "gpt-5-chat-latest": 16384,
    "o1": 100000,
    "o1-mini": 65536,
    "o1-preview": 32768,
    "o3": 100000,
    "o4-mini": 100000,
    # Anthropic
    "claude-3-haiku": 4096,
    "claude-3-sonnet": 4096,
    "claude-3-opus": 4096,
    "claude-3-5-haiku": 8192,
    "claude-3-5-sonnet": 8192,
    "claude-3-7-sonnet": 64000,
    "claude-sonnet-4": 64000,
    "claude-opus-4": 32000,
    "claude-opus-4-5": 64000,
    "claude-haiku-4-5": 64000,
    "claude-sonnet-4-6": 128000,
    "claude-opus-4-6": 128000,
    "claude-opus-4-7": 128000,
    "claude-opus-4-8": 128000,
    "claude-opus-5": 128000,
    "claude-fable-5": 128000,
    # Google, through OpenAI-compatible endpoints
    "gemini-1.5": 8192,
    "gemini-2.0": 8192,
    "gemini-2.5": 65536,
    # Cohere (which caps a larger max_tokens at the model's maximum instead of refusing it)
    "command-r": 4096,
    "command-a": 8192,
    "command-a-reasoning": 32768,
}

_BEDROCK_REGIONS: Final = frozenset({"us", "eu", "apac", "jp", "au", "global", "us-gov"})
_BEDROCK_VENDORS: Final = frozenset({"anthropic", "amazon", "meta", "mistral", "cohere", "ai21"})
_longest_first: Final = sorted(MAX_OUTPUT_TOKENS, key=len, reverse=True)


def listed_max_output(model: str) -> int | None:
    """The table's output maximum for ``model`` (longest matching prefix), or ``None``."""
    name = model.lower().rpartition("/")[2]  # "openai/gpt-4o", "anthropic/claude-..." too
    # Bedrock ids: "us.anthropic.claude-3-5-haiku-20241022-v1:0" is a claude-3-5-haiku
    region, _, rest = name.partition(".")
    if rest and region in _BEDROCK_REGIONS:
        name = rest
    vendor, _, rest = name.partition(".")
    if rest and vendor in _BEDROCK_VENDORS:
        name = rest
    for prefix in _longest_first:
        if name.startswith(prefix):
            return MAX_OUTPUT_TOKENS[prefix]
    return None
