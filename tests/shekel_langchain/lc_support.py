"""Helpers of the shekel-langchain tests: models that never reach an SDK, who paid for which
request, and observers of LangChain runs."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForLLMRun
from langchain_core.language_models import LLM, BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import (
    ChatGeneration,
    ChatGenerationChunk,
    ChatResult,
    Generation,
    LLMResult,
)
from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.tracers.base import BaseTracer
from langchain_core.tracers.schemas import Run as TracedRun

from shekel import Budget
from shekel.testing import FakeProvider
from shekel_langchain import ShekelCallbackHandler

GPT = "gpt-4o-mini"
CLAUDE = "claude-3-haiku-20240307"
GPT_IN, GPT_OUT = 0.15, 0.60  # USD per million tokens
FAKE_IN, FAKE_OUT = 12, 3  # what the fake provider reports when not told otherwise


def gpt_cost(calls: int, input_tokens: int = FAKE_IN, output_tokens: int = FAKE_OUT) -> float:
    return calls * (input_tokens * GPT_IN + output_tokens * GPT_OUT) / 1_000_000


def usage(input_tokens: int, output_tokens: int) -> UsageMetadata:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def fake_model(
    input_tokens: int = 100,
    output_tokens: int = 10,
    model: str | None = GPT,
    replies: int | None = None,
) -> GenericFakeChatModel:
    """LangChain's fake chat model, answering like a real one (usage and model name) without
    reaching any SDK; ``replies`` answers at most, else as many as asked."""
    message = AIMessage(
        "a local answer",
        usage_metadata=usage(input_tokens, output_tokens),
        response_metadata={"model_name": model} if model else {},
    )
    answers = itertools.repeat(message) if replies is None else iter([message] * replies)
    return GenericFakeChatModel(messages=answers)


class StreamingLocalModel(BaseChatModel):
    """A local chat model that streams its words and reports usage on the last chunk, as
    ChatOpenAI does with ``stream_usage=True``."""

    model_name: str = GPT
    input_tokens: int = 100

    @property
    def _llm_type(self) -> str:
        return "streaming-local"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        words = str(messages[-1].content).split()
        message = AIMessage(
            " ".join(words),
            usage_metadata=usage(self.input_tokens, len(words)),
            response_metadata={"model_name": self.model_name},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        words = str(messages[-1].content).split()
        for word in words:
            yield ChatGenerationChunk(message=AIMessageChunk(content=word + " "))
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=usage(self.input_tokens, len(words)),
                response_metadata={"model_name": self.model_name},
                chunk_position="last",
            )
        )


class LocalTextLLM(LLM):
    """A local text-completion model reporting OpenAI-style ``llm_output`` usage."""

    @property
    def _llm_type(self) -> str:
        return "local-text"

    def _call(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        return prompt.upper()

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        return LLMResult(
            generations=[[Generation(text=p.upper())] for p in prompts],
            llm_output={
                "token_usage": {"prompt_tokens": 40, "completion_tokens": 4},
                "model_name": GPT,
            },
        )


class SdkChatModel(BaseChatModel):
    """A chat model of no LangChain provider package that calls the openai SDK itself."""

    client: Any

    @property
    def _llm_type(self) -> str:
        return "own-openai-wrapper"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        response = self.client.chat.completions.create(
            model=GPT, messages=[{"role": "user", "content": str(messages[-1].content)}]
        )
        message = AIMessage(
            response.choices[0].message.content or "",
            id=response.id,
            usage_metadata=usage(response.usage.prompt_tokens, response.usage.completion_tokens),
            response_metadata={"model_name": response.model},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


# -- who paid for what ------------------------------------------------------------------------


def tree_of(root: Budget) -> list[Budget]:
    found = [root]
    for child in root.children:
        found.extend(tree_of(child))
    return found


def payers(root: Budget) -> dict[str, str]:
    """Response id -> full name of the budget that recorded it, over ``root``'s tree."""
    return {c["call_id"]: c["budget"] for c in root.summary_data()["calls"] if c["call_id"]}


def models_charged(root: Budget, full_name: str) -> list[str]:
    """The models of the calls recorded on the budget ``full_name`` itself (not below it)."""
    return [c["model"] for c in root.summary_data()["calls"] if c["budget"] == full_name]


def response_id(message: Any) -> str:
    """The provider's id of the response a LangChain message or SDK object came from."""
    if isinstance(message, BaseMessage):
        return str(message.response_metadata.get("id") or message.id)
    return str(message.id)


def paid(root: Budget, answers: dict[str, Any]) -> dict[str, str]:
    """Prompt -> budget that paid for it, for answers given as {prompt: message}."""
    ids = payers(root)
    return {
        prompt: ids.get(response_id(answer), "<unrecorded>") for prompt, answer in answers.items()
    }


def prompts_sent(fake: FakeProvider) -> list[str]:
    """The last user message of every generation request the fake received."""
    sent = []
    for request in fake.requests:
        messages = request.body.get("messages") or []
        if messages:
            content = messages[-1]["content"]
            if isinstance(content, list):
                content = "".join(part.get("text", "") for part in content)
            sent.append(content)
    return sent


def by_prompt(prompts: Sequence[str], answers: Sequence[Any]) -> dict[str, Any]:
    assert len(prompts) == len(answers)
    return dict(zip(prompts, answers, strict=True))


# -- observers ---------------------------------------------------------------------------------


class Tracer(BaseTracer):
    """A tracer as LangSmith's is built: it keeps every started run until it ends."""

    def __init__(self) -> None:
        super().__init__()
        self.finished: list[TracedRun] = []

    def _persist_run(self, run: TracedRun) -> None:
        self.finished.append(run)

    @property
    def open_runs(self) -> list[str]:
        return [run.name for run in self.run_map.values()]


def shekel_handlers_here() -> list[BaseCallbackHandler]:
    """The shekel handlers LangChain passes to runs started from the current body."""
    config: Any = var_child_runnable_config.get()
    if not config:
        return []
    callbacks = config.get("callbacks")
    handlers = getattr(callbacks, "handlers", callbacks) or []
    return [h for h in handlers if isinstance(h, ShekelCallbackHandler)]


def run(coro: Any) -> Any:
    """One event loop per call (LangChain's SDK clients are bound to the loop they met)."""
    return asyncio.run(coro)
