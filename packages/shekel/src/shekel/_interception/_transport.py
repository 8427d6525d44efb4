"""The steps every HTTP client patch takes, whatever the library: route a request to its
adapter, check and reserve before it is sent (waiting for room in strict mode), record what a
complete body says, and account for a request that failed.

The patches (``_httpx_patch``, ``_aiohttp_patch``, ``_botocore_patch``) only translate their
library's request and response objects into hosts, paths and bytes.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Final

from .._errors import ShekelError
from .._plugins import CALL, LISTENING
from ._adapter import ProtocolAdapter
from ._call import InterceptedCall, as_shekel_error, for_sdk
from ._routing import LOCAL_HOSTS, ROUTES, route, warn_uncounted
from ._strict import WaitForRoom

SENDING: Final = ContextVar("shekel_sending", default=False)
"""True while an intercepted request is being sent: a client below the one that intercepted it
(LiteLLM's httpx transport over aiohttp) passes it through, so it is counted once."""


def route_key(host: str, port: int | None) -> str:
    """The host as routes are keyed: with its port for a local host only."""
    if host in LOCAL_HOSTS and port is not None:
        return f"{host}:{port}"
    return host


def adapter_of(host: str, path: str) -> ProtocolAdapter | None:
    """The adapter that reads a POST to ``host`` and ``path``, or ``None``."""
    found = ROUTES.get((host, path))
    if found is None:
        found = route(host, path)
    return found if isinstance(found, ProtocolAdapter) else None


def begin(active: Any, host: str, path: str) -> InterceptedCall | None:
    """An :class:`InterceptedCall` for a POST to ``host`` and ``path``, if it is an LLM call
    made under a budget: the one a ``shekel_route_call`` plugin names, else ``active``."""
    try:
        found = ROUTES[host, path]
    except KeyError:
        found = route(host, path)
    if found is None:
        return None
    if found.__class__ is str:
        if active is not None:
            warn_uncounted(found)
        return None
    adapter: ProtocolAdapter = found  # type: ignore[assignment]
    show_usage = False
    if LISTENING.shekel_route_call:
        chosen = CALL.shekel_route_call(active=active)
        if chosen is not None:
            active, show_usage = chosen.budget, chosen.show_stream_usage
    if active is None:
        return None
    call = InterceptedCall(active, adapter)
    call.show_usage = show_usage
    return call


def cause(exc: Exception) -> Exception | None:
    """What to chain a re-raised error to: nothing for shekel's own errors (their message
    says it all), the original for a callback's."""
    return None if isinstance(exc, ShekelError) else exc


def check(call: InterceptedCall, content: bytes, path: str) -> bytes | None:
    """Check and reserve (raises ``WaitForRoom``); the body to send instead, if it changed
    (``call.new_path`` then says whether the path changed too)."""
    try:
        return call.prepare(content, path)
    except WaitForRoom:
        raise
    except Exception as exc:
        raise for_sdk(as_shekel_error(exc, sent=False), call.adapter) from cause(exc)


FIRST_WAIT: Final = 0.002
LONGEST_WAIT: Final = 0.05


def check_sync(call: InterceptedCall, content: bytes, path: str) -> bytes | None:
    """:func:`check`, waiting (in this thread) while other calls in flight hold the room."""
    delay = FIRST_WAIT
    while True:
        try:
            return check(call, content, path)
        except WaitForRoom:
            time.sleep(delay)
            delay = min(delay * 2, LONGEST_WAIT)


async def check_async(
    call: InterceptedCall, content: bytes, path: str, blocks: bool
) -> bytes | None:
    """:func:`check`, waiting in the event loop: a store that blocks is used from a worker
    thread, but never waited on there (the calls that would free room need the workers)."""
    delay = FIRST_WAIT
    while True:
        try:
            if blocks:
                return await in_thread(check, call, content, path)  # type: ignore[no-any-return]
            return check(call, content, path)
        except WaitForRoom:
            await sys.modules["asyncio"].sleep(delay)  # imported: this runs in an event loop
            delay = min(delay * 2, LONGEST_WAIT)


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a worker thread, with this task's context."""
    return await sys.modules["asyncio"].to_thread(fn, *args)


NOT_SENT: Final = frozenset(
    {
        "ConnectError",
        "ConnectTimeout",
        "UnsupportedProtocol",
        "ClientConnectorError",
        "ClientConnectorDNSError",
        "InvalidURL",
        "EndpointConnectionError",
        "ConnectTimeoutError",
    }
)
"""Names of client errors raised before the request reached anyone (httpx, aiohttp, botocore)."""


def failed(call: InterceptedCall, exc: BaseException) -> None:
    """The request raised before a response came back."""
    if type(exc).__name__ in NOT_SENT:
        call.release()  # it never reached the provider
    else:  # it may have been processed (timeouts, cancellation): the prompt was paid for
        call.abandon()


def read_body(
    call: InterceptedCall,
    content: bytes,
    content_type: str,
    on_decoded: Callable[[dict[str, Any]], None] | None = None,
) -> bytes | None:
    """Record a complete response body: JSON, or an event stream read in one piece. Returns
    the body the caller should get instead (a usage event hidden), or ``None``.
    ``on_decoded`` receives a JSON body decoded here (to hand it on to the SDK)."""
    adapter = call.adapter
    if adapter.is_stream(content_type) or content.startswith((b"data:", b"event:", b":")):
        tally = adapter.new_tally(call.hide_usage)
        kept = tally.read_whole(content)
        call.settle_stream(tally, complete=True, raise_over=True)
        return kept if call.hide_usage and kept != content else None
    if content[:1] == b"{" and adapter.reads_decoded_json:  # whatever the content type says
        try:
            data = json.loads(content)
        except ValueError:
            data = None
        if isinstance(data, dict):
            if on_decoded is not None:
                on_decoded(data)
            usage, model = adapter.usage_from_json(data), adapter.model_from_json(data)
            call_id = adapter.id_from_json(data)
            call.settle(usage, model, output_guess=len(content) >> 2, call_id=call_id)
            return None
    usage, model = adapter.read_response(content)
    call.settle(usage, model, output_guess=len(content) >> 2, call_id=adapter.response_id(content))
    return None
