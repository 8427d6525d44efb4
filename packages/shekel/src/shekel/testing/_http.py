"""The HTTP side of the fake provider: routing, the threaded server and the request handler."""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from shekel.testing._common import JSON, Event, Rejection, new_id, resolve_turn
from shekel.testing._endpoints import ERRORS, Dialect, dialect_of, error_headers, resolve
from shekel.testing._model import RecordedRequest, Reply, StreamFraming

if TYPE_CHECKING:
    from shekel.testing._server import FakeProvider


class Server(ThreadingHTTPServer):
    """A thread per connection; tracks open connections so stop() can cut idle ones."""

    daemon_threads = True
    request_queue_size = 128  # many clients connect at once in concurrency tests

    def __init__(self, address: tuple[str, int], provider: FakeProvider) -> None:
        self.provider = provider
        self._connections: set[socket.socket] = set()
        self._connections_changed = threading.Condition()
        self.connections_accepted = 0
        self.stopping = threading.Event()  # set by stop(): replies still waiting give up
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
        self.stopping.set()
        with self._connections_changed:
            for connection in list(self._connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._connections_changed.wait_for(lambda: not self._connections, timeout)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # the client went away; nothing to report
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "shekel-fake-provider/1"
    disable_nagle_algorithm = True  # streamed events must leave at once, not wait for ACKs
    timeout = 120.0  # idle keep-alive connections are closed after this

    @property
    def _provider(self) -> FakeProvider:
        return cast(Server, self.server).provider

    def version_string(self) -> str:
        return self.server_version

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
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True  # cannot tell where the next request starts
            return b""
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        try:
            self._serve_one()
        except OSError:  # the client went away, or stop() cut the connection
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
        found = resolve(path) if self.command == "POST" else None
        endpoint, from_path = found if found is not None else (None, {})
        dialect = endpoint.dialect if endpoint is not None else dialect_of(path, headers)
        # what the endpoint reads: the body, with what the path says (a Gemini model)
        request = {**body, **from_path} if from_path else body
        # A request the real API refuses never reaches the model: it takes no scripted reply.
        rejection = endpoint.check(request) if endpoint is not None and valid else None
        consume = endpoint is not None and endpoint.free is None and valid and rejection is None
        recorded = RecordedRequest(path=path, body=body, headers=headers, method=self.command)
        queued, default_in, default_out = self._provider._arrive(recorded, consume=consume)

        if endpoint is None:
            self._send_error(dialect, 404, f"Unknown endpoint: {self.command} {path}")
            return
        if not valid:
            self._send_error(dialect, 400, "The request body must be a JSON object.")
            return
        if rejection is not None:
            self._send_error(dialect, 400, rejection.message, rejection=rejection)
            return
        if endpoint.free is not None:
            self._send_json(dialect, 200, endpoint.free(request))
            return

        reply = queued if queued is not None else Reply()
        stopping = cast(Server, self.server).stopping
        if reply.latency and stopping.wait(reply.latency):
            return  # the provider is stopping: the connection is being cut
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
        # what the answer is built from: the request, naming the model the reply reports
        shown = request if reply.model is None else {**request, "model": reply.model}
        echoed = endpoint.echo_text(request) if self._provider.echo else None
        turn = resolve_turn(
            reply,
            fallback_text=echoed or self._provider.default_text,
            default_input_tokens=default_in,
            default_output_tokens=default_out,
            max_tokens=endpoint.max_tokens(request),
        )
        if endpoint.stream is not None and endpoint.streams(request):
            framing = reply.stream_framing or self._provider.stream_framing
            events = endpoint.stream(shown, turn)
            self._send_stream(dialect, events, reply, framing, endpoint.stream_type)
        else:
            assert endpoint.plain is not None
            self._send_json(dialect, 200, endpoint.plain(shown, turn), reply)

    # -- response side -----------------------------------------------------------------------

    def _start(self, dialect: Dialect, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self.send_response(status)
        request_id = new_id("req_")
        names = {"anthropic": "request-id", "bedrock": "x-amzn-RequestId"}
        self.send_header(names.get(dialect, "x-request-id"), request_id)
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
        *,
        rejection: Rejection | None = None,
    ) -> None:
        data = json.dumps(ERRORS[dialect](status, message, rejection)).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        headers += error_headers(dialect, status)
        self._start(dialect, status, [*headers, *extra])
        self.wfile.write(data)

    def _send_stream(
        self,
        dialect: Dialect,
        events: list[Event],
        reply: Reply,
        framing: StreamFraming,
        content_type: str,
    ) -> None:
        headers = [
            ("Content-Type", content_type),
            ("Cache-Control", "no-cache"),
            ("Transfer-Encoding", "chunked"),
        ]
        self._start(dialect, 200, headers)
        frames = _frames(events, framing)
        limit = reply.drop_after_chunks
        sent = 0  # text deltas written so far
        for index, frame in enumerate(frames):
            size = sum(len(event.payload) for event in frame)
            payload = bytearray()
            deltas = 0
            cut = False
            for event in frame:
                if limit is not None and event.kind != "pre" and sent + deltas >= limit:
                    cut = True
                    break
                if event.kind == "content":
                    deltas += 1
                payload += event.payload
            if deltas and reply.chunk_delay:
                time.sleep(reply.chunk_delay * deltas)
            sent += deltas
            if cut:
                if payload:  # announce the whole chunk, send part of it, hang up
                    self.wfile.write(b"%X\r\n%s" % (size, payload))
                self._abort()
                return
            data = b"%X\r\n%s\r\n" % (size, payload)
            last = index == len(frames) - 1
            if last and framing != "split":
                data += b"0\r\n\r\n"  # the end of the body travels with the last events
            self.wfile.write(data)  # one send per chunk
        if not frames or framing == "split":
            self.wfile.write(b"0\r\n\r\n")

    def _abort(self) -> None:
        """Cut the connection mid-response, so the client sees an incomplete body."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _frames(events: list[Event], framing: StreamFraming) -> list[list[Event]]:
    """Group a stream's events into HTTP chunks as ``framing`` says (see ``StreamFraming``)."""
    if framing == "single":
        return [events] if events else []
    frames: list[list[Event]] = []
    for event in events:
        after_text = event.kind == "post" and frames and frames[-1][-1].kind == "post"
        if framing == "coalesced" and after_text:
            frames[-1].append(event)
        else:
            frames.append([event])
    return frames
