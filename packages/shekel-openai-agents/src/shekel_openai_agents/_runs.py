"""One run of the SDK inside a budget: which agent pays for a request (the router), and the
hooks that stop an agent before its model call, count its tools and report the usage of models
no intercepted SDK carried.

Nothing is activated. The router answers at send time from the SDK's own context: its current
span, and the spans that were current when it started, up to the innermost agent span (open
whether tracing is on or off). Hooks only check and record.
"""

from __future__ import annotations

import json
from contextlib import suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final

from agents import RunHooks
from agents.lifecycle import RunHooksBase
from agents.tracing import get_current_span
from agents.tracing.span_data import AgentSpanData
from agents.tracing.spans import Span

from shekel import Budget, BudgetExceededError, ToolCall, current_budget
from shekel.integration import CallRoute, record_unreported

from ._limits import LIMITS, Block, agent_error, payer

SOURCE: Final = "openai-agents"


@dataclass(eq=False)
class Run:
    base: Budget  # the budget active where the run began
    block: Block | None  # the agent_budgets() block around it
    sent: bool = False  # a request of the model call in progress went through the interceptor
    prompt: str = ""  # that call's instructions and input, for an estimate
    tools: dict[object, ToolCall] = field(default_factory=dict)  # counted, not settled yet

    def payer(self, agent: str) -> Budget:
        return payer(self.base, agent, self.block)


RUN: Final[ContextVar[Run | None]] = ContextVar("shekel_openai_agents_run", default=None)


def begin(kwargs: dict[str, Any]) -> Run | None:
    """A run starting with ``kwargs``, inside a budget: its state, with its hooks put first in
    ``kwargs``; else ``None``, and nothing changed."""
    base, given = current_budget(), kwargs.get("hooks")
    if base is None or not (given is None or isinstance(given, RunHooksBase)):
        return None  # outside any budget; or hooks the SDK will refuse, left for it to say so
    run = Run(base, LIMITS.get())
    kwargs["hooks"] = Hooks(run, given)
    return run


def agent_here() -> str | None:
    """The name of the agent whose span is the innermost open here: the SDK's current span,
    else the span that was current when that one started, and so on."""
    span: Any = get_current_span()
    for _ in range(256):  # spans nest a few levels deep; bounded, should a chain loop
        if not isinstance(span, Span):
            return None
        if isinstance(span.span_data, AgentSpanData):
            return span.span_data.name
        span = getattr(getattr(span, "_prev_span_token", None), "old_value", None)
    return None


def route(active: Budget | None) -> CallRoute | None:
    """The router: a request sent inside a run pays into the budget of the agent whose span is
    open, unless a budget entered inside the run (in a tool, say) is active: then that one."""
    run = RUN.get()
    if run is None or active is not run.base:
        return None
    agent = agent_here()
    if agent is None:
        return None
    run.sent = True
    return CallRoute(run.payer(agent))


class Hooks(RunHooks[Any]):
    """shekel's run hooks, then the caller's (``hooks=``), whose other methods are theirs."""

    def __init__(self, run: Run, inner: RunHooksBase[Any, Any] | None) -> None:
        self.run = run
        self.inner: RunHooksBase[Any, Any] = inner if inner is not None else RunHooks()
        for name in dir(RunHooksBase):
            if name.startswith("on_") and name not in Hooks.__dict__:
                setattr(self, name, getattr(self.inner, name))

    async def on_llm_start(
        self, context: Any, agent: Any, system_prompt: str | None, input_items: Any
    ) -> None:
        self.run.sent, self.run.prompt = False, _text([system_prompt, input_items])
        try:  # the check the interceptor makes, made for every model, before anything is sent
            self.run.payer(agent.name).check()
        except BudgetExceededError as error:
            raise agent_error(error, agent.name) from None
        await self.inner.on_llm_start(context, agent, system_prompt, input_items)

    async def on_llm_end(self, context: Any, agent: Any, response: Any) -> None:
        if not self.run.sent:  # a model no intercepted SDK carried: its usage, as it reports it
            report(self.run.payer(agent.name), agent, response, self.run.prompt)
        await self.inner.on_llm_end(context, agent, response)

    async def on_tool_start(self, context: Any, agent: Any, tool: Any) -> None:
        await self.inner.on_tool_start(context, agent, tool)
        arguments = getattr(context, "tool_arguments", None)
        with suppress(TypeError, ValueError):
            arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
        budget = self.run.payer(agent.name)  # raises below before the tool runs: the run ends
        self.run.tools[tool_key(context)] = budget.tool_call(tool.name, arguments=arguments)

    async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: Any) -> None:
        call = self.run.tools.pop(tool_key(context), None)
        if call is not None and not call.settled:
            call.commit()
        await self.inner.on_tool_end(context, agent, tool, result)


def tool_key(context: Any) -> object:
    """A tool call's key: its call id (function tools), else its context (other tools)."""
    return getattr(context, "tool_call_id", None) or id(context)


def release(run: Run | None, key: object = None) -> None:
    """Give back the open tool call of ``key`` (every one, if ``None``): its tool raised."""
    if run is not None:
        for found in [key] if key is not None else list(run.tools):
            call = run.tools.pop(found, None)
            if call is not None:
                call.release()


def report(budget: Budget, agent: Any, response: Any, prompt: str) -> None:
    """Record a model call the interceptor did not see (under no call id: such a model may
    repeat a made-up one). A cap it crosses is not raised here (the run would fail in a hook):
    the agent's next call is refused."""
    usage, model = response.usage, getattr(agent.model, "model", agent.model)
    model = model if isinstance(model, str) and model else type(agent.model).__name__
    with suppress(BudgetExceededError):
        if usage.input_tokens or usage.output_tokens:
            details = getattr(usage, "input_tokens_details", None)
            cached = getattr(details, "cached_tokens", 0) or 0
            budget.record(
                model=model,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cached_input_tokens=min(cached, usage.input_tokens),
                source=SOURCE,
            )
        else:
            reply = _text([getattr(item, "content", None) for item in response.output])
            record_unreported(budget, model, prompt, reply, source=SOURCE)


def _text(value: Any) -> str:
    """The text in instructions, input or output items: strings, dicts or models."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "\n".join(filter(None, map(_text, value)))
    found = value.get("content") or value.get("text") if isinstance(value, dict) else None
    found = found or getattr(value, "content", None) or getattr(value, "text", None)
    return _text(found) if found is not None and found is not value else ""
