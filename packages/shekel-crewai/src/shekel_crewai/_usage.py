"""Usage CrewAI reports for LLM calls no intercepted SDK carried (custom ``BaseLLM``s, Gemini,
Bedrock, Azure AI Inference...): recorded once per call, from ``LLMCallCompletedEvent``.

The event reaches shekel twice, and is recorded by whichever comes first (the call id makes
the second one a no-op):

- synchronously, in the thread that made the call, through a CrewAI stream sink that each
  agent run adds to its context: the spend is on the agent's budget before the agent's next
  LLM call is checked;
- through a global handler on CrewAI's event bus, which runs shortly after on a worker thread
  (with a copy of the caller's context, so the same budget pays), for calls made outside an
  agent run (output conversion, guardrails, a standalone ``Agent.kickoff()``). A ``kickoff()``
  that succeeds waits for those handlers before it returns.

Calls of the OpenAI and Anthropic providers are recorded by shekel's HTTP interception. Their
events are reported under the provider's response id, the id the interception records them
under, so they count once; one without a response id is left to the interception (see
``_call_id``).
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable
from contextvars import Token
from typing import Any, Final

from crewai.events import crewai_event_bus
from crewai.events.types.llm_events import LLMCallCompletedEvent
from crewai.types.usage_metrics import UsageMetrics

from shekel import BudgetExceededError, UsageMissingWarning, current_budget

SOURCE: Final = "crewai"

# CrewAI's own providers, and those of them that call the openai or anthropic SDK, which
# shekel's interception records (subclasses included; litellm counts as one of them).
_PROVIDERS: Final = "crewai.llms.providers."
_SDK_PROVIDERS: Final = ("crewai.llms.providers.openai", "crewai.llms.providers.anthropic")

_registered: list[Callable[[Any, Any], None]] = []
_warned_models: set[str] = set()
_warned_lock = threading.Lock()

try:  # an internal module of CrewAI: without it, usage is recorded by the event bus alone
    from crewai.events.stream_context import add_stream_sink, reset_stream_sinks
except ImportError:  # pragma: no cover - every supported release has it
    add_stream_sink = None  # type: ignore[assignment]
    reset_stream_sinks = None  # type: ignore[assignment]


def report(source: Any, event: Any) -> None:
    """Record the usage of one completed LLM call on the budget active where it was made."""
    if not isinstance(event, LLMCallCompletedEvent):
        return
    budget = current_budget()
    if budget is None:
        return
    call_id = _call_id(source, event)
    if call_id is None:
        return
    model = event.model if isinstance(event.model, str) and event.model else _llm_name(source)
    usage = UsageMetrics.from_provider_dict(event.usage) if isinstance(event.usage, dict) else None
    if usage is None:
        _warn_no_usage(model, source)
    tokens = (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)
    cached = min(usage.cached_prompt_tokens, usage.prompt_tokens) if usage else 0
    # A limit crossed by this call raises after recording it; raising from here would break
    # CrewAI's event bookkeeping, and the agent is stopped before its next LLM call anyway.
    with contextlib.suppress(BudgetExceededError):
        budget.record(
            model=model,
            input_tokens=tokens[0],
            output_tokens=tokens[1],
            cached_input_tokens=cached,
            call_id=call_id,
            source=SOURCE,
            estimated=usage is None,
        )


def add_sink() -> Token[Any] | None:
    """Receive this context's events synchronously (until :func:`remove_sink`)."""
    return add_stream_sink(report) if add_stream_sink is not None else None


def remove_sink(token: Token[Any] | None) -> None:
    if token is not None and reset_stream_sinks is not None:
        reset_stream_sinks(token)


def register() -> None:
    """Subscribe :func:`report` to CrewAI's event bus (once per process)."""
    if not _registered:
        handler: Callable[[Any, Any], None] = report
        crewai_event_bus.on(LLMCallCompletedEvent)(handler)
        _registered.append(handler)


def _call_id(llm: Any, event: Any) -> str | None:
    """The id the call is recorded under, or ``None`` to leave it to the interception.

    CrewAI's own providers report the provider's response id: the id the interception records
    an OpenAI or Anthropic call under, so that the call counts once (and a provider the
    interception may learn later, Gemini or Bedrock, is covered the same way). A provider of
    the openai or anthropic SDK without a response id is left to the interception. Any other
    LLM (a custom ``BaseLLM`` may give the same made-up id every time) is recorded under
    CrewAI's own id of the call, unique per call.
    """
    classes = [cls.__module__ for cls in type(llm).__mro__]
    builtin = getattr(llm, "is_litellm", False) is True or any(
        module.startswith(_PROVIDERS) for module in classes
    )
    if builtin and isinstance(event.response_id, str) and event.response_id:
        return event.response_id
    through_sdk = getattr(llm, "is_litellm", False) is True or any(
        module.startswith(_SDK_PROVIDERS) for module in classes
    )
    if through_sdk:
        return None
    return f"crewai:{event.call_id}"


def _llm_name(llm: Any) -> str:
    return type(llm).__name__ or "unknown"


def _warn_no_usage(model: str, llm: Any) -> None:
    with _warned_lock:
        if model in _warned_models:
            return
        _warned_models.add(model)
    warnings.warn(
        UsageMissingWarning(
            f"CrewAI reported a call of model {model!r} ({_llm_name(llm)}) without token "
            "usage: shekel counted the call but not its tokens or cost. Pass usage= to the "
            "LLMCallCompletedEvent your LLM emits (self._emit_call_completed_event(..., "
            "usage={'prompt_tokens': ..., 'completion_tokens': ...}))"
        ),
        stacklevel=2,
    )
