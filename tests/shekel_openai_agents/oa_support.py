"""What the tests of shekel-openai-agents share: models pointed at the fake provider, a model
that never reaches an SDK, and a tracing processor that remembers what it saw."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

from agents import ModelResponse, OpenAIChatCompletionsModel, OpenAIResponsesModel, Usage
from agents.models.interface import Model
from agents.tracing import Span, Trace, TracingProcessor
from openai import AsyncOpenAI
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from shekel.testing import FakeProvider

IN, OUT = 1000, 100  # every fake reply's usage (unless a reply says otherwise)
MODEL = "gpt-4o-mini"
CALL_USD = IN * 0.15e-6 + OUT * 0.6e-6  # one call of gpt-4o-mini


def client(fake: FakeProvider) -> AsyncOpenAI:
    """A new client per run: one must not serve two event loops (``run_sync`` makes one)."""
    return AsyncOpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0)


def responses(fake: FakeProvider) -> OpenAIResponsesModel:
    return OpenAIResponsesModel(MODEL, client(fake))


def chat(fake: FakeProvider) -> OpenAIChatCompletionsModel:
    return OpenAIChatCompletionsModel(MODEL, client(fake))


class LocalModel(Model):
    """A model that reaches no SDK: it answers ``text``, reporting ``usage`` (none by default);
    with ``calls_tool``, its first answer calls that tool (a handoff's ``transfer_to_...``)."""

    def __init__(
        self, text: str = "local answer", usage: Usage | None = None, calls_tool: str = ""
    ) -> None:
        self.model = MODEL  # named after a model shekel can price
        self.text = text
        self.usage = usage or Usage()
        self.calls_tool = calls_tool
        self.calls = 0

    def _response(self) -> ModelResponse:
        self.calls += 1
        output: list[Any]
        if self.calls_tool and self.calls == 1:
            output = [
                ResponseFunctionToolCall(
                    type="function_call", call_id="call_local", name=self.calls_tool, arguments="{}"
                )
            ]
        else:
            part = ResponseOutputText(type="output_text", text=self.text, annotations=[])
            output = [
                ResponseOutputMessage(
                    id="msg_local",
                    type="message",
                    role="assistant",
                    status="completed",
                    content=[part],
                )
            ]
        return ModelResponse(output=output, usage=self.usage, response_id=None)

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        return self._response()

    async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        """The same answer as one ``response.completed`` event, with the same usage."""
        answer = self._response()
        usage = None
        if answer.usage.requests:
            usage = {
                "input_tokens": answer.usage.input_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": answer.usage.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": answer.usage.total_tokens,
            }
        response = Response.model_validate(
            {
                "id": "resp_local",
                "created_at": 0,
                "model": MODEL,
                "object": "response",
                "output": [item.model_dump() for item in answer.output],
                "parallel_tool_calls": False,
                "tool_choice": "auto",
                "tools": [],
                "usage": usage,
            }
        )
        yield ResponseCompletedEvent(
            type="response.completed", response=response, sequence_number=0
        )


class SpanLog(TracingProcessor):
    """Every trace and span started and ended, by id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self.started: dict[str, Any] = {}
        self.ended: dict[str, Any] = {}
        self.traces_started: list[str] = []
        self.traces_ended: list[str] = []

    def on_trace_start(self, trace: Trace) -> None:
        with self._lock:
            self.traces_started.append(trace.trace_id)

    def on_trace_end(self, trace: Trace) -> None:
        with self._lock:
            self.traces_ended.append(trace.trace_id)

    def on_span_start(self, span: Span[Any]) -> None:
        with self._lock:
            self.started[span.span_id] = span

    def on_span_end(self, span: Span[Any]) -> None:
        with self._lock:
            self.ended[span.span_id] = span

    def open_spans(self) -> list[str]:
        return [type(s.span_data).__name__ for i, s in self.started.items() if i not in self.ended]

    def agent_spans(self) -> list[str]:
        return [s.span_data.name for s in self.started.values() if s.span_data.type == "agent"]

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass
