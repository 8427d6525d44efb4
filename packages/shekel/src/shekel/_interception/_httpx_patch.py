"""The one place shekel hooks into providers' traffic: ``send`` of httpx's clients.

The openai SDK sends through ``httpx``, the anthropic SDK through ``httpx2``; LangChain,
LlamaIndex and CrewAI's native providers sit on those SDKs. Patching ``Client.send`` and
``AsyncClient.send`` of both libraries therefore sees every entry point (``create``, ``parse``,
``stream``, ``with_raw_response``...) at one spot. The patch is installed once, when the first
budget is entered; while no budget is active it costs one context-variable read.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from typing import Any, Final

from .._context import ACTIVE, PROCESS_ROOT
from .._errors import ShekelError
from .._plugins import plugin_manager
from ._adapter import ProtocolAdapter
from ._call import InterceptedCall
from ._streams import AsyncTap, SyncTap

HTTP_LIBRARIES: Final = ("httpx", "httpx2")
_PATCHED: Final = "__shekel_original__"
_lock = threading.Lock()

_adapters: list[ProtocolAdapter] = []
_routes: dict[str, ProtocolAdapter | None] = {}
_routes_generation = -1

# Errors raised inside ``send`` must look like the SDK's own, or the SDK wraps them in a
# connection error and retries.
_SDK_ERRORS: Final = {
    "openai": ("openai", "OpenAIError"),
    "anthropic": ("anthropic", "AnthropicError"),
}
_flavours: dict[tuple[type, type], type] = {}


def install() -> None:
    """Patch every importable httpx flavour (idempotent)."""
    with _lock:
        for name in HTTP_LIBRARIES:
            if name not in sys.modules and importlib.util.find_spec(name) is None:
                continue
            module = importlib.import_module(name)
            _patch(module.Client, _make_sync_send)
            _patch(module.AsyncClient, _make_async_send)


def uninstall() -> None:
    """Put the original ``send`` methods back (for tests and for embedding applications)."""
    with _lock:
        for name in HTTP_LIBRARIES:
            module = sys.modules.get(name)
            if module is None:
                continue
            for cls in (module.Client, module.AsyncClient):
                original = getattr(cls.send, _PATCHED, None)
                if original is not None:
                    cls.send = original


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
    if _routes_generation != manager.generation:
        adapters = [a for group in manager.hook.shekel_protocol_adapters() for a in group]
        with _lock:
            _adapters[:] = adapters
            _routes.clear()
            _routes_generation = manager.generation
    try:
        return _routes[path]
    except KeyError:
        found = next((a for a in _adapters if a.matches(path)), None)
        if len(_routes) < 4096:
            _routes[path] = found
        return found


def _is_llm_call(request: Any) -> bool:
    return request.method == "POST" and adapter_for(request.url.path) is not None


def _begin(budget: Any, request: Any) -> tuple[InterceptedCall, Any] | None:
    """Start tracking ``request`` under ``budget`` (the active one) if it is an LLM call.
    Its body must have been read (``request.read()``) when it was built from a stream."""
    if request.method != "POST":
        return None
    adapter = adapter_for(request.url.path)
    if adapter is None:
        return None
    call = InterceptedCall(budget, adapter)
    try:
        body = call.prepare(request.content)
    except ShekelError as exc:
        raise for_sdk(exc, adapter) from None
    if body is not None:
        request = _rebuild(request, body)
    return call, request


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
    if streamed:
        is_sse = "text/event-stream" in response.headers.get("content-type", "")
        tally = adapter.new_tally(call.hide_usage) if is_sse else None
        response.stream = _tap_class(tap, response)(call, tally, response.stream)
        call.watch(tally)
        return
    content = response.content
    if content.startswith((b"data:", b"event:", b":")):  # an event stream read in one go
        tally = adapter.new_tally(False)
        tally.events(content)
        call.settle_stream(tally, complete=True, raise_over=True)
        return
    usage, model = adapter.read_response(content)
    call.settle(usage, model, output_guess=len(content) // 4)


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
        budget = ACTIVE.get() or PROCESS_ROOT[0]
        if budget is None:
            return original(self, request, *args, **kwargs)
        if not hasattr(request, "_content") and _is_llm_call(request):
            request.read()  # a body given as a stream: read it so it can be inspected
        started = _begin(budget, request)
        if started is None:
            return original(self, request, *args, **kwargs)
        call, request = started
        try:
            response = original(self, request, *args, **kwargs)
        except BaseException as exc:
            _failed(call, exc)
            raise
        try:
            _track(call, response, bool(kwargs.get("stream")), SyncTap)
        except ShekelError as exc:
            raise for_sdk(exc, call.adapter) from None
        return response

    return send


def _make_async_send(original: Any) -> Any:
    async def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        budget = ACTIVE.get() or PROCESS_ROOT[0]
        if budget is None:
            return await original(self, request, *args, **kwargs)
        if not hasattr(request, "_content") and _is_llm_call(request):
            await request.aread()  # a body given as a stream: read it so it can be inspected
        started = _begin(budget, request)
        if started is None:
            return await original(self, request, *args, **kwargs)
        call, request = started
        try:
            response = await original(self, request, *args, **kwargs)
        except BaseException as exc:
            _failed(call, exc)
            raise
        try:
            _track(call, response, bool(kwargs.get("stream")), AsyncTap)
        except ShekelError as exc:
            raise for_sdk(exc, call.adapter) from None
        return response

    return send


def for_sdk(exc: ShekelError, adapter: ProtocolAdapter) -> ShekelError:
    """Give ``exc`` the SDK's base error class too, so the SDK lets it through untouched."""
    spec = _SDK_ERRORS.get(adapter.provider)
    module = sys.modules.get(spec[0]) if spec else None
    base = getattr(module, spec[1], None) if spec and module else None
    if base is None or isinstance(exc, base):
        return exc
    key = (type(exc), base)
    flavour = _flavours.get(key)
    if flavour is None:
        flavour = type(type(exc).__name__, (type(exc), base), {"__module__": "shekel"})
        _flavours[key] = flavour
    exc.__class__ = flavour
    return exc
