"""The fake provider: a threaded stdlib HTTP/1.1 server speaking OpenAI and Anthropic."""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from shekel.testing import _anthropic_wire as anthropic_wire
from shekel.testing import _openai_wire as openai_wire
from shekel.testing._common import JSON, Event, Turn, new_id, resolve_turn
from shekel.testing._model import RecordedRequest, Reply

__all__ = ["DEFAULT_TEXT", "FakeProvider"]

DEFAULT_TEXT = "Hello from the fake provider."
DEFAULT_INPUT_TOKENS = 12
DEFAULT_OUTPUT_TOKENS = 3

Dialect = Literal["openai", "anthropic"]


@dataclass(frozen=True, slots=True)
class _Generation:
    """How one text-generating endpoint reads its request and shapes its answer."""

    dialect: Dialect
    max_tokens: Callable[[JSON], int | None]
    echo_text: Callable[[JSON], str | None]
    plain: Callable[[JSON, Turn], JSON]
    stream: Callable[[JSON, Turn], list[Event]]


_GENERATIONS: dict[str, _Generation] = {
    "/v1/chat/completions": _Generation(
        "openai",
        openai_wire.chat_max_tokens,
        openai_wire.chat_echo_text,
        openai_wire.chat_completion,
        openai_wire.chat_stream,
    ),
    "/v1/responses": _Generation(
        "openai",
        openai_wire.responses_max_tokens,
        openai_wire.responses_echo_text,
        openai_wire.response_object,
        openai_wire.responses_stream,
    ),
    "/v1/messages": _Generation(
        "anthropic",
        anthropic_wire.max_tokens,
        anthropic_wire.echo_text,
        anthropic_wire.message,
        anthropic_wire.message_stream,
    ),
}
_EMBEDDINGS = "/v1/embeddings"
_COUNT_TOKENS = "/v1/messages/count_tokens"


class FakeProvider:
    """A local HTTP server that answers like the OpenAI and Anthropic APIs.

    The server starts listening on construction (``127.0.0.1`` and a free port unless told
    otherwise) and serves until :meth:`stop`; using it as a context manager stops it on exit.
    Each generation request (chat completions, responses, messages, embeddings) takes the
    next enqueued :class:`Reply`, or a default reply when the queue is empty.
    """

    def __init__(
        self,
        *,
        echo: bool = False,
        default_text: str = DEFAULT_TEXT,
        host: str = "127.0.0.1",
        port: int = 0,
        log_requests: bool = False,
    ) -> None:
        self.echo = echo
        self.default_text = default_text
        self.log_requests = log_requests
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._usage = (DEFAULT_INPUT_TOKENS, DEFAULT_OUTPUT_TOKENS)
        self._stopped = False
        self._server = _Server((host, port), self)
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many clients connect at once in concurrency tests

    def __init__(self, address: tuple[str, int], provider: FakeProvider) -> None:
        self.provider = provider
        self._connections: set[socket.socket] = set()
        self._connections_changed = threading.Condition()
        self.connections_accepted = 0
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would look up the host's FQDN, which can stall offline.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host.decode() if isinstance(host, bytes | bytearray) else str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_changed:
            self._connections.add(request)
            self.connections_accepted += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        with self._connections_changed:
            self._connections.discard(request)
            self._connections_changed.notify_all()

    def close_connections(self, timeout: float) -> None:
        """Cut every open (e.g. idle keep-alive) connection and wait for its thread to end."""
        with self._connections_changed:
            for connection in list(self._connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._connections_changed.wait_for(lambda: not self._connections, timeout)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # the client went away; nothing to report
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "shekel-fake-provider/1"
    sys_version = ""
    disable_nagle_algorithm = True  # streamed events must leave at once, not wait for ACKs
    timeout = 120.0  # idle keep-alive connections are closed after this

    @property
    def _provider(self) -> FakeProvider:
        return cast(_Server, self.server).provider

    def log_message(self, format: str, *args: Any) -> None:
        if self._provider.log_requests:
            super().log_message(format, *args)

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    # -- request side ------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        try:
            self._serve_one()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _serve_one(self) -> None:
        path = urlsplit(self.path).path.rstrip("/") or "/"
        raw = self._read_body()
        body: JSON = {}
        valid = True
        if raw.strip():
            try:
                decoded = json.loads(raw)
            except ValueError:
                decoded = None
            valid = isinstance(decoded, dict)
            body = decoded if isinstance(decoded, dict) else {}
        headers = {key.lower(): value for key, value in self.headers.items()}
        dialect: Dialect = (
            "anthropic"
            if path.startswith("/v1/messages") or "anthropic-version" in headers
            else "openai"
        )
        known = self.command == "POST" and (
            path in _GENERATIONS or path in (_EMBEDDINGS, _COUNT_TOKENS)
        )
        consume = known and valid and path != _COUNT_TOKENS
        recorded = RecordedRequest(path=path, body=body, headers=headers, method=self.command)
        queued, default_in, default_out = self._provider._arrive(recorded, consume=consume)

        if not known:
            self._send_error(dialect, 404, f"Unknown endpoint: {self.command} {path}")
            return
        if not valid:
            self._send_error(dialect, 400, "The request body must be a JSON object.")
            return
        if path == _COUNT_TOKENS:
            self._send_json(dialect, 200, anthropic_wire.count_tokens(body))
            return

        reply = queued if queued is not None else Reply()
        if reply.latency:
            time.sleep(reply.latency)
        if reply.fault is not None:
            fault = reply.fault
            message = fault.message or f"Fake provider error {fault.status}."
            extra = []
            if fault.retry_after is not None:
                extra = [
                    ("retry-after", f"{fault.retry_after:g}"),
                    ("retry-after-ms", str(round(fault.retry_after * 1000))),
                ]
            self._send_error(dialect, fault.status, message, extra)
            return
        if path == _EMBEDDINGS:
            tokens = default_in if reply.input_tokens is None else reply.input_tokens
            self._send_json(dialect, 200, openai_wire.embeddings(body, tokens), reply)
            return

        generation = _GENERATIONS[path]
        echoed = generation.echo_text(body) if self._provider.echo else None
        turn = resolve_turn(
            reply,
            fallback_text=echoed or self._provider.default_text,
            default_input_tokens=default_in,
            default_output_tokens=default_out,
            max_tokens=generation.max_tokens(body),
        )
        if body.get("stream") is True:
            self._send_stream(dialect, generation.stream(body, turn), reply)
        else:
            self._send_json(dialect, 200, generation.plain(body, turn), reply)

    # -- response side -----------------------------------------------------------------------

    def _start(self, dialect: Dialect, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self.send_response(status)
        request_id = new_id("req_")
        self.send_header("request-id" if dialect == "anthropic" else "x-request-id", request_id)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()

    def _send_json(
        self, dialect: Dialect, status: int, obj: JSON, reply: Reply | None = None
    ) -> None:
        data = json.dumps(obj).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        self._start(dialect, status, headers)
        if reply is not None and reply.drop_after_chunks is not None:
            self.wfile.write(data[: len(data) // 2])
            self._abort()
            return
        self.wfile.write(data)

    def _send_error(
        self,
        dialect: Dialect,
        status: int,
        message: str,
        extra: Iterable[tuple[str, str]] = (),
    ) -> None:
        shape = anthropic_wire.error_body if dialect == "anthropic" else openai_wire.error_body
        data = json.dumps(shape(status, message)).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        self._start(dialect, status, [*headers, *extra])
        self.wfile.write(data)

    def _send_stream(self, dialect: Dialect, events: list[Event], reply: Reply) -> None:
        headers = [
            ("Content-Type", "text/event-stream; charset=utf-8"),
            ("Cache-Control", "no-cache"),
            ("Transfer-Encoding", "chunked"),
        ]
        self._start(dialect, 200, headers)
        limit = reply.drop_after_chunks
        sent = 0
        for event in events:
            if limit is not None and event.kind != "pre" and sent >= limit:
                self._abort()
                return
            if event.kind == "content":
                if reply.chunk_delay:
                    time.sleep(reply.chunk_delay)
                sent += 1
            # one SSE event per HTTP chunk, in a single send
            self.wfile.write(b"%X\r\n%s\r\n" % (len(event.payload), event.payload))
        self.wfile.write(b"0\r\n\r\n")

    def _abort(self) -> None:
        """Cut the connection mid-response, so the client sees an incomplete body."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
