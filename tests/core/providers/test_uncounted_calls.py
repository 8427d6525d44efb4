"""No silent $0: a POST to a known LLM API that shekel cannot read warns once, naming it."""

from __future__ import annotations

import warnings

import httpx
import openai
import pytest
from redirect import redirecting_client

from shekel import UncountedCallWarning, budget
from shekel.testing import FakeProvider


def _openai_at(fake: FakeProvider, base_url: str) -> openai.OpenAI:
    http_client = redirecting_client(httpx, fake)
    return openai.OpenAI(base_url=base_url, api_key="test", max_retries=0, http_client=http_client)


def test_an_unread_endpoint_of_a_known_host_warns_once(fake: FakeProvider) -> None:
    client = _openai_at(fake, "https://api.openai.com/v1")
    with budget(max_usd=1.0) as b, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            with pytest.raises(openai.NotFoundError):  # the fake serves no images
                client.images.generate(model="gpt-image-1", prompt="a cat")
    caught = [w for w in caught if issubclass(w.category, UncountedCallWarning)]
    assert len(caught) == 1  # once, though "always" shows every warning raised
    message = str(caught[0].message)
    assert "api.openai.com/v1/images/generations" in message
    assert "budget.record" in message
    assert b.snapshot().llm_calls_used == 0
    assert [r.path for r in fake.requests] == ["/v1/images/generations"] * 2  # never refused


def test_a_paid_path_on_any_host_warns(fake: FakeProvider) -> None:
    with (
        openai.OpenAI(base_url=fake.openai_base_url, api_key="test", max_retries=0) as client,
        budget(max_usd=1.0),
        pytest.warns(UncountedCallWarning, match="/v1/audio/speech"),
        pytest.raises(openai.NotFoundError),
    ):
        client.audio.speech.create(model="tts-1", voice="alloy", input="hi")


def test_no_warning_outside_a_budget_for_free_paths_or_other_hosts(fake: FakeProvider) -> None:
    client = _openai_at(fake, "https://api.openai.com/v1")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncountedCallWarning)
        with pytest.raises(openai.NotFoundError):
            client.images.generate(model="gpt-image-1", prompt="no budget, no warning")
        with budget(max_usd=1.0):
            with pytest.raises(openai.NotFoundError):
                client.moderations.create(input="free of charge")
            with redirecting_client(httpx, fake) as plain:
                assert plain.post("https://example.com/upload", json={}).status_code == 404


def test_a_counted_call_does_not_warn(fake: FakeProvider) -> None:
    client = _openai_at(fake, "https://api.openai.com/v1")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncountedCallWarning)
        with budget(max_usd=1.0) as b:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
            )
    assert b.snapshot().llm_calls_used == 1
