"""LiteLLM against the fake provider (run by ``nox -s tests_litellm``, in an environment of its
own: LiteLLM weighs some 140 MB and brings aiohttp)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from shekel.testing import FakeProvider

# LiteLLM fetches its model table from the network at import unless told to use its own copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider() as provider:
        yield provider
