"""What the httpkit tests talk to and talk with.

- ``demo_router()``: a tiny service with one route per behaviour under test.
- ``CountingServer``: an ``httpkit.Server`` that counts the connections it accepts and signals
  each one it closes, so tests assert on what the server side saw without sleeping;
  ``WriteRecordingServer`` keeps a copy of every write its connections make.
- ``RawConnection``: a client on a bare socket reading answers by hand (the header fields with
  ``tests.harness.read_fields``, independent of ``httpkit.wire``), for wire-level tests.

The scripted fake upstream on a bare socket, for client tests that need odd framing or
silence, is ``tests.harness.ScriptedUpstream`` (the ``start_upstream`` fixture).
"""
from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from http import HTTPStatus
from collections.abc import Callable
from typing import Any

from httpkit import HTTPError, Request, Response, Router, Server, json_response, optional, require
from httpkit.server import Handler
from tests.harness import ScriptedUpstream, read_fields

SECRET = "the database password is hunter2"  # what a crashing handler must never leak

StartServer = Callable[..., Server]  # the start_server fixture: (router=None, **options)
StartUpstream = Callable[..., ScriptedUpstream]  # the start_upstream fixture: (*answers)


# --- the demo service ----------------------------------------------------------------------

def hello(request: Request) -> Response:
    return json_response({"hello": "world"})


def search_tweets(request: Request) -> Response:
    return json_response({"route": "search", "q": request.query.get("q", "")})


def show_tweet(request: Request) -> Response:
    return json_response({"route": "tweet", "id": request.params["id"]})


def delete_tweet(request: Request) -> Response:
    return Response(HTTPStatus.NO_CONTENT)


def show_account(request: Request) -> Response:
    return json_response({"number": int(request.params["number"])})


def echo_json(request: Request) -> Response:
    return json_response({"received": request.json()})


def count_bytes(request: Request) -> Response:
    return json_response({"bytes": len(request.body)})


def typed_fields(request: Request) -> Response:
    data = request.json()
    return json_response({
        "count": require(data, "count", int),
        "note": optional(data, "note", str, "none"),
        "flag": optional(data, "flag", bool, False),
    })


def brew_coffee(request: Request) -> Response:
    raise HTTPError(HTTPStatus.IM_A_TEAPOT, "I only make tea", headers={"Retry-After": "120"})


def crash(request: Request) -> Response:
    raise RuntimeError(SECRET)


def not_modified(request: Request) -> Response:
    return Response(HTTPStatus.NOT_MODIFIED, b"a body that must never be sent")


def show_headers(request: Request) -> Response:
    return json_response({"headers": request.headers})


def answer_with_header(request: Request) -> Response:
    """Answer with ``X-Echo`` set to the ``value`` query parameter, whatever it holds."""
    return json_response({}, headers=[("X-Echo", request.query.get("value", ""))])


def demo_router() -> Router:
    router = Router()
    router.add("GET", "/hello", hello)
    router.add("GET", "/tweets/search", search_tweets)  # before /tweets/{id}: order matters
    router.add("GET", "/tweets/{id}", show_tweet)
    router.add("DELETE", "/tweets/{id}", delete_tweet)
    router.add("GET", "/accounts/{number:[0-9]+}", show_account)
    router.add("POST", "/echo", echo_json)
    router.add("POST", "/count", count_bytes)
    router.add("POST", "/typed", typed_fields)
    router.add("GET", "/teapot", brew_coffee)
    router.add("GET", "/boom", crash)
    router.add("GET", "/cached", not_modified)
    router.add("GET", "/headers", show_headers)
    router.add("GET", "/answer-header", answer_with_header)
    return router


class CountingServer(Server):
    """A Server that counts accepted connections and signals each connection it closes."""

    def __init__(self, address: tuple[str, int], router: Router, **options: Any) -> None:
        self.accepted = 0
        self.connections_closed = threading.Semaphore(0)
        super().__init__(address, router, **options)

    def get_request(self) -> tuple[socket.socket, Any]:
        request = super().get_request()
        self.accepted += 1
        return request

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        self.connections_closed.release()


class WriteRecordingHandler(Handler):
    server: WriteRecordingServer

    def write(self, data: bytes) -> None:
        self.server.writes.append(data)
        super().write(data)


class WriteRecordingServer(Server):
    """A Server that records every write its connections make, in order."""

    def __init__(self, address: tuple[str, int], router: Router, **options: Any) -> None:
        super().__init__(address, router, **options)
        self.writes: list[bytes] = []
        self.RequestHandlerClass = WriteRecordingHandler


def server_address(server: Server) -> tuple[str, int]:
    host, port = server.server_address[:2]
    return str(host), int(port)


# --- a client on a bare socket ---------------------------------------------------------------

@dataclass
class RawResponse:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names; a repeated field keeps its last value
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)

    def error_code(self) -> str:
        return str(self.json()["error"]["code"])


class RawConnection:
    """One client socket; ``read_response`` parses by Content-Length only, as the server must
    always send one (except for 1xx, 204 and 304, and for HEAD where the body is absent)."""

    def __init__(self, server: Server, timeout: float = 3.0, send_buffer: int = 0) -> None:
        self.sock = socket.socket()
        if send_buffer:  # a fixed, small buffer: the kernel cannot swallow a big body for us
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        self.sock.settimeout(timeout)
        self.sock.connect(server_address(server))
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_response(self, head_only: bool = False) -> RawResponse:
        status_line = self.file.readline().decode("latin-1")
        assert status_line, "the server closed the connection instead of answering"
        version, status, reason = status_line.rstrip("\r\n").split(" ", 2)
        assert version == "HTTP/1.1", status_line
        headers = read_fields(self.file)
        response = RawResponse(int(status), reason, headers)
        if not head_only and "content-length" in headers:
            response.body = self.file.read(int(headers["content-length"]))
        return response

    def closed_by_server(self) -> bool:
        """Wait (up to the socket timeout) for the server to close; False if it did not.

        Call it once every expected response has been read. It reads the socket itself, not
        ``self.file``, which a timeout would leave unusable.
        """
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def request_bytes(method: str, path: str, *header_lines: str, body: bytes = b"",
                  version: str = "HTTP/1.1") -> bytes:
    """Render a request by hand; a body gets a Content-Length unless a header line says how
    it is framed."""
    lines = [f"{method} {path} {version}", "Host: test", *header_lines]
    framed = any(line.lower().startswith(("content-length:", "transfer-encoding:"))
                 for line in header_lines)
    if body and not framed:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(*pieces: bytes) -> bytes:
    """Encode pieces as a chunked body, with a chunk extension and a trailer field."""
    body = b"".join(b"%x;note=ignored\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
    return body + b"0\r\nX-Trailer: ignored\r\n\r\n"
