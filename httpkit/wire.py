"""HTTP/1.1 framing shared by the server and the client: header blocks and bodies.

The standard library parses headers with the ``email`` package on both sides (``http.server``
and ``http.client``), which costs more than everything else a proxy does per request. Here a
header block is a plain ``dict`` keyed by lower-case names (RFC 9110 §5.1: names are
case-insensitive), with repeated fields joined by commas (RFC 9110 §5.3).
"""
from __future__ import annotations

import socket
import struct
from http import HTTPStatus
from typing import Protocol

MAX_LINE = 65536
MAX_HEADERS = 100

Headers = dict[str, str]


class Reader(Protocol):
    """A buffered binary stream: a socket's ``makefile("rb")``."""

    def readline(self, size: int, /) -> bytes: ...

    def read(self, size: int, /) -> bytes: ...


# RFC 9110 §7.6.1: these describe one connection and are never forwarded.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade",
})


class MessageError(Exception):
    """A malformed or oversized message; ``status`` is what a server should answer."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def read_line(rfile: Reader) -> bytes:
    """Read one CRLF-terminated line, refusing lines longer than MAX_LINE."""
    line = rfile.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise MessageError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "line too long")
    return line


def read_headers(rfile: Reader) -> Headers:
    """Read a header block up to its empty line."""
    headers: Headers = {}
    for _ in range(MAX_HEADERS + 1):
        line = read_line(rfile)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise ConnectionError("connection closed inside a header block")
        add_field(headers, line.decode("latin-1").rstrip("\r\n"))
    raise MessageError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "too many header fields")


def add_field(headers: Headers, line: str) -> None:
    """Add one ``Name: value`` line to a header dict."""
    name, sep, value = line.partition(":")
    # RFC 9112 §5.1-5.2: no space before the colon, no obsolete line folding.
    if not sep or not name or name != name.strip():
        raise MessageError(HTTPStatus.BAD_REQUEST, "malformed header line")
    key = name.lower()
    value = value.strip()
    if key in headers:
        joiner = "; " if key == "cookie" else ", "
        headers[key] = headers[key] + joiner + value
    else:
        headers[key] = value


def set_timeouts(sock: socket.socket, seconds: float) -> None:
    """Make ``sock`` blocking, with kernel-enforced receive and send timeouts.

    ``socket.settimeout`` makes CPython poll() before every recv and send: two system calls
    per operation. SO_RCVTIMEO/SO_SNDTIMEO give the same protection in one; a timed-out call
    raises BlockingIOError (EAGAIN) instead of TimeoutError.
    """
    sock.settimeout(None)
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


class SocketReader:
    """A receive buffer over a socket that reads a whole header block in one go.

    ``socket.makefile`` reads through Python-level ``SocketIO`` calls and one ``readline`` per
    header; a response from our own services usually arrives in one ``recv`` and is split
    here at once. Also offers ``readline``/``read`` for chunked and other bodies.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def fill(self) -> bool:
        """Receive more bytes; False at end of stream."""
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def head(self) -> tuple[str, Headers] | None:
        """Return the start line and headers of the next message; None if the peer is gone.

        Lines end with CRLF; a bare LF is accepted too (RFC 9112 §2.2).
        """
        while True:
            end, gap = self.buffer.find(b"\r\n\r\n"), 4
            if end < 0:
                end, gap = self.buffer.find(b"\n\n"), 2
            if end >= 0:
                break
            if len(self.buffer) > MAX_LINE + MAX_HEADERS * 256:
                if self.buffer.find(b"\n", 0, MAX_LINE) < 0:
                    raise MessageError(HTTPStatus.REQUEST_URI_TOO_LONG, "request line too long")
                raise MessageError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "head too large")
            if not self.fill():
                if self.buffer.strip():
                    raise ConnectionError("connection closed inside a header block")
                return None
        text = self.buffer[:end].decode("latin-1")
        del self.buffer[:end + gap]
        lines = text.split("\r\n") if gap == 4 else [ln.rstrip("\r") for ln in text.split("\n")]
        if len(lines) > MAX_HEADERS + 1:
            raise MessageError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "too many header fields")
        if len(lines[0]) > MAX_LINE:
            raise MessageError(HTTPStatus.REQUEST_URI_TOO_LONG, "request line too long")
        if any(len(line) > MAX_LINE for line in lines):
            raise MessageError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "header line too long")
        headers: Headers = {}
        for line in lines[1:]:
            add_field(headers, line)
        return lines[0], headers

    def skip_empty_lines(self) -> None:
        """Drop empty lines before a message (RFC 9112 §2.2 asks servers to ignore one)."""
        while self.buffer[:1] in (b"\r", b"\n") and self.buffer:
            del self.buffer[:1]

    def readline(self, size: int, /) -> bytes:
        while (end := self.buffer.find(b"\n", 0, size)) < 0 and len(self.buffer) < size:
            if not self.fill():
                break
        cut = end + 1 if end >= 0 else min(size, len(self.buffer))
        line = bytes(self.buffer[:cut])
        del self.buffer[:cut]
        return line

    def read(self, size: int, /) -> bytes:
        while len(self.buffer) < size and self.fill():
            pass
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data


def body_length(headers: Headers) -> int | None:
    """Return the declared Content-Length, None when absent; refuse a malformed one."""
    value = headers.get("content-length")
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()):
        raise MessageError(HTTPStatus.BAD_REQUEST, "malformed Content-Length")
    return int(value)


def is_chunked(headers: Headers) -> bool:
    """Tell whether the body uses chunked transfer coding; refuse any other coding."""
    coding = headers.get("transfer-encoding")
    if coding is None:
        return False
    if coding.strip().lower() != "chunked":
        raise MessageError(HTTPStatus.NOT_IMPLEMENTED, "unsupported Transfer-Encoding")
    return True


def read_exact(rfile: Reader, size: int) -> bytes:
    """Read exactly ``size`` bytes or raise ConnectionError."""
    data = rfile.read(size)
    if len(data) != size:
        raise ConnectionError("connection closed inside a body")
    return data


def read_chunked(rfile: Reader, limit: int) -> bytes:
    """Read a chunked body (RFC 9112 §7.1), refusing more than ``limit`` bytes."""
    parts: list[bytes] = []
    total = 0
    while True:
        size_field = read_line(rfile).split(b";", 1)[0].strip()
        if not size_field or size_field.strip(b"0123456789abcdefABCDEF"):
            raise MessageError(HTTPStatus.BAD_REQUEST, "malformed chunk size")
        size = int(size_field, 16)
        if size == 0:
            read_headers(rfile)  # trailer fields, discarded
            return b"".join(parts)
        total += size
        if total > limit:
            raise MessageError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
        parts.append(read_exact(rfile, size))
        read_line(rfile)


def read_body(rfile: Reader, headers: Headers, limit: int) -> bytes:
    """Read a request-style body: chunked, Content-Length, or none at all."""
    if is_chunked(headers):
        return read_chunked(rfile, limit)
    length = body_length(headers)
    if not length:
        return b""
    if length > limit:
        raise MessageError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
    return read_exact(rfile, length)


def render_head(start_line: str, headers: Headers | list[tuple[str, str]]) -> bytes:
    """Render a start line and header fields, ending with the empty line."""
    items = headers.items() if isinstance(headers, dict) else headers
    lines = [start_line]
    lines.extend(f"{name}: {value}" for name, value in items)
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


def end_to_end(headers: Headers) -> Headers:
    """Return the headers without the hop-by-hop ones, including those named by Connection."""
    named = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    return {k: v for k, v in headers.items() if k not in HOP_BY_HOP and k not in named}
