"""Non-streamed openai and anthropic calls are taken where the SDK holds them parsed (its
client's ``request``), with the HTTP layer below still charging attempts that time out, and
still taking what the SDK layer leaves (raw responses, strict budgets, call caps)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import anthropic
import openai
import pytest
from sdk_figures import USER, gpt4o_mini

from shekel import BudgetExceededError, UnknownModelWarning, budget
from shekel.testing import FakeProvider, Reply


def _chat(client: Any) -> Any:
    if isinstance(client, anthropic.Anthropic):
        return client.messages.create(model="claude-3-haiku-20240307", max_tokens=50, messages=USER)
    return client.chat.completions.create(model="gpt-4o-mini", messages=USER)


def _client(fake: FakeProvider, sdk: str, **options: Any) -> Any:
    if sdk == "anthropic":
        return anthropic.Anthropic(base_url=fake.anthropic_base_url, api_key="t", **options)
    return openai.OpenAI(base_url=fake.openai_base_url, api_key="t", **options)


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_an_attempt_that_timed_out_is_charged_and_its_retry_recorded(
    fake: FakeProvider, sdk: str
) -> None:
    fake.enqueue(
        Reply(text="late", input_tokens=100, output_tokens=1, latency=1.0),
        Reply(text="ok", input_tokens=100, output_tokens=1),
    )
    client = _client(fake, sdk, timeout=0.25, max_retries=1)
    with budget(max_usd=1.0) as b:
        _chat(client)
    calls = b.history().calls
    assert len(fake.requests) == 2
    assert [c.estimated for c in calls] == [True, False]  # the provider had the first prompt
    assert calls[0].output_tokens == 0
    assert calls[0].input_tokens > 0
    assert calls[1].input_tokens == 100
    assert b.snapshot().llm_calls_used == 2


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_a_refused_call_is_shekels_error_and_the_sdks(fake: FakeProvider, sdk: str) -> None:
    """The error says what happened to shekel's callers and passes through code that catches
    the SDK's own errors as before."""
    client = _client(fake, sdk, max_retries=0)
    base = anthropic.AnthropicError if sdk == "anthropic" else openai.OpenAIError
    with budget(max_usd=0.01) as b:
        b.record(usd=0.01)
        with pytest.raises(BudgetExceededError) as caught:
            _chat(client)
    assert isinstance(caught.value, base)
    assert caught.value.sent is False
    assert fake.requests == []


def test_a_framework_reporting_a_call_the_sdk_returned_is_not_counted_again(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    fake.enqueue(Reply(text="ok", input_tokens=1000, output_tokens=10))
    with budget(max_usd=1.0) as b:
        response = oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
        b.record(
            model="gpt-4o-mini",
            input_tokens=1000,
            output_tokens=10,
            call_id=response.id,
            source="framework",
        )
    assert b.snapshot().llm_calls_used == 1
    assert b.spent == pytest.approx(gpt4o_mini(1000, 10), abs=1e-12)


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_the_one_step_booking_records_what_the_full_path_records(
    fake: FakeProvider, sdk: str
) -> None:
    """A plain budget books the usual call in one step; a budget with a price table of its
    own (here for another model) takes the full path. Both must record the same call."""
    reply = {"input_tokens": 1200, "output_tokens": 300, "cached_input_tokens": 1000}
    reply["cache_write_tokens" if sdk == "anthropic" else "reasoning_tokens"] = 100
    fake.enqueue(Reply(text=None, **reply), Reply(text=None, **reply))
    client = _client(fake, sdk)
    with budget(max_usd=1.0, name="quick") as quick:
        _chat(client)
    with budget(max_usd=1.0, name="full", prices={"another-model": {"input": 1, "output": 1}}):
        with budget(name="inner") as full:
            _chat(client)
    (one_step,) = quick.history().calls
    (full_path,) = full.history().calls
    assert one_step.cost > 0
    assert one_step.cache_read_tokens == 1000
    assert (one_step.cache_write_tokens, one_step.reasoning_tokens) == (
        (100, 0) if sdk == "anthropic" else (0, 100)
    )
    assert one_step.call_id != full_path.call_id  # each response has its own id
    unique = {"seq": 0, "budget_path": "", "call_id": ""}
    assert one_step._replace(**unique) == full_path._replace(**unique)
    assert quick.spent == full.spent


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_a_model_without_a_price_stays_unpriced_once_its_lookup_is_cached(
    fake: FakeProvider, sdk: str
) -> None:
    """The first call looks the price up (none) on the full path; later ones find that answer
    in the cache the one-step booking reads, and must not take it for a price of zero."""
    fake.enqueue(*[Reply(text="ok", input_tokens=100, output_tokens=10) for _ in range(3)])
    client = _client(fake, sdk)
    model = f"no-price-{uuid.uuid4().hex[:8]}"

    def ask() -> None:
        if sdk == "anthropic":
            client.messages.create(model=model, max_tokens=50, messages=USER)
        else:
            client.chat.completions.create(model=model, messages=USER)

    with budget(max_usd=1.0) as b:
        with pytest.warns(UnknownModelWarning, match=model):
            ask()
        ask()
        ask()
    assert [call.priced for call in b.history().calls] == [False, False, False]
    assert b.summary_data()["unpriced_calls"] == 3


def test_an_sdk_call_made_while_another_is_sent_leaves_the_outer_one_to_the_sdk_layer(
    fake: FakeProvider,
) -> None:
    """A call made from inside another (here from an httpx event hook) must not make the outer
    call's retry look like a request nobody took: it would then be recorded twice."""
    import httpx

    inner = openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=0)
    made: list[Any] = []

    def on_request(request: httpx.Request) -> None:
        if not made:
            made.append(inner.chat.completions.create(model="gpt-4o-mini", messages=USER))

    outer = openai.OpenAI(
        base_url=fake.openai_base_url,
        api_key="t",
        max_retries=1,
        http_client=httpx.Client(event_hooks={"request": [on_request]}),
    )
    fake.enqueue(
        Reply(text="inner", input_tokens=10, output_tokens=1),  # served first, from the hook
        Reply.error(500, retry_after=0),  # the outer call's first attempt
        Reply(text="outer", input_tokens=1000, output_tokens=10),  # and its retry
    )
    with budget(max_usd=1.0) as b:
        outer.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert len(made) == 1
    assert len(fake.requests) == 3
    assert [c.input_tokens for c in b.history().calls] == [10, 1000]
    assert b.snapshot().llm_calls_used == 2


def test_two_sdk_responses_with_one_id_are_two_calls(fake: FakeProvider) -> None:
    """Some servers repeat response ids: the interceptor never takes a second call for the
    first one told twice."""
    import httpx

    body = {
        "id": "chatcmpl-same",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 10, "total_tokens": 1010},
    }
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    client = openai.OpenAI(
        api_key="t", base_url="http://fake/v1", http_client=httpx.Client(transport=transport)
    )
    with budget(max_usd=1.0) as b:
        for _ in range(2):
            client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert b.snapshot().llm_calls_used == 2
    assert b.spent == pytest.approx(2 * gpt4o_mini(1000, 10), abs=1e-12)


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_raw_responses_and_call_caps_are_counted_below_the_sdk(
    fake: FakeProvider, sdk: str
) -> None:
    fake.enqueue(
        Reply(text="raw", input_tokens=10, output_tokens=1),
        Reply(text="capped", input_tokens=10, output_tokens=1),
    )
    client = _client(fake, sdk)
    resource = client.messages if sdk == "anthropic" else client.chat.completions
    with budget(max_usd=1.0) as plain:
        if sdk == "anthropic":
            resource.with_raw_response.create(
                model="claude-3-haiku-20240307", max_tokens=50, messages=USER
            ).parse()
        else:
            resource.with_raw_response.create(model="gpt-4o-mini", messages=USER).parse()
    with budget(max_usd=1.0, max_llm_calls=1) as capped:
        _chat(client)
        with pytest.raises(BudgetExceededError):
            _chat(client)
    assert [c.input_tokens for c in plain.history().calls] == [10]
    assert [c.input_tokens for c in capped.history().calls] == [10]
    assert len(fake.requests) == 2


def test_async_calls_take_the_same_path(fake: FakeProvider) -> None:
    fake.enqueue(*[Reply(text="ok", input_tokens=100, output_tokens=2) for _ in range(4)])

    async def run() -> tuple[float, int]:
        client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="t")
        claude = anthropic.AsyncAnthropic(base_url=fake.anthropic_base_url, api_key="t")
        async with budget(max_usd=1.0) as b:
            await asyncio.gather(
                client.chat.completions.create(model="gpt-4o-mini", messages=USER),
                client.chat.completions.create(model="gpt-4o-mini", messages=USER),
                claude.messages.create(
                    model="claude-3-haiku-20240307", max_tokens=50, messages=USER
                ),
                claude.messages.create(
                    model="claude-3-haiku-20240307", max_tokens=50, messages=USER
                ),
            )
        await client.close()
        await claude.close()
        return b.spent, b.snapshot().llm_calls_used

    spent, calls = asyncio.run(run())
    assert calls == 4
    assert spent > 2 * gpt4o_mini(100, 2)


def test_threads_share_a_parent_budget_without_losing_a_call(fake: FakeProvider) -> None:
    """Sixteen threads, each in a child of one budget, call both SDKs at once (LangGraph
    fan-out, thread pools): every call is counted once, on its child and on the parent."""
    import contextvars
    import threading

    calls_per_thread = 3
    openai_client = _client(fake, "openai")
    claude = _client(fake, "anthropic")
    start = threading.Barrier(16)
    errors: list[BaseException] = []

    def work(parent: Any, i: int) -> None:
        try:
            with parent.child(f"worker{i}", max_usd=1.0):
                start.wait()
                for _ in range(calls_per_thread):
                    _chat(claude if i % 2 else openai_client)
        except BaseException as exc:  # reported below: a thread's error would be lost
            errors.append(exc)

    with budget(max_usd=10.0, name="pool") as parent:
        # Each thread runs in a copy of this context, as the frameworks' thread pools do.
        threads = [
            threading.Thread(
                target=contextvars.copy_context().run, args=(work, parent, i), daemon=True
            )
            for i in range(16)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert errors == []
    assert len(fake.requests) == 16 * calls_per_thread
    assert parent.snapshot().llm_calls_used == 16 * calls_per_thread
    assert (
        sum(
            parent.find_child(f"worker{i}").snapshot().llm_calls_used  # type: ignore[union-attr]
            for i in range(16)
        )
        == 16 * calls_per_thread
    )
    children_spent = sum(parent.find_child(f"worker{i}").spent for i in range(16))  # type: ignore[union-attr]
    assert parent.spent == pytest.approx(children_spent, abs=1e-9)


@pytest.mark.parametrize("sdk", [openai, anthropic], ids=["openai", "anthropic"])
def test_the_installed_sdks_request_is_patched_with_its_own_signature(sdk: Any) -> None:
    """This runs on the lowest and the newest SDKs shekel declares: a ``request`` of another
    shape would be left to the HTTP layer, and the SDK layer's savings silently lost."""
    import inspect

    with budget():
        pass  # installs interception
    for client in (sdk._base_client.SyncAPIClient, sdk._base_client.AsyncAPIClient):
        original = getattr(client.request, "__shekel_original__", None)
        assert original is not None, f"{sdk.__name__} {sdk.__version__}: request not patched"
        assert inspect.signature(client.request).parameters.keys() == (
            inspect.signature(original).parameters.keys()
        )


def test_a_request_of_another_shape_is_left_to_the_http_layer() -> None:
    import types

    from shekel._interception import _sdk_patch

    class SyncAPIClient:
        def request(self, cast_to: Any, options: Any, retries: int = 0, **rest: Any) -> Any:
            return cast_to

    module = types.ModuleType("some_sdk._base_client")
    module.SyncAPIClient = SyncAPIClient  # type: ignore[attr-defined]
    _sdk_patch.patch(module)
    assert not hasattr(SyncAPIClient.request, "__shekel_original__")


def test_httpx_send_is_patched_with_its_own_signature() -> None:
    """On the lowest and newest httpx (and httpx2, with openai 3): the usual calls pass through
    with httpx's declared arguments, not ``*args, **kwargs``."""
    import importlib
    import importlib.util
    import inspect

    flavours = [
        importlib.import_module(name)
        for name in ("httpx", "httpx2")
        if importlib.util.find_spec(name) is not None
    ]
    with budget():
        pass  # installs interception
    for library in flavours:
        for client in (library.Client, library.AsyncClient):
            original = getattr(client.send, "__shekel_original__", None)
            assert original is not None, f"{library.__name__}: send not patched"
            patched = inspect.signature(client.send).parameters
            assert patched.keys() == inspect.signature(original).parameters.keys()
            defaults = [p.default for p in patched.values()][2:]
            assert defaults == list(original.__kwdefaults__.values())
