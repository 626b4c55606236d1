"""A pooled keep-alive HTTP/1.1 client for calls between services.

Why not a pool of ``http.client`` connections: it parses every response's headers with the
``email`` package, and on a hop between services that is much of the cost of a request
(``bench/stdlib_http.py`` measures the two side by side; docs/REPORT.md §14). This client
speaks the same HTTP/1.1 over a socket, reusing ``httpkit.wire`` for framing, and keeps a
small LIFO pool of idle connections per upstream.

Failures are raised as ``UpstreamError`` (502: refused, reset, connect timeout) or
``UpstreamTimeout`` (504: no answer in time), each telling whether the request was sent.
"""
from __future__ import annotations

import json
import select
import socket
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from httpkit import wire
from httpkit.breaker import Breaker, FailFast, Refused

MAX_RESPONSE = 64 * 1024 * 1024
IDLE_REUSE_S = 10.0  # drop pooled connections idle this long; servers time idle ones out
NO_BODY = frozenset({HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED})
# RFC 9110 §9.2.2: these may be sent again without changing the outcome.
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
SAFE = frozenset({"GET", "HEAD"})  # RFC 9110 §9.2.1: they ask for no change


class UpstreamError(Exception):
    """The upstream could not be reached or broke off; ``sent`` tells if it got the request."""

    status = HTTPStatus.BAD_GATEWAY
    code = "upstream_unavailable"

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class _StaleConnection(Exception):
    """A kept connection turned out to be closed by the upstream."""

    def __init__(self, sent: bool) -> None:
        super().__init__("kept connection closed")
        self.sent = sent


class UpstreamTimeout(UpstreamError):
    """The upstream did not take the connection or answer the request in time."""

    status = HTTPStatus.GATEWAY_TIMEOUT
    code = "upstream_timeout"


class GaveUp(UpstreamTimeout):
    """A read given up on while the upstream looked hung: nothing was asked of it that it
    could act on (a GET or HEAD), so the answer is "unavailable", worth a retry soon."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "upstream_unavailable"


class UpstreamUnavailable(UpstreamError):
    """Not sent: the upstream looks hung, or too many requests already wait for it."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    code = "upstream_unavailable"


@dataclass(slots=True)
class UpstreamResponse:
    status: int
    reason: str
    headers: wire.Headers
    body: bytes

    def json(self) -> Any:
        """Decode the body as JSON."""
        return json.loads(self.body)


class Connection:
    """One kept-alive socket to an upstream."""

    def __init__(self, host: str, port: int, connect_timeout: float, read_timeout: float) -> None:
        try:
            self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        except TimeoutError:
            raise UpstreamTimeout(f"timed out connecting to {host}:{port}", sent=False) from None
        except OSError as err:
            raise UpstreamError(f"cannot connect to {host}:{port}: {err.strerror or err}",
                                sent=False) from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        wire.set_timeouts(self.sock, read_timeout)
        self.reader = wire.SocketReader(self.sock)
        self.last_used = time.monotonic()
        self.reusable = True
        self.sent = False  # whether the current request was written out
        self.aborted = False  # given up on by a breaker while waiting for an answer
        self._busy = False
        self._state = threading.Lock()  # orders an abort against the end of an exchange

    def alive(self) -> bool:
        """Tell, without blocking, whether the upstream has not closed this idle connection."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        # An idle connection is readable only once closed (or broken); stray bytes in our
        # buffer would mean we lost track of the stream.
        return not readable and not self.reader.buffer

    def close(self) -> None:
        self.reusable = False
        self.sock.close()

    def abort(self) -> None:
        """Give up on the exchange under way, if any: its reads fail at once."""
        with self._state:
            if self._busy:
                self.aborted, self.reusable = True, False
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def exchange(self, method: str, data: bytes) -> UpstreamResponse:
        """Send one request and read its response."""
        with self._state:
            self._busy = True
        try:
            return self._exchange(method, data)
        finally:
            with self._state:
                self._busy = False

    def _exchange(self, method: str, data: bytes) -> UpstreamResponse:
        self.sent = False
        self.sock.sendall(data)
        self.sent = True
        while True:
            head = self.reader.head()
            if head is None:
                raise ConnectionError("closed before answering")
            line, headers = head
            version, _, rest = line.partition(" ")
            code, _, reason = rest.partition(" ")
            if not version.startswith("HTTP/1.") or not (code.isascii() and code.isdigit()):
                raise ConnectionError("malformed status line")
            if not 100 <= int(code) < 200:
                break  # else an interim 1xx answer: skip it
        status = int(code)
        body = self.read_body(method, status, headers)
        connection = headers.get("connection", "").lower()
        if "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection):
            self.reusable = False
        self.last_used = time.monotonic()
        return UpstreamResponse(status, reason, headers, body)

    def read_body(self, method: str, status: int, headers: wire.Headers) -> bytes:
        if method == "HEAD" or status in NO_BODY:
            return b""
        if wire.is_chunked(headers):
            return wire.read_chunked(self.reader, MAX_RESPONSE)
        length = wire.body_length(headers)
        if length is None:  # delimited by close (RFC 9112 §6.3)
            self.reusable = False
            return self.reader.read(MAX_RESPONSE)
        return wire.read_exact(self.reader, length)


def resolve(host: str, port: int) -> list[str]:
    """Return every address ``host`` resolves to, as ``ip:port`` (a scaled service's
    replicas: a compose service name resolves to each container)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    ips = {str(info[4][0]) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)}
    return sorted(f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}" for ip in ips)


class Upstream:
    """Send requests to one base URL over pooled keep-alive connections."""

    def __init__(self, url: str, *, connect_timeout: float = 2.0, read_timeout: float = 10.0,
                 max_idle: int = 64, fail_fast: FailFast | None = None) -> None:
        parts = urlsplit(url if "//" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not an http:// URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.authority = f"{self.host}:{self.port}"
        self.url = f"http://{self.authority}{self.prefix}"
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_idle = max_idle
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        # None for a caller that waits on purpose (a long poll) or has its own short timeout.
        self.breaker = Breaker(fail_fast) if fail_fast else None

    def request(self, method: str, target: str, body: bytes = b"",
                headers: wire.Headers | None = None) -> UpstreamResponse:
        """Send one request; retry once on a fresh connection if a kept one was closed."""
        data = self.render(method, target, body, headers or {})
        if self.breaker is None:
            return self._send(method, data)
        try:
            ticket = self.breaker.admit()
        except Refused as refused:
            raise UpstreamUnavailable(f"{self.authority} {refused.reason}; not waiting for it",
                                      sent=False) from None
        try:
            response = self._send(method, data, ticket)
        except UpstreamTimeout:
            self.breaker.timed_out(ticket)
            raise
        except BaseException:
            self.breaker.failed(ticket)
            raise
        self.breaker.answered(ticket)
        return response

    def _send(self, method: str, data: bytes, ticket: int | None = None) -> UpstreamResponse:
        conn = self._checkout()
        if conn is not None:
            try:
                return self._exchange(conn, method, data, kept=True, ticket=ticket)
            except _StaleConnection as stale:
                # Closed under us: resend once, unless the upstream may have acted on it.
                if stale.sent and method not in IDEMPOTENT:
                    raise UpstreamError(f"{self.authority} closed the connection without "
                                        "answering", sent=True) from None
        conn = Connection(self.host, self.port, self.connect_timeout, self.read_timeout)
        return self._exchange(conn, method, data, kept=False, ticket=ticket)

    def fetch(self, method: str, target: str, payload: Any = None,
              headers: wire.Headers | None = None) -> UpstreamResponse:
        """Send a JSON request (``payload`` None sends no body)."""
        body = b""
        all_headers = dict(headers or {})
        if payload is not None:
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
            all_headers["content-type"] = "application/json"
        return self.request(method, target, body, all_headers)

    def render(self, method: str, target: str, body: bytes, headers: wire.Headers) -> bytes:
        """Render the request head and body as one buffer."""
        fields = {"host": self.authority, **headers}
        if body or method in ("POST", "PUT", "PATCH"):
            fields["content-length"] = str(len(body))
        return wire.render_head(f"{method} {self.prefix}{target} HTTP/1.1", fields) + body

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _exchange(self, conn: Connection, method: str, data: bytes, kept: bool,
                  ticket: int | None = None) -> UpstreamResponse:
        if self.breaker is not None and ticket is not None:
            self.breaker.watch(ticket, conn.abort)
        try:
            response = conn.exchange(method, data)
        except (TimeoutError, BlockingIOError):  # BlockingIOError: SO_RCVTIMEO ran out
            conn.close()
            raise UpstreamTimeout(f"{self.authority} did not answer in time", sent=True) from None
        except (OSError, wire.MessageError) as err:
            conn.close()
            if conn.aborted:
                gave_up = GaveUp if method in SAFE else UpstreamTimeout
                raise gave_up(f"{self.authority} stopped answering; gave up waiting",
                              sent=conn.sent) from None
            if kept and isinstance(err, ConnectionError):
                raise _StaleConnection(conn.sent) from None
            raise UpstreamError(f"{self.authority} broke off: {err}", sent=True) from None
        self._checkin(conn)
        return response

    def _checkout(self) -> Connection | None:
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()
            if now - conn.last_used < IDLE_REUSE_S and conn.alive():
                return conn
            conn.close()

    def _checkin(self, conn: Connection) -> None:
        if conn.reusable:
            with self._lock:
                if len(self._idle) < self.max_idle:
                    self._idle.append(conn)
                    return
        conn.close()
