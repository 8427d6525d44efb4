"""Recording the calls of models that never reach the intercepted SDKs, from their usage: on
the message (``AIMessage.usage_metadata``, whose input tokens include those read from and
written to a prompt cache, as shekel counts them), or a text LLM's ``llm_output``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.outputs import LLMResult

from shekel import Budget, BudgetExceededError
from shekel.integration import record_unreported

from ._runs import NOTHING, Run

SOURCE = "langchain"
"""``CallRecord.source`` of the calls this package reports."""


def record_usage(budget: Budget, run: Run, response: LLMResult, *, partial: bool = False) -> None:
    """Record the call ``response`` ended (estimated if it reports no usage, unless ``partial``:
    the run failed). A report crossing a cap is recorded, and the next call refused: raised
    from here, the error would leave the run open in every handler called after this one."""
    model, call_id, counts = _reported(response)
    model = model or run.model()
    try:
        if counts:
            prompt_tokens, completion_tokens, cached, written = counts
            budget.record(
                model=model,
                input_tokens=prompt_tokens,
                output_tokens=completion_tokens,
                cached_input_tokens=cached,
                cache_write_tokens=written,
                call_id=call_id,
                source=SOURCE,
            )
        elif counts is None and not partial:
            prompt = run.prompt
            if not isinstance(prompt, str):  # a chat model's messages
                prompt = "\n".join(message.text for message in prompt)
            reply = "\n".join(g.text for generations in response.generations for g in generations)
            record_unreported(budget, model, prompt, reply, source=SOURCE, call_id=call_id)
    except BudgetExceededError:
        pass


def _reported(response: LLMResult) -> tuple[str | None, str | None, list[int] | None]:
    """The model name, the provider's response id and the token counts (as :func:`_counts`;
    ``[]`` for an answer from LangChain's cache, ``None`` when the response has none)."""
    model = call_id = None
    for generations in response.generations:
        for generation in generations:
            message = getattr(generation, "message", None)
            if message is None:
                continue
            meta = message.response_metadata or NOTHING
            if model is None:
                name = meta.get("model_name")
                model = name if isinstance(name, str) and name else _str(meta.get("model"))
            if call_id is None:
                call_id = _provider_id(message.id)
                if call_id is None and "id" in meta:
                    call_id = _provider_id(meta["id"])
            usage = message.usage_metadata
            if usage:
                if usage.get("total_cost", None) == 0:  # how LangChain's cache marks its answers
                    return model, call_id, []
                prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
                details = usage.get("input_token_details")
                if details:
                    read, written = details.get("cache_read"), details.get("cache_creation")
                    return model, call_id, _counts(prompt, completion, read, written)
                if (
                    prompt.__class__ is int
                    and completion.__class__ is int
                    and (prompt | completion) >= 0
                ):
                    return model, call_id, [prompt, completion, 0, 0]  # the usual report, as is
                return model, call_id, _counts(prompt, completion, 0, 0)
    output = response.llm_output or NOTHING  # a text LLM's, with OpenAI's names
    if model is None:
        model = _str(output.get("model_name")) or _str(output.get("model"))
    if call_id is None:
        call_id = _provider_id(output.get("id"))
    usage = output.get("token_usage") or output.get("usage")
    if not isinstance(usage, Mapping) or not usage:
        return model, call_id, None
    cached = (usage.get("prompt_tokens_details") or NOTHING).get("cached_tokens")
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    return model, call_id, _counts(prompt, completion, cached, 0)


def _counts(prompt: Any, completion: Any, read: Any, written: Any) -> list[int]:
    """Input, output, cache-read and cache-write tokens, each as the core takes it (anything
    but a positive ``int`` is 0: the end of a run never raises), within the input."""
    if type(prompt) is not int or prompt < 0:
        prompt = 0
    if type(completion) is not int or completion < 0:
        completion = 0
    if type(read) is not int or read < 0:
        read = 0
    elif read > prompt:
        read = prompt
    if type(written) is not int or written < 0:
        written = 0
    elif written > prompt - read:
        written = prompt - read
    return [prompt, completion, read, written]


def _provider_id(value: Any) -> str | None:
    """A provider's response id; not one LangChain made up for a message without one."""
    ok = isinstance(value, str) and value and not value.startswith(("lc_run-", "run-"))
    return value if ok else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
