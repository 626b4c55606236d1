"""cache: a read cache in front of one upstream, run as N front caches and as ``dbcache``.

GET answers with status 200 are stored for CACHE_TTL_S, keyed by path and query; everything
else passes through untouched. Requests carrying Authorization and answers marked no-store,
private or setting a cookie are never stored. ``Cache-Control: no-cache`` on a request
fetches afresh and replaces the entry; a successful POST/PUT/PATCH/DELETE drops the entries of
its path and of its Location (RFC 9111 §4.4) and those tagged with the keys its answer names
in Changed-Keys. Concurrent misses for one key make one upstream request.

Every stored answer is indexed by the surrogate keys of its Surrogate-Key header, and the
cache follows its upstream's change feed (``cache.follower``): what another replica's write
made untrue is dropped here within moments, not at the end of the TTL. A fetch that was under
way when one of its keys changed is answered but not stored. Keys the feed names ``soft``
(like counts, lists under a stream of writes) are fetched again at once for the entries
readers use, the old copy still answered meanwhile (``X-Cache: STALE``, for at most
CACHE_STALE_S: RFC 5861's stale-while-revalidate), so readers of a much-liked tweet never wait
on a miss; entries nobody read since they were stored are dropped. Without a reachable feed
the cache lives by its TTL alone.

Environment: HOST (127.0.0.1), PORT (8101; dbcache 8300), UPSTREAM_URL (http://127.0.0.1:8200;
dbcache http://127.0.0.1:8400), CACHE_TTL_S (60), CACHE_MAX_ENTRIES (10000),
CACHE_MAX_BYTES (67108864, 64 MiB: what the stored answers may weigh together, bodies and
headers),
CACHE_FEED (on: follow the upstream's change feed; off: the TTL alone, the baseline),
CACHE_FEED_WAIT_S (20: how long one long poll waits), CACHE_STALE_S (1: how long an entry
marked stale by a soft change may still be answered while it is fetched again),
CACHE_RESOLVE_S (5: how often the upstream's name is resolved again to follow every
replica), UPSTREAM_TIMEOUT_S (10), LOG_REQUESTS (off).

Own routes: GET /healthz, GET /_cache/stats (never cached or forwarded).
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from cache.follower import Followers
from cache.ttl import TTLCache
from httpkit import (Request, Response, Router, Server, Upstream, UpstreamError, json_response,
                     serve)
from httpkit.breaker import STALL_S, FailFast
from httpkit.config import env_bool, env_float, env_int, env_str, run_main
from httpkit.feed import CHANGED_KEYS, SURROGATE_KEY
from httpkit.messages import error_body
from httpkit.proxy import failure, send, to_response

SAFE_METHODS = frozenset({"GET", "HEAD"})
NO_STORE = [("Cache-Control", "no-store")]
SURROGATE_KEY_LOWER = SURROGATE_KEY.lower()


@dataclass(frozen=True, kw_only=True)
class Config:
    name: str = "cache"
    host: str = "127.0.0.1"
    port: int = 8101
    upstream_url: str = "http://127.0.0.1:8200"
    ttl: float = 60.0
    max_entries: int = 10_000
    max_bytes: int = 64 << 20
    timeout: float = 10.0
    log_requests: bool = False
    follow_feed: bool = True
    feed_wait: float = 20.0
    resolve_interval: float = 5.0
    stale_window: float = 1.0
    fail_fast: FailFast = FailFast(stall_s=STALL_S["cache"])

    @classmethod
    def from_env(cls, name: str = "cache", port: int = 8101,
                 upstream_url: str = "http://127.0.0.1:8200") -> Config:
        """Read the configuration from the environment, with this service's defaults."""
        return cls(name=name, host=env_str("HOST", cls.host), port=env_int("PORT", port, 0),
                   upstream_url=env_str("UPSTREAM_URL", upstream_url),
                   ttl=env_float("CACHE_TTL_S", 60.0, 0),
                   max_entries=env_int("CACHE_MAX_ENTRIES", 10_000, 1),
                   max_bytes=env_int("CACHE_MAX_BYTES", cls.max_bytes, 1),
                   timeout=env_float("UPSTREAM_TIMEOUT_S", 10.0, 0.1),
                   log_requests=env_bool("LOG_REQUESTS", False),
                   follow_feed=env_bool("CACHE_FEED", True),
                   feed_wait=env_float("CACHE_FEED_WAIT_S", 20.0, 0.1),
                   resolve_interval=env_float("CACHE_RESOLVE_S", 5.0, 0.1),
                   stale_window=env_float("CACHE_STALE_S", 1.0, 0),
                   fail_fast=FailFast.from_env(name))


@dataclass(slots=True)
class Stored:
    """A stored answer, with the headers to replay (hop-by-hop ones already removed)."""

    body: bytes
    headers: list[tuple[str, str]]

    def weight(self) -> int:
        """Return what this answer takes to keep: its body and headers, and a rough 200
        bytes of Python objects around them."""
        return 200 + len(self.body) + sum(len(name) + len(value) for name, value in self.headers)


@dataclass(eq=False)
class Flight:
    """One upstream fetch that concurrent misses for the same key wait on."""

    key: str
    done: threading.Event = field(default_factory=threading.Event)
    response: Response | None = None
    storable: bool = True  # cleared when a write invalidates the key mid-flight
    changed: set[str] = field(default_factory=set)  # surrogate keys that changed mid-flight
    softened: set[str] = field(default_factory=set)  # ... softly: store, but as stale
    clean: bool = True  # no key of the answer changed mid-flight: joiners may use it


class CachingProxy:
    """Answer from the TTL cache, or forward to the upstream and store what may be stored."""

    def __init__(self, upstream: Upstream, cache: TTLCache[Stored], name: str = "cache",
                 stale_window: float = 1.0) -> None:
        self.upstream = upstream
        self.cache = cache
        self.name = name
        self.stale_window = stale_window
        self.upstream_requests = 0
        self.refreshes = 0
        self.coalesced = 0  # misses answered by another request's fetch (single flight)
        self.refused = 0  # fetches not stored: one of their keys changed while under way
        self.stale_hits = 0  # answered from an entry marked stale, while it is fetched again
        self.revalidations = 0  # background fetches of entries marked stale
        self._stale: dict[str, float] = {}  # key -> when a soft change marked it
        self._refreshing: set[str] = set()
        self._refresher = ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"{name}-refresh")
        self.followers: Followers | None = None
        self._inflight: dict[str, Flight] = {}  # fetches a new miss may join, by key
        self._flights: set[Flight] = set()  # every fetch under way, joinable or not
        self._lock = threading.Lock()

    def routes(self) -> Router:
        """Return the routing table: own routes, everything else forwarded."""
        router = Router(fallback=self.handle)
        router.add("GET", "/healthz", self.health)
        router.add("GET", "/_cache/stats", self.stats)
        return router

    def health(self, request: Request) -> Response:
        return json_response({"status": "ok"}, headers=NO_STORE)

    def stats(self, request: Request) -> Response:
        counts = self.cache.stats
        return json_response({
            "name": self.name, "hits": counts.hits, "misses": counts.misses,
            "entries": len(self.cache), "evictions": counts.evictions,
            "expirations": counts.expirations, "invalidations": counts.invalidations,
            "refreshes": self.refreshes, "coalesced": self.coalesced,
            "upstream_requests": self.upstream_requests,
            "ttl_s": self.cache.ttl, "max_entries": self.cache.max_entries,
            "bytes": self.cache.stored_bytes, "max_bytes": self.cache.max_bytes,
            "too_large": counts.too_large,
            "feed": self.feed_stats(),
        }, headers=NO_STORE)

    def feed_stats(self) -> dict[str, Any] | None:
        """Return what following the change feed did, or None when it is switched off."""
        if self.followers is None:
            return None
        counts = self.cache.stats
        return {"dropped_by_key": counts.dropped_by_key, "dropped_by_reset": counts.cleared,
                "refused_in_flight": self.refused, "stale_hits": self.stale_hits,
                "revalidations": self.revalidations, "stale_window_s": self.stale_window,
                "upstreams": self.followers.stats()}

    def handle(self, request: Request) -> Response:
        """Answer any request that is not one of the cache's own."""
        if request.method not in SAFE_METHODS:
            return self.write(request)
        if "authorization" in request.headers:
            return self.forward(request, ("X-Cache", "MISS"))
        control = request.headers.get("cache-control")
        if control and "no-cache" in directives(control):
            with self._lock:
                self.refreshes += 1
            return self.fetch(request, join=False)
        # A dict look-up without the lock first: entries are rarely stale.
        stale = request.target in self._stale and self.staleness(request.target)
        hit = self.cache.get(request.target)
        if hit is not None:
            stored, age = hit
            state = "HIT"
            if stale:
                state = "STALE"
                with self._lock:
                    self.stale_hits += 1
                self.revalidate(request.target)  # unless already under way
            return Response(200, stored.body,
                            [*stored.headers, ("X-Cache", state), ("Age", str(int(age)))])
        if request.method == "HEAD":  # a HEAD answer has no body to share or store
            return self.forward(request, ("X-Cache", "MISS"))
        return self.fetch(request, join=True)

    def fetch(self, request: Request, join: bool) -> Response:
        """Fetch a missed key, or wait for the fetch already under way for it."""
        key = request.target
        with self._lock:
            flight = self._inflight.get(key) if join else None
            leading = flight is None
            if flight is None:
                flight = Flight(key)
                self._inflight.setdefault(key, flight)
                self._flights.add(flight)
            else:
                self.coalesced += 1
        if not leading:
            flight.done.wait(self.upstream.read_timeout + self.upstream.connect_timeout)
            if flight.response is None or not flight.clean:
                # Its answer may predate a change this request came after: ask afresh.
                return self.forward(request, ("X-Cache", "MISS"))
            return flight.response
        try:
            response = self.forward(request)
            self.keep(flight, response)
            response.headers += [("X-Cache", "MISS"), ("Age", "0")]
            flight.response = response
        finally:
            with self._lock:
                if self._inflight.get(key) is flight:
                    del self._inflight[key]
                self._flights.discard(flight)
            flight.done.set()
        return response

    def keep(self, flight: Flight, response: Response) -> None:
        """Store a fetched answer, unless it may not be or it changed while under way."""
        if not storable(response):
            self.cache.discard(flight.key)  # a refetch that cannot be stored replaces nothing
            with self._lock:  # a 404 from before a write at this path is no answer after it
                flight.clean = flight.storable
            return
        tags = surrogate_keys(response.headers)
        with self._lock:  # atomic with drop(): no change slips between the check and the put
            flight.clean = flight.storable and flight.changed.isdisjoint(tags)
            if flight.clean:
                self.cache.put(flight.key, Stored(response.body, list(response.headers)), tags)
                if flight.softened.isdisjoint(tags):
                    self._stale.pop(flight.key, None)
                else:  # its count may predate a like: answer it, and fetch it again soon
                    self._stale[flight.key] = self.cache.clock()
            else:
                self.refused += 1

    def write(self, request: Request) -> Response:
        """Forward an unsafe request; on success drop what it made stale (RFC 9111 §4.4)."""
        response = self.forward(request)
        if 200 <= response.status < 400:
            headers = {name.lower(): value for name, value in response.headers}
            paths = {request.target.partition("?")[0]}
            location = headers.get("location")
            if location:
                paths.add(urlsplit(location).path)
            for path in paths:
                self.invalidate(path)
            changed = headers.get(CHANGED_KEYS.lower(), "").split()
            if changed:  # at once here; the other replicas hear it from the feed
                self.drop(changed)
        return response

    def invalidate(self, path: str) -> None:
        """Drop the entries of ``path`` and keep fetches under way from storing them."""
        with self._lock:
            for flight in self._flights:
                if flight.key.partition("?")[0] == path:
                    flight.storable = False
            self.cache.invalidate_path(path)

    def drop(self, keys: list[str]) -> None:
        """Drop every entry tagged with one of ``keys`` (a change the feed announced)."""
        with self._lock:
            for flight in self._flights:
                flight.changed.update(keys)
            self.cache.drop_tagged(keys)

    def drop_everything(self) -> None:
        """Drop every entry and every fetch under way (the feed was reset)."""
        with self._lock:
            for flight in self._flights:
                flight.storable = False
            self.cache.clear()
            self._stale.clear()

    def soften(self, keys: list[str]) -> None:
        """Apply a soft change (a like count moved): fetch the tagged entries readers use
        again at once, answering the old copy meanwhile; drop those nobody read since they
        were stored, as a hard change would, rather than fetch what may not be asked for."""
        now = self.cache.clock()
        with self._lock:
            for flight in self._flights:
                flight.softened.update(keys)
            tagged = self.cache.tagged(keys)
            for key, read in tagged.items():
                if read:
                    self._stale.setdefault(key, now)
            while len(self._stale) > self.cache.max_entries:  # keys since evicted or dropped
                del self._stale[next(iter(self._stale))]
            self.cache.drop_keys([key for key, read in tagged.items() if not read])
        for key, read in tagged.items():
            if read:
                self.revalidate(key)

    def staleness(self, key: str) -> bool:
        """Tell whether ``key``'s entry is stale but may still be answered; drop it when it
        has been stale for longer than the window."""
        with self._lock:
            marked = self._stale.get(key)
            if marked is None:
                return False
            if self.cache.clock() - marked <= self.stale_window:
                return True
            del self._stale[key]
        self.cache.discard(key)
        return False

    def revalidate(self, key: str) -> None:
        """Fetch a stale entry again in the background, once at a time per key."""
        path, _, query = key.partition("?")
        request = Request("GET", key, unquote(path), query, {})
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)
            self.revalidations += 1
        try:
            self._refresher.submit(self._refresh, request)
        except RuntimeError:  # stopping: the stale answer stands, nothing is fetched again
            with self._lock:
                self._refreshing.discard(key)

    def _refresh(self, request: Request) -> None:
        try:
            self.fetch(request, join=True)
        finally:
            with self._lock:
                self._refreshing.discard(request.target)

    def close(self) -> None:
        """Stop the background fetches."""
        self._refresher.shutdown(wait=False, cancel_futures=True)

    def forward(self, request: Request, *extra: tuple[str, str]) -> Response:
        """Send the request upstream; an unreachable upstream becomes a 502/504 answer."""
        with self._lock:
            self.upstream_requests += 1
        try:
            return to_response(send(self.upstream, request), *extra)
        except UpstreamError as err:
            error = failure(err, f"{self.name}'s upstream")
            return json_response(error_body(error.code, error.message), error.status,
                                 list(error.headers.items()))


def directives(header: str) -> set[str]:
    """Return the lower-case directive names of a Cache-Control value."""
    return {part.split("=", 1)[0].strip().lower() for part in header.split(",")}


def surrogate_keys(headers: list[tuple[str, str]]) -> tuple[str, ...]:
    """Return the surrogate keys an answer names (what it shows)."""
    for name, value in headers:
        if name.lower() == SURROGATE_KEY_LOWER:
            return tuple(value.split())
    return ()


def storable(response: Response) -> bool:
    """Tell whether an answer to a GET may be stored (RFC 9111 §3, simplified)."""
    if response.status != 200:
        return False
    for name, value in response.headers:
        lower = name.lower()
        if lower == "set-cookie":
            return False
        if lower == "cache-control" and directives(value) & {"no-store", "private"}:
            return False
    return True


def make_server(config: Config, clock: Callable[[], float] = time.monotonic) -> Server:
    """Build the caching proxy's server, unstarted."""
    upstream = Upstream(config.upstream_url, read_timeout=config.timeout,
                        fail_fast=config.fail_fast)
    cache: TTLCache[Stored] = TTLCache(config.ttl, config.max_entries, clock,
                                       max_bytes=config.max_bytes, size=Stored.weight)
    proxy = CachingProxy(upstream, cache, config.name, config.stale_window)
    server = Server((config.host, config.port), proxy.routes(), name=config.name,
                    log_requests=config.log_requests)
    if config.follow_feed:
        followers = proxy.followers = Followers(upstream.url, proxy.drop, proxy.drop_everything,
                                                config.feed_wait, config.resolve_interval,
                                                on_soft=proxy.soften)
        server.on_start.append(followers.start)
        server.on_close.append(followers.stop)
    server.on_close.extend([proxy.close, upstream.close])
    return server


def main(name: str = "cache", port: int = 8101,
         upstream_url: str = "http://127.0.0.1:8200") -> None:
    """Run the caching proxy until SIGINT or SIGTERM."""
    run_main(lambda: Config.from_env(name, port, upstream_url),
             lambda config: serve(make_server(config)))
