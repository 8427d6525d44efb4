"""Streamed anthropic messages at the SDK layer: their own cases (cache counts, the prompt
from ``message_start``, the stream helper, a dropped connection, an error event); what every
kind of stream guarantees is in ``test_sdk_stream_kinds.py``. ``tests_core_lowest`` runs them
on anthropic 0.98."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from sdk_figures import USER, haiku
from wire import anthropic_client, event, http_library, message_events, sse_handler

from shekel import BudgetExceededError, budget
from shekel.testing import FakeProvider, Reply

HAIKU = "claude-3-haiku-20240307"
WORDS = " ".join(f"w{i}" for i in range(40))


class Boom(Exception):
    pass


def _create(client: Any, **extra: Any) -> Any:
    return client.messages.create(model=HAIKU, max_tokens=200, messages=USER, stream=True, **extra)


def test_a_stream_read_to_its_end_records_the_usage_it_reported(
    fake: FakeProvider, claude: anthropic.Anthropic
) -> None:
    fake.enqueue(
        Reply(
            text="one two three",
            input_tokens=1200,
            output_tokens=3,
            cached_input_tokens=1000,
            cache_write_tokens=100,
        )
    )
    with budget(max_usd=1.0) as b:
        kinds = [event.type for event in _create(claude)]
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    (call,) = b.history().calls
    # Anthropic's input_tokens leaves the cache out; shekel's input is every prompt token.
    assert (call.input_tokens, call.output_tokens) == (2300, 3)
    assert (call.cache_read_tokens, call.cache_write_tokens) == (1000, 100)
    assert call.estimated is False
    assert str(call.call_id).startswith("msg_")
    assert b.spent == pytest.approx(haiku(1200, 3, read=1000, write=100), abs=1e-12)


def test_the_stream_helper_records_the_message_once(
    fake: FakeProvider, claude: anthropic.Anthropic
) -> None:
    fake.enqueue(Reply(text="hello there", input_tokens=50, output_tokens=2))
    with budget(max_usd=1.0) as b:
        with claude.messages.stream(model=HAIKU, max_tokens=200, messages=USER) as stream:
            text = stream.get_final_text()
    assert text == "hello there"
    assert [(c.input_tokens, c.output_tokens) for c in b.history().calls] == [(50, 2)]


def test_a_block_failing_with_its_stream_open_records_the_prompt_and_the_deltas_read(
    fake: FakeProvider, claude: anthropic.Anthropic
) -> None:
    """The prompt's tokens come from ``message_start``; the output is a token per content
    delta read (the stream is still referenced when the block ends)."""
    fake.enqueue(Reply(text=WORDS, input_tokens=2000, output_tokens=40))
    kept: list[Any] = []
    with pytest.raises(Boom), budget(max_usd=1.0) as b:
        stream = _create(claude)
        kept.append(stream)
        deltas = 0
        for event in stream:
            deltas += event.type == "content_block_delta"
            if deltas == 6:
                raise Boom
    (call,) = b.history().calls
    assert call.estimated is True
    assert (call.input_tokens, call.output_tokens) == (2000, 6)


def test_a_connection_dropped_mid_stream_records_what_went_by(
    fake: FakeProvider, claude: anthropic.Anthropic
) -> None:
    fake.enqueue(Reply(text=WORDS, input_tokens=500, output_tokens=40, drop_after_chunks=5))
    with budget(max_usd=1.0) as b:
        with pytest.raises(Exception) as caught:  # the transport's error, passed through
            for _event in _create(claude):
                pass
    assert not isinstance(caught.value, BudgetExceededError)
    (call,) = b.history().calls
    assert call.estimated is True
    assert call.input_tokens == 500
    assert 0 < call.output_tokens < 40


def test_an_error_event_mid_stream_raises_the_sdks_error_and_records_what_went_by() -> None:
    """Anthropic sends ``overloaded_error`` as an event once a stream has begun."""
    parts = message_events(3000, 9)[:3]  # message_start, a block, one text delta
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    parts.append(event(overloaded, "error"))
    client = anthropic_client(sse_handler(http_library(anthropic), parts))
    with budget(max_usd=1.0) as b:
        with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
            for _event in _create(client):
                pass
    (call,) = b.history().calls
    assert call.estimated is True
    assert (call.input_tokens, call.output_tokens) == (3000, 1)
