"""Service tests of httpkit.client.Upstream against the demo service and against scripted
fake upstreams on bare sockets, asserting on what both sides saw."""
from __future__ import annotations

import json
import socket
import threading
import time
from http import HTTPStatus

import pytest

from httpkit import Upstream, UpstreamError, UpstreamTimeout, client
from tests.harness import Answer, ScriptedUpstream, free_port
from tests.httpkit.helpers import CountingServer, StartServer, StartUpstream


def ok(body: bytes = b"ok", *header_lines: bytes) -> bytes:
    """A plain 200 answer framed by Content-Length."""
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(line + b"\r\n" for line in header_lines)
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def counting_server(start_server: StartServer, idle_timeout: float = 2.0) -> CountingServer:
    server = start_server(server_class=CountingServer, idle_timeout=idle_timeout)
    assert isinstance(server, CountingServer)
    return server


def upstream_error(upstream: Upstream, method: str = "GET", target: str = "/") -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        upstream.request(method, target)
    return caught.value


# --- connection reuse ------------------------------------------------------------------------

def test_sequential_requests_share_one_connection(start_server: StartServer) -> None:
    server = counting_server(start_server)
    upstream = Upstream(server.url)
    for n in range(5):
        assert upstream.fetch("GET", f"/tweets/{n}").json() == {"route": "tweet", "id": str(n)}
    upstream.close()
    assert server.accepted == 1


def test_threads_share_the_pool_without_mixing_answers(start_server: StartServer) -> None:
    server = counting_server(start_server)
    upstream = Upstream(server.url)
    mixed_up: list[str] = []

    def read_tweets(worker: int) -> None:
        for n in range(20):
            tweet_id = f"{worker}-{n}"
            if upstream.fetch("GET", f"/tweets/{tweet_id}").json()["id"] != tweet_id:
                mixed_up.append(tweet_id)

    workers = [threading.Thread(target=read_tweets, args=(w,)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=10)
    upstream.close()
    assert mixed_up == []
    assert 1 <= server.accepted <= 4


def test_head_and_204_answers_leave_the_connection_reusable(start_server: StartServer) -> None:
    server = counting_server(start_server)
    upstream = Upstream(server.url)
    head = upstream.request("HEAD", "/hello")
    assert (head.status, head.body) == (HTTPStatus.OK, b"")
    assert head.headers["content-length"] == "17"
    deleted = upstream.request("DELETE", "/tweets/7")
    assert (deleted.status, deleted.body) == (HTTPStatus.NO_CONTENT, b"")
    assert upstream.request("GET", "/hello").json() == {"hello": "world"}
    upstream.close()
    assert server.accepted == 1


def test_a_connection_the_server_timed_out_is_replaced_transparently(
        start_server: StartServer) -> None:
    server = counting_server(start_server, idle_timeout=0.3)
    upstream = Upstream(server.url)
    assert upstream.request("GET", "/hello").status == HTTPStatus.OK
    assert server.connections_closed.acquire(timeout=5)  # the server dropped the idle one
    assert upstream.fetch("GET", "/tweets/9").json() == {"route": "tweet", "id": "9"}
    upstream.close()
    assert server.accepted == 2


def test_a_kept_connection_closed_by_the_upstream_is_retried_once(
        start_upstream: StartUpstream) -> None:
    fake = start_upstream(Answer(ok(b"first"), hang_up=True), Answer(ok(b"second")))
    upstream = Upstream(fake.url)
    assert upstream.request("GET", "/one").body == b"first"
    assert upstream.request("GET", "/two").body == b"second"
    upstream.close()
    assert [seen.request_line for seen in fake.received] == ["GET /one HTTP/1.1",
                                                             "GET /two HTTP/1.1"]
    assert fake.accepted == 2


def test_a_fresh_connection_that_breaks_off_is_not_retried(
        start_upstream: StartUpstream) -> None:
    fake = start_upstream(Answer(b"", hang_up=True), Answer(ok(b"never asked")))
    error = upstream_error(Upstream(fake.url), "POST", "/tweets")
    assert (error.status, error.sent) == (HTTPStatus.BAD_GATEWAY, True)
    assert not isinstance(error, UpstreamTimeout)
    assert len(fake.received) == 1


def test_connections_idle_too_long_are_not_reused(start_server: StartServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "IDLE_REUSE_S", 0.0)
    server = counting_server(start_server)
    upstream = Upstream(server.url)
    for _ in range(3):
        assert upstream.request("GET", "/hello").status == HTTPStatus.OK
    upstream.close()
    assert server.accepted == 3


# --- failures ----------------------------------------------------------------------------------

def test_a_refused_connection_is_a_502_not_sent() -> None:
    error = upstream_error(Upstream(f"http://127.0.0.1:{free_port()}"))
    assert not isinstance(error, UpstreamTimeout)
    assert (error.status, error.code, error.sent) == (HTTPStatus.BAD_GATEWAY,
                                                      "upstream_unavailable", False)
    assert "cannot connect to 127.0.0.1" in str(error)


def test_an_upstream_that_never_answers_is_a_504_within_the_read_timeout(
        start_upstream: StartUpstream) -> None:
    fake = start_upstream()  # no script: it takes the request and stays silent
    upstream = Upstream(fake.url, read_timeout=0.3)
    started = time.monotonic()
    error = upstream_error(upstream)
    elapsed = time.monotonic() - started
    assert isinstance(error, UpstreamTimeout)
    assert (error.status, error.code, error.sent) == (HTTPStatus.GATEWAY_TIMEOUT,
                                                      "upstream_timeout", True)
    assert 0.25 < elapsed < 2.0
    assert len(fake.received) == 1  # and it was not sent twice


@pytest.mark.parametrize("reply", [b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n",
                                   b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"])
def test_a_malformed_or_cut_answer_is_a_502(start_upstream: StartUpstream, reply: bytes) -> None:
    fake = start_upstream(Answer(reply, hang_up=True))
    error = upstream_error(Upstream(fake.url))
    assert (type(error), error.status, error.sent) == (UpstreamError, HTTPStatus.BAD_GATEWAY,
                                                       True)


@pytest.mark.parametrize("reply", [b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\nab",
                                   b"HTTP/1.1 \xb2\xb2\xb2 OK\r\nContent-Length: 0\r\n\r\n"])
def test_a_superscript_digit_in_an_answer_is_a_502(start_upstream: StartUpstream,
                                                   reply: bytes) -> None:
    fake = start_upstream(Answer(reply, hang_up=True))
    assert upstream_error(Upstream(fake.url)).status == HTTPStatus.BAD_GATEWAY


def test_a_negative_chunk_size_in_an_answer_is_a_502(start_upstream: StartUpstream) -> None:
    fake = start_upstream(Answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 b"-5\r\nhello\r\n0\r\n\r\n", hang_up=True))
    assert upstream_error(Upstream(fake.url)).status == HTTPStatus.BAD_GATEWAY


# --- what goes out, and how answers are framed -----------------------------------------------

def test_call_sends_json_with_its_type_and_length(start_upstream: StartUpstream) -> None:
    fake = start_upstream(Answer(ok(b'{"id": 1}', b"Content-Type: application/json")))
    upstream = Upstream(fake.url)
    answer = upstream.fetch("POST", "/tweets", {"text": "héllo #python"},
                            {"authorization": "Bearer t0ken"})
    upstream.close()
    assert answer.json() == {"id": 1}
    assert answer.headers["content-type"] == "application/json"
    sent = fake.received[0]
    assert sent.request_line == "POST /tweets HTTP/1.1"
    assert sent.body == json.dumps({"text": "héllo #python"}, ensure_ascii=False,
                                   separators=(",", ":")).encode()
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["content-length"] == str(len(sent.body))
    assert sent.headers["authorization"] == "Bearer t0ken"
    assert sent.headers["host"] == fake.url.removeprefix("http://")


def test_call_without_a_payload_sends_no_body(start_upstream: StartUpstream) -> None:
    fake = start_upstream(Answer(ok()), Answer(ok()))
    upstream = Upstream(fake.url)
    upstream.fetch("GET", "/tweets")
    upstream.fetch("POST", "/tweets/1/like")
    upstream.close()
    get, post = fake.received
    assert "content-length" not in get.headers and "content-type" not in get.headers
    assert post.headers["content-length"] == "0" and post.body == b""


def test_a_chunked_answer_is_decoded_and_the_connection_kept(
        start_upstream: StartUpstream) -> None:
    fake = start_upstream(
        Answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6;note=x\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"),
        Answer(ok(b"next")))
    upstream = Upstream(fake.url)
    assert upstream.request("GET", "/a").body == b"hello world"
    assert upstream.request("GET", "/b").body == b"next"
    upstream.close()
    assert fake.accepted == 1


@pytest.mark.parametrize("last_answer", [
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nread until the end",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 18\r\n\r\nread until the end",
    b"HTTP/1.0 200 OK\r\nContent-Length: 18\r\n\r\nread until the end",
])
def test_an_answer_that_ends_the_connection_is_read_and_not_reused(
        start_upstream: StartUpstream, last_answer: bytes) -> None:
    fake = start_upstream(Answer(last_answer, hang_up=True), Answer(ok(b"on a new one")))
    upstream = Upstream(fake.url)
    assert upstream.request("GET", "/a").body == b"read until the end"
    assert upstream.request("GET", "/b").body == b"on a new one"
    upstream.close()
    assert fake.accepted == 2 and len(fake.received) == 2  # no stale attempt in between


def test_an_interim_100_answer_is_skipped(start_upstream: StartUpstream) -> None:
    fake = start_upstream(Answer(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"final")))
    answer = Upstream(fake.url).request("POST", "/tweets", b"{}")
    assert (answer.status, answer.reason, answer.body) == (200, "OK", b"final")


def test_a_url_prefix_is_put_before_every_target(start_upstream: StartUpstream) -> None:
    fake = start_upstream(Answer(ok()), Answer(ok()))
    upstream = Upstream(f"{fake.url}/base/")
    assert upstream.url == f"{fake.url}/base"
    upstream.request("GET", "/tweets?limit=2")
    upstream.fetch("PUT", "/tweets/1", {"text": "edited"})
    upstream.close()
    assert [seen.request_line for seen in fake.received] == [
        "GET /base/tweets?limit=2 HTTP/1.1", "PUT /base/tweets/1 HTTP/1.1"]


@pytest.mark.parametrize("url,host,port,prefix", [
    ("http://127.0.0.1:8200", "127.0.0.1", 8200, ""),
    ("http://127.0.0.1:8200/", "127.0.0.1", 8200, ""),
    ("127.0.0.1:8300/store", "127.0.0.1", 8300, "/store"),
    ("http://localhost/api/v1", "localhost", 80, "/api/v1"),
])
def test_upstream_urls_are_understood(url: str, host: str, port: int, prefix: str) -> None:
    upstream = Upstream(url)
    assert (upstream.host, upstream.port, upstream.prefix) == (host, port, prefix)


@pytest.mark.parametrize("url", ["https://127.0.0.1:8200", "ftp://host/", "http://:80/"])
def test_a_url_that_is_not_plain_http_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        Upstream(url)


def test_the_scripted_upstream_is_honest(start_upstream: StartUpstream) -> None:
    """The fake itself: what it records is what a client sent, byte for byte."""
    fake: ScriptedUpstream = start_upstream(Answer(ok(b"hi")))
    with socket.create_connection(("127.0.0.1", int(fake.url.rsplit(":", 1)[1])), 3) as sock:
        sock.sendall(b"PATCH /x HTTP/1.1\r\nX-A: 1\r\nContent-Length: 3\r\n\r\nabc")
        assert sock.recv(1024) == ok(b"hi")
    assert (fake.received[0].request_line, fake.received[0].headers, fake.received[0].body) == (
        "PATCH /x HTTP/1.1", {"x-a": "1", "content-length": "3"}, b"abc")
