"""The fake provider's OpenAI embeddings."""

from __future__ import annotations

import base64
import struct

import openai
from fake_support import post_raw

from shekel.testing import FakeProvider, Reply


def test_embeddings_default_base64_and_explicit_float(
    fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    fake_llm.enqueue(Reply(input_tokens=17))
    result = oai.embeddings.create(model="text-embedding-3-small", input=["cat", "dog", "cat"])
    # the SDK asks for base64 by default (older ones only when numpy is installed)
    assert fake_llm.requests[0].body.get("encoding_format") in ("base64", None)
    assert [item.index for item in result.data] == [0, 1, 2]
    vectors = [item.embedding for item in result.data]
    assert all(len(v) == 8 and all(-1 <= x < 1 for x in v) for v in vectors)
    assert vectors[0] == vectors[2] != vectors[1]
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (17, 17)
    assert result.model == "text-embedding-3-small"

    floats = oai.embeddings.create(model="e", input="cat", encoding_format="float")
    assert [item.embedding for item in floats.data] == [vectors[0]]
    assert floats.usage.prompt_tokens == 12

    body = {"model": "e", "input": "cat", "encoding_format": "base64", "dimensions": 3}
    raw = post_raw(fake_llm, "/v1/embeddings", body).json()["data"][0]["embedding"]
    assert isinstance(raw, str)
    assert list(struct.unpack("<3f", base64.b64decode(raw))) == vectors[0][:3]
