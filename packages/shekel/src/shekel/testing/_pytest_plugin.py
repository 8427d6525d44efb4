"""pytest plugin (entry point ``shekel``): the ``fake_llm`` fixture.

Loaded into every pytest run of an environment where shekel is installed, so it imports
the server lazily and never imports ``openai`` or ``anthropic``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from shekel.testing._server import FakeProvider


@pytest.fixture
def fake_llm() -> Iterator[FakeProvider]:
    """A running :class:`shekel.testing.FakeProvider` on a free local port, stopped afterwards."""
    from shekel.testing._server import FakeProvider

    with FakeProvider() as fake:
        yield fake
