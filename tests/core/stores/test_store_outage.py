"""A Redis server stopped in the middle of a run: by default budgets fail closed (the call is
refused before it is sent, with an error saying what to check), and pick up where they were
when the server is back; with ``?on_error=open`` calls go on unrecorded, with a warning."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from redis_server import RedisServer

from shekel import budget
from shekel._errors import BudgetStoreUnavailableError
from shekel._store_errors import BudgetStoreWarning
from shekel.testing import FakeProvider

MESSAGES = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    found = RedisServer(tmp_path / "redis", persist=True)  # its data survives a restart
    yield found
    found.stop()


@pytest.fixture
def oai(fake: FakeProvider) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=2)
    yield client
    client.close()


@pytest.mark.parametrize("strict", [False, True])
def test_a_stopped_server_refuses_calls_before_they_are_sent(
    server: RedisServer, fake: FakeProvider, oai: openai.OpenAI, strict: bool
) -> None:
    url = f"{server.url}?timeout=1"
    with budget(name="outage", max_usd=1, strict=strict, store=url) as b:
        oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5)
        first = b.spent
        assert first > 0
        server.stop()
        with pytest.raises(BudgetStoreUnavailableError) as caught:
            oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5)
        assert len(fake.requests) == 1  # nothing was sent
        assert f"127.0.0.1:{server.port}" in str(caught.value)
        assert "check that it is running and reachable" in str(caught.value)
        server.start()
        oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5)
        assert b.calls_used == 2  # the spend before the outage is still there
        assert b.spent == pytest.approx(2 * first)
        assert b.snapshot().usd_reserved == 0


def test_failing_open_lets_calls_go_on_with_a_warning(
    server: RedisServer, fake: FakeProvider, oai: openai.OpenAI
) -> None:
    url = f"{server.url}?on_error=open&timeout=1"
    with budget(name="open", max_usd=1, strict=True, store=url) as b:
        oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5)
        server.stop()
        with pytest.warns(BudgetStoreWarning, match="unavailable.*unrecorded"):
            reply = oai.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, max_tokens=5
            )
        assert reply.choices[0].message.content
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once, not per call
            oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=5)
        assert len(fake.requests) == 3
        server.start()
        assert b.calls_used == 1  # the calls made while it was down went unrecorded
