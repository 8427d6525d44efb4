"""Real provider SDKs pointed at the fake provider."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shekel.testing import FakeProvider


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider
