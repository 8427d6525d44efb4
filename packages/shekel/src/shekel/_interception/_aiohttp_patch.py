"""aiohttp's ``ClientSession._request``: the one path of every aiohttp request.

``google-genai`` sends its async calls (``client.aio``) through aiohttp whenever aiohttp is
installed (LiteLLM installs it), bypassing httpx. ``request``, ``post`` and the context-manager
forms all go through ``ClientSession._request``, which returns once the response headers are
in: shekel checks and reserves before it runs, then reads a JSON body at once (aiohttp keeps
it, so the caller's ``read``/``text``/``json`` get the same bytes), or puts a tap in front of a
streamed body (``response.content``) that hands every byte on unchanged.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any, Final

from .._context import active_budget, current_owner
from .._kit_routes import routes_without_budget
from .._plugins import LISTENING
from ._adapter import StreamTally
from ._call import InterceptedCall, as_shekel_error, for_sdk
from ._routing import LOCAL_HOSTS
from ._streams import _Tap
from ._transport import SENDING, begin, cause, check_async, failed, in_thread, read_body, route_key

_PATCHED: Final = "__shekel_original__"


def patch(module: ModuleType) -> None:
    """Patch ``aiohttp.ClientSession._request`` (idempotent)."""
    session = module.ClientSession
    if getattr(session._request, _PATCHED, None) is not None:
        return
    original = session._request
    wrapper = _make_request(original)
    setattr(wrapper, _PATCHED, original)
    session._request = wrapper


def unpatch(module: ModuleType) -> None:
    original = getattr(module.ClientSession._request, _PATCHED, None)
    if original is not None:
        module.ClientSession._request = original


def _body_of(kwargs: dict[str, Any]) -> bytes | None:
    """The request body as bytes, when it is given whole (``data=`` bytes or text, ``json=``)."""
    data, payload = kwargs.get("data"), kwargs.get("json")
    if payload is not None:
        return json.dumps(payload).encode()
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    if isinstance(data, str):
        return data.encode()
    return None


def _make_request(original: Any) -> Any:
    async def _request(self: Any, method: str, str_or_url: Any, **kwargs: Any) -> Any:
        budget = active_budget()
        if (
            (budget is None and not (LISTENING.shekel_route_call and routes_without_budget()))
            or method.upper() != "POST"
            or SENDING.get()  # httpx above this already intercepted it (LiteLLM's transport)
        ):
            return await original(self, method, str_or_url, **kwargs)
        url = self._build_url(str_or_url)
        host = url.host or ""
        if host in LOCAL_HOSTS:
            host = route_key(host, url.port)
        call = begin(budget, host, url.path)
        if call is None:
            return await original(self, method, str_or_url, **kwargs)
        content = _body_of(kwargs)
        call.show_usage = True  # bytes are handed on unchanged: nothing is hidden
        blocks = call.chain.ledger.blocks
        if blocks:
            call.caller = current_owner()
        body = await check_async(call, content or b"", url.path, blocks)
        if body is not None and content is not None:
            if kwargs.get("json") is not None:
                kwargs["json"] = json.loads(body)
            else:
                kwargs["data"] = body
        if call.new_path is not None:
            str_or_url = url.with_path(call.new_path).with_query(url.query)
        try:
            response = await original(self, method, str_or_url, **kwargs)
        except BaseException as exc:
            failed(call, exc)
            raise
        await _track(call, response, blocks)
        return response

    return _request


async def _track(call: InterceptedCall, response: Any, blocks: bool) -> None:
    if response.status >= 400:
        call.release()
        return
    content_type = response.headers.get("Content-Type", "")
    adapter = call.adapter
    if adapter.is_stream(content_type):
        tally = adapter.new_tally(False)
        response.content = ContentTap(call, tally, response)
        call.watch(tally)
        return
    try:
        content = await response.read()  # kept by aiohttp for the caller's own read
    except BaseException as exc:
        failed(call, exc)
        raise
    try:
        if blocks:
            await in_thread(read_body, call, content, content_type)
        else:
            read_body(call, content, content_type)
    except Exception as exc:
        raise for_sdk(as_shekel_error(exc, sent=True), adapter) from cause(exc)


class ContentTap(_Tap):
    """Stands in for a streamed response's ``content`` (an aiohttp ``StreamReader``): every
    read goes to the real one, and what it returns is also read by the stream's tally."""

    def __init__(self, call: InterceptedCall, tally: StreamTally, response: Any) -> None:
        super().__init__(call, tally, response.content)
        self.settle_here = not call.chain.ledger.blocks
        self.response = response
        self.ended = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def _seen(self, data: bytes) -> bytes:
        """Read ``data`` on its way to the caller; raise what is owed once it has gone by."""
        if self.error is not None:
            error = self.take_error()
            assert error is not None
            raise error
        if data:
            self.feed(data)
            if self.due:
                self.due = False
                await in_thread(self._settle_complete)
            if self.stop:
                self.response.close()
                raise self.cut_off()
            return data
        if not self.ended:
            self.ended = True
            self.finish()
            error = self.take_error()
            if error is not None:
                raise error
        return data

    def _settle_complete(self) -> None:
        self._settle(complete=True)

    async def _read(self, coroutine: Any) -> Any:
        try:
            return await coroutine
        except BaseException:
            self.abandon()
            raise

    async def readany(self) -> bytes:
        return await self._seen(await self._read(self.inner.readany()))

    async def read(self, n: int = -1) -> bytes:
        return await self._seen(await self._read(self.inner.read(n)))

    async def readline(self, **kwargs: Any) -> bytes:
        return await self._seen(await self._read(self.inner.readline(**kwargs)))

    async def readuntil(self, separator: bytes = b"\n", **kwargs: Any) -> bytes:
        return await self._seen(await self._read(self.inner.readuntil(separator, **kwargs)))

    async def readexactly(self, n: int) -> bytes:
        return await self._seen(await self._read(self.inner.readexactly(n)))

    async def readchunk(self) -> tuple[bytes, bool]:
        data, end_of_chunk = await self._read(self.inner.readchunk())
        return await self._seen(data), end_of_chunk

    def _iterator(self, read: Any) -> Any:
        from aiohttp.streams import AsyncStreamIterator

        return AsyncStreamIterator(read)

    def __aiter__(self) -> Any:
        return self._iterator(self.readline)

    def iter_any(self) -> Any:
        return self._iterator(self.readany)

    def iter_chunked(self, n: int) -> Any:
        self.inner.set_read_chunk_size(n)
        return self._iterator(lambda: self.read(n))

    def iter_chunks(self) -> Any:
        from aiohttp.streams import ChunkTupleAsyncStreamIterator

        return ChunkTupleAsyncStreamIterator(self)  # type: ignore[arg-type]
