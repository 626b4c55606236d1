"""Strict request parsing (RFC 9112 and RFC 9110 §5.5): what a proxy in front of us
might read differently is refused with the JSON error body and the connection closed; what
the RFCs allow (HTTP/1.0 without Host, obs-text and HTAB in values) still works. The demo
service is spoken to over a bare socket; the checks of httpkit.wire also run without one."""
from __future__ import annotations

import io
from collections.abc import Iterator
from http import HTTPStatus

import pytest

from httpkit import Server, Upstream, UpstreamError, wire
from tests.harness import Answer
from tests.httpkit.helpers import (RawConnection, RawResponse, StartUpstream, chunked,
                                   request_bytes)


@pytest.fixture
def client(server: Server) -> Iterator[RawConnection]:
    connection = RawConnection(server)
    yield connection
    connection.close()


def refused(client: RawConnection, data: bytes,
            status: int = HTTPStatus.BAD_REQUEST) -> RawResponse:
    """Send ``data`` followed by a good request; assert the first is refused with ``status``
    and the JSON error body, and that the connection then closes, the second unanswered."""
    client.send(data + request_bytes("GET", "/hello"))
    response = client.read_response()
    assert response.status == status, response.body
    assert response.headers["content-type"] == "application/json"
    assert sorted(response.json()["error"]) == ["code", "message"]
    assert response.headers["connection"] == "close"
    assert client.closed_by_server()
    return response


def message(response: RawResponse) -> str:
    return str(response.json()["error"]["message"])


# --- Content-Length and Transfer-Encoding (RFC 9112 §6) -------------------------------------

def test_transfer_encoding_with_content_length_is_400_and_closes(client: RawConnection) -> None:
    body = chunked(b"hello")
    response = refused(client, request_bytes("POST", "/count", "Transfer-Encoding: chunked",
                                             f"Content-Length: {len(body)}", body=body))
    assert "Transfer-Encoding and Content-Length" in message(response)


def test_content_length_before_transfer_encoding_is_refused_too(client: RawConnection) -> None:
    refused(client, request_bytes("POST", "/count", "Content-Length: 3",
                                  "Transfer-Encoding: chunked", body=b"0\r\n\r\n"))


def test_transfer_encoding_in_an_http_1_0_request_is_400(client: RawConnection) -> None:
    refused(client, request_bytes("POST", "/count", "Transfer-Encoding: chunked",
                                  body=chunked(b"hello"), version="HTTP/1.0"))


@pytest.mark.parametrize("coding", ["gzip", "chunked, gzip", "chunked, chunked", "chunked,",
                                    "chunked;q=1", "identity"])
def test_a_transfer_encoding_not_ending_in_one_chunked_is_400(client: RawConnection,
                                                              coding: str) -> None:
    refused(client, request_bytes("POST", "/count", f"Transfer-Encoding: {coding}",
                                  body=chunked(b"hello")))


def test_an_unknown_coding_before_chunked_is_501_and_closes(client: RawConnection) -> None:
    refused(client, request_bytes("POST", "/count", "Transfer-Encoding: zstd, chunked",
                                  body=chunked(b"hello")), HTTPStatus.NOT_IMPLEMENTED)


def test_differing_content_lengths_are_400(client: RawConnection) -> None:
    response = refused(client, request_bytes("POST", "/count", "Content-Length: 5",
                                             "Content-Length: 6", body=b"hello!"))
    assert message(response) == "conflicting Content-Length values"


def test_a_repeated_identical_content_length_is_one_length(client: RawConnection) -> None:
    client.send(request_bytes("POST", "/count", "Content-Length: 5", "Content-Length: 5",
                              body=b"hello") + request_bytes("GET", "/hello"))
    assert client.read_response().json() == {"bytes": 5}
    assert client.read_response().json() == {"hello": "world"}


def test_a_content_length_too_long_to_parse_is_413_not_a_dropped_connection(
        client: RawConnection) -> None:
    refused(client, request_bytes("POST", "/count", "Content-Length: " + "9" * 5000),
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE)


def test_chunk_data_longer_than_its_size_is_400(client: RawConnection) -> None:
    refused(client, request_bytes("POST", "/count", "Transfer-Encoding: chunked",
                                  body=b"5\r\nhelloXX\r\n0\r\n\r\n"))


def test_a_chunk_size_line_ending_in_a_bare_lf_is_400(client: RawConnection) -> None:
    refused(client, request_bytes("POST", "/count", "Transfer-Encoding: chunked",
                                  body=b"5\nhello\r\n0\r\n\r\n"))


# --- Host (RFC 9112 §3.2) --------------------------------------------------------------------

def test_http_1_1_without_host_is_400(client: RawConnection) -> None:
    response = refused(client, b"GET /hello HTTP/1.1\r\n\r\n")
    assert message(response) == "an HTTP/1.1 request needs a Host header"


@pytest.mark.parametrize("second", ["Host: test", "Host: other", "Host:", "host: test"])
def test_two_host_fields_are_400(client: RawConnection, second: str) -> None:
    refused(client, request_bytes("GET", "/hello", second))  # request_bytes sends Host: test


@pytest.mark.parametrize("host", ["a b", "a/b", "user@host", "a:1:2", "[::1", "a:x", "é.test"])
def test_an_invalid_host_is_400(client: RawConnection, host: str) -> None:
    refused(client, f"GET /hello HTTP/1.1\r\nHost: {host}\r\n\r\n".encode("latin-1"))


def test_two_hosts_in_http_1_0_are_400_too(client: RawConnection) -> None:
    refused(client, request_bytes("GET", "/hello", "Host: other", version="HTTP/1.0"))


@pytest.mark.parametrize("host", ["", "127.0.0.1:8000", "[::1]:8000", "example.test",
                                  "xn--caf-dma.test"])
def test_a_valid_host_is_accepted(client: RawConnection, host: str) -> None:
    client.send(f"GET /hello HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    assert client.read_response().json() == {"hello": "world"}


def test_http_1_0_without_host_still_works(client: RawConnection) -> None:
    client.send(b"GET /hello HTTP/1.0\r\n\r\n")
    assert client.read_response().json() == {"hello": "world"}


# --- field lines (RFC 9110 §5.5, RFC 9112 §2.2 and §5) ---------------------------------------

@pytest.mark.parametrize("value", [b"a\x00b", b"a\rb", b"a\nb", b"a\x01b", b"a\x1fb", b"a\x7fb",
                                   b"a\x0bb", b"\x00", b"ab\r"])
def test_a_control_character_in_a_field_value_is_400(client: RawConnection,
                                                     value: bytes) -> None:
    response = refused(client, b"GET /hello HTTP/1.1\r\nHost: test\r\nX-Bad: " + value
                       + b"\r\n\r\n")
    assert "control character" in message(response)


def test_a_control_character_in_the_host_value_is_400(client: RawConnection) -> None:
    refused(client, b"GET /hello HTTP/1.1\r\nHost: te\x00st\r\n\r\n")


@pytest.mark.parametrize("fold", [b" folded", b"\tfolded"])
def test_obs_fold_is_400_and_says_why(client: RawConnection, fold: bytes) -> None:
    response = refused(client, b"GET /hello HTTP/1.1\r\nHost: test\r\nX-A: a\r\n" + fold
                       + b"\r\n\r\n")
    assert "folding" in message(response)


def test_whitespace_before_the_first_field_line_is_400(client: RawConnection) -> None:
    refused(client, b"GET /hello HTTP/1.1\r\n Host: test\r\n\r\n")


@pytest.mark.parametrize("line", ["X-A : 1", "X-A\t: 1", "X A: 1", "X(A): 1", 'X"A: 1',
                                  "X/A: 1", "X@A: 1", "X[A]: 1", "X{A}: 1", "Ä: 1", ": 1",
                                  "X=A: 1", "X,A: 1", "X;A: 1", "X?A: 1", "NoColon"])
def test_a_malformed_field_name_is_400(client: RawConnection, line: str) -> None:
    response = refused(client, request_bytes("GET", "/hello", line))
    assert message(response) == "malformed header line"


@pytest.mark.parametrize("head", [b"GET /hello HTTP/1.1\nHost: test\n\n",
                                  b"GET /hello HTTP/1.1\r\nHost: test\n\n",
                                  b"GET /hello HTTP/1.1\r\nHost: test\r\n\n",
                                  b"GET /hello HTTP/1.1\nHost: test\r\n\r\n",
                                  b"GET /hello HTTP/1.1\r\nHost: test\n\r\n"])
def test_a_line_ending_in_a_bare_lf_is_400(client: RawConnection, head: bytes) -> None:
    client.send(head)
    response = client.read_response()
    assert response.status == HTTPStatus.BAD_REQUEST
    assert response.headers["connection"] == "close"
    assert client.closed_by_server()


def test_obs_text_and_htab_in_values_arrive_intact(client: RawConnection) -> None:
    client.send(b"GET /headers HTTP/1.1\r\nHost: test\r\nX-Obs: \xa0caf\xe9 \x80\xff\x85\r\n"
                b"X-Tab: a\tb\r\nX-Ows:  \t padded \t \r\nX-Empty:\r\n\r\n")
    response = client.read_response()
    assert response.status == HTTPStatus.OK
    assert response.json()["headers"] == {
        "host": "test", "x-obs": "\xa0caf\xe9 \x80\xff\x85", "x-tab": "a\tb",
        "x-ows": "padded", "x-empty": ""}


def test_a_header_value_full_of_every_allowed_byte_is_accepted(client: RawConnection) -> None:
    allowed = b"<" + b"\t" + bytes(range(0x20, 0x7f)) + bytes(range(0x80, 0x100))  # OWS inside
    client.send(b"GET /headers HTTP/1.1\r\nHost: test\r\nX-All: " + allowed + b"\r\n\r\n")
    assert client.read_response().json()["headers"]["x-all"] == allowed.decode("latin-1")


def test_an_answer_header_holding_a_nul_is_a_500_not_sent(client: RawConnection) -> None:
    client.send(request_bytes("GET", "/answer-header?value=a%00b"))
    response = client.read_response()
    assert response.status == HTTPStatus.INTERNAL_SERVER_ERROR
    assert "x-echo" not in response.headers


# --- request line and version (RFC 9112 §2.3 and §3) -----------------------------------------

@pytest.mark.parametrize("version", ["HTTP/1.9", "HTTP/2.0", "HTTP/3.0", "HTTP/0.9", "HTTP/9.9"])
def test_another_http_version_is_505_and_closes(client: RawConnection, version: str) -> None:
    response = refused(client, f"GET /hello {version}\r\nHost: test\r\n\r\n".encode(),
                       HTTPStatus.HTTP_VERSION_NOT_SUPPORTED)
    assert response.error_code() == "http_version_not_supported"


@pytest.mark.parametrize("request_line", [b"GET /hello HTTP/1.10", b"GET /hello http/1.1",
                                          b"GET /hello HTTP/1", b"GET /hello HTTP/1.1 ",
                                          b"GET /hello HTTP/1.1 x", b" GET /hello HTTP/1.1",
                                          b"GET\t/hello HTTP/1.1", b"G@T /hello HTTP/1.1",
                                          b"GET /he\x00llo HTTP/1.1", b"GET /he\x7fllo HTTP/1.1",
                                          b"GET /he\rllo HTTP/1.1", b"GET /hello HTTP/1.1\r",
                                          b"GET /hello HTTP/\xb9.1", b"GET  HTTP/1.1"])
def test_a_malformed_request_line_is_400(client: RawConnection, request_line: bytes) -> None:
    response = refused(client, request_line + b"\r\nHost: test\r\n\r\n")
    assert message(response) == "malformed request line"


def test_http_1_0_and_1_1_are_both_served(client: RawConnection) -> None:
    client.send(request_bytes("GET", "/hello", "Connection: keep-alive", version="HTTP/1.0")
                + request_bytes("GET", "/hello"))
    assert [client.read_response().status for _ in range(2)] == [200, 200]


# --- httpkit.wire without a socket ------------------------------------------------------------

def stream(text: bytes) -> io.BufferedReader:
    return io.BufferedReader(io.BytesIO(text))


def test_parse_head_checks_every_field_line_at_once() -> None:
    assert wire.parse_head("GET / HTTP/1.1\r\nHost: a\r\nX-A: \t1 \xa0\r\nx-a: 2") == (
        "GET / HTTP/1.1", {"host": "a", "x-a": "1 \xa0, 2"})
    assert wire.parse_head("HTTP/1.1 100 Continue") == ("HTTP/1.1 100 Continue", {})
    for text in ["GET / HTTP/1.1\r\nX-A: 1\nX-B: 2", "GET / HTTP/1.1\r\nX-A: 1\r\n\tmore",
                 "GET / HTTP/1.1\r\nX-A: 1\r\nX B: 2", "GET / HTTP/1.1\r\nX-A: \x00"]:
        with pytest.raises(wire.MessageError) as caught:
            wire.parse_head(text)
        assert caught.value.status == HTTPStatus.BAD_REQUEST


def test_add_field_takes_one_line_only() -> None:
    with pytest.raises(wire.MessageError):
        wire.add_field({}, "X-A: 1\r\nX-B: 2")


def test_request_line_splits_and_refuses() -> None:
    parts = wire.request_line("PATCH /tweets/1?x=y HTTP/1.1")
    assert parts == ("PATCH", "/tweets/1?x=y", "HTTP/1.1")
    for line, status in [("GET / HTTP/1.2", 505), ("GET / HTTP/1.1x", 400), ("GET /", 400)]:
        with pytest.raises(wire.MessageError) as caught:
            wire.request_line(line)
        assert caught.value.status == status


def test_check_request_head_follows_rfc_9112() -> None:
    wire.check_request_head("HTTP/1.0", {})
    wire.check_request_head("HTTP/1.1", {"host": "a", "transfer-encoding": "chunked"})
    wire.check_request_head("HTTP/1.1", {"host": "a", "content-length": "5"})
    for version, headers in [
            ("HTTP/1.1", {}),
            ("HTTP/1.1", {"host": "a, a"}),  # two Host lines, as add_field joins them
            ("HTTP/1.1", {"host": "a", "transfer-encoding": "chunked", "content-length": "5"}),
            ("HTTP/1.0", {"transfer-encoding": "chunked"})]:
        with pytest.raises(wire.MessageError) as caught:
            wire.check_request_head(version, headers)
        assert caught.value.status == HTTPStatus.BAD_REQUEST


def test_body_length_takes_one_repeated_length_and_refuses_others() -> None:
    assert wire.body_length({"content-length": "5, 5"}) == 5
    assert wire.body_length({"content-length": "007"}) == 7
    assert wire.body_length({"content-length": "0" * 40 + "1"}) == 1
    for value, status in [("5, 6", 400), ("5,", 400), ("", 400), ("1" * 19, 413)]:
        with pytest.raises(wire.MessageError) as caught:
            wire.body_length({"content-length": value})
        assert caught.value.status == status


def test_trailer_lines_must_end_in_crlf() -> None:
    with pytest.raises(wire.MessageError):
        wire.read_headers(stream(b"X-Trailer: t\n\r\n"))
    with pytest.raises(wire.MessageError):
        wire.read_headers(stream(b"X-Trailer: t\x00\r\n\r\n"))


def test_render_head_refuses_a_value_that_would_start_a_header() -> None:
    for value in ["a\r\nX-Injected: 1", "a\nb", "a\rb", "a\x00b"]:
        with pytest.raises(ValueError):
            wire.render_head("GET / HTTP/1.1", {"host": "a", "x-value": value})
    assert wire.render_head("GET / HTTP/1.1", {"x": "caf\xe9\tok"}) == (
        b"GET / HTTP/1.1\r\nx: caf\xe9\tok\r\n\r\n")


def test_the_client_never_sends_a_header_holding_a_line_break(
        start_upstream: StartUpstream) -> None:
    fake = start_upstream(Answer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
    upstream = Upstream(fake.url)
    with pytest.raises(ValueError):
        upstream.request("GET", "/", headers={"x-smuggle": "a\r\nContent-Length: 5"})
    assert upstream.request("GET", "/ok").status == 200
    upstream.close()
    assert [seen.request_line for seen in fake.received] == ["GET /ok HTTP/1.1"]


@pytest.mark.parametrize("reply", [b"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 0\r\n\r\n",
                                   b"HTTP/1.1 200 OK\r\nX-Bad: a\rb\r\nContent-Length: 0\r\n\r\n",
                                   b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
                                   b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0"
                                   b"\r\n\r\n"])
def test_an_answer_with_a_bad_field_is_a_502(start_upstream: StartUpstream,
                                             reply: bytes) -> None:
    fake = start_upstream(Answer(reply, hang_up=True))
    upstream = Upstream(fake.url)
    with pytest.raises(UpstreamError) as caught:
        upstream.request("GET", "/")
    upstream.close()
    assert caught.value.status == HTTPStatus.BAD_GATEWAY
