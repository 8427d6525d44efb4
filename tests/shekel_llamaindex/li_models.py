"""Models that never reach the intercepted SDKs, prices, and a look at budget trees."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback

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
        found[b.full_name] = b.calls_used
        for child in b.children:
            walk(child)

    walk(root)
    return found


def paths(requests: Sequence[Any]) -> list[str]:
    return [request.path for request in requests]
