"""The fast path: calls of the openai and anthropic SDKs, streamed ones too (read in
``_sdk_streams``), seen where the SDK holds them parsed
(``SyncAPIClient.request`` and ``AsyncAPIClient.request`` of each SDK).

There the model is a dictionary key of the request and the usage an attribute of the response
object, so a call costs no scan of the request's bytes and no decoding of the response. One
check covers the SDK's retries. The HTTP layer (``_httpx_patch``) stays the way in for
everything this path leaves to it: embeddings, raw and streaming-response wrappers, other
clients (Azure, Bedrock, Vertex), calls the SDK traces itself (its span starts and ends inside
``request``: charged below, a call is charged while its span is current), strict mode, call
caps, fallback, loop guards, windows and shared stores.
For a request this path took, the HTTP layer only charges attempts that fail after being sent
(a timeout: the provider had the prompt).

``request`` is private to the SDKs: its shape, ``request(cast_to, options, *, stream=False,
stream_cls=None)``, holds across the versions shekel declares (openai 2.31 to 3.x, anthropic
0.98 to 2.x), which the test suite runs at both ends.
"""

from __future__ import annotations

import inspect
import sys
from contextvars import ContextVar
from types import ModuleType
from typing import Any, Final

from .. import _spend
from .._context import active_budget
from .._kit_routes import routes_without_budget
from .._plugins import CALL, CHANGE_LISTENERS, LISTENING
from ._adapter import ProtocolAdapter
from ._anthropic import MessagesAdapter
from ._call import InterceptedCall, for_sdk
from ._openai import ChatCompletionsAdapter, ResponsesAdapter
from ._routing import LOCAL_HOSTS
from ._sdk_record import RECORDERS, record
from ._sdk_streams import CHAT, MESSAGES, RESPONSES, ask_for_usage, stream_kind, watch, watch_async
from ._transport import adapter_of, failed, route_key

_PATCHED: Final = "__shekel_original__"
RAW_RESPONSE_HEADER: Final = "X-Stainless-Raw-Response"

SDK_MODULES: Final = ("openai._base_client", "anthropic._base_client")
"""The SDK modules whose clients this path patches, by the name the import hook waits for."""


Handled = list[Any]
"""A request the SDK layer took: ``[http, chain, adapter, model]``. The HTTP layer passes it
through, charging only an attempt that failed after it was sent. ``http`` is the SDK's own HTTP
client (another client's requests are not this one); ``chain`` (the paying budget's) is
``None`` when no budget pays for it (a router said so). Both are set to ``None`` once the
SDK's ``request`` returned."""

HANDLED: Final[ContextVar[Handled | None]] = ContextVar("shekel_sdk_handled", default=None)
"""The request being taken in this thread or task. It is not reset when ``request`` returns:
its ``http`` is cleared instead (a list store, cheaper than ``ContextVar.reset``), and the
request of an outer ``request`` is put back only if that one is still going on. A context
copied during the call (a task it started) never keeps a live request."""


def attempt_failed(handled: Handled, content: bytes, exc: BaseException) -> None:
    """An attempt of a request this layer took raised before its response came back."""
    _, chain, adapter, model = handled
    if chain is None:
        return
    call = InterceptedCall(chain.budget, adapter)
    call.model = model if isinstance(model, str) else None
    call.body_size = len(content)
    failed(call, exc)


# -- which calls take this path -------------------------------------------------------------------

_FAST: Final = (ChatCompletionsAdapter, MessagesAdapter, ResponsesAdapter)
_SDK_CLIENTS: Final = {  # by package: the classes show as ``openai.OpenAI`` or ``openai._client``
    "openai": ("OpenAI", "AsyncOpenAI"),
    "anthropic": ("Anthropic", "AsyncAnthropic"),
}
# Methods that may send a request elsewhere than its options say (Azure's deployments,
# Bedrock's and Vertex's model in the URL): a client class that changes one is left to the
# HTTP layer.
_ROUTING_METHODS: Final = ("_prepare_options", "_build_request", "_prepare_url")
Route = tuple[Any, type, "ProtocolAdapter | None", bool]
"""``(base_url, client_class, adapter, traces)``: the adapter of a POST to a path on a client
of that class and base URL, if it is one this path reads, and whether the class may trace its
calls itself."""
_routes: dict[tuple[type, int, str], Route] = {}
_last_route: dict[str, Route] = {}
"""By path: the route last looked up (a string key is hashed once, a tuple at each call)."""
CHANGE_LISTENERS.append(_routes.clear)  # a plugin's adapters may route paths differently
CHANGE_LISTENERS.append(_last_route.clear)


def _is_plain_client(cls: type) -> bool:
    """``openai.OpenAI``, ``anthropic.Anthropic`` (or their async twins), or a subclass that
    sends requests where their options say."""
    for base in cls.__mro__:
        if base.__name__ in _SDK_CLIENTS.get(base.__module__.partition(".")[0], ()):
            return all(getattr(cls, m, None) is getattr(base, m, None) for m in _ROUTING_METHODS)
    return False


def _route(client: Any, url: str) -> Route:
    """The route of a POST to ``url`` on ``client``: looked up once per client class, base
    URL and path, then kept as the last one of ``url`` for ``_begin`` (most programs use one
    client per path)."""
    base, cls = client._base_url, client.__class__
    key = (cls, id(base), url)
    route = _routes.get(key)
    if route is None or route[0] is not base:
        adapter: ProtocolAdapter | None = None
        if _is_plain_client(cls):
            full = client._prepare_url(url)
            host = full.host
            if host in LOCAL_HOSTS:
                host = route_key(host, full.port)
            adapter = adapter_of(host, full.path)
            if not isinstance(adapter, _FAST):
                adapter = None
        route = (base, cls, adapter, hasattr(cls, "_tracer"))
        if len(_routes) > 1024:
            _routes.clear()
            _last_route.clear()
        _routes[key] = route
    _last_route[url] = route
    return route


def _traced(client: Any) -> bool:
    """Whether the SDK makes a recording span of its own for the call (anthropic 2.x does when
    OpenTelemetry is installed; its tracer forwards to nothing until a provider is set)."""
    try:
        # The tracer the client's ``_tracer`` property resolved and keeps (anthropic 2.x); the
        # property itself (a call per request) only until then. Unresolved is ``NOT_GIVEN``,
        # which is falsy, as is ``None``.
        tracer = getattr(client, "_lazy_tracer", None) or client._tracer
        if tracer is None:
            return False
        kind: str = tracer.__class__.__name__
        if kind == "ProxyTracer":
            if tracer._real_tracer is not None:
                return True
            return bool(sys.modules["opentelemetry.trace"]._TRACER_PROVIDER is not None)
        return kind != "NoOpTracer"
    except (AttributeError, KeyError):  # a tracer of another shape: leave it to the HTTP layer
        return True


Taken = tuple[Any, ProtocolAdapter, dict[str, Any], "str | None", bool]
"""A request this layer takes: ``(chain, adapter, json_data, stream, show_usage)``."""
_STREAMED_BY: Final = {
    CHAT: ChatCompletionsAdapter,
    MESSAGES: MessagesAdapter,
    RESPONSES: ResponsesAdapter,
}
"""The adapter of the path each kind of stream (``_sdk_streams.stream_kind``) is read on."""


def _begin(active: Any, client: Any, options: Any, stream: Any, stream_cls: Any) -> Taken | None:
    """``(chain, adapter, json_data, stream, show_usage)`` when this layer takes the request,
    once the paying budget's ``chain`` was found to have room (``None`` when a router said
    nobody pays; ``stream``: ``None``, or the kind of stream, see ``_sdk_streams.stream_kind``;
    ``show_usage``: the router hands a stream's usage chunk on to the caller);
    ``None`` leaves the request to the HTTP layer. Raises the refusal, nothing sent, when there
    is no room."""
    kind = None
    try:  # the options' fields, read from their ``__dict__``: a pydantic attribute read costs
        # about 500 instructions (its class has a ``__getattr__``), a key about 100
        fields = options.__dict__
        data, method, headers, url = (
            fields["json_data"],
            fields["method"],
            fields["headers"],
            fields["url"],
        )
    except (AttributeError, KeyError):  # options of another shape: the HTTP layer's
        return None
    if data.__class__ is not dict or method != "post":
        return None
    if stream:  # chat completions and messages, built as the SDKs' streams build them
        kind = stream_kind(stream_cls)
        if kind is None or not data.get("stream"):
            return None
    elif data.get("stream"):
        return None
    if headers.__class__ is dict:
        if RAW_RESPONSE_HEADER in headers:  # with_raw_response, with_streaming_response
            return None
    elif headers.__class__.__name__ != "NotGiven" and headers and RAW_RESPONSE_HEADER in headers:
        return None
    base, cls = client._base_url, client.__class__
    route = _last_route.get(url)
    if route is None or route[0] is not base or route[1] is not cls:
        route = _route(client, url)
    adapter = route[2]
    if adapter is None or (route[3] and _traced(client)):
        return None
    if kind is not None and adapter.__class__ is not _STREAMED_BY[kind]:
        return None
    budget = active
    show_usage = False
    if LISTENING.shekel_route_call:
        chosen = CALL.shekel_route_call(active=active)
        if chosen is not None:
            budget, show_usage = chosen.budget, chosen.show_stream_usage
    if budget is None:
        return None, adapter, data, kind, show_usage
    chain = budget._c
    ledger = chain.ledger
    if not chain.unheld or ledger.blocks:
        return None  # held before the call, or a store that blocks: the HTTP layer's way
    if not ledger.may_call(chain.links):
        over = ledger.check(chain.links, 0, 0, 1, need_headroom=True)
        if over is not None:  # shekel's error, and the SDK's base error too, as below
            raise for_sdk(_spend.exceeded(chain, over, None, sent=False), adapter)
    return chain, adapter, data, kind, show_usage


# -- the patches ------------------------------------------------------------------------------


def _make_sync_request(original: Any) -> Any:
    def request(
        self: Any, cast_to: Any, options: Any, *, stream: Any = False, stream_cls: Any = None
    ) -> Any:
        active = active_budget()
        if active is None and not (LISTENING.shekel_route_call and routes_without_budget()):
            return original(self, cast_to, options, stream=stream, stream_cls=stream_cls)
        taken = _begin(active, self, options, stream, stream_cls)
        if taken is None:
            return original(self, cast_to, options, stream=stream, stream_cls=stream_cls)
        chain, adapter, data, kind, show_usage = taken
        # OpenAI asked for usage even when the router hands its chunk on to the caller
        asked = kind is CHAT and chain is not None and ask_for_usage(options, data)
        hide = asked and not show_usage
        model = data.get("model")
        marker = [self._client, chain, adapter, model]
        outer = HANDLED.get()
        HANDLED.set(marker)
        try:
            result = original(self, cast_to, options, stream=stream, stream_cls=stream_cls)
        finally:
            marker[0] = marker[1] = None  # no longer taken (see HANDLED)
            if outer is not None and outer[0] is not None:
                HANDLED.set(outer)  # an outer request still going on
        if chain is not None:
            if kind is not None:
                return watch(result, chain, adapter, data, hide, kind)
            RECORDERS.get(adapter.__class__, record)(chain, adapter, data, model, result)
        return result

    return request


def _make_async_request(original: Any) -> Any:
    async def request(
        self: Any, cast_to: Any, options: Any, *, stream: Any = False, stream_cls: Any = None
    ) -> Any:
        active = active_budget()
        if active is None and not (LISTENING.shekel_route_call and routes_without_budget()):
            return await original(self, cast_to, options, stream=stream, stream_cls=stream_cls)
        taken = _begin(active, self, options, stream, stream_cls)
        if taken is None:
            return await original(self, cast_to, options, stream=stream, stream_cls=stream_cls)
        chain, adapter, data, kind, show_usage = taken
        # OpenAI asked for usage even when the router hands its chunk on to the caller
        asked = kind is CHAT and chain is not None and ask_for_usage(options, data)
        hide = asked and not show_usage
        model = data.get("model")
        marker = [self._client, chain, adapter, model]
        outer = HANDLED.get()
        HANDLED.set(marker)
        try:
            result = await original(self, cast_to, options, stream=stream, stream_cls=stream_cls)
        finally:
            marker[0] = marker[1] = None  # no longer taken (see HANDLED)
            if outer is not None and outer[0] is not None:
                HANDLED.set(outer)  # an outer request still going on
        if chain is not None:
            if kind is not None:
                return watch_async(result, chain, adapter, data, hide, kind)
            RECORDERS.get(adapter.__class__, record)(chain, adapter, data, model, result)
        return result

    return request


_REQUEST_PARAMETERS: Final = ("self", "cast_to", "options", "stream", "stream_cls")


def _known_shape(request: Any) -> bool:
    """Whether ``request`` takes exactly ``(self, cast_to, options, *, stream, stream_cls)``:
    the patch repeats that signature (a pass-through taking ``*args, **kwargs`` costs about 3k
    instructions more per call, in and outside budgets). Another shape is left unpatched: the
    HTTP layer then sees its calls."""
    try:
        parameters = inspect.signature(request).parameters
    except (TypeError, ValueError):
        return False
    keyword_only = inspect.Parameter.KEYWORD_ONLY
    return tuple(parameters) == _REQUEST_PARAMETERS and all(
        parameters[name].kind is keyword_only for name in _REQUEST_PARAMETERS[3:]
    )


def patch(module: ModuleType) -> None:
    """Patch ``request`` of the SDK's base clients (idempotent)."""
    for name, factory in (
        ("SyncAPIClient", _make_sync_request),
        ("AsyncAPIClient", _make_async_request),
    ):
        cls = getattr(module, name, None)
        if cls is None or getattr(cls.request, _PATCHED, None) is not None:
            continue
        if not _known_shape(cls.request):
            continue
        wrapper = factory(cls.request)
        setattr(wrapper, _PATCHED, cls.request)
        cls.request = wrapper


def unpatch(module: ModuleType) -> None:
    for name in ("SyncAPIClient", "AsyncAPIClient"):
        cls = getattr(module, name, None)
        original = getattr(getattr(cls, "request", None), _PATCHED, None)
        if original is not None:
            cls.request = original  # type: ignore[union-attr]
