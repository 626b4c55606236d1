"""The HTTP server every service runs: a threading TCP server with a lean HTTP/1.1 handler.

Hand-written rather than ``BaseHTTPRequestHandler``'s cycle because it measurably pays on
every hop (``bench/stdlib_http.py``, docs/REPORT.md §14): the stock cycle parses headers with
the ``email`` package, and even set up for one write per answer (``wbufsize = -1``,
``disable_nagle_algorithm``) it serves about half the requests a second. Each answer here goes
out in one ``sendall`` with TCP_NODELAY (RFC 9112 framing from ``httpkit.wire``); running the
server as a process (signals, pre-forked workers, the launcher's lifeline) is
``httpkit.process``.
"""
from __future__ import annotations

import logging
import socket
import socketserver
import threading
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Callable
from urllib.parse import unquote

from httpkit import wire
from httpkit.errors import HTTPError, storage_full
from httpkit.messages import MAX_BODY, Request, Response, error_body, json_response
from httpkit.routing import Router

log = logging.getLogger(__name__)

BODYLESS_STATUSES = frozenset({HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED})
DRAIN_S = 10.0  # how long a stopping server waits for the requests under way


class Handler(socketserver.BaseRequestHandler):
    """Read requests off one connection and answer each through ``server.respond``."""

    server: Server
    request: socket.socket
    unread = 0  # a declared body length not read yet
    announce_keep_alive = False
    close_connection = True
    requestline = ""

    def setup(self) -> None:
        self.connection = self.request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        wire.set_timeouts(self.connection, self.server.idle_timeout)  # frees idle clients
        self.reader = wire.SocketReader(self.connection)

    def handle(self) -> None:
        """Answer requests on this connection until one of them ends it (RFC 9112 §9.3)."""
        self.handle_one_request()
        while not self.close_connection:
            self.handle_one_request()

    def handle_one_request(self) -> None:
        self.close_connection = True
        self.requestline = ""
        try:
            if not self.reader.buffer and not self.reader.fill():  # waits up to idle_timeout
                return
            self.reader.skip_empty_lines()
            self.server.deadlines[self] = time.monotonic() + self.server.request_timeout
            request = self.read_request()
        except wire.MessageError as err:
            self.drain_refused_body()
            method, _, rest = self.requestline.partition(" ")
            self.server.refused(method, rest.partition(" ")[0].partition("?")[0])
            self.send(self.server.error_response(HTTPError(err.status, err.message)), False)
            return
        except (OSError, ConnectionError):  # timeout, reset, or closed between requests
            return
        finally:
            self.server.deadlines.pop(self, None)
        if request is None:
            return
        if not self.server.begin():  # stopping, its resources closing: no answer but a close
            self.close_connection = True
            return
        try:
            response = self.server.respond(request)
            if self.server.draining:
                self.close_connection = True  # this one is answered, no more on this connection
            self.send(response, request.method == "HEAD")
        finally:
            self.server.end()

    def read_request(self) -> Request | None:
        """Parse one request off the connection; None when the client has gone."""
        head = self.reader.head()
        if head is None:
            return None
        self.requestline, headers = head
        method, target, version = wire.request_line(self.requestline)
        wire.check_request_head(version, headers)
        connection = headers.get("connection", "").lower()
        self.announce_keep_alive = version == "HTTP/1.0" and "keep-alive" in connection
        if version == "HTTP/1.0":
            keep_alive = self.announce_keep_alive
        else:
            keep_alive = "close" not in connection
        if headers.get("expect", "").lower() == "100-continue":
            self.continue_if_small(headers)
        else:
            self.unread = wire.body_length(headers) or 0
        body = wire.read_body(self.reader, headers, MAX_BODY)
        self.unread = 0
        self.close_connection = not keep_alive
        path, _, query = target.partition("?")
        return Request(method, target, unquote(path), query, headers, body, self.client_address[0])

    def drain_refused_body(self) -> None:
        """Read and drop a refused body of modest size, so the client can read our answer.

        Closing a socket with unread data makes the kernel send a reset, and the client may
        then never see the 413 that explains why.
        """
        if 0 < self.unread <= 16 * MAX_BODY:
            try:
                self.reader.read(self.unread)
            except OSError:
                pass
        self.unread = 0

    def continue_if_small(self, headers: wire.Headers) -> None:
        """Answer ``Expect: 100-continue`` (curl sends it for bodies over 1 KiB)."""
        length = wire.body_length(headers)
        if length is not None and length > MAX_BODY:
            raise wire.MessageError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
        self.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def write(self, data: bytes) -> None:
        """Send bytes to the client (one call, so one TCP segment train)."""
        self.connection.sendall(data)

    def send(self, response: Response, head_only: bool) -> None:
        """Write the whole response in one call."""
        headers = response.headers
        lines = [f"HTTP/1.1 {response.status} {phrase(response.status)}",
                 f"Date: {self.server.http_date()}"]
        lines.extend(f"{name}: {value}" for name, value in headers)
        if has_control_characters(lines):  # a header value must not start a header of its own
            log.error("%s: a header of the answer to %r holds a line break", self.server.name,
                      self.requestline)
            oops = HTTPError(HTTPStatus.INTERNAL_SERVER_ERROR, "something went wrong on our side")
            return self.send(self.server.error_response(oops), head_only)
        if response.status not in BODYLESS_STATUSES:
            length = len(response.body) if response.length is None else response.length
            lines.append(f"Content-Length: {length}")
        if self.close_connection:
            lines.append("Connection: close")
        elif self.announce_keep_alive:  # an HTTP/1.0 client (ab -k) needs to be told
            lines.append("Connection: keep-alive")
        lines.append("\r\n")
        head = "\r\n".join(lines).encode("latin-1", "replace")
        body = b"" if head_only or response.status in BODYLESS_STATUSES else response.body
        try:
            self.write(head + body)
        except OSError:
            self.close_connection = True
        if self.server.log_requests:
            log.info('%s "%s" %d %d', self.client_address[0], self.requestline,
                     response.status, len(body))


def has_control_characters(lines: list[str]) -> bool:
    """Tell whether any of these header lines holds a CR, LF, NUL or other control character
    (RFC 9110 §5.5), which could end a header early or be read differently downstream."""
    return wire.CONTROL.search("".join(lines)) is not None


def phrase(status: int) -> str:
    """Return the reason phrase of a status code."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class Server(socketserver.ThreadingTCPServer):
    """A threaded HTTP/1.1 server that routes requests through a ``Router``."""

    daemon_threads = True
    allow_reuse_address = True  # a restarted service binds its port at once (as HTTPServer)
    request_queue_size = 128  # listen backlog: bursts of new connections are not refused

    def __init__(self, address: tuple[str, int], router: Router, *, name: str = "service",
                 log_requests: bool = False, idle_timeout: float = 30.0,
                 request_timeout: float = 10.0) -> None:
        self.router = router
        self.name = name
        self.log_requests = log_requests
        self.idle_timeout = idle_timeout
        # A request must arrive whole within request_timeout of its first byte; the socket
        # timeout alone would let a client that sends a byte at a time hold a thread forever.
        self.request_timeout = request_timeout
        self.deadlines: dict[Handler, float] = {}
        self.on_start: list[Callable[[], None]] = []  # background work, begun when serving
        self.on_stop: list[Callable[[], None]] = []  # when stopping begins (end long polls)
        self.on_close: list[Callable[[], None]] = []  # once the requests under way are done
        self.worker = 0  # which of ``serve``'s pre-forked workers this process is (0: first)
        # Draining on stop: requests under way are finished before the close hooks run.
        self.draining = False
        self.closing = False
        self.in_flight = 0
        self._quiet = threading.Condition()
        self._date = (0, "")
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        super().server_bind()
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    @property
    def url(self) -> str:
        """Return the base URL the server listens on."""
        return f"http://{self.server_name}:{self.server_port}"

    def http_date(self) -> str:
        """Return the Date header value, formatted at most once a second."""
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, formatdate(now, usegmt=True))
        return self._date[1]

    def respond(self, request: Request) -> Response:
        """Route one request and turn every failure into an error response."""
        try:
            handler, request.params = self.router.match(request.method, request.path)
            return handler(request)
        except HTTPError as err:
            return self.error_response(err, request)
        except Exception as exc:
            full = storage_full(exc)
            if full is not None:
                log.warning("%s: disk full on %s %s", self.name, request.method, request.path)
                return self.error_response(full, request)
            log.exception("%s: unexpected error on %s %s", self.name, request.method,
                          request.path)
            return self.error_response(HTTPError(HTTPStatus.INTERNAL_SERVER_ERROR,
                                                 "something went wrong on our side"), request)

    def refused(self, method: str, path: str) -> None:
        """Note a request refused before it could be routed (413, malformed headers, ...)."""

    def error_response(self, err: HTTPError, request: Request | None = None) -> Response:
        """Render an error as the JSON body of DESIGN.md (services may override; ``request``
        is the request that failed, when it got as far as being routed)."""
        return json_response(error_body(err.code, err.message), err.status,
                             list(err.headers.items()))

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanished mid-write is routine, not worth a traceback on stderr.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        for hook in self.on_start:
            hook()
        self.on_start = []
        stopped = threading.Event()
        threading.Thread(target=self.cut_off_slow_clients, args=(stopped,),
                         name=f"{self.name}-deadlines", daemon=True).start()
        try:
            super().serve_forever(poll_interval)
        finally:
            stopped.set()

    def cut_off_slow_clients(self, stopped: threading.Event) -> None:
        """Close the connections whose request is overdue (slowloris)."""
        while not stopped.wait(min(1.0, self.request_timeout / 4)):
            now = time.monotonic()
            for handler, deadline in list(self.deadlines.items()):
                if now > deadline:
                    log.info("%s: closing a client too slow to send its request", self.name)
                    self.deadlines.pop(handler, None)
                    try:
                        handler.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

    def begin(self) -> bool:
        """Count a request as under way; False once the close hooks may be running."""
        with self._quiet:
            if self.closing:
                return False
            self.in_flight += 1
            return True

    def end(self) -> None:
        """Count a request as answered."""
        with self._quiet:
            self.in_flight -= 1
            self._quiet.notify_all()

    def drain(self, timeout: float = DRAIN_S) -> None:
        """Wait, at most ``timeout`` s, until no request is under way (new ones may still come
        on kept-alive connections: each is answered, with Connection: close)."""
        self.draining = True
        hooks, self.on_stop = self.on_stop, []
        for hook in hooks:
            hook()
        deadline = time.monotonic() + timeout
        with self._quiet:
            while self.in_flight and time.monotonic() < deadline:
                self._quiet.wait(deadline - time.monotonic())
            if self.in_flight:
                log.warning("%s: %d requests still under way after %g s; stopping anyway",
                            self.name, self.in_flight, timeout)
            self.closing = True

    def server_close(self) -> None:
        self.drain()
        hooks, self.on_close = self.on_close, []
        for hook in hooks:
            hook()
        super().server_close()
