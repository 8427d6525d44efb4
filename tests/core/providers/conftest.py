"""Real provider SDKs pointed at the fake provider."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from redirect import OPENED

from shekel.testing import FakeProvider


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider


@pytest.fixture(autouse=True)
def close_redirecting_clients() -> Iterator[None]:
    yield
    while OPENED:
        client = OPENED.pop()
        if hasattr(client, "aclose"):
            if not client.is_closed:
                asyncio.run(client.aclose())
        else:
            client.close()
