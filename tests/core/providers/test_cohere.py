"""cohere's ClientV2 and AsyncClientV2 against the fake Cohere v2 API: chat, chat_stream and
embed priced at Cohere's list price once, from the billed units; refused before sending; output
lowered in strict mode; fallback to another Cohere model; interrupted streams estimated.

The SDK sends through httpx.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from typing import Any

import cohere
import httpx
import pytest
from cohere.core.api_error import ApiError
from prices import (
    COHERE_COMMAND_A,
    COHERE_COMMAND_R,
    COHERE_COMMAND_R7B,
    COHERE_EMBED_V4,
    cost,
)
from redirect import redirecting_client

from shekel import (
    BudgetConfigError,
    BudgetExceededError,
    UncountedCallWarning,
    UsageMissingWarning,
    budget,
)
from shekel.testing import STREAM_FRAMINGS, FakeProvider, Reply, StreamFraming, ToolCall
from shekel.testing._cohere_wire import PREAMBLE_TOKENS

pytestmark = pytest.mark.filterwarnings(
    "ignore:The `__fields__` attribute is deprecated:DeprecationWarning"  # the SDK's pydantic use
)

MODEL = "command-r-08-2024"
USER = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def co(fake: FakeProvider) -> Iterator[cohere.ClientV2]:
    with httpx.Client() as http:
        yield cohere.ClientV2(api_key="test", base_url=fake.url, max_retries=0, httpx_client=http)


def _chat(client: cohere.ClientV2, model: str = MODEL, **options: Any) -> Any:
    return client.chat(model=model, messages=USER, **options)  # type: ignore[arg-type]


def _stream(client: cohere.ClientV2, model: str = MODEL, **options: Any) -> list[Any]:
    return list(client.chat_stream(model=model, messages=USER, **options))  # type: ignore[arg-type]


def _text(events: list[Any]) -> str:
    return "".join(e.delta.message.content.text for e in events if e.type == "content-delta")


def test_chat_is_priced_from_the_billed_units(fake: FakeProvider, co: cohere.ClientV2) -> None:
    fake.enqueue(Reply(text="hello there", input_tokens=1000, output_tokens=200))
    with budget(max_usd=1.0) as b:
        response = _chat(co)
    assert response.message.content[0].text == "hello there"
    assert response.finish_reason == "COMPLETE"
    # Cohere counts its own preamble in ``tokens`` and does not bill it
    assert response.usage.tokens.input_tokens == 1000 + PREAMBLE_TOKENS
    assert response.usage.billed_units.input_tokens == 1000
    assert b.spent == pytest.approx(cost(COHERE_COMMAND_R, 1000, 200), abs=1e-12)
    call = b.summary_data()["calls"][0]
    assert (call["model"], call["provider"]) == (MODEL, "cohere")
    assert (call["input_tokens"], call["output_tokens"]) == (1000, 200)
    assert call["call_id"] == response.id
    assert not call["estimated"]
    assert b.snapshot().llm_calls_used == 1


@pytest.mark.parametrize("framing", STREAM_FRAMINGS)
def test_chat_stream_is_recorded_once(
    fake: FakeProvider, co: cohere.ClientV2, framing: StreamFraming
) -> None:
    fake.enqueue(
        Reply(text="one two three", input_tokens=500, output_tokens=3, stream_framing=framing)
    )
    events = []
    with budget(max_usd=1.0) as b:
        for event in co.chat_stream(model=MODEL, messages=USER):  # type: ignore[arg-type]
            events.append(event)
            if event.type == "message-end":  # recorded once this event went by
                spent_at_the_end = b.spent
    assert _text(events) == "one two three"
    assert spent_at_the_end == b.spent
    assert [events[0].type, events[-1].type] == ["message-start", "message-end"]
    assert fake.requests[0].body["stream"] is True
    assert b.spent == pytest.approx(cost(COHERE_COMMAND_R, 500, 3), abs=1e-12)
    assert b.snapshot().llm_calls_used == 1
    (call,) = b.summary_data()["calls"]
    assert not call["estimated"]
    assert call["call_id"] == events[0].id


def test_an_interrupted_stream_is_recorded(fake: FakeProvider, co: cohere.ClientV2) -> None:
    fake.enqueue(Reply(text="one two three four five", input_tokens=800, drop_after_chunks=2))
    with budget(max_usd=1.0) as b:
        with pytest.raises(httpx.RemoteProtocolError):  # the connection drops mid-stream
            _stream(co)
    (call,) = b.summary_data()["calls"]
    assert call["estimated"]
    assert call["input_tokens"] > 0  # estimated from the request: the stream never said
    assert call["output_tokens"] >= 2
    assert b.spent > 0


def test_a_stream_that_crosses_the_cap_raises_through_the_sdk(
    fake: FakeProvider, co: cohere.ClientV2
) -> None:
    fake.enqueue(Reply(text="a b", input_tokens=100_000, output_tokens=100_000))
    with budget(max_usd=0.01) as b:
        with pytest.raises(BudgetExceededError) as crossed:
            _stream(co)
    assert crossed.value.sent is True
    assert b.spent == pytest.approx(cost(COHERE_COMMAND_R, 100_000, 100_000), abs=1e-12)
    assert b.snapshot().llm_calls_used == 1


def test_async_client(fake: FakeProvider) -> None:
    async def calls() -> list[str]:
        async with httpx.AsyncClient() as http:
            client = cohere.AsyncClientV2(
                api_key="test", base_url=fake.url, max_retries=0, httpx_client=http
            )
            plain = await client.chat(model=MODEL, messages=USER)  # type: ignore[arg-type]
            streamed = [e async for e in client.chat_stream(model=MODEL, messages=USER)]  # type: ignore[arg-type]
            embedded = await client.embed(
                model="embed-v4.0", texts=["a"], input_type="search_document"
            )
        assert embedded.embeddings.float_ is not None
        return [plain.message.content[0].text, _text(streamed)]  # type: ignore[index,union-attr]

    fake.enqueue(
        Reply(text="async hello", input_tokens=100, output_tokens=2),
        Reply(text="a b c", input_tokens=200, output_tokens=3),
        Reply(input_tokens=40),
    )
    with budget(max_usd=1.0) as b:
        assert asyncio.run(calls()) == ["async hello", "a b c"]
    assert b.snapshot().llm_calls_used == 3
    assert b.spent == pytest.approx(
        cost(COHERE_COMMAND_R, 100, 2) + cost(COHERE_COMMAND_R, 200, 3) + cost(COHERE_EMBED_V4, 40),
        abs=1e-12,
    )
    assert not any(call["estimated"] for call in b.summary_data()["calls"])


def test_embed(fake: FakeProvider, co: cohere.ClientV2) -> None:
    fake.enqueue(Reply(input_tokens=40))
    with budget(max_usd=1.0) as b:
        result = co.embed(
            model="embed-v4.0",
            texts=["a", "b"],
            input_type="search_document",
            embedding_types=["float", "int8"],
        )
    assert result.embeddings.float_ is not None
    assert len(result.embeddings.float_) == 2
    assert b.spent == pytest.approx(cost(COHERE_EMBED_V4, 40), abs=1e-12)
    (call,) = b.summary_data()["calls"]
    assert (call["operation"], call["input_tokens"], call["output_tokens"]) == ("embeddings", 40, 0)


def test_refused_before_sending(fake: FakeProvider, co: cohere.ClientV2) -> None:
    fake.enqueue(Reply(input_tokens=100_000, output_tokens=100_000))
    with budget(max_usd=0.01) as b:
        with pytest.raises(BudgetExceededError):  # this call crosses the cap, once recorded
            _chat(co)
        with pytest.raises(BudgetExceededError) as refused:
            _chat(co)
        with pytest.raises(BudgetExceededError):
            _stream(co)
        with pytest.raises(BudgetExceededError):
            co.embed(model="embed-v4.0", texts=["a"], input_type="search_document")
    assert refused.value.sent is False
    assert len(fake.requests) == 1  # nothing after the first call left
    assert b.snapshot().llm_calls_used == 1


def test_a_call_strict_mode_cannot_pay_for_never_leaves(
    fake: FakeProvider, co: cohere.ClientV2
) -> None:
    with budget(max_usd=0.000001, strict=True) as b:
        with pytest.raises(BudgetExceededError) as refused:
            _chat(co, model="command-a-03-2025")
    assert refused.value.sent is False
    assert fake.requests == []
    assert b.spent == 0


def test_max_llm_calls(fake: FakeProvider, co: cohere.ClientV2) -> None:
    with budget(max_llm_calls=2) as b:
        _chat(co)
        _stream(co)
        with pytest.raises(BudgetExceededError):
            _chat(co)
    assert len(fake.requests) == 2
    assert b.snapshot().llm_calls_used == 2


def test_strict_mode_lowers_max_tokens(fake: FakeProvider, co: cohere.ClientV2) -> None:
    fake.enqueue(Reply(text="word " * 200, input_tokens=20))
    with budget(max_usd=0.001, strict=True) as b:
        response = _chat(co, model="command-a-03-2025", max_tokens=4000)
    sent = fake.requests[0].body["max_tokens"]
    assert 1 <= sent <= (0.001 * 1_000_000) / COHERE_COMMAND_A["output"]
    assert response.finish_reason == "MAX_TOKENS"
    assert response.usage.billed_units.output_tokens == sent
    assert 0 < b.spent <= 0.001


def test_strict_mode_lowers_max_tokens_of_a_stream(fake: FakeProvider, co: cohere.ClientV2) -> None:
    fake.enqueue(Reply(text="word " * 200, input_tokens=20))
    with budget(max_usd=0.001, strict=True) as b:
        events = _stream(co, model="command-a-03-2025")
    sent = fake.requests[0].body["max_tokens"]
    assert 1 <= sent <= (0.001 * 1_000_000) / COHERE_COMMAND_A["output"]
    assert events[-1].delta.finish_reason == "MAX_TOKENS"
    assert 0 < b.spent <= 0.001
    assert not b.summary_data()["calls"][0]["estimated"]


def test_strict_mode_sets_the_models_limit_where_none_was_given(
    fake: FakeProvider, co: cohere.ClientV2
) -> None:
    with budget(max_usd=1.0, strict=True):
        _chat(co, model="command-a-03-2025")
        _chat(co, model="command-r7b-12-2024")
    assert [r.body["max_tokens"] for r in fake.requests] == [8192, 4096]


def test_strict_mode_stops_a_stream_that_ignores_max_tokens(
    fake: FakeProvider, co: cohere.ClientV2
) -> None:
    fake.enqueue(Reply(text="word " * 400, input_tokens=20, ignore_max_tokens=True))
    with budget(max_usd=0.0005, strict=True) as b:
        with pytest.raises(BudgetExceededError, match="stopped the stream"):
            _stream(co, model="command-a-03-2025")
    assert b.spent <= 0.0005
    assert b.summary_data()["calls"][0]["estimated"]


def test_fallback_to_another_cohere_model(fake: FakeProvider, co: cohere.ClientV2) -> None:
    fake.enqueue(Reply(input_tokens=100_000, output_tokens=10_000), Reply(output_tokens=5))
    with budget(max_usd=1.0, fallback={"at_pct": 0.01, "model": "command-r7b-12-2024"}) as b:
        _chat(co, model="command-a-03-2025")
        _chat(co, model="command-a-03-2025")
    assert [r.body["model"] for r in fake.requests] == ["command-a-03-2025", "command-r7b-12-2024"]
    assert b.model_switched
    assert b.spent == pytest.approx(
        cost(COHERE_COMMAND_A, 100_000, 10_000) + cost(COHERE_COMMAND_R7B, 12, 5), abs=1e-12
    )


def test_fallback_to_a_model_cohere_does_not_serve(fake: FakeProvider, co: cohere.ClientV2) -> None:
    fake.enqueue(Reply(input_tokens=100_000, output_tokens=10_000))
    with budget(max_usd=1.0, fallback={"at_pct": 0.01, "model": "gpt-4o-mini"}):
        _chat(co, model="command-a-03-2025")
        with pytest.raises(BudgetConfigError, match="same provider"):
            _chat(co, model="command-a-03-2025")
    assert len(fake.requests) == 1


def test_a_tool_call(fake: FakeProvider, co: cohere.ClientV2) -> None:
    ask = Reply(
        text="I will look it up",
        tool_calls=[ToolCall("get_weather", {"city": "Oslo"}, id="get_weather_1")],
        output_tokens=9,
    )
    fake.enqueue(ask, ask)
    with budget(max_usd=1.0) as b:
        plain = _chat(co)
        events = _stream(co)
    assert plain.finish_reason == "TOOL_CALL"
    assert plain.message.tool_plan == "I will look it up"
    (call,) = plain.message.tool_calls
    assert (call.id, call.function.name, call.function.arguments) == (
        "get_weather_1",
        "get_weather",
        '{"city":"Oslo"}',
    )
    started = [e for e in events if e.type == "tool-call-start"]
    assert started[0].delta.message.tool_calls.function.name == "get_weather"
    assert events[-1].delta.finish_reason == "TOOL_CALL"
    assert b.spent == pytest.approx(2 * cost(COHERE_COMMAND_R, 12, 9), abs=1e-12)
    assert not any(c["estimated"] for c in b.summary_data()["calls"])


def test_a_rate_limited_call_costs_nothing(fake: FakeProvider, co: cohere.ClientV2) -> None:
    fake.enqueue(Reply.error(429, message="You are using a Trial key"))
    with budget(max_usd=1.0) as b:
        with pytest.raises(cohere.TooManyRequestsError) as failed:
            _chat(co)
    assert failed.value.body["message"] == "You are using a Trial key"
    assert b.snapshot().llm_calls_used == 0
    assert b.spent == 0


def test_the_fake_caps_max_tokens_as_cohere_does(fake: FakeProvider, co: cohere.ClientV2) -> None:
    fake.enqueue(Reply(output_tokens=10_000))
    with budget(max_usd=1.0) as b:
        capped = _chat(co, max_tokens=1_000_000)  # above command-r's 4096: capped, not refused
        with pytest.raises(ApiError) as refused:
            _chat(co, max_tokens=0)
    assert capped.finish_reason == "MAX_TOKENS"
    assert capped.usage.billed_units.output_tokens == 4096
    assert refused.value.status_code == 400
    assert "max_tokens" in refused.value.body["message"]
    assert b.snapshot().llm_calls_used == 1


def test_missing_usage_is_estimated_and_warned(fake: FakeProvider, co: cohere.ClientV2) -> None:
    """A response without usage (a proxy that strips it) is recorded as an estimate."""
    plain = {"id": "x", "finish_reason": "COMPLETE", "message": {"role": "assistant"}}

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=plain)

    http = httpx.Client(transport=httpx.MockTransport(answer))
    client = cohere.ClientV2(api_key="test", base_url="https://api.cohere.com", httpx_client=http)
    with http, budget(max_usd=1.0) as b, pytest.warns(UsageMissingWarning):
        _chat(client)
    (call,) = b.summary_data()["calls"]
    assert call["estimated"]
    assert b.spent > 0


def test_calls_to_cohere_s_host(fake: FakeProvider) -> None:
    """v2 calls to api.cohere.com are counted; v1 chat, which shekel does not read, warns."""
    http = redirecting_client(httpx, fake)
    v2 = cohere.ClientV2(api_key="test", httpx_client=http)
    v1 = cohere.Client(api_key="test", httpx_client=http, max_retries=0)
    fake.enqueue(Reply(input_tokens=300, output_tokens=2))
    with http, budget(max_usd=1.0) as b:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UncountedCallWarning)
            _chat(v2)
        with pytest.warns(UncountedCallWarning, match=r"api\.cohere\.com/v1/chat"):
            with pytest.raises(ApiError):  # the fake serves no v1 chat
                v1.chat(model=MODEL, message="hi")
    assert fake.requests[0].path == "/v2/chat"
    assert b.spent == pytest.approx(cost(COHERE_COMMAND_R, 300, 2), abs=1e-12)
    assert b.snapshot().llm_calls_used == 1
