"""Google's Gemini protocol (``google-genai``, LangChain's ``ChatGoogleGenerativeAI``, LiteLLM's
``gemini/`` and ``vertex_ai/`` models): ``generateContent``, ``streamGenerateContent`` and the
embedding methods, on the Gemini API (``generativelanguage.googleapis.com``) and Vertex AI
(``aiplatform.googleapis.com``) alike.

The model is named in the URL path (``.../models/gemini-2.5-flash:generateContent``), and so is
streaming (``:streamGenerateContent``, server-sent events with ``?alt=sse``). Usage comes as
``usageMetadata``: the prompt (cached tokens included), the candidates, the thinking tokens
(``thoughtsTokenCount``, billed as output) and the prompt of tool use (billed as input).
"""

from __future__ import annotations

import re
from typing import Any, Final

from .._pricing import TokenUsage
from ._adapter import (
    PathInfo,
    ProtocolAdapter,
    RequestInfo,
    StreamTally,
    event_json,
    peek_object,
    peek_string,
    split_events,
    streamed_text_tokens,
    token_count,
)

_METHOD: Final = re.compile(r"/models/([^/:]+):(\w+)$")
_GENERATE: Final = ("generateContent", "streamGenerateContent")


def gemini_usage(usage: object) -> TokenUsage | None:
    """A ``usageMetadata`` object as shekel counts it: every prompt token (tool-use prompts
    too) as input, cached ones said apart; candidates plus thoughts as output."""
    if not isinstance(usage, dict):
        return None
    if "promptTokenCount" not in usage and "candidatesTokenCount" not in usage:
        return None
    counts = [
        token_count(usage.get(key))
        for key in (
            "promptTokenCount",
            "toolUsePromptTokenCount",
            "candidatesTokenCount",
            "thoughtsTokenCount",
            "cachedContentTokenCount",
        )
    ]
    if None in counts:
        return None  # malformed: recorded as an estimate, never as $0
    prompt, tool_prompt, candidates, thoughts, cached = (n or 0 for n in counts)
    return TokenUsage(prompt + tool_prompt, candidates + thoughts, min(cached, prompt), 0, thoughts)


class _GeminiAdapter(ProtocolAdapter):
    provider = "google"
    model_in_path = True
    methods: tuple[str, ...] = ()

    def matches(self, path: str) -> bool:
        found = _METHOD.search(path)
        return found is not None and found.group(2) in self.methods

    def path_info(self, path: str) -> PathInfo | None:
        found = _METHOD.search(path)
        if found is None:
            return None
        return PathInfo(found.group(1), found.group(2) == "streamGenerateContent")

    def set_path_model(self, path: str, model: str) -> str:
        model = model.removeprefix("models/")
        return _METHOD.sub(lambda m: f"/models/{model}:{m.group(2)}", path)

    def accepts_model(self, model: str) -> bool:
        return model.removeprefix("models/").lower().startswith(("gemini", "gemma", "learnlm"))

    def usage_from_json(self, data: dict[str, Any]) -> TokenUsage | None:
        return gemini_usage(data.get("usageMetadata"))

    def model_from_json(self, data: dict[str, Any]) -> str | None:
        model = data.get("modelVersion")
        return model if isinstance(model, str) else None

    def id_from_json(self, data: dict[str, Any]) -> str | None:
        found = data.get("responseId")
        return found if isinstance(found, str) else None

    def response_id(self, content: bytes) -> str | None:
        return peek_string(content, b'"responseId"')

    def read_response(self, content: bytes) -> tuple[TokenUsage | None, str | None]:
        return (
            gemini_usage(peek_object(content, b'"usageMetadata"')),
            peek_string(content, b'"modelVersion"'),
        )


class GenerateContentAdapter(_GeminiAdapter):
    """``POST .../models/{model}:generateContent`` and ``:streamGenerateContent``."""

    methods = _GENERATE

    def inspect(self, body: dict[str, Any]) -> RequestInfo:
        config = body.get("generationConfig")
        limit = config.get("maxOutputTokens") if isinstance(config, dict) else None
        return RequestInfo(None, False, limit if type(limit) is int else None)

    def set_max_output(self, body: dict[str, Any], tokens: int) -> None:
        config = body.get("generationConfig")
        if not isinstance(config, dict):
            config = body["generationConfig"] = {}
        config["maxOutputTokens"] = tokens

    def new_tally(self, hide_usage: bool) -> StreamTally:
        return GeminiTally()


class EmbedContentAdapter(_GeminiAdapter):
    """``POST .../models/{model}:embedContent`` and ``:batchEmbedContents``: input only."""

    methods = ("embedContent", "batchEmbedContents")

    def inspect(self, body: dict[str, Any]) -> RequestInfo:
        return RequestInfo(None, False, 0)

    def new_tally(self, hide_usage: bool) -> StreamTally:
        return GeminiTally()  # embeddings never stream; a server that does is read as events


# The text of a part (a thought summary's too); function-call arguments come whole.
_PART_TEXT: Final = re.compile(rb'"text": ?"((?:[^"\\]|\\.)+)"')
_FINISHED: Final = re.compile(rb'"finishReason": ?"')


class GeminiTally(StreamTally):
    """``GenerateContentResponse`` chunks as server-sent events. Every chunk carries the usage
    so far; the one with a ``finishReason`` carries the final figures."""

    def events(self, data: bytes) -> bytes:
        if self.precise:
            self.output_estimate += streamed_text_tokens(data, _PART_TEXT)
        else:
            self.output_estimate += data.count(b'"text"')
        if self.model is None or _FINISHED.search(data) is not None:
            self._read(data)
        return data

    def _read(self, data: bytes) -> None:
        for event in split_events(data):
            payload = event_json(event)
            if not isinstance(payload, dict):
                continue
            if self.model is None and isinstance(payload.get("modelVersion"), str):
                self.model = payload["modelVersion"]
            if self.call_id is None and isinstance(payload.get("responseId"), str):
                self.call_id = payload["responseId"]
            usage = gemini_usage(payload.get("usageMetadata"))
            if usage is not None:
                self.partial = usage
            if _finished(payload.get("candidates")):
                self.done = True
                self.usage = usage


def _finished(candidates: object) -> bool:
    return isinstance(candidates, list) and any(
        isinstance(c, dict) and c.get("finishReason") for c in candidates
    )
