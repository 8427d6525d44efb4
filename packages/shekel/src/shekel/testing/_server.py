"""The fake provider: a threaded stdlib HTTP/1.1 server speaking OpenAI and Anthropic."""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType

from shekel.testing._http import Server
from shekel.testing._model import RecordedRequest, Reply, StreamFraming, check_stream_framing

__all__ = ["DEFAULT_TEXT", "FakeProvider"]

DEFAULT_TEXT = "Hello from the fake provider."
DEFAULT_INPUT_TOKENS = 12
DEFAULT_OUTPUT_TOKENS = 3


class FakeProvider:
    """A local HTTP server that answers like the OpenAI and Anthropic APIs.

    The server starts listening on construction (``127.0.0.1`` and a free port unless told
    otherwise) and serves until :meth:`stop`; using it as a context manager stops it on exit.
    Each generation request (chat completions, responses, messages, embeddings) takes the
    next enqueued :class:`Reply`, or a default reply when the queue is empty.

    Requests the real APIs refuse are refused here too, with HTTP 400 and the provider's own
    wording, before they take a reply from the queue: an output limit above the model's
    maximum (for the models in ``shekel._output_limits``; any limit goes for other models),
    below the endpoint's minimum or not an integer; Anthropic ``/v1/messages`` without
    ``max_tokens``, or with a ``max_tokens`` not above ``thinking.budget_tokens``; OpenAI
    chat with both ``max_tokens`` and ``max_completion_tokens``, or with ``stream_options``
    but no ``stream``.

    OpenAI's streamed events carry its ``obfuscation`` padding (chat completion chunks last,
    after their ``usage``; the Responses API's text deltas), as OpenAI sends them unless the
    request sets ``stream_options.include_obfuscation`` to false.

    ``stream_framing`` says how streamed bodies are cut into HTTP chunks (see
    :data:`~shekel.testing.StreamFraming`): by default the events after the text arrive
    together, as real servers send them; a :class:`Reply` may choose otherwise for itself.
    """

    def __init__(
        self,
        *,
        echo: bool = False,
        default_text: str = DEFAULT_TEXT,
        host: str = "127.0.0.1",
        port: int = 0,
        log_requests: bool = False,
        stream_framing: StreamFraming = "coalesced",
    ) -> None:
        check_stream_framing(stream_framing)
        self.echo = echo
        self.stream_framing: StreamFraming = stream_framing
        self.default_text = default_text
        self.log_requests = log_requests
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._usage = (DEFAULT_INPUT_TOKENS, DEFAULT_OUTPUT_TOKENS)
        self._stopped = False
        self._server = Server((host, port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"shekel-fake-provider:{self.port}",
            daemon=True,
        )
        self._thread.start()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._server.server_name

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def url(self) -> str:
        """``http://HOST:PORT``, no trailing slash."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The ``base_url`` for ``openai.OpenAI`` (ends in ``/v1``)."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The ``base_url`` for ``anthropic.Anthropic`` (the SDK adds ``/v1/...`` itself)."""
        return self.url

    # -- scripting ---------------------------------------------------------------------------

    def enqueue(self, *replies: Reply) -> None:
        """Queue replies; each generation request takes the oldest one (FIFO)."""
        for reply in replies:
            if not isinstance(reply, Reply):
                raise TypeError(f"expected a Reply, got {type(reply).__name__}")
        with self._lock:
            self._queue.extend(replies)

    def set_usage(
        self, *, input_tokens: int | None = None, output_tokens: int | None = None
    ) -> None:
        """Set the token counts used when a reply leaves them open (initially 12 and 3)."""
        for value in (input_tokens, output_tokens):
            if value is not None and value < 0:
                raise ValueError("token counts must be >= 0")
        with self._lock:
            current_in, current_out = self._usage
            self._usage = (
                current_in if input_tokens is None else input_tokens,
                current_out if output_tokens is None else output_tokens,
            )

    def reset(self) -> None:
        """Forget queued replies, recorded requests and the ``set_usage`` defaults."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._usage = (DEFAULT_INPUT_TOKENS, DEFAULT_OUTPUT_TOKENS)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def connections_accepted(self) -> int:
        """How many TCP connections the server has accepted (keep-alive reuses one)."""
        return self._server.connections_accepted

    @property
    def pending(self) -> int:
        """How many enqueued replies have not been served yet."""
        with self._lock:
            return len(self._queue)

    # -- lifecycle ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop serving, drop open connections and close the socket; safe to call twice."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections(timeout=2.0)
        self._thread.join(timeout=5.0)

    @property
    def running(self) -> bool:
        return not self._stopped

    def __enter__(self) -> FakeProvider:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<FakeProvider {self.url} {state}>"

    # -- used by the request handler ---------------------------------------------------------

    def _arrive(self, request: RecordedRequest, *, consume: bool) -> tuple[Reply | None, int, int]:
        """Record a request and, for generation endpoints, take its reply and usage defaults."""
        with self._lock:
            self._requests.append(request)
            reply = self._queue.popleft() if consume and self._queue else None
            return reply, *self._usage
