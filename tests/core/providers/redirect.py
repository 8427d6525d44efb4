"""Requests to a provider's real host, answered by the fake provider.

Interception happens in ``Client.send``, above the transport, so shekel sees the URL the SDK
built (``https://api.groq.com/...``); this transport then sends the request, unchanged but for
its scheme, host and port, to the fake provider on 127.0.0.1, as a resolver pointing the name
there would. Nothing of shekel's is replaced.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from shekel.testing import FakeProvider

OPENED: list[Any] = []
"""The clients made here, closed after each test (``conftest.py``): sockets left to the garbage
collector would warn in whichever test runs when it comes."""


def redirecting_client(library: ModuleType, fake: FakeProvider, *, aio: bool = False) -> Any:
    """An httpx (or httpx2) client of ``library`` whose requests all reach ``fake``."""
    base = library.AsyncHTTPTransport if aio else library.HTTPTransport

    def moved(request: Any) -> Any:
        request.url = request.url.copy_with(scheme="http", host=fake.host, port=fake.port)
        return request

    if aio:

        class AsyncRedirect(base):  # type: ignore[misc,valid-type]
            async def handle_async_request(self, request: Any) -> Any:
                return await super().handle_async_request(moved(request))

        client = library.AsyncClient(transport=AsyncRedirect())
        OPENED.append(client)
        return client

    class Redirect(base):  # type: ignore[misc,valid-type]
        def handle_request(self, request: Any) -> Any:
            return super().handle_request(moved(request))

    client = library.Client(transport=Redirect())
    OPENED.append(client)
    return client
