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
import inspect
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, Final

from .._context import active_budget, current_owner
from .._kit_routes import routes_without_budget
from .._plugins import LISTENING
from . import _sdk_patch
from ._call import InterceptedCall, as_shekel_error, for_sdk
from ._routing import LOCAL_HOSTS
from ._sdk_patch import HANDLED, attempt_failed
from ._streams import AsyncTap, SyncTap, byte_stream_class
from ._transport import (
    SENDING,
    adapter_of,
    begin,
    cause,
    check_async,
    check_sync,
    failed,
    in_thread,
    read_body,
    route_key,
)

HTTP_LIBRARIES: Final = ("httpx", "httpx2")
_PATCHED: Final = "__shekel_original__"
_lock = threading.Lock()


def _patch_aiohttp(module: ModuleType) -> None:
    from . import _aiohttp_patch

    with _lock:
        _aiohttp_patch.patch(module)


def _patch_botocore(module: ModuleType) -> None:
    from . import _botocore_patch

    with _lock:
        _botocore_patch.patch(module)


def _patch_module(module: ModuleType) -> None:
    with _lock:
        _patch(module.Client, _make_sync_send)
        _patch(module.AsyncClient, _make_async_send)


def _patch_sdk(module: ModuleType) -> None:
    with _lock:
        _sdk_patch.patch(module)


def _pass_through_litellm(module: ModuleType) -> None:
    """LiteLLM turns every exception its providers raise into one of its own (a refusal would
    reach the caller as ``litellm.APIConnectionError``), except those of the types it lists:
    shekel's are added, so ``except BudgetExceededError`` works around LiteLLM calls too."""
    from .._errors import ShekelError

    passed = getattr(module, "LITELLM_EXCEPTION_TYPES", None)
    if isinstance(passed, list) and ShekelError not in passed:
        passed.append(ShekelError)


PATCHERS: Final[dict[str, Callable[[ModuleType], None]]] = {
    "httpx": _patch_module,
    "httpx2": _patch_module,
    "aiohttp": _patch_aiohttp,  # google-genai's async calls, when aiohttp is installed
    "botocore.endpoint": _patch_botocore,  # boto3's Bedrock runtime
    "litellm": _pass_through_litellm,
    # The openai and anthropic SDKs' non-streamed calls, where they are parsed (``_sdk_patch``).
    "openai._base_client": _patch_sdk,
    "anthropic._base_client": _patch_sdk,
}
"""Each module shekel patches, by the name its import hook waits for."""


def install() -> None:
    """Patch the HTTP libraries imported so far, and any imported later (idempotent)."""
    with _lock:
        if _IMPORT_HOOK not in sys.meta_path:
            sys.meta_path.insert(0, _IMPORT_HOOK)
        imported = [name for name in PATCHERS if name in sys.modules]
    for name in imported:
        # Waits for the import to finish if another thread is still running it.
        PATCHERS[name](importlib.import_module(name))


def uninstall() -> None:
    """Put the original methods back (for tests and for embedding applications)."""
    with _lock:
        if _IMPORT_HOOK in sys.meta_path:
            sys.meta_path.remove(_IMPORT_HOOK)
        if "aiohttp" in sys.modules:
            from . import _aiohttp_patch

            _aiohttp_patch.unpatch(sys.modules["aiohttp"])
        if "botocore.endpoint" in sys.modules:
            from . import _botocore_patch

            _botocore_patch.unpatch(sys.modules["botocore.endpoint"])
        for name in _sdk_patch.SDK_MODULES:
            if name in sys.modules:
                _sdk_patch.unpatch(sys.modules[name])
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


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches an HTTP library as soon as its own import has run."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in PATCHERS:
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
        PATCHERS[module.__name__](module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


_IMPORT_HOOK: Final = _PatchOnImport()


def _patch(cls: Any, factory: Any) -> None:
    if getattr(cls.send, _PATCHED, None) is not None:
        return
    wrapper = factory(cls.send)
    setattr(wrapper, _PATCHED, cls.send)
    cls.send = wrapper


def _key(request: Any) -> tuple[str, str]:
    """The route key of an httpx request: its host (and port, when local) and path."""
    url = request.url
    host = url.host
    if host in LOCAL_HOSTS:
        host = route_key(host, url.port)
    return host, url.path


def _is_llm_call(request: Any) -> bool:
    return request.method == "POST" and adapter_of(*_key(request)) is not None


def _start(active: Any, request: Any) -> InterceptedCall | None:
    if request.method != "POST":
        return None
    return begin(active, *_key(request))


def _signed(call: InterceptedCall, request: Any) -> None:
    """A request signed over its body and path (AWS SigV4: LiteLLM's Bedrock calls) cannot be
    rewritten: strict mode then holds its whole output limit, and no fallback applies."""
    if call.adapter.provider == "aws" and request.headers.get("authorization", "").startswith(
        "AWS4-"
    ):
        call.fixed = True


def _prepare(call: InterceptedCall, request: Any, body: bytes | None) -> Any:
    """The request to send: ``request``, or a copy with the body (and path) the check chose."""
    if body is None and call.new_path is None:
        return request
    return _rebuild(request, request.content if body is None else body, call.new_path)


def _rebuild(request: Any, body: bytes, path: str | None = None) -> Any:
    """``request`` with another body. Built from a ready byte stream, which skips httpx's
    header defaults (the original request already has them; only the length changes) and
    re-normalising every header, the bulk of the cost of a new request."""
    library = sys.modules[type(request).__module__.partition(".")[0]]
    new = type(request)(
        request.method,
        request.url if path is None else request.url.copy_with(path=path),
        headers=request.headers,
        stream=library.ByteStream(body),
        extensions=request.extensions,
    )
    new.headers["content-length"] = str(len(body))
    new.read()
    return new


def _track(call: InterceptedCall, response: Any, streamed: bool, tap: type) -> None:
    """Attach the call to the response: read usage now, or tap its byte stream."""
    if response.status_code >= 400:
        call.release()
        return
    adapter = call.adapter
    if streamed and getattr(response, "_content", None) is None:
        is_stream = adapter.is_stream(response.headers.get("content-type", ""))
        tally = adapter.new_tally(call.hide_usage) if is_stream else None
        response.stream = byte_stream_class(tap, tap is SyncTap, response)(
            call, tally, response.stream
        )
        call.watch(tally)
        return
    # The body is here already: a plain response, or a stream that was read before it
    # reached us (a transport that builds responses from bytes reads them at once).
    content_type = response.headers.get("content-type", "")
    kept = read_body(call, response.content, content_type, lambda data: _hand_over(response, data))
    if kept is not None:
        response._content = kept


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


def _make_sync_send_any(original: Any) -> Any:
    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        budget = active_budget()
        if budget is None and not (LISTENING.shekel_route_call and routes_without_budget()):
            return original(self, request, *args, **kwargs)
        handled = HANDLED.get()
        if handled is not None and handled[0] is self:  # taken by the SDK layer
            try:
                return original(self, request, *args, **kwargs)
            except BaseException as exc:
                attempt_failed(handled, getattr(request, "_content", b""), exc)
                raise
        if not hasattr(request, "_content") and _is_llm_call(request):
            request.read()  # a body given as a stream: read it so it can be inspected
        call = _start(budget, request)
        if call is None:
            return original(self, request, *args, **kwargs)
        _signed(call, request)
        request = _prepare(call, request, check_sync(call, request.content, request.url.path))
        try:
            response = original(self, request, *args, **kwargs)
        except BaseException as exc:
            failed(call, exc)
            raise
        try:
            _track(call, response, bool(kwargs.get("stream")), SyncTap)
        except Exception as exc:
            raise for_sdk(as_shekel_error(exc, sent=True), call.adapter) from cause(exc)
        return response

    return send


def _make_async_send_any(original: Any) -> Any:
    async def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        budget = active_budget()
        if budget is None and not (LISTENING.shekel_route_call and routes_without_budget()):
            return await original(self, request, *args, **kwargs)
        handled = HANDLED.get()
        if handled is not None and handled[0] is self:  # taken by the SDK layer
            try:
                return await original(self, request, *args, **kwargs)
            except BaseException as exc:
                attempt_failed(handled, getattr(request, "_content", b""), exc)
                raise
        if not hasattr(request, "_content") and _is_llm_call(request):
            await request.aread()  # a body given as a stream: read it so it can be inspected
        call = _start(budget, request)
        if call is None:
            return await original(self, request, *args, **kwargs)
        # A store that waits on I/O (SQLite, Redis) is used from a worker thread, so the
        # event loop never stops for it.
        blocks = call.chain.ledger.blocks
        if blocks:
            call.caller = current_owner()  # this task, not the worker thread
        _signed(call, request)
        body = await check_async(call, request.content, request.url.path, blocks)
        request = _prepare(call, request, body)
        sending = SENDING.set(True)
        try:
            response = await original(self, request, *args, **kwargs)
        except BaseException as exc:
            failed(call, exc)
            raise
        finally:
            SENDING.reset(sending)
        streamed = bool(kwargs.get("stream"))
        try:
            if blocks:
                await in_thread(_track, call, response, streamed, AsyncTap)
            else:
                _track(call, response, streamed, AsyncTap)
        except Exception as exc:
            raise for_sdk(as_shekel_error(exc, sent=True), call.adapter) from cause(exc)
        return response

    return send


# -- the usual cases with httpx's own signature -----------------------------------------------
# A pass-through taking ``*args, **kwargs`` costs about 3k instructions per call more than one
# taking the arguments as declared: paid by every SDK call, inside and outside budgets. When
# ``send`` has httpx's shape, the two usual cases (no budget active; a request the SDK layer
# took) take the declared arguments, and every other request goes on to the general wrapper.

_SEND_PARAMETERS: Final = ("self", "request", "stream", "auth", "follow_redirects")


def _send_defaults(send: Any) -> tuple[Any, Any, Any] | None:
    """The defaults of ``send(self, request, *, stream, auth, follow_redirects)``, or ``None``
    when ``send`` has another shape."""
    try:
        parameters = inspect.signature(send).parameters
    except (TypeError, ValueError):
        return None
    if tuple(parameters) != _SEND_PARAMETERS:
        return None
    named = [parameters[name] for name in _SEND_PARAMETERS[2:]]
    if any(p.kind is not p.KEYWORD_ONLY or p.default is p.empty for p in named):
        return None
    return named[0].default, named[1].default, named[2].default


def _make_sync_send(original: Any) -> Any:
    general = _make_sync_send_any(original)
    defaults = _send_defaults(original)
    if defaults is None:
        return general
    stream_default, auth_default, follow_default = defaults

    def send(
        self: Any,
        request: Any,
        *,
        stream: Any = stream_default,
        auth: Any = auth_default,
        follow_redirects: Any = follow_default,
    ) -> Any:
        handled = HANDLED.get()
        if handled is not None and handled[0] is self:
            try:  # taken by the SDK layer
                return original(
                    self, request, stream=stream, auth=auth, follow_redirects=follow_redirects
                )
            except BaseException as exc:
                attempt_failed(handled, getattr(request, "_content", b""), exc)
                raise
        if active_budget() is None and not (
            LISTENING.shekel_route_call and routes_without_budget()
        ):
            return original(
                self, request, stream=stream, auth=auth, follow_redirects=follow_redirects
            )
        return general(self, request, stream=stream, auth=auth, follow_redirects=follow_redirects)

    return send


def _make_async_send(original: Any) -> Any:
    general = _make_async_send_any(original)
    defaults = _send_defaults(original)
    if defaults is None:
        return general
    stream_default, auth_default, follow_default = defaults

    async def send(
        self: Any,
        request: Any,
        *,
        stream: Any = stream_default,
        auth: Any = auth_default,
        follow_redirects: Any = follow_default,
    ) -> Any:
        handled = HANDLED.get()
        if handled is not None and handled[0] is self:
            try:  # taken by the SDK layer
                return await original(
                    self, request, stream=stream, auth=auth, follow_redirects=follow_redirects
                )
            except BaseException as exc:
                attempt_failed(handled, getattr(request, "_content", b""), exc)
                raise
        if active_budget() is None and not (
            LISTENING.shekel_route_call and routes_without_budget()
        ):
            return await original(
                self, request, stream=stream, auth=auth, follow_redirects=follow_redirects
            )
        return await general(
            self, request, stream=stream, auth=auth, follow_redirects=follow_redirects
        )

    return send
