"""The lb never forwards what it would refuse: a request that RFC 9112 has a server
reject is answered by the lb itself and reaches no upstream; what is valid passes through
byte for byte, with nothing the lb adds able to start a header of its own."""
from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus

import pytest

from httpkit import Server
from lb.app import Config, make_server
from tests.fakes import FakeUpstream, Lab
from tests.httpkit.helpers import RawConnection, chunked, request_bytes


@pytest.fixture
def upstream(lab: Lab) -> FakeUpstream:
    return lab.upstream()


@pytest.fixture
def lb(lab: Lab, upstream: FakeUpstream) -> Server:
    return lab.serve(make_server(Config(port=0, upstreams=(upstream.address,),
                                        health_interval=0.05)))


@pytest.fixture
def client(lb: Server) -> Iterator[RawConnection]:
    connection = RawConnection(lb)
    yield connection
    connection.close()


BAD_REQUESTS = {
    "te and cl": request_bytes("POST", "/tweets", "Transfer-Encoding: chunked",
                               "Content-Length: 5", body=chunked(b"hello")),
    "te in 1.0": request_bytes("POST", "/tweets", "Transfer-Encoding: chunked",
                               body=chunked(b"hello"), version="HTTP/1.0"),
    "te not chunked": request_bytes("POST", "/tweets", "Transfer-Encoding: gzip", body=b"x"),
    "two lengths": request_bytes("POST", "/tweets", "Content-Length: 1", "Content-Length: 2",
                                 body=b"ab"),
    "no host": b"GET /tweets HTTP/1.1\r\n\r\n",
    "two hosts": request_bytes("GET", "/tweets", "Host: other"),
    "bad host": b"GET /tweets HTTP/1.1\r\nHost: a b\r\n\r\n",
    "nul": b"GET /tweets HTTP/1.1\r\nHost: test\r\nX-A: a\x00b\r\n\r\n",
    "bare cr": b"GET /tweets HTTP/1.1\r\nHost: test\r\nX-A: a\rb\r\n\r\n",
    "bare lf": b"GET /tweets HTTP/1.1\r\nHost: test\r\nX-A: a\nTransfer-Encoding: chunked\r\n\r\n",
    "obs-fold": b"GET /tweets HTTP/1.1\r\nHost: test\r\nX-A: a\r\n b\r\n\r\n",
    "space before colon": request_bytes("GET", "/tweets", "X-A : b"),
    "bad name": request_bytes("GET", "/tweets", "X(A): b"),
    "http/1.9": b"GET /tweets HTTP/1.9\r\nHost: test\r\n\r\n",
    "http/2.0": b"GET /tweets HTTP/2.0\r\nHost: test\r\n\r\n",
    "bad request line": b"GET /tweets HTTP/1.1 x\r\nHost: test\r\n\r\n",
    "chunk overrun": request_bytes("POST", "/tweets", "Transfer-Encoding: chunked",
                                   body=b"1\r\nabc\r\n0\r\n\r\n"),
}


@pytest.mark.parametrize("data", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_a_request_the_lb_refuses_reaches_no_upstream(client: RawConnection,
                                                      upstream: FakeUpstream,
                                                      data: bytes) -> None:
    client.send(data)
    response = client.read_response()
    assert response.status in (HTTPStatus.BAD_REQUEST, HTTPStatus.NOT_IMPLEMENTED,
                               HTTPStatus.HTTP_VERSION_NOT_SUPPORTED)
    assert sorted(response.json()["error"]) == ["code", "message"]
    assert response.headers["connection"] == "close"
    assert client.closed_by_server()
    assert upstream.requests() == []


def test_a_good_request_after_a_refused_one_still_passes(lb: Server,
                                                         upstream: FakeUpstream) -> None:
    # The test above would pass with an lb that forwards nothing at all: this one would not.
    bad = RawConnection(lb)
    bad.send(BAD_REQUESTS["te and cl"])
    assert bad.read_response().status == HTTPStatus.BAD_REQUEST
    bad.close()
    good = RawConnection(lb)
    good.send(request_bytes("POST", "/tweets", body=b"hello"))
    assert good.read_response().status == HTTPStatus.OK
    good.close()
    [seen] = upstream.requests()
    assert (seen.method, seen.target, seen.body) == ("POST", "/tweets", b"hello")


def test_valid_values_are_forwarded_intact(client: RawConnection, upstream: FakeUpstream) -> None:
    client.send(b"GET /tweets HTTP/1.1\r\nHost: test\r\nX-Obs: \xa0caf\xe9\xff\x85\r\n"
                b"X-Tab: a\tb\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n")
    assert client.read_response().status == HTTPStatus.OK
    [seen] = upstream.requests()
    assert seen.headers["x-obs"] == "\xa0caf\xe9\xff\x85"
    assert seen.headers["x-tab"] == "a\tb"
    assert seen.headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert seen.headers["host"] != "test"  # the lb names its upstream, not the client's Host


def test_a_chunked_request_is_forwarded_with_its_length(client: RawConnection,
                                                        upstream: FakeUpstream) -> None:
    client.send(request_bytes("POST", "/tweets", "Transfer-Encoding: chunked",
                              body=chunked(b"hel", b"lo")))
    assert client.read_response().status == HTTPStatus.OK
    [seen] = upstream.requests()
    assert seen.body == b"hello"
    assert seen.headers["content-length"] == "5" and "transfer-encoding" not in seen.headers


def test_an_http_1_0_request_without_host_is_forwarded(client: RawConnection,
                                                       upstream: FakeUpstream) -> None:
    client.send(b"GET /tweets HTTP/1.0\r\n\r\n")
    assert client.read_response().status == HTTPStatus.OK
    [seen] = upstream.requests()
    assert seen.headers["host"] == upstream.address  # the upstream hop is HTTP/1.1 with a Host
