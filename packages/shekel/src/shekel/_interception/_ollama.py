"""Ollama's native API (the ``ollama`` client, LangChain's ``ChatOllama``): ``/api/chat``,
``/api/generate`` and ``/api/embed``.

Local models cost nothing (provider ``ollama`` is priced at zero unless ``prices=`` or a plugin
says otherwise), but every call and token counts, so ``max_llm_calls`` and ``max_tokens`` cap a
local agent. Responses stream by default, as newline-delimited JSON (``application/x-ndjson``);
the last object (``"done": true``) carries ``prompt_eval_count`` and ``eval_count``. The output
limit is ``options.num_predict``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from .._pricing import TokenUsage
from ._adapter import ProtocolAdapter, RequestInfo, StreamTally, token_count


def ollama_usage(data: object) -> TokenUsage | None:
    """``prompt_eval_count`` and ``eval_count`` of a final object (a prompt Ollama had cached
    reports no ``prompt_eval_count``: counted as 0, which is what it cost)."""
    if not isinstance(data, dict) or ("eval_count" not in data and "prompt_eval_count" not in data):
        return None
    prompt, output = token_count(data.get("prompt_eval_count")), token_count(data.get("eval_count"))
    if prompt is None or output is None:
        return None
    return TokenUsage(prompt, output)


class _OllamaAdapter(ProtocolAdapter):
    provider = "ollama"
    stream_content_types = ("application/x-ndjson",)

    def inspect(self, body: dict[str, Any]) -> RequestInfo:
        options = body.get("options")
        limit = options.get("num_predict") if isinstance(options, dict) else None
        stream = body.get("stream", True) is not False  # Ollama streams unless told not to
        return RequestInfo(body.get("model"), stream, limit if type(limit) is int else None)

    def set_max_output(self, body: dict[str, Any], tokens: int) -> None:
        options = body.get("options")
        if not isinstance(options, dict):
            options = body["options"] = {}
        options["num_predict"] = tokens

    def usage_from_json(self, data: dict[str, Any]) -> TokenUsage | None:
        return ollama_usage(data)

    def id_from_json(self, data: dict[str, Any]) -> str | None:
        return None  # Ollama gives no response id

    def response_id(self, content: bytes) -> str | None:
        return None

    def read_response(self, content: bytes) -> tuple[TokenUsage | None, str | None]:
        try:
            data = json.loads(content)  # one object: a plain answer
        except ValueError:
            data = None
        if isinstance(data, dict):
            model = data.get("model")
            return ollama_usage(data), model if isinstance(model, str) else None
        tally = NdjsonTally()  # a stream that arrived whole
        tally.read_whole(content)
        return tally.usage, tally.model

    def new_tally(self, hide_usage: bool) -> StreamTally:
        return NdjsonTally()


class OllamaChatAdapter(_OllamaAdapter):
    """``POST /api/chat`` and ``POST /api/generate``."""

    path_suffixes = ("/api/chat", "/api/generate")


class OllamaEmbedAdapter(_OllamaAdapter):
    """``POST /api/embed`` (and the older ``/api/embeddings``, which reports no usage)."""

    path_suffixes = ("/api/embed", "/api/embeddings")

    def inspect(self, body: dict[str, Any]) -> RequestInfo:
        return RequestInfo(body.get("model"), False, 0)


_DONE: Final = re.compile(rb'"done": ?true')
_TEXT: Final = re.compile(rb'"(?:content|response|thinking)": ?"((?:[^"\\]|\\.)+)"')


class NdjsonTally(StreamTally):
    """One JSON object per line; the one with ``"done": true`` has the counts."""

    def frame_end(self, data: bytes) -> int:
        end = data.rfind(b"\n")
        return end + 1 if end >= 0 else -1

    def read_whole(self, body: bytes) -> bytes:
        return self.events(body if body.endswith(b"\n") else body + b"\n")

    def events(self, data: bytes) -> bytes:
        self.output_estimate += len(_TEXT.findall(data))
        if self.model is None or _DONE.search(data) is not None:
            for line in data.split(b"\n"):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(item, dict):
                    continue
                if self.model is None and isinstance(item.get("model"), str):
                    self.model = item["model"]
                if item.get("done") is True:
                    self.done = True
                    self.usage = ollama_usage(item)
        return data
