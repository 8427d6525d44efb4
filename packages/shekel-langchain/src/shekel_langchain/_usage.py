"""What a finished model run reports: its model, token counts and response id.

Chat models put usage on the message (``AIMessage.usage_metadata``, LangChain's normalised
shape: input tokens include those read from and written to a prompt cache, as shekel counts
them); text LLMs, if anything, in ``llm_output["token_usage"]`` with OpenAI's field names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from langchain_core.outputs import LLMResult

_LANGCHAIN_IDS = ("lc_run-", "run-")
"""Prefixes of the message ids LangChain makes up for messages that came without one."""


class Reported(NamedTuple):
    model: str | None
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    call_id: str | None
    cache_hit: bool = False  # an answer from LangChain's cache: nothing was spent
    missing: bool = False  # no usage at all


def read(response: LLMResult) -> Reported:
    """The usage ``response`` carries (``missing`` when it carries none)."""
    model: str | None = None
    call_id: str | None = None
    for generations in response.generations:
        for generation in generations:
            message = getattr(generation, "message", None)
            if message is None:
                continue
            metadata = message.response_metadata or {}
            model = model or _text(metadata.get("model_name")) or _text(metadata.get("model"))
            call_id = call_id or _provider_id(message.id) or _provider_id(metadata.get("id"))
            usage = getattr(message, "usage_metadata", None)
            if usage:
                details = usage.get("input_token_details") or {}
                return Reported(
                    model,
                    _count(usage.get("input_tokens")),
                    _count(usage.get("output_tokens")),
                    _count(details.get("cache_read")),
                    _count(details.get("cache_creation")),
                    call_id,
                    # LangChain's cache marks the usage of a cached answer with a zero cost
                    cache_hit=usage.get("total_cost", None) == 0,
                )
    output = response.llm_output or {}
    model = model or _text(output.get("model_name")) or _text(output.get("model"))
    usage = output.get("token_usage") or output.get("usage")
    if isinstance(usage, Mapping) and usage:
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
        return Reported(
            model,
            _count(usage.get("prompt_tokens", usage.get("input_tokens"))),
            _count(usage.get("completion_tokens", usage.get("output_tokens"))),
            _count(cached),
            0,
            _provider_id(output.get("id")),
        )
    return Reported(model, 0, 0, 0, 0, call_id, missing=True)


def prompt_text(prompt: Any) -> str:
    """The text of a model run's prompt (a string, or a list of messages), to estimate from."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(_content(getattr(message, "content", "")) for message in prompt or ())


def reply_text(response: LLMResult) -> str:
    """The text of a model run's answers, to estimate from."""
    return "\n".join(g.text for generations in response.generations for g in generations)


def _content(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else ()
    texts = (p.get("text") if isinstance(p, dict) else p for p in parts)
    return "".join(text for text in texts if isinstance(text, str))


def _provider_id(value: Any) -> str | None:
    if isinstance(value, str) and value and not value.startswith(_LANGCHAIN_IDS):
        return value
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: Any) -> int:
    """A token count as the core accepts it; anything else counts as 0 (never raise from the
    end of a run: the spend must still be recorded)."""
    if type(value) is int:
        return value if value >= 0 else 0
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return 0
