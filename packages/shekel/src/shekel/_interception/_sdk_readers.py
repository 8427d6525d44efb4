"""The loops through which the SDK's chunk loop reads a stream's events for its watch
(``_sdk_streams``), one for each framing, sync and async: what the SDK layer costs a chunk.

OpenAI's chat completion chunks are told apart by their text (one search of it, a chunk);
Anthropic's messages and the Responses API's events by their name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

from ._adapter import StreamTally

if TYPE_CHECKING:
    from ._sdk_streams import _Watch


def _no_reader() -> None:
    return None


def reader_count(reader: Any) -> int | None:
    """The chunks that the reader generator ``reader`` counted so far (its local ``seen``),
    while it has a frame; ``None`` before it started and once it ended."""
    frame = reader.gi_frame if hasattr(reader, "gi_frame") else reader.ag_frame
    if frame is None:
        return None
    seen = frame.f_locals.get("seen")
    return seen if seen.__class__ is int else None


class ChunkTally(StreamTally):
    """What went by of a stream read as the SDK's events (``events`` is never called).

    Its reader (:func:`_sync_events`, :func:`_async_events`) counts the chunks in a local of
    its own, ``seen`` (a local costs a fraction of an attribute, on every chunk), and stores
    it in :attr:`counted` whenever it records the call itself. :attr:`output_estimate` reads
    the count from the reader's frame while the reader is alive; the watch stores it first
    when the stream ends from outside the reader (closed, dropped, left open at exit)."""

    def __init__(self) -> None:
        # A token per chunk, less the first, which carries only the role (a stream cut off
        # before any chunk is read still records no less than nothing).
        self.counted = -1
        # The reader, once the SDK's loop made it: weakly, since the budget keeps this tally
        # while the stream is open, and a stream dropped half-read must still be collected.
        self.reader: Callable[[], Any] = _no_reader

    @property
    def output_estimate(self) -> int:
        reader = self.reader()
        seen = None if reader is None else reader_count(reader)
        return self.counted if seen is None else seen

    @output_estimate.setter
    def output_estimate(self, value: int) -> None:
        self.counted = value

    def events(self, data: bytes) -> bytes:  # pragma: no cover - the bytes are not read here
        return data


_NULL_USAGE: Final = '"usage":null'
"""How OpenAI names the usage of every chunk but the usage chunk (compact JSON). It is not
the end of the text: OpenAI pads each event with an ``obfuscation`` field after it by default.
One search of the text, in C, on every chunk; a test of its end would miss every padded one
and take the slow way (:func:`usage_named`, two more searches) on each."""


_NULL_USAGE_FIELD: Final = ',"usage":null'
"""That null usage as a field after another, taken out of each chunk when shekel asked for the
usage and the caller did not: the chunk is then the one OpenAI sends without it, and the SDK
does not build the field (about 3.6k instructions a chunk, 0.5% of its own work: more than
taking it out costs). The replacement also tests for it, in the same search."""


def usage_named(text: str) -> bool:
    """Whether the text of an event that does not name a null usage compactly (see
    :data:`_NULL_USAGE`) may carry usage: a ``usage`` key, not set to null in spaced JSON. A
    key inside a string value has its quotes escaped, so it never matches."""
    return '"usage"' in text and '"usage": null' not in text


def _sync_events(watch: _Watch, events: Iterator[Any]) -> Iterator[Any]:
    """The SDK's events as its chunk loop reads them, less the usage chunk shekel asked for
    (and the null usage of every other chunk): each one counted, the call recorded at
    ``[DONE]`` (where the loop stops reading) or at the end of the events, or from what went
    by when the loop stops early (closed, dropped, or ended by an error event or a failed
    read)."""
    tally, hide = watch.tally, watch.hide
    seen = tally.counted  # counted here from now on (see ``ChunkTally``)
    try:
        for event in events:
            try:
                text = event._data  # what its ``data`` property returns, without the call
            except AttributeError:
                text = event.data
            if hide:  # the usage shekel asked for is left out of the chunks that name it null
                bare = text.replace(_NULL_USAGE_FIELD, "", 1)
                usual = len(bare) < len(text)
                if usual:
                    try:  # noqa: SIM105 (contextlib.suppress costs a context manager per chunk)
                        event._data = bare
                    except AttributeError:  # an event of another shape: the SDK reads it whole
                        pass
            else:
                usual = _NULL_USAGE in text
            if not usual:
                tally.counted = seen  # the call may be recorded now
                if usage_named(text) and watch.usage_event(event, text):
                    continue
                if text.startswith("[DONE]"):
                    watch.settle(complete=True)
            seen += 1
            yield event
    except BaseException:  # GeneratorExit too: the loop let go of the events before the end
        tally.counted = seen
        watch.failed()
        raise
    tally.counted = seen
    watch.settle(complete=True)


async def _async_events(watch: _Watch, events: AsyncIterator[Any]) -> AsyncIterator[Any]:
    tally, hide = watch.tally, watch.hide
    seen = tally.counted  # counted here from now on (see ``ChunkTally``)
    try:
        async for event in events:
            try:
                text = event._data  # what its ``data`` property returns, without the call
            except AttributeError:
                text = event.data
            if hide:  # the usage shekel asked for is left out of the chunks that name it null
                bare = text.replace(_NULL_USAGE_FIELD, "", 1)
                usual = len(bare) < len(text)
                if usual:
                    try:  # noqa: SIM105 (contextlib.suppress costs a context manager per chunk)
                        event._data = bare
                    except AttributeError:  # an event of another shape: the SDK reads it whole
                        pass
            else:
                usual = _NULL_USAGE in text
            if not usual:
                tally.counted = seen  # the call may be recorded now
                if usage_named(text) and watch.usage_event(event, text):
                    continue
                if text.startswith("[DONE]"):
                    watch.settle(complete=True)
            seen += 1
            yield event
    except BaseException:
        tally.counted = seen
        watch.failed()
        raise
    tally.counted = seen
    watch.settle(complete=True)


def _sync_named_events(watch: _Watch, events: Iterator[Any]) -> Iterator[Any]:
    """Events told apart by their name (anthropic's messages, OpenAI's Responses API) as the
    SDK's loop reads them: text deltas counted, the events that carry usage read, the call
    recorded at the final event or at the end of the events, or from what went by when the
    loop stops early (as :func:`_sync_events`)."""
    tally = watch.tally
    delta, named = tally.EVENT_DELTA, tally.EVENTS_READ | tally.EVENTS_FINAL
    try:
        for event in events:
            try:
                kind = event._event  # what its ``event`` property returns, without the call
            except AttributeError:
                kind = event.event
            if kind == delta:
                tally.output_estimate += 1
            elif kind in named:
                watch.named_event(kind, event)
            yield event
    except BaseException:  # GeneratorExit too: the loop let go of the events before the end
        watch.failed()
        raise
    watch.settle(complete=True)


async def _async_named_events(watch: _Watch, events: AsyncIterator[Any]) -> AsyncIterator[Any]:
    tally = watch.tally
    delta, named = tally.EVENT_DELTA, tally.EVENTS_READ | tally.EVENTS_FINAL
    try:
        async for event in events:
            try:
                kind = event._event  # what its ``event`` property returns, without the call
            except AttributeError:
                kind = event.event
            if kind == delta:
                tally.output_estimate += 1
            elif kind in named:
                watch.named_event(kind, event)
            yield event
    except BaseException:
        watch.failed()
        raise
    watch.settle(complete=True)


READERS: Final[dict[tuple[bool, bool], Any]] = {  # by (OpenAI's chat, sync)
    (True, True): _sync_events,
    (True, False): _async_events,
    (False, True): _sync_named_events,
    (False, False): _async_named_events,
}
