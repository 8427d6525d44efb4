"""Byte-stream taps: they sit between httpx and the SDK on a streamed response.

A tap hands every byte on unchanged (except an OpenAI usage chunk the caller never asked for),
reads usage as it passes, and records the call's spend exactly once: when the stream ends, is
closed, fails, is cut off by a strict budget, or is garbage-collected half-read.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

from .._errors import BudgetExceededError
from ._adapter import StreamTally
from ._call import InterceptedCall, response_json


def _settle_abandoned(call: InterceptedCall, tally: StreamTally | None) -> None:
    if call.settled:
        return
    if tally is None:
        call.abandon()
    else:
        call.settle_stream(tally, complete=False, raise_over=False)


class _Tap:
    """What the sync and async taps share: event framing, usage reading, settling."""

    def __init__(self, call: InterceptedCall, tally: StreamTally | None, inner: Any) -> None:
        self.call = call
        self.tally = tally
        self.inner = inner
        self.pending = b""
        self.body: list[bytes] = []
        self.cut_at = call.output_allowed if call.budget.strict and tally is not None else None
        self.stop = False
        weakref.finalize(self, _settle_abandoned, call, tally)

    def feed(self, chunk: bytes) -> bytes:
        tally = self.tally
        if tally is None:  # a JSON body read as a stream: keep it for the end
            self.body.append(chunk)
            return chunk
        data = self.pending + chunk if self.pending else chunk
        if data.endswith(b"\n\n"):  # the usual chunk: whole events, nothing left over
            self.pending = b""
            out = tally.events(data)
        else:
            end = data.rfind(b"\n\n")
            if end >= 0:
                end += 2
            else:
                end = data.rfind(b"\r\n\r\n")
                if end < 0:
                    self.pending = data
                    return b""
                end += 4
            self.pending = data[end:]
            out = tally.events(data[:end])
        if self.cut_at is not None and tally.usage is None and tally.output_estimate >= self.cut_at:
            self.stop = True
        return out

    def cut_off(self) -> BudgetExceededError:
        """Strict mode: the stream reached what the budget reserved for it. Record what was
        streamed (the caller has closed the connection, which stops generation)."""
        assert self.tally is not None
        self.call.settle_stream(self.tally, complete=False, raise_over=False)
        return self.call.budget.exhausted_error(
            f"the stream was stopped after about {self.tally.output_estimate:,} output tokens, "
            "all that was reserved for it (strict mode)"
        )

    def finish(self) -> bytes:
        """The stream ended normally: hand on any unterminated tail, then record."""
        tail, self.pending = self.pending, b""
        if tail and self.tally is not None:
            tail = self.tally.events(tail)
        if self.tally is None:
            data = response_json(b"".join(self.body))
            adapter = self.call.adapter
            usage = adapter.usage_from_json(data) if isinstance(data, dict) else None
            model = adapter.model_from_json(data) if isinstance(data, dict) else None
            self.call.settle(usage, model)
        else:
            self.call.settle_stream(self.tally, complete=True, raise_over=True)
        return tail

    def abandon(self) -> None:
        _settle_abandoned(self.call, self.tally)


class SyncTap(_Tap):
    """Wraps an httpx ``SyncByteStream``."""

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self.inner)
        feed, tally, call = self.feed, self.tally, self.call  # read once: this loop is per chunk
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
            if tally is not None and tally.usage is not None and not call.settled:
                # Final usage is in: record now and raise here if a cap was crossed, before
                # the SDK sees the end of the stream and closes it.
                call.settle_stream(tally, complete=True, raise_over=True)
            if self.stop:
                self.inner.close()
                raise self.cut_off()
        tail = self.finish()
        if tail:
            yield tail

    def close(self) -> None:
        self.abandon()
        self.inner.close()


class AsyncTap(_Tap):
    """Wraps an httpx ``AsyncByteStream``."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = self.inner.__aiter__()
        feed, tally, call = self.feed, self.tally, self.call  # read once: this loop is per chunk
        while True:
            try:
                chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
            except BaseException:
                self.abandon()
                raise
            out = feed(chunk)
            if out:
                yield out
            if tally is not None and tally.usage is not None and not call.settled:
                # Final usage is in: record now and raise here if a cap was crossed, before
                # the SDK sees the end of the stream and closes it.
                call.settle_stream(tally, complete=True, raise_over=True)
            if self.stop:
                await self.inner.aclose()
                raise self.cut_off()
        tail = self.finish()
        if tail:
            yield tail

    async def aclose(self) -> None:
        self.abandon()
        await self.inner.aclose()
