"""Crews, LLMs and request-log readers shared by the CrewAI tests (imported after conftest
has set CrewAI's environment)."""

from __future__ import annotations

import itertools
import json
import threading
from collections import Counter
from typing import Any

import httpx
from crewai import LLM, Agent, BaseLLM, Crew, Task
from crewai.events.types.llm_events import LLMCallType
from crewai.llms.base_llm import llm_call_context
from crewai.llms.hooks.base import BaseInterceptor
from pydantic import Field, PrivateAttr

import shekel
from shekel.testing import FakeProvider

FINAL = "Thought: I now know the final answer\nFinal Answer: done"
ANALYST, WRITER = "Research Analyst", "Content Writer"
PRICES = {"gpt-4o-mini": {"input": 1.0, "output": 2.0}, "scripted-1": {"input": 3.0, "output": 5.0}}
"""USD per million tokens, given to the budgets so that every expected cost is plain arithmetic."""
IN, OUT = 1000, 100
"""Tokens the fake provider reports for every call."""
SCRIPTED_IN, SCRIPTED_OUT = 200, 20
"""Tokens :class:`ScriptedLLM` reports for every call."""


def cost(calls: int, model: str = "gpt-4o-mini") -> float:
    """What ``calls`` calls of ``model`` cost at :data:`PRICES`."""
    price = PRICES[model]
    tokens = (IN, OUT) if model == "gpt-4o-mini" else (SCRIPTED_IN, SCRIPTED_OUT)
    return calls * (tokens[0] * price["input"] + tokens[1] * price["output"]) / 1e6


def openai_llm(fake: FakeProvider, **extra: Any) -> LLM:
    """CrewAI's native OpenAI provider (the official openai SDK) talking to the fake."""
    return LLM(model="gpt-4o-mini", base_url=fake.openai_base_url, api_key="test", **extra)


class ScriptedLLM(BaseLLM):
    """A custom LLM that never reaches an SDK: it answers from ``script`` (then with a final
    answer) and reports each call as CrewAI's own providers do, with an
    ``LLMCallCompletedEvent`` carrying ``usage`` (none when ``usage`` is ``None``; no events at
    all when ``emit`` is false) and ``response_id``. With ``sends``, it reports that prompt as
    what it sent its model, as a wrapper of a completion model sends one prompt, not CrewAI's
    chat messages."""

    script: list[str] = Field(default_factory=list)
    usage: dict[str, int] | None = Field(
        default_factory=lambda: {"prompt_tokens": SCRIPTED_IN, "completion_tokens": SCRIPTED_OUT}
    )
    emit: bool = True
    response_id: str | None = None
    sends: str | None = None
    _calls: int = PrivateAttr(default=0)
    _counted: list[int | None] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def calls(self) -> int:
        return self._calls

    @property
    def counted(self) -> list[int | None]:
        """``calls_used`` of the active budget right after each call reported itself, before
        ``call()`` returned (``None`` with no budget active)."""
        return self._counted

    def call(
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> str:
        with self._lock:
            turn = self._calls
            self._calls += 1
        text = self.script[turn] if turn < len(self.script) else FINAL
        if self.emit:
            with llm_call_context():
                self._emit_call_started_event(
                    messages=messages, from_task=from_task, from_agent=from_agent
                )
                self._emit_call_completed_event(
                    response=text,
                    call_type=LLMCallType.LLM_CALL,
                    from_task=from_task,
                    from_agent=from_agent,
                    messages=messages if self.sends is None else self.sends,
                    usage=self.usage,
                    response_id=self.response_id,
                )
        active = shekel.current_budget()
        self._counted.append(None if active is None else active.snapshot().llm_calls_used)
        return text

    async def acall(self, *args: Any, **kwargs: Any) -> str:
        return self.call(*args, **kwargs)

    def supports_function_calling(self) -> bool:
        return False


def two_agent_crew(
    llm: Any,
    writer_llm: Any = None,
    *,
    analyst_tasks: int = 1,
    agent_options: dict[str, Any] | None = None,
    task_options: dict[str, Any] | None = None,
    crew_options: dict[str, Any] | None = None,
) -> Crew:
    """A Research Analyst with ``analyst_tasks`` tasks ("research", "research 2"...), then a
    Content Writer with one ("write"), run in that order."""
    agent_options = agent_options or {}
    task_options = task_options or {}
    analyst = Agent(
        role=ANALYST, goal="Find facts", backstory="A careful analyst.", llm=llm, **agent_options
    )
    writer = Agent(
        role=WRITER,
        goal="Write a report",
        backstory="A clear writer.",
        llm=writer_llm or llm,
        **agent_options,
    )
    tasks = [
        Task(
            name="research" if i == 0 else f"research {i + 1}",
            description=f"Research topic {i + 1}",
            expected_output="notes",
            agent=analyst,
            **task_options,
        )
        for i in range(analyst_tasks)
    ]
    tasks.append(
        Task(
            name="write",
            description="Write it up",
            expected_output="text",
            agent=writer,
            **task_options,
        )
    )
    return Crew(agents=[analyst, writer], tasks=tasks, **(crew_options or {}))


def requests_by_role(fake: FakeProvider, path: str = "/v1/chat/completions") -> Counter[str]:
    """How many generation requests each agent sent, read from the system prompt CrewAI
    writes for it ("You are <role>. ...")."""
    counts: Counter[str] = Counter()
    for request in fake.requests:
        if request.path != path:
            continue
        text = str(request.body.get("messages", "")) + str(request.body.get("system", ""))
        roles = [role for role in (ANALYST, WRITER, "Crew Manager") if f"You are {role}" in text]
        counts[roles[0] if len(roles) == 1 else "?"] += 1
    return counts


class LLMCallCounter:
    """A CrewAI ``before_llm_call`` hook of the test's own: counts the calls CrewAI *tries*
    per role (a retried task tries again), whether or not they are sent."""

    def __init__(self) -> None:
        self.tries: Counter[str] = Counter()

    def __call__(self, context: Any) -> None:
        self.tries[getattr(getattr(context, "agent", None), "role", "?")] += 1


_call_ids = itertools.count(1)


class ToolCallsFirst(BaseInterceptor[httpx.Request, httpx.Response]):
    """A CrewAI transport interceptor that turns the fake provider's first answers into native
    tool calls, one per ``(tool, arguments)`` given (the fake only ever answers with text);
    usage and response ids stay the fake's."""

    def __init__(self, *calls: tuple[str, dict[str, Any]]) -> None:
        self.calls = list(calls)

    def on_outbound(self, message: httpx.Request) -> httpx.Request:
        return message

    def on_inbound(self, message: httpx.Response) -> httpx.Response:
        if not self.calls:
            return message
        body = json.loads(message.read())
        tool, arguments = self.calls.pop(0)
        body["choices"][0]["finish_reason"] = "tool_calls"
        body["choices"][0]["message"] = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_{next(_call_ids)}",
                    "type": "function",
                    "function": {"name": tool, "arguments": json.dumps(arguments)},
                }
            ],
        }
        return httpx.Response(message.status_code, json=body)


def child(budget: shekel.Budget, *names: str) -> shekel.Budget:
    """The descendant of ``budget`` at ``names``, one child's name per level."""
    for name in names:
        found = budget.find_child(name)
        assert found is not None, f"{budget.full_name!r} has no child {name!r}"
        budget = found
    return budget
