"""Service tests of the caching proxy: a real cache on port 0 in front of a fake upstream,
asserting on what the client got and what the upstream saw. TTLs pass on a fake clock."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

import pytest

from cache.app import Config, make_server
from httpkit import Request, Response, Upstream, UpstreamResponse, json_response
from tests.api.helpers import error_code
from tests.fakes import (FakeClock, FakeUpstream, Lab, Responder, closed_port_address, numbered,
                         wait_until)

StartCache = Callable[..., Upstream]


@pytest.fixture
def upstream(lab: Lab) -> FakeUpstream:
    """The fake upstream: numbered JSON answers unless a test reprograms ``answer``."""
    return lab.upstream()


@pytest.fixture
def start_cache(lab: Lab, clock: FakeClock, upstream: FakeUpstream) -> StartCache:
    """Start a cache (in front of ``upstream`` unless told otherwise); return a client."""
    def start(**options: Any) -> Upstream:
        options.setdefault("upstream_url", upstream.url)
        server = lab.serve(make_server(Config(port=0, **options), clock))
        return lab.client(server.url)
    return start


@pytest.fixture
def cache(start_cache: StartCache) -> Upstream:
    """A client of a cache with the default 60 s TTL in front of ``upstream``."""
    return start_cache()


# --- stories ---------------------------------------------------------------------------------

def get(cache: Upstream, target: str, **headers: str) -> UpstreamResponse:
    return cache.request("GET", target, headers={k.replace("_", "-"): v
                                                 for k, v in headers.items()})


def x_cache(answer: UpstreamResponse) -> str:
    return answer.headers.get("x-cache", "")


def cache_stats(cache: Upstream) -> dict[str, Any]:
    answer = cache.request("GET", "/_cache/stats")
    assert answer.status == 200
    stats: dict[str, Any] = answer.json()
    return stats


def answering(status: int, body: bytes = b"{}", *headers: tuple[str, str]) -> Responder:
    """An upstream answer: always this status, body and headers."""
    def answer(request: Request) -> Response:
        return Response(status, body, [("Content-Type", "application/json"), *headers])
    return answer


def held_at(gate: threading.Event, methods: frozenset[str], then: Responder) -> Responder:
    """An upstream answer that keeps requests of ``methods`` waiting until ``gate`` opens."""
    def answer(request: Request) -> Response:
        if request.method in methods:
            gate.wait(10)
        return then(request)
    return answer


def wait_for_stat(cache: Upstream, name: str, count: int) -> None:
    """Wait until the cache's own counter ``name`` reaches ``count``."""
    assert wait_until(lambda: cache_stats(cache)[name] >= count), cache_stats(cache)


# --- storing and serving ---------------------------------------------------------------------

def test_a_get_is_stored_and_the_second_is_a_hit_with_an_age(
        cache: Upstream, upstream: FakeUpstream, clock: FakeClock) -> None:
    first = get(cache, "/tweets/1")
    assert (first.status, x_cache(first), first.headers["age"]) == (200, "MISS", "0")
    clock.advance(5)
    second = get(cache, "/tweets/1")
    assert (second.status, x_cache(second), second.headers["age"]) == (200, "HIT", "5")
    assert second.body == first.body
    assert second.headers["content-type"] == "application/json"
    assert len(upstream.requests()) == 1


def test_the_age_grows_with_the_clock(cache: Upstream, clock: FakeClock) -> None:
    get(cache, "/tweets/1")
    ages = []
    for _ in range(3):
        clock.advance(12.7)
        ages.append(get(cache, "/tweets/1").headers["age"])
    assert ages == ["12", "25", "38"]


def test_an_entry_expires_after_the_ttl(cache: Upstream, upstream: FakeUpstream,
                                        clock: FakeClock) -> None:
    first = get(cache, "/tweets/1")
    clock.advance(59.9)
    assert x_cache(get(cache, "/tweets/1")) == "HIT"
    clock.advance(0.2)
    fresh = get(cache, "/tweets/1")
    assert (x_cache(fresh), fresh.headers["age"]) == ("MISS", "0")
    assert fresh.json()["n"] == 2 and first.json()["n"] == 1
    assert x_cache(get(cache, "/tweets/1")) == "HIT"
    assert len(upstream.requests()) == 2


def test_the_ttl_is_configurable(start_cache: StartCache, clock: FakeClock) -> None:
    cache = start_cache(ttl=5.0)
    get(cache, "/tweets/1")
    clock.advance(4.9)
    assert x_cache(get(cache, "/tweets/1")) == "HIT"
    clock.advance(0.2)
    assert x_cache(get(cache, "/tweets/1")) == "MISS"


def test_query_strings_are_part_of_the_key(cache: Upstream, upstream: FakeUpstream) -> None:
    get(cache, "/tweets?page=1")
    assert x_cache(get(cache, "/tweets?page=2")) == "MISS"
    assert x_cache(get(cache, "/tweets?page=1")) == "HIT"
    assert [seen.target for seen in upstream.requests()] == ["/tweets?page=1", "/tweets?page=2"]


def test_a_no_cache_request_fetches_afresh_and_replaces_the_entry(
        cache: Upstream, upstream: FakeUpstream, clock: FakeClock) -> None:
    assert get(cache, "/tweets/1").json()["n"] == 1
    clock.advance(10)
    refreshed = get(cache, "/tweets/1", cache_control="no-cache")
    assert (x_cache(refreshed), refreshed.json()["n"]) == ("MISS", 2)
    clock.advance(10)
    again = get(cache, "/tweets/1")
    assert (x_cache(again), again.json()["n"], again.headers["age"]) == ("HIT", 2, "10")
    assert upstream.requests()[-1].headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("answer", [
    answering(200, b"{}", ("Cache-Control", "no-store")),
    answering(200, b"{}", ("Cache-Control", "private, max-age=60")),
    answering(200, b"{}", ("Cache-Control", "max-age=60, No-Store")),
    answering(200, b"{}", ("Set-Cookie", "session=abc; HttpOnly")),
    answering(404, b'{"error": {"code": "not_found", "message": "no such tweet"}}'),
    answering(500, b'{"error": {"code": "internal", "message": "oops"}}'),
    answering(201, b"{}"),
], ids=["no-store", "private", "no-store-mixed-case", "set-cookie", "404", "500", "201"])
def test_answers_that_may_not_be_stored_are_never_stored(
        cache: Upstream, upstream: FakeUpstream, answer: Responder) -> None:
    upstream.answer = answer
    first, second = get(cache, "/tweets/1"), get(cache, "/tweets/1")
    assert [x_cache(first), x_cache(second)] == ["MISS", "MISS"]
    assert second.status == first.status and second.body == first.body
    assert len(upstream.requests()) == 2
    assert cache_stats(cache)["entries"] == 0


def test_a_request_with_authorization_is_never_stored(cache: Upstream,
                                                      upstream: FakeUpstream) -> None:
    private = get(cache, "/me/timeline", authorization="Bearer alice-token")
    assert (private.status, x_cache(private)) == (200, "MISS")
    assert upstream.requests()[0].headers["authorization"] == "Bearer alice-token"
    anonymous = get(cache, "/me/timeline")
    assert x_cache(anonymous) == "MISS" and anonymous.json()["n"] == 2
    assert cache_stats(cache)["entries"] == 1  # the anonymous answer, not alice's


# --- writes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_writes_pass_through_untouched(cache: Upstream, upstream: FakeUpstream,
                                       method: str) -> None:
    upstream.answer = answering(201, b'{"id": 7, "text": "<b>hi</b>"}',
                                ("Location", "/tweets/7"), ("X-Request-Id", "r-42"))
    body = b'{"text": "<b>hi</b> \xc3\xa9"}'
    answer = cache.request(method, "/tweets?draft=0", body,
                           {"content-type": "application/json", "x-client": "web"})
    assert answer.status == 201
    assert answer.body == b'{"id": 7, "text": "<b>hi</b>"}'
    assert answer.headers["location"] == "/tweets/7"
    assert answer.headers["x-request-id"] == "r-42"
    [seen] = upstream.requests()
    assert (seen.method, seen.target, seen.body) == (method, "/tweets?draft=0", body)
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-client"] == "web"


def test_a_successful_write_invalidates_its_path_all_queries_and_its_location(
        cache: Upstream, upstream: FakeUpstream) -> None:
    stale = ["/tweets", "/tweets?page=2", "/tweets/7", "/tweets/7?fields=text"]
    kept = ["/tweets/8", "/users/alice/timeline"]
    for target in stale + kept:
        get(cache, target)
    upstream.answer = answering(201, b'{"id": 7}', ("Location", "http://api:8200/tweets/7"))
    assert cache.request("POST", "/tweets", b'{"text": "hi"}').status == 201
    upstream.answer = numbered(upstream)
    assert [x_cache(get(cache, target)) for target in stale + kept] == [
        "MISS", "MISS", "MISS", "MISS", "HIT", "HIT"]
    assert cache_stats(cache)["invalidations"] == 4


@pytest.mark.parametrize("status", [400, 403, 404, 409, 500, 503])
def test_a_failed_write_invalidates_nothing(cache: Upstream, upstream: FakeUpstream,
                                            status: int) -> None:
    get(cache, "/tweets/7")
    upstream.answer = answering(status, b'{"error": {"code": "no", "message": "no"}}',
                                ("Location", "/tweets/7"))
    assert cache.request("DELETE", "/tweets/7").status == status
    upstream.answer = numbered(upstream)
    assert x_cache(get(cache, "/tweets/7")) == "HIT"


def test_a_write_during_a_fetch_keeps_that_fetch_from_storing_a_stale_answer(
        lab: Lab, cache: Upstream, upstream: FakeUpstream) -> None:
    gate = lab.gate()
    upstream.answer = held_at(gate, frozenset({"GET"}), numbered(upstream))
    reader = lab.client(cache.url)
    fetched: list[UpstreamResponse] = []
    fetching = threading.Thread(target=lambda: fetched.append(get(reader, "/tweets/7")))
    fetching.start()
    assert wait_until(lambda: len(upstream.requests("GET")) == 1)
    assert cache.request("DELETE", "/tweets/7").status == 200
    gate.set()
    fetching.join(5)
    assert fetched[0].status == 200
    assert x_cache(get(cache, "/tweets/7")) == "MISS"


# --- one upstream request for concurrent misses ----------------------------------------------

def test_twenty_concurrent_misses_make_one_upstream_request(
        lab: Lab, cache: Upstream, upstream: FakeUpstream) -> None:
    gate = lab.gate()
    upstream.answer = held_at(gate, frozenset({"GET"}), numbered(upstream))
    answers: list[UpstreamResponse] = []
    readers = [threading.Thread(target=lambda: answers.append(get(cache, "/trending")))
               for _ in range(20)]
    for reader in readers:
        reader.start()
    wait_for_stat(cache, "coalesced", 19)  # 19 wait on the one fetch under way
    gate.set()
    for reader in readers:
        reader.join(5)
    assert len(upstream.requests()) == 1
    assert [answer.status for answer in answers] == [200] * 20
    assert {answer.body for answer in answers} == {upstream_body("/trending", 1, upstream)}
    stats = cache_stats(cache)
    assert (stats["misses"], stats["upstream_requests"], stats["entries"]) == (20, 1, 1)
    assert stats["coalesced"] == 19


def upstream_body(target: str, n: int, upstream: FakeUpstream) -> bytes:
    return json_response({"method": "GET", "target": target, "n": n,
                          "upstream": upstream.address}).body


def test_a_get_arriving_during_a_head_fetch_gets_the_whole_body(
        lab: Lab, cache: Upstream, upstream: FakeUpstream) -> None:
    gate = lab.gate()
    upstream.answer = held_at(gate, frozenset({"GET", "HEAD"}), numbered(upstream))
    head_client = lab.client(cache.url)
    heading = threading.Thread(target=lambda: head_client.request("HEAD", "/trending"))
    heading.start()
    assert wait_until(lambda: len(upstream.requests("HEAD")) == 1)
    got: list[UpstreamResponse] = []
    getting = threading.Thread(target=lambda: got.append(get(cache, "/trending")))
    getting.start()
    assert wait_until(lambda: len(upstream.requests()) == 2)  # the GET made its own fetch
    gate.set()
    heading.join(5)
    getting.join(5)
    assert got[0].status == 200
    assert got[0].body != b"", "the GET was answered with the HEAD's empty body"
    assert got[0].json()["target"] == "/trending"


# --- the cache's own routes ------------------------------------------------------------------

def test_stats_count_what_happened_and_are_never_forwarded_nor_cached(
        start_cache: StartCache, upstream: FakeUpstream) -> None:
    cache = start_cache(max_entries=2)
    get(cache, "/a")
    get(cache, "/a")
    first = cache.request("GET", "/_cache/stats")
    assert first.headers["cache-control"] == "no-store"
    assert "x-cache" not in first.headers
    stats = first.json()
    assert {key: stats[key] for key in ("hits", "misses", "entries", "evictions",
                                        "upstream_requests")} == {
        "hits": 1, "misses": 1, "entries": 1, "evictions": 0, "upstream_requests": 1}
    get(cache, "/b")
    get(cache, "/c")  # evicts /a, the least recently used
    stats = cache_stats(cache)
    assert (stats["misses"], stats["entries"], stats["evictions"],
            stats["upstream_requests"]) == (3, 2, 1, 3)
    assert [seen.target for seen in upstream.requests()] == ["/a", "/b", "/c"]
    assert upstream.probes == 0


def test_healthz_answers_without_asking_the_upstream(cache: Upstream,
                                                     upstream: FakeUpstream) -> None:
    answer = cache.request("GET", "/healthz")
    assert (answer.status, answer.json()) == (200, {"status": "ok"})
    assert upstream.requests() == [] and upstream.probes == 0


# --- a broken upstream -----------------------------------------------------------------------

def test_an_upstream_that_is_down_gives_a_502_json_error(start_cache: StartCache) -> None:
    cache = start_cache(upstream_url=f"http://{closed_port_address()}")
    answer = get(cache, "/tweets/1")
    assert answer.status == 502
    assert error_code(answer) == "upstream_unavailable"
    assert cache.request("POST", "/tweets", b"{}").status == 502
    assert cache_stats(cache)["entries"] == 0


def test_an_upstream_that_never_answers_gives_a_504_json_error(
        lab: Lab, start_cache: StartCache, upstream: FakeUpstream) -> None:
    gate = lab.gate()
    upstream.answer = held_at(gate, frozenset({"GET"}), numbered(upstream))
    cache = start_cache(timeout=0.3)
    started = time.monotonic()
    answer = get(cache, "/tweets/1")
    assert answer.status == 504
    assert error_code(answer) == "upstream_timeout"
    assert time.monotonic() - started < 3


# --- what is forwarded -----------------------------------------------------------------------

def test_hop_by_hop_headers_are_dropped_and_x_forwarded_for_added(
        cache: Upstream, upstream: FakeUpstream) -> None:
    get(cache, "/tweets/1", connection="x-foo", x_foo="secret", keep_alive="timeout=5",
        x_kept="yes")
    get(cache, "/tweets/2", x_forwarded_for="203.0.113.9")
    first, second = upstream.requests()
    assert first.headers["x-kept"] == "yes"
    for name in ("connection", "x-foo", "keep-alive"):
        assert name not in first.headers
    assert first.headers["x-forwarded-for"] == "127.0.0.1"
    assert second.headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"


def test_hop_by_hop_headers_of_the_answer_are_dropped_stored_or_not(
        cache: Upstream, upstream: FakeUpstream) -> None:
    upstream.answer = answering(200, b"{}", ("Connection", "x-bar"), ("X-Bar", "hop"),
                                ("Keep-Alive", "timeout=5"), ("X-Kept", "yes"))
    for expected in ("MISS", "HIT"):
        answer = get(cache, "/tweets/1")
        assert x_cache(answer) == expected
        assert answer.headers["x-kept"] == "yes"
        assert "x-bar" not in answer.headers and "keep-alive" not in answer.headers


def test_head_is_answered_from_a_stored_get(cache: Upstream, upstream: FakeUpstream) -> None:
    body = get(cache, "/tweets/1").body
    head = cache.request("HEAD", "/tweets/1")
    assert (head.status, x_cache(head), head.body) == (200, "HIT", b"")
    assert head.headers["content-length"] == str(len(body))
    assert len(upstream.requests()) == 1


def test_head_on_a_miss_is_forwarded_with_the_get_content_length(
        cache: Upstream, upstream: FakeUpstream) -> None:
    head = cache.request("HEAD", "/tweets/1")
    assert (head.status, x_cache(head)) == (200, "MISS")
    assert upstream.requests()[0].method == "HEAD"
    expected = len(upstream_body("/tweets/1", 1, upstream))
    assert head.headers["content-length"] == str(expected + 1)  # the fake echoes "HEAD"


# --- configuration ---------------------------------------------------------------------------

def test_cache_and_dbcache_read_their_defaults_and_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HOST", "PORT", "UPSTREAM_URL", "CACHE_TTL_S", "CACHE_MAX_ENTRIES",
                 "UPSTREAM_TIMEOUT_S", "LOG_REQUESTS"):
        monkeypatch.delenv(name, raising=False)
    assert Config.from_env() == Config()
    dbcache = Config.from_env("dbcache", 8300, "http://127.0.0.1:8400")
    assert (dbcache.name, dbcache.port, dbcache.upstream_url) == (
        "dbcache", 8300, "http://127.0.0.1:8400")
    assert (dbcache.ttl, dbcache.max_entries) == (60.0, 10_000)
    monkeypatch.setenv("CACHE_TTL_S", "2.5")
    monkeypatch.setenv("CACHE_MAX_ENTRIES", "50")
    monkeypatch.setenv("UPSTREAM_URL", "http://store:8400")
    configured = Config.from_env("dbcache", 8300, "http://127.0.0.1:8400")
    assert (configured.ttl, configured.max_entries, configured.upstream_url) == (
        2.5, 50, "http://store:8400")
