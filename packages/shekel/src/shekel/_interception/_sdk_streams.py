"""Streamed chat completions and Responses API events of the openai SDK and streamed messages
of the anthropic SDK, read as the SDK's framed events.

The SDK's chunk loop reads its events through shekel (its ``_iter_events`` is taken for the
stream): each is counted, and only an event that may carry usage is looked at further, before
the SDK builds an object from it. For a chat completion that is an event whose text does not
name a null usage (``"usage":null``, which OpenAI's every chunk but the usage chunk has: one
search of the event's text); for Anthropic's messages and the Responses API, events are told
apart by their name (``message_start`` and ``message_delta``; ``response.created`` and the
final event), a few a stream. The response's bytes are not scanned. Everything else the HTTP
layer's tap (``_streams``) guarantees holds here too:

- OpenAI's usage is asked for (``stream_options.include_usage``) and its chunk, which the
  caller did not ask for, is dropped before the SDK builds it (about 40 µs of pydantic saved
  per stream);
- the call is recorded as soon as OpenAI's usage chunk (no choices, the last before ``[DONE]``),
  Anthropic's ``message_stop`` or the Responses API's final event (``response.completed``,
  ``.incomplete`` or ``.failed``) goes by, so an error owed to the caller (a cap crossed) is
  raised before their loop ends;
- a stream that is closed, fails, is cut off by its budget's block failing, or is dropped
  half-read is recorded from what went by (the prompt estimated, a token per content chunk).

The response's byte stream keeps its own iterator (no per-read cost); only its ``close`` is
taken, which is how the SDK, ``with stream:`` and ``stream.close()`` all end a stream.
"""

from __future__ import annotations

import atexit
import json
import sys
import typing
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any, Final

from .. import _spend
from .._pricing import TokenUsage
from ._adapter import ProtocolAdapter, StreamTally
from ._anthropic import MessagesTally
from ._call import InterceptedCall, as_shekel_error, for_sdk
from ._openai import ResponsesTally, chat_usage_of
from ._sdk_readers import READERS, ChunkTally, reader_count
from ._sdk_record import book_usual
from ._streams import byte_stream_class, settle_abandoned
from ._transport import cause

_STREAM_CLASSES: Final = ("Stream", "AsyncStream")
CHAT: Final = "chat"
"""What :func:`stream_kind` says of openai's stream of chat completion chunks."""
MESSAGES: Final = "messages"
"""What :func:`stream_kind` says of anthropic's stream of message events (beta ones too)."""
RESPONSES: Final = "responses"
"""What :func:`stream_kind` says of openai's stream of Responses API events."""
_MESSAGE_EVENTS: Final = frozenset(
    {"RawMessageStartEvent", "RawMessageDeltaEvent", "RawContentBlockDeltaEvent"}
)
_RESPONSE_EVENTS: Final = frozenset(
    {"ResponseCreatedEvent", "ResponseCompletedEvent", "ResponseTextDeltaEvent"}
)
_kinds: dict[Any, str | None] = {}


def stream_kind(stream_cls: Any) -> str | None:
    """:data:`CHAT`, :data:`RESPONSES` or :data:`MESSAGES` when the SDK builds the stream as
    this module reads it: openai's ``Stream`` or ``AsyncStream`` of ``ChatCompletionChunk``
    (what ``chat.completions.create`` asks for) or of the Responses API's events, or
    anthropic's of its message stream events (what ``messages.create`` and ``messages.stream``
    ask for); ``None`` for any other stream."""
    try:
        return _kinds[stream_cls]
    except KeyError:
        pass
    except TypeError:  # not hashable: not one of the SDKs' aliases
        return None
    kind = _kind_of(stream_cls)
    if len(_kinds) < 256:
        _kinds[stream_cls] = kind
    return kind


def _kind_of(stream_cls: Any) -> str | None:
    origin = getattr(stream_cls, "__origin__", None)
    if origin is None or getattr(origin, "__name__", None) not in _STREAM_CLASSES:
        return None
    if not hasattr(origin, "_iter_events"):  # where the events are read, before the chunks
        return None
    args: tuple[Any, ...] = getattr(stream_cls, "__args__", ())
    if len(args) != 1:
        return None
    package = origin.__module__.partition(".")[0]
    if package == "openai" and getattr(args[0], "__name__", "") == "ChatCompletionChunk":
        return CHAT
    event = args[0]
    if typing.get_origin(event) is typing.Annotated:
        event = typing.get_args(event)[0]
    names = {getattr(m, "__name__", "").removeprefix("Beta") for m in typing.get_args(event)}
    if package == "openai" and names >= _RESPONSE_EVENTS:
        return RESPONSES
    if package == "anthropic" and names >= _MESSAGE_EVENTS:
        return MESSAGES
    return None


def ask_for_usage(options: Any, data: dict[str, Any]) -> bool:
    """Have the request ask for the usage chunk; True when shekel added it (then it is hidden).
    The options get a new body: the caller's dictionaries are not changed."""
    stream_options = data.get("stream_options")
    if stream_options.__class__ is dict and stream_options.get("include_usage"):
        return False
    extra = stream_options if stream_options.__class__ is dict else {}
    options.json_data = {**data, "stream_options": {**extra, "include_usage": True}}
    return True


class _SyncClosing:
    """The response's byte stream, iterated as it is; closing it ends the call."""

    def __init__(self, inner: Any, end: Any) -> None:
        self.inner = inner
        self.end = end

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.inner)

    def close(self) -> None:
        self.end()
        self.inner.close()


class _AsyncClosing:
    def __init__(self, inner: Any, end: Any) -> None:
        self.inner = inner
        self.end = end

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.inner.__aiter__()  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        self.end()
        await self.inner.aclose()


class _StreamCall(InterceptedCall):
    """A streamed call whose request is sized only if its prompt must be estimated."""

    __slots__ = ("request",)
    request: dict[str, Any]

    def estimated_prompt(self) -> int:
        if not self.body_size:
            self.body_size = len(json.dumps(self.request, default=str))
        return super().estimated_prompt()


def _watched_class(cls: type) -> type:
    """``cls`` (openai's ``Stream`` or ``AsyncStream``) iterating straight over its chunk
    iterator: the SDK's ``__iter__`` is a generator of its own around it, and the watch's loop
    takes that place rather than adding a layer on every chunk."""
    watched = _watched.get(cls)
    if watched is None:
        if hasattr(cls, "__aiter__"):
            members: dict[str, Any] = {"__aiter__": lambda self: self._iterator}
        else:
            members = {"__iter__": lambda self: self._iterator}
        members["__module__"] = cls.__module__
        watched = _watched[cls] = type(cls.__name__, (cls,), members)
    return watched


_watched: dict[type, type] = {}
_open: weakref.WeakSet[_Watch] = weakref.WeakSet()
"""Streams being read: those still open when the interpreter exits are recorded then."""
_finalizing: Final = sys.is_finalizing  # kept: ``sys`` may be gone when a late ``__del__`` runs


@atexit.register
def _settle_open() -> None:
    for watch in list(_open):
        watch.abandoned(watch.call, watch.tally)


class _Watch:
    """One stream's book-keeping, shared by its chunk loop and its byte stream's close."""

    __slots__ = (
        "__weakref__",
        "adapter",
        "call",
        "chunks",
        "hide",
        "kind",
        "reader",
        "stream",
        "tally",
    )

    def __init__(
        self, chain: Any, adapter: ProtocolAdapter, data: dict[str, Any], hide: bool, kind: str
    ) -> None:
        model = data.get("model")
        call = _StreamCall(chain.budget, adapter)
        call.model = model if model.__class__ is str else None
        call.stream = True
        call.request = data
        self.call = call
        self.adapter = adapter
        self.hide = hide
        self.kind = kind
        self.tally: Any = _TALLIES[kind]()
        self.chunks: Any = None  # the SDK's chunk iterator, while it may be running
        self.stream: Any = None  # the SDK's stream, kept while its chunks are read
        self.reader: Any = None  # OpenAI's chunks' reader, which counts them (see ChunkTally)

    def start(self, stream: Any, sync: bool) -> None:
        call = self.call
        try:
            response, events = stream.response, stream._iter_events
        except AttributeError:  # a stream of another shape: its prompt at least is charged
            call.abandon()
            return
        call.watch(self.tally)  # the budget's block failing records it
        closing = byte_stream_class(_SyncClosing if sync else _AsyncClosing, sync, response)
        response.stream = closing(response.stream, self.closed)
        # Kept alive by its events read through this watch while they run (the SDK's own
        # generator lets go of it at the end, before the end is recorded; httpx2 lets go of the
        # response's byte stream at that moment too). The stream and this watch then refer to
        # each other: the garbage collector takes them together, and ``__del__`` records a
        # stream dropped unread (one still open when the interpreter exits is recorded first).
        self.stream = stream
        _open.add(self)
        # The SDK's chunk loop reads the events through this watch, once, when it starts.
        kind = self.kind
        read = READERS[kind is CHAT, sync]
        tally = self.tally

        def reading() -> Any:
            reader = read(self, events())
            if kind is CHAT:  # it counts the chunks (see ``ChunkTally``)
                self.reader = reader
                tally.reader = weakref.ref(reader)
            return reader

        stream._iter_events = reading
        # Taken after ``_iter_events`` is set: anthropic 2.x makes its chunk loop on first use,
        # on a copy of the stream.
        self.chunks = stream._iterator
        if kind is not MESSAGES:  # anthropic's metaclass makes ``isinstance`` false for a subclass
            stream.__class__ = _watched_class(stream.__class__)

    def __del__(self) -> None:
        if _finalizing():  # recorded at exit (``_settle_open``) while the modules were whole
            return
        try:
            call, tally = self.call, self.tally
        except AttributeError:  # its making failed, and the caller got that error
            return
        self.abandoned(call, tally)

    def abandoned(self, call: InterceptedCall, tally: Any) -> None:
        """Record the stream from what went by, from outside its reader. The count of chunks
        is taken from the reader first: the collector clears the tally's weak reference to it
        before it runs finalizers."""
        reader = self.reader
        if reader is not None and not call.settled:
            seen = reader_count(reader)
            if seen is not None:
                tally.counted = seen
        settle_abandoned(call, tally)

    def closed(self) -> None:
        """The response was closed: by the SDK's chunk loop as it ends (the events read through
        this watch record that), or by the caller before the end."""
        chunks = self.chunks
        running = chunks.gi_running if hasattr(chunks, "gi_running") else chunks.ag_running
        if not running and not self.call.settled:
            self.abandoned(self.call, self.tally)

    def usage_event(self, event: Any, text: str) -> bool:
        """An event whose text names a ``usage`` that may not be null went by; True when it is
        OpenAI's usage chunk shekel asked for, to be dropped. Raises the error owed to the
        caller once the call is recorded."""
        try:
            body = _parsed(event, text)
        except ValueError:  # not JSON: the SDK says so itself
            return False
        usage = body.get("usage") if body.__class__ is dict else None
        if usage.__class__ is not dict:
            return False
        tally = self.tally
        tally.usage = chat_usage_of(usage)
        model, call_id = body.get("model"), body.get("id")
        tally.model = model if model.__class__ is str else None
        tally.call_id = call_id if call_id.__class__ is str else None
        if body.get("choices"):
            return False  # a gateway's running total: the stream's end records the last one
        self.settle(complete=True)
        return self.hide

    def settle(self, *, complete: bool) -> None:
        call = self.call
        if call.settled:
            return
        try:
            usage = self.tally.usage
            if usage is not None and call.chain.quick and self._booked_in_one_step(usage):
                return
            call.settle_stream(self.tally, complete=complete, raise_over=True)
        except Exception as exc:
            raise for_sdk(as_shekel_error(exc, sent=True), self.adapter) from cause(exc)

    def _booked_in_one_step(self, usage: TokenUsage) -> bool:
        """The stream's reported usage booked as a non-streamed call's is (``book_usual``),
        when it is the usual call; False, nothing booked, for the full path."""
        call, tally = self.call, self.tally
        model = call.model
        if model is None or call.hold is not None or call.on_fallback:
            return False
        call.settled = True  # before booking: a cap crossed raises out of it
        _spend.discard_pending(call.chain, call)
        if book_usual(
            call.chain,
            self.adapter,
            model,
            tally.model,
            tally.call_id,
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.reasoning_tokens,
        ):
            return True
        call.settled = False  # the full path records it
        return False

    def failed(self) -> None:
        settle_abandoned(self.call, self.tally)

    def named_event(self, kind: str, event: Any) -> None:
        """An event the tally reads (its ``EVENTS_READ``) or that ends the stream (its
        ``EVENTS_FINAL``: the call is recorded, raising the error owed to the caller) went by."""
        tally = self.tally
        if kind in tally.EVENTS_READ:
            try:
                body = _parsed(event, event.data)
            except ValueError:  # not JSON: the SDK says so itself
                body = None
            if body.__class__ is dict:
                tally.read_event(body if "type" in body else {**body, "type": kind})
        if kind in tally.EVENTS_FINAL:
            tally.done = True
            self.settle(complete=True)


def _parsed(event: Any, text: str) -> Any:
    """The JSON ``text`` of ``event``, parsed once for shekel and the SDK: the SDK's loop takes
    each event's with ``event.json()``, which returns this from now on (the SDK's own events
    are plain objects, and the few events read here are the largest of a stream)."""
    body = json.loads(text)
    try:  # noqa: SIM105 (contextlib.suppress costs a context manager per call)
        event.json = lambda: body
    except AttributeError:  # an event of another shape (slots, frozen): the SDK parses it again
        pass
    return body


_TALLIES: Final[dict[str, type[StreamTally]]] = {
    CHAT: ChunkTally,
    MESSAGES: MessagesTally,
    RESPONSES: ResponsesTally,
}


def watch(
    stream: Any, chain: Any, adapter: ProtocolAdapter, data: dict[str, Any], hide: bool, kind: str
) -> Any:
    """Record the streamed call ``stream`` (the SDK's ``Stream``; ``kind``: what
    :func:`stream_kind` said of it) as it is read."""
    _Watch(chain, adapter, data, hide, kind).start(stream, sync=True)
    return stream


def watch_async(
    stream: Any, chain: Any, adapter: ProtocolAdapter, data: dict[str, Any], hide: bool, kind: str
) -> Any:
    _Watch(chain, adapter, data, hide, kind).start(stream, sync=False)
    return stream
