"""Public value types of the fake provider: scripted replies, faults and recorded requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

__all__ = ["STREAM_FRAMINGS", "Fault", "RecordedRequest", "Reply", "StreamFraming", "ToolCall"]

StreamFraming = Literal["coalesced", "split", "single"]
"""How a streamed body is cut into HTTP chunks (each chunk is written with one send).

``"coalesced"`` (the default): the events before the text and each text delta go in chunks of
their own, and every event after the text goes in *one* chunk together with the end of the
body, as real servers usually deliver them: OpenAI's finish chunk, usage chunk and
``data: [DONE]``, or Anthropic's ``content_block_stop``, ``message_delta`` and
``message_stop``, reach the client in a single network read.

``"split"``: one event per chunk, the end of the body on its own; a client that keeps up reads
them one at a time.

``"single"``: the whole body in one chunk, ending it: the client gets every event at once.
"""

STREAM_FRAMINGS: tuple[StreamFraming, ...] = get_args(StreamFraming)


def check_stream_framing(value: object) -> None:
    if value not in STREAM_FRAMINGS:
        raise ValueError(f"stream_framing must be one of {STREAM_FRAMINGS}, got {value!r}")


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
class ToolCall:
    """A tool the scripted reply asks the caller to run: ``name`` with ``arguments``.

    Each protocol shows it its own way (an OpenAI ``tool_calls`` entry or Responses
    ``function_call`` item, an Anthropic ``tool_use`` block, a Gemini ``functionCall`` part, an
    Ollama ``tool_calls`` entry, a Bedrock ``toolUse`` block, a Cohere ``tool_calls`` entry),
    and the reply ends the way that provider ends a turn that wants a tool (``tool_calls``,
    ``tool_use``...). ``id`` is made up when left out.
    """

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a tool call needs the tool's name")


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
    Cohere reports ``input_tokens`` and ``output_tokens`` as its ``billed_units`` (its
    ``tokens`` add the system preamble Cohere does not bill) and ``cached_input_tokens`` as
    ``cached_tokens``.

    ``latency`` delays the response headers, ``chunk_delay`` sleeps once per streamed text
    delta before the HTTP chunk carrying it is written (with ``"single"`` framing, all of
    them before the body), and ``drop_after_chunks`` closes the connection abruptly right
    after that many text deltas of a stream, even inside an HTTP chunk (for a non-streamed
    request: after half of the JSON body).  ``stream_framing`` chooses how this reply's
    stream is cut into HTTP chunks (see :data:`StreamFraming`); ``None`` means the
    provider's own setting.

    ``ignore_max_tokens`` makes the reply disregard the request's output limit, like a
    misbehaving gateway (to test that a strict budget cuts such a stream off itself); a limit
    the real API would refuse is refused all the same.

    ``tool_calls`` makes the reply ask for tools (see :class:`ToolCall`), after ``text`` if
    there is any (a reply with tool calls and no ``text`` has none):
    ``Reply(tool_calls=[ToolCall("search", {"q": "shekel"})])``.

    ``output_tokens`` is all billed output, reasoning included (``reasoning_tokens`` says how
    much of it): protocols that report thinking apart (Gemini's ``thoughtsTokenCount``) get
    ``output_tokens - reasoning_tokens`` as the answer's own tokens.

    ``model`` is the model id the response reports; ``None`` reports the one requested.  Real
    APIs often answer an alias with a dated snapshot (``gpt-4o-mini`` comes back as
    ``gpt-4o-mini-2024-07-18``), and code that prices by the reported model must cope.
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
    stream_framing: StreamFraming | None = None
    model: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tool_calls", tuple(self.tool_calls))  # a list is fine too
        for call in self.tool_calls:
            if not isinstance(call, ToolCall):
                raise TypeError(f"tool_calls takes ToolCall objects, got {type(call).__name__}")
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
        if self.stream_framing is not None:
            check_stream_framing(self.stream_framing)

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
