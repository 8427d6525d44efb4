"""Public value types of the fake provider: scripted replies, faults and recorded requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Fault", "RecordedRequest", "Reply"]


@dataclass(frozen=True, slots=True)
class Fault:
    """An HTTP error the fake provider answers with instead of a completion.

    The body is shaped like the error of the provider whose endpoint was called
    (OpenAI ``{"error": {...}}`` or Anthropic ``{"type": "error", "error": {...}}``).
    ``retry_after`` (seconds) is sent as both ``retry-after`` and ``retry-after-ms`` headers.
    """

    status: int
    retry_after: float | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        if not 400 <= self.status <= 599:
            raise ValueError(f"a fault needs a 4xx or 5xx status, got {self.status}")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("retry_after must be >= 0")


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer; enqueue it on a :class:`FakeProvider` to serve one request.

    ``None`` for a token count means "decide when served": ``input_tokens`` then comes from
    :meth:`FakeProvider.set_usage`, and ``output_tokens`` is the number of words of ``text``
    when ``text`` was given, else the ``set_usage`` default.  ``text=None`` means the
    provider's default text (or the echo of the last user message in echo mode).

    Token counts are reported verbatim in each provider's own fields: ``input_tokens`` is
    OpenAI's ``prompt_tokens`` / ``input_tokens`` (which by OpenAI's convention *include* the
    cached tokens) and Anthropic's ``input_tokens`` (which by Anthropic's convention *exclude*
    cache reads and writes).  ``cached_input_tokens`` becomes OpenAI ``cached_tokens`` and
    Anthropic ``cache_read_input_tokens``; ``cache_write_tokens`` becomes Anthropic
    ``cache_creation_input_tokens`` (and OpenAI ``cache_write_tokens`` when non-zero).

    ``latency`` delays the response headers, ``chunk_delay`` sleeps before every streamed
    content chunk, and ``drop_after_chunks`` closes the connection abruptly after that many
    content chunks of a stream (for a non-streamed request: after half of the JSON body).
    ``ignore_max_tokens`` makes the reply disregard the request's output limit, like a
    misbehaving gateway (to test that a strict budget cuts such a stream off itself); a limit
    the real API would refuse is refused all the same.
    """

    text: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    latency: float = 0.0
    chunk_delay: float = 0.0
    drop_after_chunks: int | None = None
    fault: Fault | None = None
    ignore_max_tokens: bool = False

    def __post_init__(self) -> None:
        counts = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "drop_after_chunks": self.drop_after_chunks,
        }
        for name, value in counts.items():
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.latency < 0 or self.chunk_delay < 0:
            raise ValueError("latency and chunk_delay must be >= 0")

    @classmethod
    def error(
        cls,
        status: int,
        *,
        retry_after: float | None = None,
        message: str | None = None,
        latency: float = 0.0,
    ) -> Reply:
        """A reply that answers with an HTTP error, e.g. ``Reply.error(429, retry_after=1.0)``."""
        return cls(latency=latency, fault=Fault(status, retry_after=retry_after, message=message))


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request as the fake provider received it.

    ``path`` has no query string; ``headers`` keys are lower-case; ``body`` is the decoded
    JSON object (``{}`` when the body was empty or not a JSON object).
    """

    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"
