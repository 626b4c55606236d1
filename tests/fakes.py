"""Fakes the cache and load-balancer tests talk to, and the lab that starts and stops them.

- ``FakeUpstream``: an ``httpkit.Server`` on 127.0.0.1 that records every request it is sent
  (method, target, headers, body) and answers each from a programmable function. Its own
  ``/healthz`` and a 404 ``/_cache/stats`` are answered but not recorded, so a load
  balancer's probes never show up among what it "saw".
- ``Lab.dying_upstream``: a scripted upstream on a bare socket (``tests.harness``) that
  reads a request and hangs up without a word, as a process that crashes mid-request does.
- ``numbered`` and ``keyed`` answers: JSON naming the request and its number, ``keyed``
  with a Surrogate-Key per path.
- ``FeedReader``: reads a service's change feed as a cache's follower would.
- ``FakeClock`` (moved by hand) and ``FakeResolver`` (rewritten by hand).
- ``Lab``: everything one test started, stopped when the test ends: gates opened and change
  feeds closed first (so no long poll holds a thread), then clients closed and servers
  stopped, newest first.
"""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

from httpkit import HTTPError, Request, Response, Router, Server, Upstream, json_response
from httpkit.feed import KEEP, SURROGATE_KEY, ChangeFeed, changes_handler
from tests.harness import (AfterScript, Answer, ScriptedUpstream, Seen, free_port,
                           start_in_thread, stop_thread)


Responder = Callable[[Request], Response]  # how a FakeUpstream answers


def numbered(upstream: FakeUpstream) -> Responder:
    """Answer 200 with a JSON body naming the request and how many came before it, so two
    answers for the same target differ and a stale copy is easy to tell from a fresh one."""
    def answer(request: Request) -> Response:
        return json_response({"method": request.method, "target": request.target,
                              "n": len(upstream.seen), "upstream": upstream.address})
    return answer


def keyed(upstream: FakeUpstream, keys: dict[str, str]) -> Responder:
    """Numbered answers (as ``numbered``) that carry ``Surrogate-Key: keys[path]`` where the
    table names the path, as the store and api tag what an answer shows."""
    plain = numbered(upstream)

    def answer(request: Request) -> Response:
        response = plain(request)
        if request.path in keys:
            response.headers.append((SURROGATE_KEY, keys[request.path]))
        return response
    return answer


class HangingUpServer(Server):
    """A Server that, when closed, hangs up every connection it still holds, as a killed
    process would (a plain Server keeps answering kept-alive connections after shutdown)."""

    def __init__(self, address: tuple[str, int], router: Router, **options: Any) -> None:
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, router, **options)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already gone
        super().server_close()


class FakeUpstream:
    """A tiny upstream that records what it was sent and answers with ``answer``."""

    def __init__(self, answer: Responder | None = None, port: int = 0) -> None:
        self.seen: list[Seen] = []
        self.probes = 0  # /healthz and /_cache/stats requests, answered but not recorded
        self.feed_polls = 0  # /_changes requests, answered but not recorded
        self.healthy = True
        self.feed: ChangeFeed | None = None  # none: /_changes is a 404, as with no feed
        self.answer = answer or numbered(self)
        self._lock = threading.Lock()
        router = Router(fallback=self.record)
        router.add("GET", "/healthz", self.health)
        router.add("GET", "/_cache/stats", self.no_cache_stats)
        router.add("GET", "/_changes", self.changes)
        self.server = HangingUpServer(("127.0.0.1", port), router, name="fake-upstream",
                                      idle_timeout=5.0)
        # Stopping drains the requests under way: a waiting long poll is answered first.
        self.server.on_stop.append(lambda: self.feed.wake() if self.feed else None)
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.server_port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> FakeUpstream:
        self.thread = start_in_thread(self.server)
        return self

    def stop(self) -> None:
        """Stop serving and hang up every connection; safe to call twice."""
        thread, self.thread = self.thread, None
        if thread is not None:
            stop_thread(self.server, thread)

    def record(self, request: Request) -> Response:
        with self._lock:
            self.seen.append(Seen(request.method, request.target, dict(request.headers),
                                  request.body))
        return self.answer(request)

    def health(self, request: Request) -> Response:
        with self._lock:
            self.probes += 1
        if not self.healthy:
            raise HTTPError(503, "this fake upstream is told to be unwell", "unwell")
        return json_response({"status": "ok"})

    def no_cache_stats(self, request: Request) -> Response:
        with self._lock:
            self.probes += 1
        raise HTTPError(404, "a fake upstream keeps no cache")

    def changes(self, request: Request) -> Response:
        with self._lock:
            self.feed_polls += 1
        if self.feed is None:
            raise HTTPError(404, "this fake upstream has no change feed")
        return changes_handler(self.feed)(request)

    def requests(self, method: str | None = None) -> list[Seen]:
        """Return what it was sent (only requests of ``method`` if given)."""
        with self._lock:
            return [seen for seen in self.seen if method in (None, seen.method)]


class FakeClock:
    """A monotonic clock that only moves when the test moves it."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeResolver:
    """Resolve names from a table the test rewrites; a name not in it does not resolve."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table: dict[str, list[str]] = dict(table or {})

    def __call__(self, host: str, port: int) -> list[str]:
        name = f"{host}:{port}"
        if name not in self.table:
            raise socket.gaierror(f"cannot resolve {name}")
        return list(self.table[name])


class FeedReader:
    """Read a service's ``GET /_changes`` as a cache's follower does, one answer at a time and
    never waiting: the first contact (a reset) says where the feed is, each ``read`` what it
    published since the last."""

    def __init__(self, client: Upstream) -> None:
        self.client = client
        first = self.answer("")
        assert first["reset"] is True, first
        self.epoch, self.seq = str(first["epoch"]), int(first["seq"])

    def answer(self, query: str) -> dict[str, Any]:
        answer = self.client.request("GET", f"/_changes?{query}")
        assert answer.status == 200, answer.body
        assert answer.headers["cache-control"] == "no-store"
        data: dict[str, Any] = answer.json()
        return data

    def read(self) -> dict[str, Any]:
        """Return what was published since the last read (it must not be a reset)."""
        data = self.answer(f"epoch={self.epoch}&after={self.seq}&wait=0")
        assert "reset" not in data, data
        self.seq = int(data["seq"])
        return data

    def keys(self) -> list[str]:
        """Return the keys (to drop) published since the last read; none may be soft."""
        data = self.read()
        assert data["soft"] == [], data
        keys: list[str] = data["keys"]
        return keys


def dying_answer(request: Seen) -> bytes:
    body = json.dumps({"target": request.target, "upstream": "dying"}).encode()
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


def closed_port_address() -> str:
    """Return ``127.0.0.1:port`` where nothing listens (a port just released)."""
    return f"127.0.0.1:{free_port()}"


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes; return whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def http_get(url: str) -> tuple[int, bytes]:
    """GET a URL on a new connection (as a browser or curl would); errors raise OSError."""
    with urllib.request.urlopen(url, timeout=5) as answer:
        return int(answer.status), answer.read()


def answers_ok(url: str) -> bool:
    """Whether GET ``url`` answers 200 now."""
    try:
        return http_get(url)[0] == 200
    except OSError:
        return False


@dataclass
class Lab:
    """What one test started; ``close`` opens the gates and closes the feeds, then stops
    everything newest first."""

    gates: list[threading.Event] = field(default_factory=list)
    feeds: list[ChangeFeed] = field(default_factory=list)
    stops: list[Callable[[], None]] = field(default_factory=list)

    def gate(self) -> threading.Event:
        """An event a slow fake upstream waits on; always opened before anything stops."""
        gate = threading.Event()
        self.gates.append(gate)
        return gate

    def feed(self, upstream: FakeUpstream | None = None, keep: int = KEEP) -> ChangeFeed:
        """A new change feed (a new epoch), served by ``upstream`` if given; closed, which
        answers every long poll waiting on it, before anything stops."""
        feed = ChangeFeed(keep)
        self.feeds.append(feed)
        if upstream is not None:
            upstream.feed = feed
        return feed

    def upstream(self, answer: Responder | None = None, port: int = 0) -> FakeUpstream:
        upstream = FakeUpstream(answer, port).start()
        self.stops.append(upstream.stop)
        return upstream

    def scripted_upstream(self, *script: Answer,
                          after: AfterScript = "silent") -> ScriptedUpstream:
        upstream = ScriptedUpstream(list(script), after).start()
        self.stops.append(upstream.stop)
        return upstream

    def dying_upstream(self, answers: int = 0, crash: bool = False) -> ScriptedUpstream:
        """An upstream that answers its first ``answers`` requests with a 200 (on a kept-alive
        connection), then reads the next one and hangs up without answering; with ``crash``
        it also stops listening at that moment, as a process that died would."""
        return self.scripted_upstream(*[Answer(dying_answer)] * answers,
                                      after="crash" if crash else "hang up")

    def serve(self, server: Server) -> Server:
        thread = start_in_thread(server)
        self.stops.append(lambda: stop_thread(server, thread))
        return server

    def client(self, url: str, timeout: float = 5.0) -> Upstream:
        client = Upstream(url, read_timeout=timeout)
        self.stops.append(client.close)
        return client

    def close(self) -> None:
        for gate in self.gates:
            gate.set()
        for feed in self.feeds:
            feed.close()
        for stop in reversed(self.stops):
            stop()
