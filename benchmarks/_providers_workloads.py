"""SDK workloads of the providers beyond OpenAI and Anthropic, for ``bench_interception.py``:
google-genai's ``generate_content`` (over ``httpx2.MockTransport``), boto3's ``converse``
(answered by a botocore ``before-send`` handler, in process), the ollama client's ``chat`` and
cohere's ``ClientV2.chat`` (both over ``httpx.MockTransport``). Each answer is fixed and carries
usage, so every call is recorded as in production."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

GEMINI_MODEL = "gemini-2.5-flash"
BEDROCK_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
OLLAMA_MODEL = "llama3.2"
COHERE_MODEL = "command-r-08-2024"
JSON_HEADERS = {"content-type": "application/json"}

GEMINI_RESPONSE = {
    "candidates": [
        {"content": {"parts": [{"text": "Hello!"}], "role": "model"}, "finishReason": "STOP"}
    ],
    "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 3, "totalTokenCount": 15},
    "modelVersion": GEMINI_MODEL,
    "responseId": "bench",
}
CONVERSE_RESPONSE = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Hello!"}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15},
    "metrics": {"latencyMs": 1},
}
OLLAMA_RESPONSE = {
    "model": OLLAMA_MODEL,
    "created_at": "2026-01-01T00:00:00Z",
    "message": {"role": "assistant", "content": "Hello!"},
    "done": True,
    "done_reason": "stop",
    "prompt_eval_count": 12,
    "eval_count": 3,
}

COHERE_RESPONSE = {
    "id": "bench",
    "message": {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
    "finish_reason": "COMPLETE",
    "usage": {
        "billed_units": {"input_tokens": 12, "output_tokens": 3},
        "tokens": {"input_tokens": 172, "output_tokens": 3},
    },
}


def gemini_calls() -> Callable[[int], None]:
    import httpx2
    from google import genai
    from google.genai import types

    body = json.dumps(GEMINI_RESPONSE).encode()
    transport = httpx2.MockTransport(
        lambda request: httpx2.Response(200, headers=JSON_HEADERS, content=body)
    )
    options = types.HttpOptions(
        base_url="http://bench", httpx_client=httpx2.Client(transport=transport)
    )
    client = genai.Client(api_key="bench", http_options=options)

    def run(n: int) -> None:
        for _ in range(n):
            client.models.generate_content(model=GEMINI_MODEL, contents="Say hello")

    return run


class _Body(io.BytesIO):
    def stream(self, amt: int | None = 65536, decode_content: bool | None = None) -> Any:
        while chunk := self.read(amt):
            yield chunk


def bedrock_calls() -> Callable[[int], None]:
    import boto3
    from botocore.awsrequest import AWSResponse

    body = json.dumps(CONVERSE_RESPONSE).encode()
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url="http://bench",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )

    def answer(request: Any, **kwargs: Any) -> AWSResponse:
        return AWSResponse(request.url, 200, JSON_HEADERS, _Body(body))

    client.meta.events.register("before-send.bedrock-runtime.Converse", answer)
    messages = [{"role": "user", "content": [{"text": "Say hello"}]}]

    def run(n: int) -> None:
        for _ in range(n):
            client.converse(modelId=BEDROCK_MODEL, messages=messages)

    return run


def ollama_calls() -> Callable[[int], None]:
    import httpx
    import ollama

    body = json.dumps(OLLAMA_RESPONSE).encode()
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers=JSON_HEADERS, content=body)
    )
    client = ollama.Client(host="http://bench:11434", transport=transport)
    messages = [{"role": "user", "content": "Say hello"}]

    def run(n: int) -> None:
        for _ in range(n):
            client.chat(model=OLLAMA_MODEL, messages=messages)

    return run


def cohere_calls() -> Callable[[int], None]:
    import cohere
    import httpx

    body = json.dumps(COHERE_RESPONSE).encode()
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers=JSON_HEADERS, content=body)
    )
    client = cohere.ClientV2(
        api_key="bench",
        base_url="http://bench",
        httpx_client=httpx.Client(transport=transport),
        max_retries=0,
    )
    messages: Any = [{"role": "user", "content": "Say hello"}]

    def run(n: int) -> None:
        for _ in range(n):
            client.chat(model=COHERE_MODEL, messages=messages)

    return run


WORKLOADS: dict[str, tuple[str, Callable[[], Callable[[int], None]]]] = {
    "gemini_call": ("google-genai models.generate_content (non-streamed)", gemini_calls),
    "bedrock_call": ("boto3 bedrock-runtime converse (non-streamed)", bedrock_calls),
    "ollama_call": ("ollama Client.chat (non-streamed)", ollama_calls),
    "cohere_call": ("cohere ClientV2.chat (non-streamed)", cohere_calls),
}
