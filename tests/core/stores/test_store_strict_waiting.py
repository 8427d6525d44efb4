"""Strict calls on a store wait for each other's room within a process, as they do in memory,
instead of being refused with most of the budget unused (reliability probe v2, b11)."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator

import openai
import pytest

from shekel import BudgetExceededError, budget
from shekel.testing import FakeProvider

MESSAGES = [{"role": "user", "content": "hi"}]
CALL = 20 * 2.5e-6 + 300 * 10e-6  # gpt-4o, 20 tokens in, 300 out: $0.00305


@pytest.fixture
def closing() -> Iterator[contextlib.ExitStack]:
    """What a test opens, closed when it ends (clients' sockets, before the next test)."""
    with contextlib.ExitStack() as stack:
        yield stack


@pytest.mark.parametrize("shared", [True, False], ids=["one object", "an object per request"])
def test_ten_strict_calls_wait_for_each_others_room(
    store: str, fake: FakeProvider, shared: bool, closing: contextlib.ExitStack
) -> None:
    """No max_tokens: each call would hold the model's whole output limit ($0.16 on gpt-4o),
    more than the $0.05 budget, so each must wait until the one before it settles."""
    fake.set_usage(input_tokens=20, output_tokens=300)
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="t", max_retries=0)
    closing.callback(client.close)
    name = f"user_{uuid.uuid4().hex[:6]}"
    one = budget(name=name, max_usd=0.05, strict=True, store=store)
    start = threading.Barrier(10)
    outcomes: list[str] = []

    def request() -> None:
        b = one if shared else budget(name=name, max_usd=0.05, strict=True, store=store)
        start.wait()
        try:
            with b:
                client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            outcomes.append("ok")
        except BudgetExceededError as error:
            outcomes.append(str(error))

    threads = [threading.Thread(target=request) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == ["ok"] * 10
    assert one.spent == pytest.approx(10 * CALL)
    assert one.snapshot().usd_reserved == 0
