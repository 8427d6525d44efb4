"""What integrations build on, through the real SDKs: routing calls to a budget of the plugin's
choosing, usage a framework reports counted once with the interceptor's, and the usage chunk
handed on to callers that want it."""

from __future__ import annotations

import asyncio
import contextvars
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from sdk_figures import USER, gpt4o_mini
from wire import chat_chunk, http_library, openai_client, sse_handler

from shekel import Budget, BudgetExceededError, budget
from shekel.plugins import CallRoute, hookimpl, plugin_manager
from shekel.testing import FakeProvider, Reply

TENANT: contextvars.ContextVar[str | None] = contextvars.ContextVar("tenant", default=None)


class TenantRouter:
    """A plugin that charges each call to a child per tenant (a key of its own), capped at two
    calls per tenant."""

    def __init__(self, root: Budget, *, show_stream_usage: bool = False) -> None:
        self.root = root
        self.show = show_stream_usage
        self.asked = 0

    @hookimpl
    def shekel_route_call(self, active: Budget | None) -> CallRoute | None:
        self.asked += 1
        tenant = TENANT.get()
        if tenant is None:
            return None
        child = self.root.child(tenant, max_llm_calls=2)
        return CallRoute(child, show_stream_usage=self.show)


@pytest.fixture
def router() -> Iterator[TenantRouter]:
    plugin = TenantRouter(budget(max_usd=1, name="root"))
    plugin_manager().register(plugin)
    yield plugin
    plugin_manager().unregister(plugin)


def _as(tenant: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    token = TENANT.set(tenant)
    try:
        return fn(*args, **kwargs)
    finally:
        TENANT.reset(token)


def test_a_plugin_routes_calls_to_children_of_its_choosing(
    fake: FakeProvider, oai: openai.OpenAI, claude: anthropic.Anthropic, router: TenantRouter
) -> None:
    fake.set_usage(input_tokens=100, output_tokens=10)
    create = oai.chat.completions.create
    with router.root:
        _as("acme", create, model="gpt-4o-mini", messages=USER)
        _as("globex", create, model="gpt-4o-mini", messages=USER)
        _as("acme", claude.messages.create, model="claude-haiku-4-5", max_tokens=50, messages=USER)
        create(model="gpt-4o-mini", messages=USER)  # no tenant: the active budget pays
    acme, globex = router.root.child("acme"), router.root.child("globex")
    assert (
        acme.snapshot().llm_calls_used,
        globex.snapshot().llm_calls_used,
        router.root.snapshot().llm_calls_used,
    ) == (2, 1, 4)
    assert router.root.spent_direct == pytest.approx(gpt4o_mini(100, 10), abs=1e-12)
    assert globex.spent == pytest.approx(gpt4o_mini(100, 10), abs=1e-12)
    assert len(fake.requests) == 4


def test_a_routed_budget_refuses_before_sending(
    fake: FakeProvider, oai: openai.OpenAI, router: TenantRouter
) -> None:
    create = oai.chat.completions.create
    with router.root:
        _as("acme", create, model="gpt-4o-mini", messages=USER)
        _as("acme", create, model="gpt-4o-mini", messages=USER)
        with pytest.raises(BudgetExceededError) as caught:
            _as("acme", create, model="gpt-4o-mini", messages=USER)
        _as("globex", create, model="gpt-4o-mini", messages=USER)  # another tenant goes on
    assert caught.value.sent is False
    assert caught.value.budget_name == "root.acme"
    assert len(fake.requests) == 3


def test_calls_are_routed_with_no_budget_active(
    fake: FakeProvider, oai: openai.OpenAI, router: TenantRouter
) -> None:
    _as("acme", oai.chat.completions.create, model="gpt-4o-mini", messages=USER)
    oai.chat.completions.create(model="gpt-4o-mini", messages=USER)  # nobody pays: untracked
    assert router.root.child("acme").snapshot().llm_calls_used == 1
    assert router.root.snapshot().llm_calls_used == 1
    assert len(fake.requests) == 2


def test_routing_in_async_tasks(fake: FakeProvider, router: TenantRouter) -> None:
    async def main() -> None:
        client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=2)

        async def call(tenant: str) -> None:
            TENANT.set(tenant)
            await client.chat.completions.create(model="gpt-4o-mini", messages=USER)

        async with router.root:
            await asyncio.gather(call("a"), call("b"), call("a"))
        await client.close()

    asyncio.run(main())
    assert [router.root.child(t).snapshot().llm_calls_used for t in ("a", "b")] == [2, 1]


def test_the_usage_chunk_reaches_callers_that_ask_for_it(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    fake.enqueue(Reply(text="a b", input_tokens=7, output_tokens=2))
    plugin = TenantRouter(budget(name="root"), show_stream_usage=True)
    plugin_manager().register(plugin)
    try:
        chunks = _as(
            "acme",
            lambda: list(
                oai.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
            ),
        )
    finally:
        plugin_manager().unregister(plugin)
    assert fake.requests[0].body["stream_options"] == {"include_usage": True}
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (7, 2)
    assert plugin.root.child("acme").snapshot().tokens_used == 9


# -- one call reported twice: by the interceptor and by a framework ------------------------------


def test_a_framework_reporting_an_intercepted_call_after_it_changes_nothing(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    fake.set_usage(input_tokens=100, output_tokens=10)
    with budget(max_usd=1) as b:
        response = oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
        again = b.record(
            model="gpt-4o-mini",
            input_tokens=100,
            output_tokens=10,
            call_id=response.id,
            source="framework",
        )
    assert b.snapshot().llm_calls_used == 1
    assert again.source == "sdk"
    assert again.call_id == response.id
    assert b.spent == pytest.approx(gpt4o_mini(100, 10), abs=1e-12)


def test_a_framework_reporting_an_anthropic_message_after_it_changes_nothing(
    fake: FakeProvider, claude: anthropic.Anthropic
) -> None:
    """anthropic 2.17 reads every response body as a stream: the id is read there too."""
    fake.set_usage(input_tokens=100, output_tokens=10)
    with budget(max_usd=1) as b:
        message = claude.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=USER)
        again = b.record(
            model="claude-haiku-4-5", input_tokens=100, output_tokens=10, call_id=message.id
        )
    assert b.snapshot().llm_calls_used == 1
    assert again.source == "sdk"
    assert again.call_id == message.id


def test_a_framework_reporting_a_streamed_call_after_it_changes_nothing(
    fake: FakeProvider, claude: anthropic.Anthropic
) -> None:
    fake.set_usage(input_tokens=100, output_tokens=10)
    with budget(max_usd=1) as b:
        with claude.messages.stream(
            model="claude-haiku-4-5", max_tokens=50, messages=USER
        ) as stream:
            message = stream.get_final_message()
        b.record(model="claude-haiku-4-5", input_tokens=100, call_id=message.id, source="fw")
    assert b.snapshot().llm_calls_used == 1
    assert b.history().calls[0].source == "sdk"


def test_a_framework_reporting_a_stream_before_it_ends_is_counted_once(
    fake: FakeProvider, oai: openai.OpenAI
) -> None:
    fake.enqueue(Reply(text="a b c", input_tokens=100, output_tokens=3))
    with budget(max_usd=1) as b:
        stream = oai.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True)
        first = next(iter(stream))
        reported = b.record(
            model="gpt-4o-mini", input_tokens=100, output_tokens=3, call_id=first.id, source="fw"
        )
        for _ in stream:
            pass
    assert b.snapshot().llm_calls_used == 1
    assert b.history().calls[0] is reported
    assert b.spent == pytest.approx(gpt4o_mini(100, 3), abs=1e-12)
    assert b.snapshot().usd_reserved == 0


def test_a_server_that_repeats_response_ids_loses_no_spend() -> None:
    """Some local and test servers send the same id every time: those are separate calls."""
    parts = [chat_chunk("hi"), chat_chunk(usage={"prompt_tokens": 10, "completion_tokens": 1})]
    parts.append(b"data: [DONE]\n\n")
    client = openai_client(sse_handler(http_library(openai), parts))
    with budget(max_usd=1) as b:
        for _ in range(3):
            list(client.chat.completions.create(model="gpt-4o", messages=USER, stream=True))
    assert b.snapshot().llm_calls_used == 3
    assert {c.call_id for c in b.history().calls} == {"chatcmpl-1"}


FRESH_ROUTING = """
import json, sys, warnings
warnings.simplefilter("ignore")
import openai
from shekel import budget
from shekel.plugins import CallRoute, hookimpl, plugin_manager
from shekel.testing import FakeProvider

fake = FakeProvider()
fake.set_usage(input_tokens=100, output_tokens=10)
client = openai.OpenAI(api_key="t", base_url=fake.openai_base_url, max_retries=0)
root = budget(name="root")  # made, never entered: no budget has been active in this process
class Router:
    @hookimpl
    def shekel_route_call(self, active):
        return CallRoute(root.child("tenant"))
plugin_manager().register(Router())
client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
print(json.dumps({"sent": len(fake.requests), "recorded": root.snapshot().llm_calls_used}))
"""


def test_a_plugin_routing_before_any_budget_sees_the_first_call() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FRESH_ROUTING],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"sent": 1, "recorded": 1}
