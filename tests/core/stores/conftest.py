"""Fixtures of the store tests: a real ``redis-server`` for the session (see redis_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The session server's URL, with its database emptied after the test."""
    yield redis_server.url
    client = redis_server.client()
    client.flushdb()
    client.close()
