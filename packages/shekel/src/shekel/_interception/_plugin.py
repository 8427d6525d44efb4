"""shekel's built-in interception, registered like any plugin (entry point ``shekel``)."""

from __future__ import annotations

from collections.abc import Sequence

from .._plugins import hookimpl
from ._adapter import ProtocolAdapter
from ._anthropic import MessagesAdapter
from ._bedrock import ConverseAdapter, InvokeModelAdapter
from ._cohere import CohereChatAdapter, CohereEmbedAdapter
from ._gemini import EmbedContentAdapter, GenerateContentAdapter
from ._httpx_patch import install
from ._ollama import OllamaChatAdapter, OllamaEmbedAdapter
from ._openai import ChatCompletionsAdapter, EmbeddingsAdapter, ResponsesAdapter


@hookimpl
def shekel_install() -> None:
    install()


@hookimpl
def shekel_protocol_adapters() -> Sequence[ProtocolAdapter]:
    return [
        ChatCompletionsAdapter(),
        ResponsesAdapter(),
        EmbeddingsAdapter(),
        MessagesAdapter(),
        GenerateContentAdapter(),
        EmbedContentAdapter(),
        ConverseAdapter(),
        InvokeModelAdapter(),
        OllamaChatAdapter(),
        OllamaEmbedAdapter(),
        CohereChatAdapter(),
        CohereEmbedAdapter(),
    ]
