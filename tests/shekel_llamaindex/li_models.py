"""Models that never reach the intercepted SDKs, prices, and a look at budget trees."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.tools import ToolSelection

from shekel import Budget

GPT4O_MINI = (0.15, 0.60)  # USD per 1M input / output tokens
EMBEDDING_3_SMALL = 0.02  # USD per 1M input tokens
LOCAL = "local-model"
LOCAL_PRICES = {LOCAL: {"input": 1.0, "output": 2.0}, "local-embed": {"input": 0.5, "output": 0}}


def gpt4o_mini(inp: int, out: int) -> float:
    return (GPT4O_MINI[0] * inp + GPT4O_MINI[1] * out) / 1_000_000


def embedding(inp: int) -> float:
    return EMBEDDING_3_SMALL * inp / 1_000_000


def local(inp: int, out: int) -> float:
    return (1.0 * inp + 2.0 * out) / 1_000_000


class UsageLLM(CustomLLM):
    """A local model that reports its usage in ``raw``, as an HTTP-less model would; counts
    the times it really ran."""

    input_tokens: int = 100
    output_tokens: int = 10
    runs: int = 0

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=LOCAL)

    def _usage(self) -> dict[str, Any]:
        return {
            "usage": {"prompt_tokens": self.input_tokens, "completion_tokens": self.output_tokens}
        }

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.runs += 1
        return CompletionResponse(text="local answer", raw=self._usage())

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        self.runs += 1

        def gen() -> CompletionResponseGen:
            yield CompletionResponse(text="local", delta="local")
            yield CompletionResponse(text="local answer", delta=" answer", raw=self._usage())

        return gen()


class SilentLLM(UsageLLM):
    """A local model that reports no usage at all."""

    def _usage(self) -> dict[str, Any]:
        return {}


class ToolCallingLLM(FunctionCallingLLM):
    """A local function-calling model for workflow agents: on each of its first ``tool_turns``
    turns it asks for ``calls_per_turn`` calls of ``tool`` with ``tool_kwargs``, then it
    answers. It reports its usage in ``raw`` unless ``silent``; ``turns`` counts the times it
    ran."""

    model_name: str = LOCAL
    tool: str = "lookup"
    tool_kwargs: dict[str, Any] = {"query": "x"}  # noqa: RUF012 (pydantic copies defaults)
    tool_turns: int = 1
    calls_per_turn: int = 1
    silent: bool = False
    turns: int = 0

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model_name, is_function_calling_model=True)

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[Any],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            user_msg = ChatMessage(role="user", content=user_msg)
        if user_msg is not None:
            messages.append(user_msg)
        return {"messages": messages, **kwargs}

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        return [
            ToolSelection(tool_id=call["id"], tool_name=call["name"], tool_kwargs=call["kwargs"])
            for call in response.message.additional_kwargs.get("tool_calls", [])
        ]

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        self.turns += 1
        calls = [
            {"id": f"call-{self.turns}-{i}", "name": self.tool, "kwargs": self.tool_kwargs}
            for i in range(self.calls_per_turn if self.turns <= self.tool_turns else 0)
        ]
        message = ChatMessage(
            role="assistant",
            content="" if calls else "local answer",
            additional_kwargs={"tool_calls": calls},
        )
        usage = {"prompt_tokens": 100, "completion_tokens": 10}
        return ChatResponse(message=message, raw={} if self.silent else {"usage": usage})

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self.chat(messages, **kwargs)

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        raise NotImplementedError("ToolCallingLLM only chats")

    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        raise NotImplementedError("ToolCallingLLM only chats")

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        raise NotImplementedError("use the agent with streaming=False")

    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        raise NotImplementedError("use the agent with streaming=False")

    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        raise NotImplementedError("ToolCallingLLM only chats")

    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        raise NotImplementedError("ToolCallingLLM only chats")


class LocalEmbedding(BaseEmbedding):
    """An embedding model computed in process (no HTTP), reporting no usage."""

    model_name: str = "local-embed"
    runs: int = 0

    def _vector(self, text: str) -> list[float]:
        self.runs += 1
        return [float(len(text) % 7), 1.0, 0.5]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        await asyncio.sleep(0)
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)


def tree_of(root: Budget) -> dict[str, int]:
    """Every budget under ``root`` (itself included) by full name, with its LLM calls."""
    found: dict[str, int] = {}

    def walk(b: Budget) -> None:
        found[b.full_name] = b.snapshot().llm_calls_used
        for child in b.children:
            walk(child)

    walk(root)
    return found


def paths(requests: Sequence[Any]) -> list[str]:
    return [request.path for request in requests]
