"""Stream framing: how the fake provider cuts events into HTTP chunks."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest
from fake_support import CHAT, body_cut_off, needs_responses

from shekel.testing import STREAM_FRAMINGS, FakeProvider, Reply, StreamFraming


@dataclass
class RawStream:
    """A streamed response as it came off the socket."""

    reads: list[bytes]  # what each recv() returned, after the headers
    chunks: list[bytes]  # the HTTP chunks of the body, in order (without the final 0-chunk)


def raw_stream(fake: FakeProvider, path: str, body: dict[str, Any]) -> RawStream:
    """POST ``body`` over a bare socket (``Connection: close``) and record reads and chunks."""
    data = json.dumps(body).encode()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {fake.host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode() + data
    reads: list[bytes] = []
    with socket.create_connection((fake.host, fake.port), timeout=10) as sock:
        sock.sendall(request)
        while piece := sock.recv(1 << 20):
            reads.append(piece)
    raw = b"".join(reads)
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"Transfer-Encoding: chunked" in head
    skip = len(head) + 4  # make ``reads`` start where the body does
    while skip:
        taken = min(skip, len(reads[0]))
        reads[0] = reads[0][taken:]
        skip -= taken
        if not reads[0]:
            reads.pop(0)
    chunks: list[bytes] = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert rest == b"\r\n"
            return RawStream(reads, chunks)
        chunks.append(rest[:size])
        assert rest[size : size + 2] == b"\r\n"
        rest = rest[size + 2 :]


def chunk_events(chunk: bytes) -> list[str]:
    """The SSE events in one HTTP chunk (each ends in a blank line, none is split)."""
    assert chunk.endswith(b"\n\n")
    return chunk.decode()[:-2].split("\n\n")


CHAT_STREAM = {
    "model": "gpt-4o-mini",
    "messages": CHAT,
    "stream": True,
    "stream_options": {"include_usage": True},
}


def test_default_framing_sends_usage_and_done_in_one_read(fake_llm: FakeProvider) -> None:
    assert fake_llm.stream_framing == "coalesced"
    fake_llm.enqueue(Reply(text="one two three", input_tokens=7, output_tokens=3))
    stream = raw_stream(fake_llm, "/v1/chat/completions", CHAT_STREAM)
    *leading, last = stream.chunks
    assert [len(chunk_events(chunk)) for chunk in leading] == [1, 1, 1, 1]  # role, 3 words
    finish, usage, done = chunk_events(last)
    assert '"finish_reason":"stop"' in finish
    assert '"usage":{"prompt_tokens":7,' in usage
    assert done == "data: [DONE]"
    # one send carries them and the end of the body, so the client reads them together
    (read,) = [read for read in stream.reads if b"[DONE]" in read]
    assert b'"usage":{"prompt_tokens":7,' in read
    assert read.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")
    # like OpenAI, no usage at all unless the request asked for it
    unasked = raw_stream(fake_llm, "/v1/chat/completions", {**CHAT_STREAM, "stream_options": None})
    finish, done = chunk_events(unasked.chunks[-1])
    assert '"finish_reason":"stop"' in finish
    assert done == "data: [DONE]"
    assert b"usage" not in b"".join(unasked.chunks)


def test_default_framing_closes_anthropic_and_responses_streams_in_one_chunk(
    fake_llm: FakeProvider,
) -> None:
    body = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": CHAT, "stream": True}
    stream = raw_stream(fake_llm, "/v1/messages", body)
    names = [[e.partition("\n")[0] for e in chunk_events(c)] for c in stream.chunks]
    assert names[:3] == [["event: message_start"], ["event: content_block_start"], ["event: ping"]]
    assert all(chunk == ["event: content_block_delta"] for chunk in names[3:-1])
    assert names[-1] == ["event: content_block_stop", "event: message_delta", "event: message_stop"]
    (read,) = [read for read in stream.reads if b"message_stop" in read]
    assert b'"output_tokens":3' in read  # the message_delta usage travels with message_stop

    body = {"model": "gpt-4o", "input": "q", "stream": True}
    stream = raw_stream(fake_llm, "/v1/responses", body)
    last = [e.partition("\n")[0] for e in chunk_events(stream.chunks[-1])]
    assert last == [
        "event: response.output_text.done",
        "event: response.content_part.done",
        "event: response.output_item.done",
        "event: response.completed",
    ]
    assert all(len(chunk_events(chunk)) == 1 for chunk in stream.chunks[:-1])


def test_split_and_single_framings() -> None:
    with FakeProvider(stream_framing="split") as fake:
        fake.enqueue(Reply(text="a b"), Reply(text="a b", stream_framing="single"))
        split = raw_stream(fake, "/v1/chat/completions", CHAT_STREAM)
        single = raw_stream(fake, "/v1/chat/completions", CHAT_STREAM)
        coalesced = Reply(text="a b", stream_framing="coalesced")
        fake.enqueue(coalesced)
        assert len(raw_stream(fake, "/v1/chat/completions", CHAT_STREAM).chunks) == 4
    assert [len(chunk_events(chunk)) for chunk in split.chunks] == [1] * 6
    assert chunk_events(split.chunks[-1]) == ["data: [DONE]"]
    assert len(single.chunks) == 1
    assert b"".join(split.chunks).count(b"data: ") == 6
    assert single.chunks[0].count(b"data: ") == 6
    # the same events either way, but for their ids and timestamps

    def payloads(chunks: list[bytes]) -> list[Any]:
        events = [e.removeprefix("data: ") for c in chunks for e in chunk_events(c)]
        decoded = [json.loads(e) for e in events[:-1]]
        return [{k: v for k, v in e.items() if k not in ("id", "created")} for e in decoded]

    assert payloads(single.chunks) == payloads(split.chunks)
    assert payloads(single.chunks)[-1]["usage"]["completion_tokens"] == 2


def test_framing_is_validated() -> None:
    assert STREAM_FRAMINGS == ("coalesced", "split", "single")
    with pytest.raises(ValueError, match="stream_framing"):
        Reply(stream_framing="lumped")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stream_framing"):
        FakeProvider(stream_framing="lumped")  # type: ignore[arg-type]


@needs_responses
@pytest.mark.parametrize("framing", STREAM_FRAMINGS)
def test_sdks_read_every_framing_alike(fake_llm: FakeProvider, framing: StreamFraming) -> None:
    oai = openai.OpenAI(base_url=fake_llm.openai_base_url, api_key="t", max_retries=0)
    claude = anthropic.Anthropic(base_url=fake_llm.anthropic_base_url, api_key="t", max_retries=0)
    text = "every framing gives the same answer"
    fake_llm.enqueue(*(Reply(text=text, input_tokens=21, stream_framing=framing) for _ in range(3)))
    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o", messages=CHAT, stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (21, 6)
    with oai.responses.stream(model="gpt-4o", input="q") as responses:
        deltas = [e.delta for e in responses if e.type == "response.output_text.delta"]
        final = responses.get_final_response()
    assert "".join(deltas) == final.output_text == text
    assert final.usage is not None
    assert final.usage.output_tokens == 6
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=99, messages=CHAT) as msgs:
        pieces = list(msgs.text_stream)
        message = msgs.get_final_message()
    assert "".join(pieces) == text
    assert (message.usage.input_tokens, message.usage.output_tokens) == (21, 6)
    assert message.stop_reason == "end_turn"
    oai.close()
    claude.close()


@pytest.mark.parametrize("framing", STREAM_FRAMINGS)
def test_drop_after_chunks_cuts_inside_any_framing(
    fake_llm: FakeProvider, oai: openai.OpenAI, framing: StreamFraming
) -> None:
    fake_llm.enqueue(Reply(text="a b c d e f", drop_after_chunks=2, stream_framing=framing))
    received: list[str] = []
    with pytest.raises(Exception) as dropped:
        for chunk in oai.chat.completions.create(model="m", messages=CHAT, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert body_cut_off(dropped.value)
    assert "".join(received) == "a b "


def test_drop_after_the_last_delta_loses_the_coalesced_usage(
    fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    fake_llm.enqueue(Reply(text="a b c", drop_after_chunks=3))
    chunks: list[Any] = []
    with pytest.raises(Exception) as dropped:
        chunks.extend(
            oai.chat.completions.create(
                model="m", messages=CHAT, stream=True, stream_options={"include_usage": True}
            )
        )
    assert body_cut_off(dropped.value)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "a b c"
    assert all(c.usage is None for c in chunks)


def test_chunk_delay_with_single_framing_holds_back_the_whole_body(
    fake_llm: FakeProvider, oai: openai.OpenAI
) -> None:
    fake_llm.enqueue(Reply(text="p q r s", chunk_delay=0.04, stream_framing="single"))
    started = time.monotonic()
    arrivals = []
    for chunk in oai.chat.completions.create(model="m", messages=CHAT, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 4
    assert arrivals[0] >= 0.15  # 4 deltas x 0.04 s before the one chunk is sent
    assert arrivals[-1] - arrivals[0] < 0.03  # then they all arrive at once
