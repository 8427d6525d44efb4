"""The one place shekel hooks into providers' traffic: ``send`` of httpx's clients.

The SDKs send through ``httpx`` (openai 1.x and 2.x, anthropic before 2.0) or its successor
``httpx2`` (openai 3.x, anthropic 2.x); LangChain, LlamaIndex and CrewAI's native providers sit
on those SDKs. Patching ``Client.send`` and ``AsyncClient.send`` of both libraries therefore
sees every entry point (``create``, ``parse``, ``stream``, ``with_raw_response``...) at one
spot. The patch is installed before the first budget becomes active; while no budget is active
it costs one context-variable read.

A library that is not imported yet is never imported by shekel (another thread may be importing
it at that moment, and openai 3 reads attributes of a half-imported ``httpx``): an import hook
patches it the moment its own import finishes, before any code can send through it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import json
import sys
import threading
import time
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Final

from .._context import active_budget, current_owner
from .._errors import ShekelError
from .._plugins import CHANGE_LISTENERS, LISTENING, plugin_manager
from ._adapter import ProtocolAdapter
from ._call import InterceptedCall, WaitForRoom, as_shekel_error, for_sdk
from ._streams import AsyncTap, SyncTap

HTTP_LIBRARIES: Final = ("httpx", "httpx2")
_PATCHED: Final = "__shekel_original__"
_lock = threading.Lock()

_adapters: list[ProtocolAdapter] = []
_routes: dict[str, ProtocolAdapter | None] = {}
_routes_generation = -1


def install() -> None:
    """Patch the httpx flavours imported so far, and any imported later (idempotent)."""
    with _lock:
        if _IMPORT_HOOK not in sys.meta_path:
            sys.meta_path.insert(0, _IMPORT_HOOK)
        imported = [name for name in HTTP_LIBRARIES if name in sys.modules]
    for name in imported:
        # Waits for the import to finish if another thread is still running it.
        _patch_module(importlib.import_module(name))


def uninstall() -> None:
    """Put the original ``send`` methods back (for tests and for embedding applications)."""
    with _lock:
        if _IMPORT_HOOK in sys.meta_path:
            sys.meta_path.remove(_IMPORT_HOOK)
        for name in HTTP_LIBRARIES:
            module = sys.modules.get(name)
            if module is None:
                continue
            for cls in (module.Client, module.AsyncClient):
                original = getattr(cls.send, _PATCHED, None)
                if original is not None:
                    cls.send = original


def installed() -> bool:
    """True while shekel's patch is in place (on every httpx flavour imported so far)."""
    with _lock:
        if _IMPORT_HOOK not in sys.meta_path:
            return False
    return all(
        getattr(sys.modules[name].Client.send, _PATCHED, None) is not None
        for name in HTTP_LIBRARIES
        if name in sys.modules and hasattr(sys.modules[name], "Client")
    )


def _patch_module(module: ModuleType) -> None:
    with _lock:
        _patch(module.Client, _make_sync_send)
        _patch(module.AsyncClient, _make_async_send)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches an httpx flavour as soon as its own import has run."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in HTTP_LIBRARIES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: importlib.machinery.ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self.inner.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        _patch_module(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


_IMPORT_HOOK: Final = _PatchOnImport()


def _patch(cls: Any, factory: Any) -> None:
    if getattr(cls.send, _PATCHED, None) is not None:
        return
    wrapper = factory(cls.send)
    setattr(wrapper, _PATCHED, cls.send)
    cls.send = wrapper


def adapter_for(path: str) -> ProtocolAdapter | None:
    """The adapter for a request path (cached; rebuilt when plugins change)."""
    global _routes_generation
    manager = plugin_manager()
    generation = manager.generation
    if _routes_generation != generation:
        adapters = [a for group in manager.hook.shekel_protocol_adapters() for a in group]
        with _lock:
            _adapters[:] = adapters
            _routes.clear()
            _routes_generation = generation
    try:
        return _routes[path]
    except KeyError:
        found = next((a for a in _adapters if a.matches(path)), None)
        with _lock:  # not an answer from adapters that a plugin change replaced meanwhile
            if len(_routes) < 4096 and _routes_generation == generation:
                _routes[path] = found
        return found


def _forget_routes() -> None:
    """A plugin came or went: its adapters may route paths differently."""
    global _routes_generation
    with _lock:
        _routes.clear()
        _routes_generation = -1


CHANGE_LISTENERS.append(_forget_routes)


def _is_llm_call(request: Any) -> bool:
    return request.method == "POST" and adapter_for(request.url.path) is not None


def _start(active: Any, request: Any) -> InterceptedCall | None:
    """An :class:`InterceptedCall` for ``request``, if it is an LLM call made under a budget:
    the one a ``shekel_route_call`` plugin names, else ``active``."""
    if request.method != "POST":
        return None
    path = request.url.path
    adapter = _routes.get(path)  # emptied when plugins change (``_forget_routes``)
    if adapter is None:
        adapter = adapter_for(path)
        if adapter is None:
            return None
    show_usage = False
    if LISTENING.shekel_route_call:
        route = plugin_manager().hook.shekel_route_call(active=active)
        if route is not None:
            active, show_usage = route.budget, route.show_stream_usage
    if active is None:
        return None
    call = InterceptedCall(active, adapter)
    call.show_usage = show_usage
    return call


def _prepare(call: InterceptedCall, request: Any) -> Any:
    """Check and reserve (raises ``WaitForRoom``); the request to send. Its body must have been
    read (``request.read()``) when it was built from a stream."""
    try:
        body = call.prepare(request.content)
    except WaitForRoom:
        raise
    except Exception as exc:
        raise for_sdk(as_shekel_error(exc, sent=False), call.adapter) from _cause(exc)
    return request if body is None else _rebuild(request, body)


def _prepare_sync(call: InterceptedCall, request: Any) -> Any:
    try:
        return _prepare(call, request)
    except WaitForRoom:
        pass
    delay = _FIRST_WAIT
    while True:
        time.sleep(delay)
        delay = min(delay * 2, _LONGEST_WAIT)
        try:
            return _prepare(call, request)
        except WaitForRoom:
            continue


async def _prepare_async(call: InterceptedCall, request: Any, blocks: bool) -> Any:
    """Like :func:`_prepare_sync`, waiting in the event loop: a store that blocks is used from
    a worker thread, but never waited on there (the calls that would free room need the
    workers to settle)."""
    delay = _FIRST_WAIT
    while True:
        try:
            if blocks:
                return await _in_thread(_prepare, call, request)
            return _prepare(call, request)
        except WaitForRoom:
            await sys.modules["asyncio"].sleep(delay)  # imported: this runs in an event loop
            delay = min(delay * 2, _LONGEST_WAIT)


async def _in_thread(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a worker thread, with this task's context."""
    return await sys.modules["asyncio"].to_thread(fn, *args)


_FIRST_WAIT: Final = 0.002
_LONGEST_WAIT: Final = 0.05


def _cause(exc: Exception) -> Exception | None:
    """What to chain a re-raised error to: nothing for shekel's own errors (their message
    says it all), the original for a callback's."""
    return None if isinstance(exc, ShekelError) else exc


def _rebuild(request: Any, body: bytes) -> Any:
    """``request`` with another body. Built from a ready byte stream, which skips httpx's
    header defaults (the original request already has them; only the length changes) and
    re-normalising every header, the bulk of the cost of a new request."""
    library = sys.modules[type(request).__module__.partition(".")[0]]
    new = type(request)(
        request.method,
        request.url,
        headers=request.headers,
        stream=library.ByteStream(body),
        extensions=request.extensions,
    )
    new.headers["content-length"] = str(len(body))
    new.read()
    return new


def _failed(call: InterceptedCall, exc: BaseException) -> None:
    """The request raised before a response came back."""
    if type(exc).__name__ in ("ConnectError", "ConnectTimeout", "UnsupportedProtocol"):
        call.release()  # it never reached the provider
    else:  # it may have been processed (timeouts, cancellation): the prompt was paid for
        call.abandon()


def _track(call: InterceptedCall, response: Any, streamed: bool, tap: type) -> None:
    """Attach the call to the response: read usage now, or tap its byte stream."""
    if response.status_code >= 400:
        call.release()
        return
    adapter = call.adapter
    if streamed and getattr(response, "_content", None) is None:
        is_sse = "text/event-stream" in response.headers.get("content-type", "")
        tally = adapter.new_tally(call.hide_usage) if is_sse else None
        response.stream = _tap_class(tap, response)(call, tally, response.stream)
        call.watch(tally)
        return
    # The body is here already: a plain response, or a stream that was read before it
    # reached us (a transport that builds responses from bytes reads them at once).
    content = response.content
    if content.startswith((b"data:", b"event:", b":")):  # an event stream read in one go
        tally = adapter.new_tally(call.hide_usage)
        kept = tally.read_whole(content)
        if call.hide_usage and kept != content:
            response._content = kept
        call.settle_stream(tally, complete=True, raise_over=True)
        return
    if content[:1] == b"{" and adapter.reads_decoded_json:  # whatever the content type says
        try:
            data = json.loads(content)
        except ValueError:
            data = None
        if isinstance(data, dict):
            _hand_over(response, data)
            usage, model = adapter.usage_from_json(data), adapter.model_from_json(data)
            call_id = data.get("id")
            call.settle(
                usage,
                model,
                output_guess=len(content) >> 2,
                call_id=call_id if isinstance(call_id, str) else None,
            )
            return
    usage, model = adapter.read_response(content)
    call.settle(usage, model, output_guess=len(content) >> 2, call_id=adapter.response_id(content))


def _hand_over(response: Any, data: dict[str, Any]) -> None:
    """Give the SDK the body decoded here, so that a response is decoded once, not twice.

    The SDKs read a JSON body with one plain ``response.json()``; that first call gets this
    dict (read only by shekel), any later call or one with options decodes afresh as usual.
    """
    attributes = getattr(response, "__dict__", None)
    if attributes is None:  # a response class with slots decodes again
        return
    decode = response.json

    def json_once(**kwargs: Any) -> Any:
        attributes.pop("json", None)
        return decode(**kwargs) if kwargs else data

    attributes["json"] = json_once


_tap_classes: dict[tuple[type, str], type] = {}


def _tap_class(tap: type, response: Any) -> type:
    """httpx checks a response's stream type, so a tap must also be that library's
    Sync/AsyncByteStream (httpx and httpx2 each have their own)."""
    library = type(response).__module__.partition(".")[0]
    key = (tap, library)
    cls = _tap_classes.get(key)
    if cls is None:
        module = sys.modules[library]
        base = module.SyncByteStream if tap is SyncTap else module.AsyncByteStream
        cls = _tap_classes[key] = type(tap.__name__, (tap, base), {})
    return cls


def _make_sync_send(original: Any) -> Any:
    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        budget = active_budget()
        if budget is None and not LISTENING.shekel_route_call:
            return original(self, request, *args, **kwargs)
        if not hasattr(request, "_content") and _is_llm_call(request):
            request.read()  # a body given as a stream: read it so it can be inspected
        call = _start(budget, request)
        if call is None:
            return original(self, request, *args, **kwargs)
        request = _prepare_sync(call, request)
        try:
            response = original(self, request, *args, **kwargs)
        except BaseException as exc:
            _failed(call, exc)
            raise
        try:
            _track(call, response, bool(kwargs.get("stream")), SyncTap)
        except Exception as exc:
            raise for_sdk(as_shekel_error(exc, sent=True), call.adapter) from _cause(exc)
        return response

    return send


def _make_async_send(original: Any) -> Any:
    async def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        budget = active_budget()
        if budget is None and not LISTENING.shekel_route_call:
            return await original(self, request, *args, **kwargs)
        if not hasattr(request, "_content") and _is_llm_call(request):
            await request.aread()  # a body given as a stream: read it so it can be inspected
        call = _start(budget, request)
        if call is None:
            return await original(self, request, *args, **kwargs)
        # A store that waits on I/O (SQLite, Redis) is used from a worker thread, so the
        # event loop never stops for it.
        blocks = call.budget._ledger.blocks
        if blocks:
            call.caller = current_owner()  # this task, not the worker thread
        request = await _prepare_async(call, request, blocks)
        try:
            response = await original(self, request, *args, **kwargs)
        except BaseException as exc:
            _failed(call, exc)
            raise
        streamed = bool(kwargs.get("stream"))
        try:
            if blocks:
                await _in_thread(_track, call, response, streamed, AsyncTap)
            else:
                _track(call, response, streamed, AsyncTap)
        except Exception as exc:
            raise for_sdk(as_shekel_error(exc, sent=True), call.adapter) from _cause(exc)
        return response

    return send
