"""botocore's ``Endpoint``: where boto3 sends Amazon Bedrock's runtime calls.

boto3 uses neither httpx nor aiohttp: botocore builds a request from the operation's
parameters, signs it (SigV4 covers the body and the path), sends it through urllib3, then
parses the response. So shekel takes three steps there:

- ``create_request`` (every attempt, before signing): route, check and reserve, and write a
  lowered output limit or a fallback model into the request, so the signature covers them;
- ``_send``: a streamed answer (``converse_stream``) gets a tap in front of its raw body, which
  botocore's event-stream reader then reads through;
- ``_do_get_response``: the outcome. An error status or a failure to send releases the call,
  a complete body is read at once, a streamed one is left to its tap.

Each attempt botocore retries passes the budget check again, as with the other SDKs.
"""

from __future__ import annotations

import io
from types import ModuleType
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from .._context import active_budget
from .._kit_routes import routes_without_budget
from .._plugins import LISTENING
from ._call import InterceptedCall
from ._streams import SyncTap
from ._transport import begin, check_sync, failed, read_body, route_key

_PATCHED: Final = "__shekel_original__"
_CALL: Final = "_shekel_call"
_METHODS: Final = ("create_request", "_send", "_do_get_response")


def patch(module: ModuleType) -> None:
    """Patch ``botocore.endpoint.Endpoint`` (idempotent)."""
    endpoint = module.Endpoint
    for name, factory in zip(
        _METHODS, (_make_create_request, _make_send, _make_do_get_response), strict=True
    ):
        method = getattr(endpoint, name)
        if getattr(method, _PATCHED, None) is not None:
            continue
        wrapper = factory(method)
        setattr(wrapper, _PATCHED, method)
        setattr(endpoint, name, wrapper)


def unpatch(module: ModuleType) -> None:
    for name in _METHODS:
        original = getattr(getattr(module.Endpoint, name), _PATCHED, None)
        if original is not None:
            setattr(module.Endpoint, name, original)


def _make_create_request(original: Any) -> Any:
    def create_request(self: Any, params: dict[str, Any], operation_model: Any = None) -> Any:
        budget = active_budget()
        if budget is None and not (LISTENING.shekel_route_call and routes_without_budget()):
            return original(self, params, operation_model)
        if params.get("method") != "POST" or not isinstance(params.get("url"), str):
            return original(self, params, operation_model)
        url = urlsplit(params["url"])
        host = route_key(url.hostname or "", url.port)
        call = begin(budget, host, url.path)
        if call is None:
            return original(self, params, operation_model)
        content = params.get("body")
        content = content if isinstance(content, bytes) else b""
        body = check_sync(call, content, url.path)
        if body is not None or call.new_path is not None:
            params = dict(params)  # botocore builds the next attempt from the original
            headers = {
                k: v for k, v in params.get("headers", {}).items() if k.lower() != "content-length"
            }
            params["headers"] = headers
            if body is not None:
                params["body"] = body
            if call.new_path is not None:
                params["url"] = urlunsplit(url._replace(path=call.new_path))
        try:
            request = original(self, params, operation_model)
        except BaseException:
            call.release()
            raise
        setattr(request, _CALL, call)
        return request

    return create_request


def _make_send(original: Any) -> Any:
    def _send(self: Any, request: Any) -> Any:
        response = original(self, request)
        call: InterceptedCall | None = getattr(request, _CALL, None)
        if call is None or response.status_code >= 300:
            return response
        content_type = response.headers.get("content-type", "")
        if not call.stream:
            # Read now, and hand the caller the same bytes: ``invoke_model`` gives its body as
            # a StreamingBody over the raw response, which reading here would leave empty.
            response.raw = _Replay(response.content)
        elif call.adapter.is_stream(content_type):
            tally = call.adapter.new_tally(False)
            response.raw = RawTap(call, tally, response.raw)
            call.watch(tally)
        return response

    return _send


def _make_do_get_response(original: Any) -> Any:
    def _do_get_response(self: Any, request: Any, operation_model: Any, context: Any) -> Any:
        call: InterceptedCall | None = getattr(request, _CALL, None)
        if call is None:
            return original(self, request, operation_model, context)
        try:
            success, error = original(self, request, operation_model, context)
        except BaseException as exc:
            failed(call, exc)
            raise
        finally:
            setattr(request, _CALL, None)  # one outcome per attempt
        if error is not None:
            failed(call, error)
            return success, error
        http_response = success[0]
        if http_response.status_code >= 300:
            call.release()
        elif call.tally is None and not call.settled:
            if isinstance(http_response.raw, RawTap):
                pass  # the tap records it
            elif call.stream:
                call.abandon()  # a stream answered by a stub shekel cannot read
            else:
                content_type = http_response.headers.get("content-type", "")
                read_body(call, http_response.content, content_type)
        return success, error

    return _do_get_response


class _Replay(io.BytesIO):
    """A body already read, as the urllib3 response botocore's StreamingBody reads."""

    def stream(self, amt: int | None = 65536, decode_content: bool | None = None) -> Any:
        while True:
            chunk = self.read(amt)
            if not chunk:
                return
            yield chunk


class _Chunks:
    """A urllib3 response as the byte stream a :class:`SyncTap` reads."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def __iter__(self) -> Any:
        return iter(self.raw.stream(4096, decode_content=False))

    def close(self) -> None:
        self.raw.close()


class RawTap(SyncTap):
    """Stands in for a streamed response's urllib3 body: botocore's event-stream reader calls
    ``stream()``, which yields the same bytes, read on the way by the stream's tally."""

    def __init__(self, call: InterceptedCall, tally: Any, raw: Any) -> None:
        super().__init__(call, tally, _Chunks(raw))
        self.raw = raw

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        return iter(self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)
