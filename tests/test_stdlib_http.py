"""bench/stdlib_http.py compares like with like: its stdlib request cycle answers what httpkit's
does, in one write per answer, on a kept-alive connection."""
from __future__ import annotations

import http.client
import io
import json
import socket
import threading
from typing import Any, Callable

import pytest

from bench.origin import TWEET, make_server
from bench.stdlib_http import HEAD, HEADER_BLOCK, StdlibHandler, StdlibPool
from httpkit import Server, Upstream, wire
from tests.harness import start_in_thread, stop_thread


def test_the_stdlib_cycle_answers_as_httpkit_does_on_one_connection() -> None:
    servers: list[Server] = [make_server(0), make_server(0)]
    servers[1].RequestHandlerClass = StdlibHandler
    threads = [start_in_thread(server) for server in servers]
    try:
        hand, stdlib = (Upstream(server.url) for server in servers)
        pool = StdlibPool("127.0.0.1", servers[1].server_port)
        answers = [hand.request("GET", "/tweets/1"), stdlib.request("GET", "/tweets/1")]
        assert [(a.status, json.loads(a.body)) for a in answers] == [(200, TWEET)] * 2
        assert answers[1].headers["content-length"] == str(len(answers[1].body))
        for _ in range(3):  # kept alive: the pool reuses its one connection
            assert pool.request("POST", "/tweets", b'{"text": "x"}')[0] == 200
        assert len(pool.idle) == 1
        hand.close()
        stdlib.close()
    finally:
        for server, thread in zip(servers, threads):
            stop_thread(server, thread)


def test_the_stdlib_cycle_sends_head_and_body_in_one_write(
        monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[bytes] = []  # what the server's threads hand to the kernel, call by call

    def counted(real: Callable[..., Any]) -> Callable[..., Any]:
        def write(sock: socket.socket, data: bytes, *args: Any) -> Any:
            if threading.current_thread() is not threading.main_thread():
                writes.append(bytes(data))
            return real(sock, data, *args)
        return write
    for name in ("send", "sendall"):
        monkeypatch.setattr(socket.socket, name, counted(getattr(socket.socket, name)))
    server = make_server(0)
    server.RequestHandlerClass = StdlibHandler
    thread = start_in_thread(server)
    try:
        with socket.create_connection(("127.0.0.1", server.server_port)) as sock:
            sock.sendall(b"GET /tweets/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b"".join(iter(lambda: sock.recv(65536), b""))
    finally:
        stop_thread(server, thread)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(json.dumps(TWEET).encode())
    assert writes == [answer]


def test_both_parsers_read_the_same_headers() -> None:
    ours = wire.parse_head(HEAD)[1]
    theirs = http.client.parse_headers(io.BytesIO(HEADER_BLOCK))
    assert ours == {name.lower(): value for name, value in theirs.items()}
