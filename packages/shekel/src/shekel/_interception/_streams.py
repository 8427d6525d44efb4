"""Byte-stream taps: they sit between httpx and the SDK on a streamed response.

A tap hands every byte on unchanged (except an OpenAI usage chunk the caller never asked for),
reads usage as it passes, and records the call's spend exactly once: as soon as the stream's
last event has gone by, or when the stream ends, is closed, fails, is cut off by a strict
budget, or is garbage-collected half-read.

An error due to the caller (a cap crossed by this call, usage missing under a strict budget) is
raised after the bytes that carried the news were handed on: when the SDK asks for more, or,
since the SDK stops asking once it has seen the stream's last event (which often arrives in the
same network read as the usage), when it closes the response. Either way it reaches the caller
before their loop over the stream has finished.
"""

from __future__ import annotations

import json
import sys
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

from .. import _spend
from .._errors import BudgetExceededError, ShekelError
from ._adapter import StreamTally
from ._call import InterceptedCall, as_shekel_error, for_sdk
from ._strict import cut_off_point

_byte_streams: dict[tuple[type, str], type] = {}


def byte_stream_class(own: type, sync: bool, response: Any) -> type:
    """``own`` made a byte stream of the httpx flavour ``response`` belongs to: httpx checks a
    response's stream type, and httpx and httpx2 each have their own ``Sync/AsyncByteStream``."""
    library = type(response).__module__.partition(".")[0]
    key = (own, library)
    cls = _byte_streams.get(key)
    if cls is None:
        module = sys.modules[library]
        base = module.SyncByteStream if sync else module.AsyncByteStream
        cls = _byte_streams[key] = type(own.__name__, (own, base), {})
    return cls


def settle_abandoned(call: InterceptedCall, tally: StreamTally | None) -> None:
    if call.settled:
        return
    if tally is None:
        call.abandon()
    else:
        call.settle_stream(tally, complete=tally.done, raise_over=False)


class _Tap:
    """What the sync and async taps share: event framing, usage reading, settling."""

    def __init__(self, call: InterceptedCall, tally: StreamTally | None, inner: Any) -> None:
        self.call = call
        self.tally = tally
        self.inner = inner
        self.pending = b""
        self.body: list[bytes] = []
        allowed = call.output_allowed if call.chain.strict else None
        self.cut_at = None if allowed is None or tally is None else cut_off_point(allowed)
        if self.cut_at is not None:
            tally.precise = True  # type: ignore[union-attr]
        self.stop = False
        # Server-sent events end a whole batch with a blank line: checked without a call.
        self.sse = tally is None or type(tally).frame_end is StreamTally.frame_end
        # An async tap over a store that waits on I/O records from a worker thread instead.
        self.settle_here = not (isinstance(self, AsyncTap) and call.chain.ledger.blocks)
        self.due = False
        self.error: ShekelError | None = None  # for the caller, once the bytes are handed on
        weakref.finalize(self, settle_abandoned, call, tally)

    def feed(self, chunk: bytes) -> bytes:
        tally = self.tally
        if tally is None:  # a JSON body read as a stream: keep it for the end
            self.body.append(chunk)
            return chunk
        data = self.pending + chunk if self.pending else chunk
        if self.sse and data.endswith(b"\n\n"):  # the usual chunk: whole events, no more
            self.pending = b""
            out = tally.events(data)
        else:
            end = tally.frame_end(data)
            if end < 0:
                self.pending = data
                return b""
            self.pending = data[end:]
            out = tally.events(data[:end]) if end else b""
        if tally.done:
            # The last event went by (the SDK reads no further): record now. Usage is not
            # enough of a signal, as some gateways repeat a running total in every chunk.
            if not self.call.settled:
                if self.settle_here:
                    self._settle(complete=True)
                else:
                    self.due = True
        elif (
            self.cut_at is not None and tally.usage is None and tally.output_estimate >= self.cut_at
        ):
            self.stop = True
        return out

    def _settle(self, *, complete: bool) -> None:
        assert self.tally is not None
        try:
            self.call.settle_stream(self.tally, complete=complete, raise_over=True)
        except Exception as exc:
            self.error = as_shekel_error(exc, sent=True)

    def take_error(self) -> ShekelError | None:
        error, self.error = self.error, None
        return None if error is None else for_sdk(error, self.call.adapter)

    def cut_off(self) -> BudgetExceededError:
        """Strict mode: the stream ran clearly past the output limit its request was sent with
        (a gateway ignoring ``max_tokens``). Record what was streamed; the caller closed the
        connection, which stops generation."""
        assert self.tally is not None
        self.call.settle_stream(self.tally, complete=False, raise_over=False)
        error = _spend.exhausted_error(
            self.call.chain,
            f"strict mode stopped the stream after about {self.tally.output_estimate:,} output "
            f"tokens: the provider ignored the request's output limit of "
            f"{self.call.output_allowed:,} tokens, all the budget could pay for",
        )
        return for_sdk(error, self.call.adapter)

    def finish(self) -> bytes:
        """The stream ended normally: hand on any unterminated tail, then record."""
        tail, self.pending = self.pending, b""
        if tail and self.tally is not None:
            tail = self.tally.events(tail)
        if self.call.settled:
            return tail
        if self.tally is None:
            data = response_json(b"".join(self.body))
            adapter = self.call.adapter
            usage = model = call_id = None
            if isinstance(data, dict):
                usage, model = adapter.usage_from_json(data), adapter.model_from_json(data)
                found = data.get("id")
                call_id = found if isinstance(found, str) else None
            try:
                self.call.settle(usage, model, call_id=call_id)
            except Exception as exc:
                self.error = as_shekel_error(exc, sent=True)
        else:
            self._settle(complete=True)
        return tail

    def abandon(self) -> None:
        settle_abandoned(self.call, self.tally)

    def closing_error(self) -> ShekelError | None:
        """The error still owed to the caller when the SDK closes the stream, unless the
        stream is being closed because of another exception (which must not be replaced)."""
        if sys.exc_info()[1] is not None:
            return None
        return self.take_error()


class SyncTap(_Tap):
    """Wraps an httpx ``SyncByteStream``."""

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self.inner)
        feed = self.feed  # read once: this loop runs per chunk
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                break
            except BaseException:
                self.abandon()
                raise
            out = feed(chunk)
            if out:
                yield out
            if self.error is not None:
                error = self.take_error()
                assert error is not None
                raise error
            if self.stop:
                self.inner.close()
                raise self.cut_off()
        tail = self.finish()
        if tail:
            yield tail
        error = self.take_error()
        if error is not None:
            raise error

    def close(self) -> None:
        self.abandon()
        self.inner.close()
        error = self.closing_error()
        if error is not None:
            raise error


class AsyncTap(_Tap):
    """Wraps an httpx ``AsyncByteStream``."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = self.inner.__aiter__()
        feed = self.feed  # read once: this loop runs per chunk
        while True:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
            except BaseException:
                self.abandon()
                raise
            out = feed(chunk)
            if self.due:
                self.due = False
                await sys.modules["asyncio"].to_thread(self._settle, complete=True)
            if out:
                yield out
            if self.error is not None:
                error = self.take_error()
                assert error is not None
                raise error
            if self.stop:
                await self.inner.aclose()
                raise self.cut_off()
        tail = self.finish()
        if tail:
            yield tail
        error = self.take_error()
        if error is not None:
            raise error

    async def aclose(self) -> None:
        self.abandon()
        await self.inner.aclose()
        error = self.closing_error()
        if error is not None:
            raise error


def response_json(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return None
