"""The ``redis.asyncio`` clients of a ``RedisLedger``: one per running event loop.

An asyncio client's connections belong to the loop that opened them, so every loop that uses
the ledger gets a client of its own, made on first use. A suspended async generator tied to
that loop closes the client when the loop shuts its async generators down (``asyncio.run``
does); clients of loops closed meanwhile are dropped when the next client is made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio


class LoopClients:
    """The async clients of one Redis URL, by event loop."""

    def __init__(self, url: str, options: Callable[[Any], dict[str, Any]]) -> None:
        self._url = url
        self._options = options  # the client's keyword arguments, given its Retry
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, Any, Any]] = {}
        self._lock = threading.Lock()

    async def get(self) -> Any:
        """The running loop's client."""
        import asyncio

        loop = asyncio.get_running_loop()
        with self._lock:
            found = self._clients.get(id(loop))
            if found is not None and found[0] is loop:
                return found[1]
            for key, (other, _, _) in list(self._clients.items()):
                if other.is_closed():
                    del self._clients[key]
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            client = Redis.from_url(self._url, **self._options(Retry(NoBackoff(), 0)))
            closer = _closing(client)
            self._clients[id(loop)] = (loop, client, closer)
        await closer.asend(None)
        return client

    async def aclose(self) -> None:
        """Close the running loop's client, if it has one."""
        import asyncio

        with self._lock:
            found = self._clients.pop(id(asyncio.get_running_loop()), None)
        if found is not None:
            await found[2].aclose()


async def _closing(client: Any) -> Any:
    try:
        yield
    finally:
        await client.aclose()
