"""The endpoints the fake provider serves: which protocol each path speaks, how it reads the
request and how it shapes the answer, plain or streamed."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

import shekel.testing._anthropic_wire as anthropic_wire
import shekel.testing._bedrock_wire as bedrock_wire
import shekel.testing._cohere_wire as cohere_wire
import shekel.testing._gemini_wire as gemini_wire
import shekel.testing._ollama_wire as ollama_wire
import shekel.testing._openai_wire as openai_wire
from shekel.testing._common import JSON, Event, Rejection, Turn

Dialect = Literal["openai", "anthropic", "gemini", "bedrock", "ollama", "cohere"]

SSE = "text/event-stream; charset=utf-8"


def _no_check(body: JSON) -> Rejection | None:
    return None


def _no_limit(body: JSON) -> int | None:
    return None


def _stream_flag(body: JSON) -> bool:
    return body.get("stream") is True


def _never(body: JSON) -> bool:
    return False


def _always(body: JSON) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One endpoint: its protocol, what it refuses, and its answers.

    ``free`` answers requests that take no scripted reply and cost nothing (token counting);
    the others take the next :class:`~shekel.testing.Reply`.
    """

    dialect: Dialect
    plain: Callable[[JSON, Turn], JSON] | None = None
    stream: Callable[[JSON, Turn], list[Event]] | None = None
    check: Callable[[JSON], Rejection | None] = _no_check
    max_tokens: Callable[[JSON], int | None] = _no_limit
    echo_text: Callable[[JSON], str | None] = lambda body: None
    streams: Callable[[JSON], bool] = _stream_flag
    stream_type: str = SSE
    free: Callable[[JSON], JSON] | None = None


def _openai_embeddings(body: JSON, turn: Turn) -> JSON:
    return openai_wire.embeddings(body, turn.input_tokens)


_EXACT: dict[str, Endpoint] = {
    "/v1/chat/completions": Endpoint(
        "openai",
        openai_wire.chat_completion,
        openai_wire.chat_stream,
        openai_wire.chat_check,
        openai_wire.chat_max_tokens,
        openai_wire.chat_echo_text,
    ),
    "/v1/responses": Endpoint(
        "openai",
        openai_wire.response_object,
        openai_wire.responses_stream,
        openai_wire.responses_check,
        openai_wire.responses_max_tokens,
        openai_wire.responses_echo_text,
    ),
    "/v1/embeddings": Endpoint("openai", _openai_embeddings, streams=_never),
    "/v1/messages": Endpoint(
        "anthropic",
        anthropic_wire.message,
        anthropic_wire.message_stream,
        anthropic_wire.check,
        anthropic_wire.max_tokens,
        anthropic_wire.echo_text,
    ),
    "/v1/messages/count_tokens": Endpoint("anthropic", free=anthropic_wire.count_tokens),
    "/api/chat": Endpoint(
        "ollama",
        ollama_wire.chat,
        ollama_wire.chat_stream,
        ollama_wire.check,
        ollama_wire.max_tokens,
        ollama_wire.chat_echo_text,
        streams=ollama_wire.streams,
        stream_type=ollama_wire.NDJSON,
    ),
    "/api/generate": Endpoint(
        "ollama",
        ollama_wire.generate,
        ollama_wire.generate_stream,
        ollama_wire.check,
        ollama_wire.max_tokens,
        ollama_wire.generate_echo_text,
        streams=ollama_wire.streams,
        stream_type=ollama_wire.NDJSON,
    ),
    "/api/embed": Endpoint("ollama", ollama_wire.embed, check=ollama_wire.check, streams=_never),
    "/v2/chat": Endpoint(
        "cohere",
        cohere_wire.chat,
        cohere_wire.chat_stream,
        cohere_wire.check,
        cohere_wire.max_tokens,
        cohere_wire.echo_text,
    ),
    "/v2/embed": Endpoint(
        "cohere", cohere_wire.embed, check=cohere_wire.embed_check, streams=_never
    ),
}

_GATEWAY_SUFFIXES = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings")

_GEMINI_GENERATE = Endpoint(
    "gemini",
    gemini_wire.generate,
    gemini_wire.generate_stream,
    gemini_wire.check,
    gemini_wire.max_tokens,
    gemini_wire.echo_text,
    streams=_never,
)
_GEMINI: dict[str, Endpoint] = {
    "generateContent": _GEMINI_GENERATE,
    "streamGenerateContent": Endpoint(
        "gemini",
        gemini_wire.generate,
        gemini_wire.generate_stream,
        gemini_wire.check,
        gemini_wire.max_tokens,
        gemini_wire.echo_text,
        streams=_always,
    ),
    "embedContent": Endpoint("gemini", gemini_wire.embed, streams=_never),
    "batchEmbedContents": Endpoint("gemini", gemini_wire.embed, streams=_never),
    "countTokens": Endpoint("gemini", free=gemini_wire.count_tokens),
}
# Gemini API: /v1beta/models/{model}:{method}; Vertex AI: .../publishers/google/models/...
_GEMINI_PATH = re.compile(r"/models/([^/:]+):(\w+)$")

_BEDROCK: dict[str, Endpoint] = {
    "converse": Endpoint(
        "bedrock",
        bedrock_wire.converse,
        bedrock_wire.converse_stream,
        bedrock_wire.converse_check,
        bedrock_wire.converse_max_tokens,
        bedrock_wire.converse_echo_text,
        streams=_never,
    ),
    "converse-stream": Endpoint(
        "bedrock",
        bedrock_wire.converse,
        bedrock_wire.converse_stream,
        bedrock_wire.converse_check,
        bedrock_wire.converse_max_tokens,
        bedrock_wire.converse_echo_text,
        streams=_always,
        stream_type=bedrock_wire.EVENT_STREAM,
    ),
    "invoke": Endpoint(
        "bedrock",
        bedrock_wire.invoke,
        None,
        bedrock_wire.invoke_check,
        bedrock_wire.invoke_max_tokens,
        bedrock_wire.invoke_echo_text,
        streams=_never,
    ),
}
_BEDROCK_PATH = re.compile(r"^/model/([^/]+)/([a-z-]+)$")

ERRORS: dict[Dialect, Callable[[int, str, Rejection | None], JSON]] = {
    "openai": openai_wire.error_body,
    "anthropic": anthropic_wire.error_body,
    "gemini": gemini_wire.error_body,
    "bedrock": bedrock_wire.error_body,
    "ollama": ollama_wire.error_body,
    "cohere": cohere_wire.error_body,
}


def error_headers(dialect: Dialect, status: int) -> list[tuple[str, str]]:
    """Headers an error of ``dialect`` carries besides its body."""
    if dialect == "bedrock":
        return [("x-amzn-ErrorType", f"{bedrock_wire.error_type(status)}:http://internal/")]
    return []


def resolve(path: str) -> tuple[Endpoint, JSON] | None:
    """The endpoint serving ``path``, and what its path says that the body does not (the model
    of a Gemini request); ``None`` for a path no endpoint serves."""
    found = _EXACT.get(path)
    if found is not None:
        return found, {}
    for suffix in _GATEWAY_SUFFIXES:  # OpenAI's API behind a gateway's prefix
        if path.endswith(suffix):
            return _EXACT[suffix], {}
    gemini = _GEMINI_PATH.search(path)
    if gemini is not None and gemini.group(2) in _GEMINI:
        return _GEMINI[gemini.group(2)], {"model": gemini.group(1)}
    bedrock = _BEDROCK_PATH.match(path)
    if bedrock is not None and bedrock.group(2) in _BEDROCK:
        return _BEDROCK[bedrock.group(2)], {"model": unquote(bedrock.group(1))}
    return None


def dialect_of(path: str, headers: dict[str, str]) -> Dialect:
    """Whose error shape a request gets when no endpoint serves it."""
    if path.startswith("/v1/messages") or "anthropic-version" in headers:
        return "anthropic"
    if path.startswith("/model/"):
        return "bedrock"
    if path.startswith("/api/"):
        return "ollama"
    if path.startswith("/v2/"):
        return "cohere"
    if ":" in path or path.startswith(("/v1beta", "/v1beta1", "/v1/projects")):
        return "gemini"
    return "openai"
