"""HTTP/1.1 framing shared by the server and the client: header blocks and bodies.

The standard library parses headers with the ``email`` package on both sides (``http.server``
and ``http.client``), which costs more than everything else a proxy does per request
(``bench/stdlib_http.py`` measures it beside ``parse_head``; docs/REPORT.md §14). Here a
header block is a plain ``dict`` keyed by lower-case names (RFC 9110 §5.1: names are
case-insensitive), with repeated fields joined by commas (RFC 9110 §5.3). The limits are
``http.client``'s own (``_MAXLINE``, ``_MAXHEADERS``), which are private there.

Parsing is strict where RFC 9112 lets a recipient choose, so that no proxy in front of us can
read a message one way and we another (request smuggling): every line ends with CRLF, field
values hold no control characters, no obs-fold, one Host, one unambiguous body length. A whole
header block is checked by one compiled regex (``FIELD_LINES``), not character by character.
"""
from __future__ import annotations

import re
import socket
import struct
from http import HTTPStatus
from typing import Protocol

MAX_LINE = 65536
MAX_HEADERS = 100

Headers = dict[str, str]

# RFC 9110 §5.6.2: token = 1*tchar, the syntax of field names and methods.
TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
# RFC 9112 §5 and RFC 9110 §5.5: field-line = field-name ":" OWS field-value OWS, lines joined
# by CRLF. A value holds HTAB, SP, VCHAR and obs-text (0x80-0xFF) only: CR, LF, NUL and the
# other controls (0x00-0x1F, 0x7F) are refused, as are whitespace before the colon (§5.1) and a
# line starting with SP or HTAB (obs-fold, §5.2), since neither starts with a token.
FIELD = rf"{TOKEN}:[\t -~\x80-\xff]*"
FIELD_LINE = re.compile(FIELD)
FIELD_LINES = re.compile(rf"{FIELD}(?:\r\n{FIELD})*")
NAMED = re.compile(rf"{TOKEN}:.*", re.DOTALL)  # a name and a colon, whatever the value holds
OWS = " \t"  # RFC 9110 §5.6.3
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # every CTL but HTAB
# RFC 9112 §3: request-line = method SP request-target SP HTTP-version, with exactly one SP
# between them; §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT (case-sensitive).
REQUEST_LINE = re.compile(rf"({TOKEN}) ([^\x00-\x20\x7f]+) (HTTP/[0-9]\.[0-9])")
VERSIONS = frozenset({"HTTP/1.0", "HTTP/1.1"})
# RFC 9110 §7.2: Host = uri-host [ ":" port ], uri-host from RFC 3986 §3.2.2 (an IP literal in
# brackets, or a reg-name, which may be empty). No space fits, so two Host lines, which the
# parser joins with ", " (RFC 9110 §5.3), never match.
HOST = re.compile(r"(?:\[[0-9A-Za-z:.%_~-]+\]|[0-9A-Za-z._~!$&'()*+,;=%-]*)(?::[0-9]*)?")
CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
MAX_LENGTH_DIGITS = 18  # a longer Content-Length is past any limit (and past int64)


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
    """Read a header block up to its empty line (the trailer section of a chunked body)."""
    headers: Headers = {}
    for _ in range(MAX_HEADERS + 1):
        line = read_line(rfile)
        if line == b"\r\n":
            return headers
        if not line:
            raise ConnectionError("connection closed inside a header block")
        if not line.endswith(b"\r\n"):
            raise MessageError(HTTPStatus.BAD_REQUEST, "lines must end with CRLF")
        add_field(headers, line[:-2].decode("latin-1"))
    raise MessageError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "too many header fields")


def add_field(headers: Headers, line: str) -> None:
    """Add one ``Name: value`` line to a header dict, refusing a malformed one."""
    if not FIELD_LINE.fullmatch(line):
        raise MessageError(HTTPStatus.BAD_REQUEST, field_fault(line))
    store_field(headers, line)


def field_fault(block: str) -> str:
    """Say what is wrong with field lines that ``FIELD_LINES`` refused."""
    for line in block.split("\r\n"):
        if CONTROL.search(line):  # RFC 9110 §5.5; a lone CR or LF is one too (RFC 9112 §2.2)
            return "a header field holds a control character (CR, LF, NUL, ...)"
        if line[:1] in (" ", "\t"):  # RFC 9112 §5.2 asks for a word on why
            return "obsolete line folding (a line starting with a space) is not accepted"
        if not NAMED.fullmatch(line):
            break
    return "malformed header line"


def store_field(headers: Headers, line: str) -> None:
    """Add one field line already checked by ``FIELD_LINES``."""
    name, _, value = line.partition(":")  # a token holds no colon: this is the first
    key = name.lower()
    value = value.strip(OWS)  # not str.strip(), which would also eat obs-text 0x85 and 0xA0
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

        Every line must end with CRLF. RFC 9112 §2.2 lets a recipient take a bare LF as a line
        end too; we do not, since a proxy in front may take it as part of a field value.
        """
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if b"\n\n" in self.buffer or b"\n\r\n" in self.buffer:
                raise MessageError(HTTPStatus.BAD_REQUEST, "lines must end with CRLF")
            if len(self.buffer) > MAX_LINE + MAX_HEADERS * 256:
                if self.buffer.find(b"\n", 0, MAX_LINE) < 0:
                    raise MessageError(HTTPStatus.REQUEST_URI_TOO_LONG, "request line too long")
                raise MessageError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "head too large")
            if not self.fill():
                if self.buffer.strip():
                    raise ConnectionError("connection closed inside a header block")
                return None
        text = self.buffer[:end].decode("latin-1")
        del self.buffer[:end + 4]
        return parse_head(text)

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


def parse_head(text: str) -> tuple[str, Headers]:
    """Split a head (without its final empty line) into its start line and header fields."""
    start, _, block = text.partition("\r\n")
    if len(start) > MAX_LINE:
        raise MessageError(HTTPStatus.REQUEST_URI_TOO_LONG, "request line too long")
    if not block:
        return start, {}
    lines = block.split("\r\n")
    if len(lines) > MAX_HEADERS:
        raise MessageError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "too many header fields")
    if any(len(line) > MAX_LINE for line in lines):
        raise MessageError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "header line too long")
    if not FIELD_LINES.fullmatch(block):  # one C-speed pass over every field line
        raise MessageError(HTTPStatus.BAD_REQUEST, field_fault(block))
    headers: Headers = {}
    for line in lines:  # store_field, inlined: this loop runs for every field of every hop
        name, _, value = line.partition(":")
        key = name.lower()
        value = value.strip(OWS)
        if key in headers:
            value = headers[key] + ("; " if key == "cookie" else ", ") + value
        headers[key] = value
    return start, headers


def body_length(headers: Headers) -> int | None:
    """Return the declared Content-Length, None when absent; refuse a malformed one."""
    value = headers.get("content-length")
    if value is None:
        return None
    if "," in value:
        # Repeated fields (joined by the parser) or a list: RFC 9112 §6.3 (5) allows one
        # length repeated; differing values are an unrecoverable framing error.
        values = {item.strip(OWS) for item in value.split(",")}
        if len(values) != 1:
            raise MessageError(HTTPStatus.BAD_REQUEST, "conflicting Content-Length values")
        value = values.pop()
    if not (value.isascii() and value.isdigit()):
        raise MessageError(HTTPStatus.BAD_REQUEST, "malformed Content-Length")
    if len(value.lstrip("0")) > MAX_LENGTH_DIGITS:  # before int(): 4,301 digits would raise
        raise MessageError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
    return int(value)


def is_chunked(headers: Headers) -> bool:
    """Tell whether the body uses chunked transfer coding; refuse any other coding."""
    value = headers.get("transfer-encoding")
    if value is None:
        return False
    codings = [coding.strip(OWS).lower() for coding in value.split(",")]
    if codings[-1] != "chunked":
        # RFC 9112 §6.3 (4): without chunked last, a request's length cannot be determined.
        raise MessageError(HTTPStatus.BAD_REQUEST, "Transfer-Encoding must end with chunked")
    if len(codings) > 1:
        if "chunked" in codings[:-1]:  # §7.1: chunked is never applied twice
            raise MessageError(HTTPStatus.BAD_REQUEST, "chunked applied more than once")
        # §6.1: a transfer coding we do not implement (gzip, ...) is a 501.
        raise MessageError(HTTPStatus.NOT_IMPLEMENTED, "unsupported Transfer-Encoding")
    return True


def request_line(line: str) -> tuple[str, str, str]:
    """Split a request line into method, target and version; 400 if malformed, 505 if
    well formed but neither HTTP/1.1 nor HTTP/1.0 (RFC 9112 §2.3, §3; RFC 9110 §15.6.6)."""
    match = REQUEST_LINE.fullmatch(line)
    if match is None:
        raise MessageError(HTTPStatus.BAD_REQUEST, "malformed request line")
    method, target, version = match.groups()
    if version not in VERSIONS:
        raise MessageError(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED,
                           f"{version} is not supported: speak HTTP/1.1 or HTTP/1.0")
    return method, target, version


def check_request_head(version: str, headers: Headers) -> None:
    """Refuse a request head that RFC 9112 says a server must not act on."""
    host = headers.get("host")
    if host is None:
        if version == "HTTP/1.1":  # §3.2: HTTP/1.0 may go without
            raise MessageError(HTTPStatus.BAD_REQUEST, "an HTTP/1.1 request needs a Host header")
    elif not HOST.fullmatch(host):  # §3.2: also more than one Host (see HOST)
        raise MessageError(HTTPStatus.BAD_REQUEST, "exactly one valid Host header is required")
    if "transfer-encoding" in headers:
        # §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing. A request with
        # both Transfer-Encoding and Content-Length MAY be rejected or read as chunked; either
        # way the connection MUST close. We reject it: no client of ours sends both, so it can
        # only be a smuggling attempt, and a proxy in front may have framed it by the
        # Content-Length; acting on our reading of it would be acting on a request it never
        # meant to pass on. (Every MessageError closes the connection.)
        if version == "HTTP/1.0":
            raise MessageError(HTTPStatus.BAD_REQUEST, "Transfer-Encoding in an HTTP/1.0 request")
        if "content-length" in headers:
            raise MessageError(HTTPStatus.BAD_REQUEST,
                               "both Transfer-Encoding and Content-Length: the framing is "
                               "ambiguous")


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
        line = read_line(rfile)
        size_field, _, extension = line.removesuffix(b"\r\n").partition(b";")
        size_field = size_field.rstrip(b" \t")  # BWS before a chunk extension
        if (not line.endswith(b"\r\n") or not size_field
                or size_field.strip(b"0123456789abcdefABCDEF") or CONTROL_BYTES.search(extension)):
            raise MessageError(HTTPStatus.BAD_REQUEST, "malformed chunk size")
        size = int(size_field, 16)
        if size == 0:
            read_headers(rfile)  # trailer fields, discarded
            return b"".join(parts)
        total += size
        if total > limit:
            raise MessageError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
        parts.append(read_exact(rfile, size))
        if read_exact(rfile, 2) != b"\r\n":  # §7.1: the data is followed by CRLF, nothing else
            raise MessageError(HTTPStatus.BAD_REQUEST, "chunk data longer than its size")


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
    if CONTROL.search("".join(lines)):  # a value must never start a header (or a request)
        raise ValueError("a header field or the start line holds a control character")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


def end_to_end(headers: Headers) -> Headers:
    """Return the headers without the hop-by-hop ones, including those named by Connection."""
    named = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    return {k: v for k, v in headers.items() if k not in HOP_BY_HOP and k not in named}
