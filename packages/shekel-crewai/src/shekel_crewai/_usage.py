"""Usage CrewAI reports (``LLMCallCompletedEvent``) for calls no intercepted SDK carried. The
event comes twice, through a stream sink of each agent run (so the agent's next call is checked
against it) and later from CrewAI's event bus (calls outside agent runs); the call id makes the
second a no-op."""

from __future__ import annotations

import contextlib
from typing import Any, Final

from crewai.events.types.llm_events import LLMCallCompletedEvent
from crewai.types.usage_metrics import UsageMetrics

from shekel import BudgetExceededError, current_budget
from shekel.integration import record_unreported

from ._crews import applies

SOURCE: Final = "crewai"
_PROVIDERS: Final = "crewai.llms.providers."
_SDK_PROVIDERS: Final = ("crewai.llms.providers.openai", "crewai.llms.providers.anthropic")


def report(source: Any, event: Any) -> None:
    if not isinstance(event, LLMCallCompletedEvent):
        return
    budget, call_id = current_budget(), _call_id(source, event)
    if budget is None or call_id is None or not applies():
        return
    model = event.model if isinstance(event.model, str) and event.model else type(source).__name__
    usage = UsageMetrics.from_provider_dict(event.usage) if isinstance(event.usage, dict) else None
    # A limit this call crossed raises after recording it; raising here would break CrewAI's
    # event bookkeeping, and the agent is stopped before its next call anyway.
    with contextlib.suppress(BudgetExceededError):
        if usage is None:
            prompt, reply = _text(event.messages), _text(event.response)
            record_unreported(budget, model, prompt, reply, source=SOURCE, call_id=call_id)
        else:
            budget.record(
                model=model,
                input_tokens=usage.prompt_tokens,
                output_tokens=usage.completion_tokens,
                cached_input_tokens=min(usage.cached_prompt_tokens, usage.prompt_tokens),
                call_id=call_id,
                source=SOURCE,
            )


def _text(value: Any) -> str:
    """The text of a prompt (a string or chat messages) or of a reply."""
    if isinstance(value, list):
        return "\n".join(
            str(m.get("content") or "") if isinstance(m, dict) else str(m) for m in value
        )
    return "" if value is None else str(value)


def _call_id(llm: Any, event: Any) -> str | None:
    """The id to record the call under; ``None`` leaves it to the interception. CrewAI's own
    providers report the provider's response id, the interception's id for an OpenAI or
    Anthropic call, so that it counts once (one of those without it is the interception's).
    Other LLMs may repeat a made-up response id: CrewAI's id of the call is used."""
    modules = [cls.__module__ for cls in type(llm).__mro__]
    litellm = getattr(llm, "is_litellm", False) is True
    if litellm or any(module.startswith(_PROVIDERS) for module in modules):
        if isinstance(event.response_id, str) and event.response_id:
            return event.response_id
        if litellm or any(module.startswith(_SDK_PROVIDERS) for module in modules):
            return None
    return f"crewai:{event.call_id}"
