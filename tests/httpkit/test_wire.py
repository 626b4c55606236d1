"""Wire-level tests: the demo service spoken to over a bare socket, byte by byte, and the
framing functions of httpkit.wire on in-memory streams."""
from __future__ import annotations

import io
import socket
import time
from collections.abc import Iterator
from http import HTTPStatus

import pytest

from httpkit import Server, wire
from tests.httpkit.helpers import (RawConnection, StartServer, WriteRecordingServer, chunked,
                                   request_bytes, server_address)


@pytest.fixture
def client(server: Server) -> Iterator[RawConnection]:
    connection = RawConnection(server)
    yield connection
    connection.close()


def get(path: str, *header_lines: str) -> bytes:
    return request_bytes("GET", path, *header_lines)


# --- framing of responses --------------------------------------------------------------------

@pytest.mark.parametrize("method,path,status", [
    ("GET", "/hello", HTTPStatus.OK),
    ("GET", "/nowhere", HTTPStatus.NOT_FOUND),
    ("PUT", "/hello", HTTPStatus.METHOD_NOT_ALLOWED),
    ("GET", "/teapot", HTTPStatus.IM_A_TEAPOT),
    ("GET", "/boom", HTTPStatus.INTERNAL_SERVER_ERROR),
    ("POST", "/echo", HTTPStatus.BAD_REQUEST),
])
def test_every_response_has_a_content_length_matching_its_body(
        client: RawConnection, method: str, path: str, status: int) -> None:
    client.send(request_bytes(method, path))
    response = client.read_response()
    assert response.status == status
    assert response.headers["content-length"] == str(len(response.body))
    assert response.body and "connection" not in response.headers
    client.send(get("/hello"))  # the body ended exactly where Content-Length said
    assert client.read_response().json() == {"hello": "world"}


@pytest.mark.parametrize("method,path,status", [("DELETE", "/tweets/7", HTTPStatus.NO_CONTENT),
                                                ("GET", "/cached", HTTPStatus.NOT_MODIFIED)])
def test_204_and_304_have_neither_content_length_nor_body(
        client: RawConnection, method: str, path: str, status: int) -> None:
    client.send(request_bytes(method, path) + get("/hello"))
    response = client.read_response()
    assert response.status == status
    assert "content-length" not in response.headers and "transfer-encoding" not in response.headers
    assert client.read_response().json() == {"hello": "world"}  # no stray body came before it


def test_head_has_the_get_content_length_but_no_body(client: RawConnection) -> None:
    client.send(request_bytes("HEAD", "/hello") + get("/hello"))
    head = client.read_response(head_only=True)
    assert head.status == HTTPStatus.OK
    assert head.headers["content-length"] == str(len(b'{"hello":"world"}'))
    following = client.read_response()  # would start with the HEAD body if one were sent
    assert (following.status, following.body) == (HTTPStatus.OK, b'{"hello":"world"}')


def test_a_response_arrives_in_one_send(server: Server) -> None:
    with socket.create_connection(server_address(server), timeout=3) as sock:
        sock.sendall(get("/hello"))
        data = sock.recv(65536)  # one recv: a head sent apart from its body would come alone
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.endswith(b'\r\n\r\n{"hello":"world"}')


def test_every_response_leaves_in_one_write(start_server: StartServer) -> None:
    server = start_server(server_class=WriteRecordingServer)
    assert isinstance(server, WriteRecordingServer)
    client = RawConnection(server)
    client.send(get("/hello") + request_bytes("HEAD", "/hello") + get("/nowhere")
                + request_bytes("DELETE", "/tweets/7") + get("/boom")
                + request_bytes("POST", "/count", body=b"x" * 50_000) + get("/", "Bad line"))
    statuses = [client.read_response(head_only=n == 1).status for n in range(7)]
    client.close()
    assert statuses == [200, 200, 404, 204, 500, 200, 400]
    assert [write[:12] for write in server.writes] == [b"HTTP/1.1 %d" % s for s in statuses]
    assert server.writes[0].endswith(b'\r\n\r\n{"hello":"world"}')


# --- connection management -------------------------------------------------------------------

def test_http_1_1_keeps_the_connection_alive_by_default(client: RawConnection) -> None:
    client.send(get("/hello"))
    first = client.read_response()
    assert "connection" not in first.headers
    client.send(get("/tweets/2"))
    assert client.read_response().json() == {"route": "tweet", "id": "2"}


def test_connection_close_is_honoured(client: RawConnection) -> None:
    client.send(get("/hello", "Connection: close"))
    response = client.read_response()
    assert response.status == HTTPStatus.OK
    assert response.headers["connection"] == "close"
    assert client.closed_by_server()


def test_http_1_0_closes_unless_keep_alive_is_asked(client: RawConnection,
                                                    server: Server) -> None:
    client.send(request_bytes("GET", "/hello", version="HTTP/1.0"))
    assert client.read_response().headers["connection"] == "close"
    assert client.closed_by_server()

    kept = RawConnection(server)
    kept.send(request_bytes("GET", "/hello", "Connection: keep-alive", version="HTTP/1.0"))
    assert kept.read_response().headers["connection"] == "keep-alive"  # 1.0 clients need it
    kept.send(request_bytes("GET", "/tweets/3", "Connection: keep-alive", version="HTTP/1.0"))
    assert kept.read_response().json() == {"route": "tweet", "id": "3"}
    kept.close()


def test_pipelined_requests_are_answered_in_order(client: RawConnection) -> None:
    client.send(get("/tweets/1") + get("/tweets/search?q=x") + get("/tweets/3"))
    assert [client.read_response().json() for _ in range(3)] == [
        {"route": "tweet", "id": "1"}, {"route": "search", "q": "x"},
        {"route": "tweet", "id": "3"}]


def test_an_idle_client_is_disconnected_after_the_idle_timeout(
        start_server: StartServer) -> None:
    server = start_server(idle_timeout=0.3)
    client = RawConnection(server, timeout=3)
    client.send(get("/hello"))
    assert client.read_response().status == HTTPStatus.OK
    started = time.monotonic()
    assert client.closed_by_server()  # waits at most the 3 s socket timeout
    assert 0.2 < time.monotonic() - started < 2.0
    client.close()


def test_a_client_that_never_sends_anything_is_disconnected(start_server: StartServer) -> None:
    server = start_server(idle_timeout=0.3)
    client = RawConnection(server, timeout=3)
    assert client.closed_by_server()
    client.close()


def test_a_client_dribbling_its_request_is_disconnected(start_server: StartServer) -> None:
    server = start_server(idle_timeout=0.4, request_timeout=0.4)
    client = RawConnection(server, timeout=0.05)
    client.send(b"GET /hello HTTP/1.1\r\nX-Slow: ")
    deadline = time.monotonic() + 1.2  # three times the idle timeout
    disconnected = False
    while not disconnected and time.monotonic() < deadline:
        try:
            client.send(b"a")  # the slow client itself: one byte every 50 ms
        except OSError:
            disconnected = True
        else:
            disconnected = client.closed_by_server()  # waits 50 ms
    client.close()
    assert disconnected


# --- malformed and oversized requests --------------------------------------------------------

@pytest.mark.parametrize("request_line", [b"GARBAGE", b"GET /hello", b"GET  /hello HTTP/1.1",
                                          b"GET /hello FTP/1.1"])
def test_a_malformed_request_line_is_400_and_closes(client: RawConnection,
                                                    request_line: bytes) -> None:
    client.send(request_line + b"\r\nHost: test\r\n\r\n")
    response = client.read_response()
    assert response.status == HTTPStatus.BAD_REQUEST
    assert response.error_code() == "bad_request"
    assert response.headers["connection"] == "close"
    assert client.closed_by_server()


@pytest.mark.parametrize("line", ["X-No-Colon", "X-Space-Before : colon"])
def test_a_malformed_header_line_is_400(client: RawConnection, line: str) -> None:
    client.send(get("/hello", line))
    response = client.read_response()
    assert response.status == HTTPStatus.BAD_REQUEST
    assert response.json()["error"]["message"] == "malformed header line"


def test_100_header_fields_are_accepted(client: RawConnection) -> None:
    fields = [f"X-Field-{n}: {n}" for n in range(99)]  # plus Host
    client.send(get("/hello", *fields))
    assert client.read_response().status == HTTPStatus.OK


def test_more_than_100_header_fields_is_431(client: RawConnection) -> None:
    fields = [f"X-Field-{n}: {n}" for n in range(100)]  # plus Host
    client.send(get("/hello", *fields))
    response = client.read_response()
    assert response.status == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
    assert response.error_code() == "headers_too_large"


def test_a_header_line_over_64_kib_is_431(client: RawConnection) -> None:
    client.send(get("/hello", "X-Huge: " + "a" * 70_000))
    assert client.read_response().status == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE


@pytest.mark.parametrize("length", ["-1", "1e3", "0x10", "ten"])
def test_a_malformed_content_length_is_400(client: RawConnection, length: str) -> None:
    client.send(request_bytes("POST", "/count", f"Content-Length: {length}"))
    response = client.read_response()
    assert response.status == HTTPStatus.BAD_REQUEST
    assert response.json()["error"]["message"] == "malformed Content-Length"


def test_a_superscript_digit_content_length_is_400(client: RawConnection) -> None:
    client.send(b"POST /count HTTP/1.1\r\nHost: test\r\nContent-Length: \xb2\r\n\r\nab")
    assert client.read_response().status == HTTPStatus.BAD_REQUEST


def test_an_unsupported_transfer_coding_is_501(client: RawConnection) -> None:
    client.send(request_bytes("POST", "/count", "Transfer-Encoding: gzip, chunked"))
    assert client.read_response().status == HTTPStatus.NOT_IMPLEMENTED


# --- request bodies ---------------------------------------------------------------------------

def test_a_chunked_request_body_is_decoded(client: RawConnection) -> None:
    body = chunked(b'{"text": "hel', b'lo", ', b'"n": 1}')
    client.send(request_bytes("POST", "/echo", "Transfer-Encoding: chunked", body=body)
                + get("/hello"))
    assert client.read_response().json() == {"received": {"text": "hello", "n": 1}}
    assert client.read_response().json() == {"hello": "world"}  # trailers were consumed


def test_a_chunked_body_over_64_kib_is_413(client: RawConnection) -> None:
    body = chunked(b"x" * 40_000, b"y" * 40_000)
    client.send(request_bytes("POST", "/count", "Transfer-Encoding: chunked", body=body))
    response = client.read_response()
    assert response.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert response.error_code() == "body_too_large"


@pytest.mark.parametrize("size_line", [b"zz", b""])
def test_a_malformed_chunk_size_is_400(client: RawConnection, size_line: bytes) -> None:
    client.send(request_bytes("POST", "/count", "Transfer-Encoding: chunked",
                              body=size_line + b"\r\nhello\r\n0\r\n\r\n"))
    response = client.read_response()
    assert response.status == HTTPStatus.BAD_REQUEST
    assert response.json()["error"]["message"] == "malformed chunk size"


def test_a_negative_chunk_size_is_400(client: RawConnection) -> None:
    client.send(request_bytes("POST", "/count", "Transfer-Encoding: chunked",
                              body=b"-5\r\nhello\r\n0\r\n\r\n"))
    assert client.read_response().status == HTTPStatus.BAD_REQUEST


def test_expect_100_continue_gets_100_then_the_answer(client: RawConnection) -> None:
    body = b'{"text": "after the go-ahead"}'
    client.send(request_bytes("POST", "/echo", "Expect: 100-continue",
                              f"Content-Length: {len(body)}"))
    interim = client.read_response()  # read before the body is sent: the server must not wait
    assert (interim.status, interim.reason, interim.headers) == (100, "Continue", {})
    client.send(body)
    assert client.read_response().json() == {"received": {"text": "after the go-ahead"}}


def test_expect_100_continue_with_exactly_64_kib_is_accepted(client: RawConnection) -> None:
    client.send(request_bytes("POST", "/count", "Expect: 100-continue", "Content-Length: 65536"))
    assert client.read_response().status == 100
    client.send(b"x" * 65536)
    assert client.read_response().json() == {"bytes": 65536}


def test_expect_100_continue_over_64_kib_is_413_before_the_body_is_sent(
        client: RawConnection) -> None:
    client.send(request_bytes("POST", "/count", "Expect: 100-continue", "Content-Length: 65537"))
    response = client.read_response()  # no body sent: the server answers from the head alone
    assert response.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert response.error_code() == "body_too_large"
    assert response.headers["connection"] == "close"


def test_over_64_kib_without_expect_is_413_and_the_client_can_read_it(server: Server) -> None:
    # With a small send buffer the body can only leave as fast as the server reads it. The
    # server drains a refused body of up to 1 MiB: closing with it unread would reset the
    # connection and fail this sendall, and the client would never read the 413.
    client = RawConnection(server, send_buffer=64 * 1024)
    client.send(request_bytes("POST", "/count", body=b"x" * 1_000_000))
    response = client.read_response()
    client.close()
    assert response.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert response.error_code() == "body_too_large"


# --- httpkit.wire on in-memory streams --------------------------------------------------------

def stream(text: bytes) -> io.BufferedReader:
    return io.BufferedReader(io.BytesIO(text))


def test_header_names_are_lower_cased_and_repeats_joined() -> None:
    headers = wire.read_headers(stream(b"Accept: a\r\nACCEPT: b\r\nCookie: x=1\r\n"
                                       b"cookie: y=2\r\nX-Empty:\r\n\r\nbody"))
    assert headers == {"accept": "a, b", "cookie": "x=1; y=2", "x-empty": ""}


def test_a_header_block_cut_short_is_a_connection_error() -> None:
    with pytest.raises(ConnectionError):
        wire.read_headers(stream(b"Accept: a\r\n"))


def test_read_body_follows_the_framing() -> None:
    assert wire.read_body(stream(b"hello world"), {"content-length": "5"}, 100) == b"hello"
    assert wire.read_body(stream(b"ignored"), {}, 100) == b""
    assert wire.read_body(stream(chunked(b"ab", b"cd")),
                          {"transfer-encoding": "Chunked"}, 100) == b"abcd"
    with pytest.raises(ConnectionError):
        wire.read_body(stream(b"shor"), {"content-length": "5"}, 100)
    with pytest.raises(wire.MessageError) as caught:
        wire.read_body(stream(b"x" * 101), {"content-length": "101"}, 100)
    assert caught.value.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def test_end_to_end_drops_hop_by_hop_fields_and_those_connection_names() -> None:
    headers = {"connection": "keep-alive, X-Secret-Hop", "keep-alive": "timeout=5",
               "transfer-encoding": "chunked", "x-secret-hop": "1", "upgrade": "h2c",
               "content-type": "application/json", "x-cache": "HIT"}
    assert wire.end_to_end(headers) == {"content-type": "application/json", "x-cache": "HIT"}


def test_render_head_ends_with_an_empty_line() -> None:
    assert wire.render_head("GET / HTTP/1.1", {"host": "a", "x": "1"}) == (
        b"GET / HTTP/1.1\r\nhost: a\r\nx: 1\r\n\r\n")
    assert wire.render_head("HTTP/1.1 204 No Content", []) == b"HTTP/1.1 204 No Content\r\n\r\n"
