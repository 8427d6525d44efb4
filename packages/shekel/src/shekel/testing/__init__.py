"""A fake LLM provider for tests: a real local HTTP server speaking the OpenAI and Anthropic APIs.

Point the real SDKs at it and script what they get back::

    from shekel.testing import FakeProvider, Reply

    with FakeProvider() as fake:
        fake.enqueue(Reply(text="hi there", input_tokens=100, output_tokens=50))
        fake.enqueue(Reply.error(429, retry_after=1.0))
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="test")
        ...
        assert fake.requests[0].path == "/v1/chat/completions"

Served endpoints: ``POST /v1/chat/completions``, ``/v1/responses``, ``/v1/embeddings``
(OpenAI) and ``/v1/messages``, ``/v1/messages/count_tokens`` (Anthropic), each plain JSON
or SSE when the body has ``"stream": true``; Gemini, Bedrock and Ollama paths, and Cohere's
``/v2/chat`` and ``/v2/embed``, in their own shapes.  Requests the real APIs would refuse for
their output limit (e.g. ``max_tokens`` above the model's maximum) get the same HTTP 400 here
(Cohere caps such a limit instead, and so does the fake).
Streams end the way real servers send them, the usage and closing events in one network
read; ``StreamFraming`` lets a test choose another cut.  With pytest, the ``fake_llm``
fixture yields a running ``FakeProvider``.  Nothing here imports the ``openai`` or
``anthropic`` packages. ``use_clock`` sets the time budget windows read, for tests of windows.
"""

import contextlib
from collections.abc import Callable, Iterator

from shekel._clock import CLOCK
from shekel.testing._model import (
    STREAM_FRAMINGS,
    Fault,
    RecordedRequest,
    Reply,
    StreamFraming,
    ToolCall,
)
from shekel.testing._server import DEFAULT_TEXT, FakeProvider


@contextlib.contextmanager
def use_clock(clock: Callable[[], float]) -> Iterator[None]:
    """Inside the block, budget windows and time-dependent prices read the time from
    ``clock()`` (POSIX seconds): a test moves time forward to roll a window over, stands just
    before a period ends, or prices a call in a provider's off-peak hours, without waiting.
    Leases, retries and stores keep the real clock."""
    if not callable(clock):
        raise TypeError(f"use_clock() needs a function returning POSIX seconds, got {clock!r}")
    before = CLOCK[0]
    CLOCK[0] = clock
    try:
        yield
    finally:
        CLOCK[0] = before


__all__ = [
    "DEFAULT_TEXT",
    "STREAM_FRAMINGS",
    "FakeProvider",
    "Fault",
    "RecordedRequest",
    "Reply",
    "StreamFraming",
    "ToolCall",
    "use_clock",
]
