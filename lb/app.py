"""lb: a load balancer — a reverse proxy spreading requests over a list of upstreams.

Round robin by default; ``LB_STRATEGY=hash`` sends each path to one replica (rendezvous
hashing, so a replica's death moves only its own paths), which multiplies the caches' hit rate
and makes a write's invalidation hold across the tier. A name that resolves to several
addresses (``docker compose --scale cache=N``) counts as all of them and is re-resolved every
LB_RESOLVE_S. An upstream that refuses a connection or fails its /healthz is skipped until its
health check passes again. A request that never reached an upstream is retried on the next
one; one whose upstream failed after receiving it is replayed only if it is a GET or HEAD, or
carries an Idempotency-Key (the api answers a repeat with the first answer).

Environment: HOST (127.0.0.1), PORT (8000), LB_UPSTREAMS (127.0.0.1:8101,127.0.0.1:8102),
LB_STRATEGY (round_robin | hash), LB_HEALTH_S (1), LB_RESOLVE_S (5), UPSTREAM_TIMEOUT_S (15),
LB_WORKERS (processes sharing the port: 2, or 1 on a one-core machine; see docs/REPORT.md.
Above 1, a master process forks them and replaces one that dies. They share the round-robin
turn and the request counts through ``lb.tally``; each checks health on its own, and
/_lb/stats shows the answering worker's health view), LOG_REQUESTS (off).

Own routes: GET /healthz, GET /_lb/stats; GET /_changes is a 404 (the caches' change feed is
not served through the load balancer).
"""
from __future__ import annotations

import hashlib
import itertools
import logging
import os
import threading
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Callable

from httpkit import (HTTPError, Request, Response, Router, Server, Upstream, UpstreamError,
                     json_response, serve)
from httpkit.breaker import STALL_S, FailFast
from httpkit.client import resolve
from httpkit.config import ConfigError, env_bool, env_float, env_int, env_str, run_main
from httpkit.proxy import failure, send, to_response
from lb.tally import Tally

log = logging.getLogger(__name__)

REPLAYABLE = frozenset({"GET", "HEAD"})
NO_STORE = [("Cache-Control", "no-store")]
STRATEGIES = ("round_robin", "hash")
WORKERS = min(2, os.cpu_count() or 1)  # the lb is stateless, so it can use a second core

Resolver = Callable[[str, int], list[str]]


@dataclass(frozen=True, kw_only=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8000
    upstreams: tuple[str, ...] = ("127.0.0.1:8101", "127.0.0.1:8102")
    strategy: str = "round_robin"
    health_interval: float = 1.0
    resolve_interval: float = 5.0
    timeout: float = 15.0
    log_requests: bool = False
    workers: int = WORKERS
    fail_fast: FailFast = FailFast(stall_s=STALL_S["lb"])

    @classmethod
    def from_env(cls) -> Config:
        """Read the configuration from the environment."""
        upstreams = tuple(name.strip() for name in env_str("LB_UPSTREAMS", "").split(",")
                          if name.strip()) or cls.upstreams
        for name in upstreams:
            split_host_port(name)
        strategy = env_str("LB_STRATEGY", cls.strategy).lower().replace("-", "_")
        if strategy not in STRATEGIES:
            raise ConfigError(f"LB_STRATEGY={strategy!r} must be one of {', '.join(STRATEGIES)}")
        return cls(host=env_str("HOST", cls.host), port=env_int("PORT", cls.port, 0),
                   upstreams=upstreams, strategy=strategy,
                   health_interval=env_float("LB_HEALTH_S", 1.0, 0.05),
                   resolve_interval=env_float("LB_RESOLVE_S", 5.0, 0.1),
                   timeout=env_float("UPSTREAM_TIMEOUT_S", 15.0, 0.1),
                   log_requests=env_bool("LOG_REQUESTS", False),
                   workers=env_int("LB_WORKERS", WORKERS, 1), fail_fast=FailFast.from_env("lb"))


def split_host_port(name: str) -> tuple[str, int]:
    """Split ``host:port``; raise ConfigError when it is not one."""
    host, _, port = name.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()):
        raise ConfigError(f"LB_UPSTREAMS entry {name!r} is not host:port")
    return host.strip("[]"), int(port)


class Target:
    """One upstream address with its connections, health and counters."""

    def __init__(self, address: str, timeout: float, fail_fast: FailFast = FailFast()) -> None:
        self.address = address
        self.upstream = Upstream(f"http://{address}", read_timeout=timeout, fail_fast=fail_fast)
        self.probe = Upstream(f"http://{address}", connect_timeout=0.5, read_timeout=1.0)
        self.seed = address.encode()[:64]  # keys the hash (blake2b keys hold 64 bytes)
        self.healthy = True

    def close(self) -> None:
        self.upstream.close()
        self.probe.close()


class Balancer:
    """Choose upstreams, forward to them, and keep their list and health up to date."""

    def __init__(self, config: Config, resolver: Resolver = resolve) -> None:
        self.config = config
        self.resolver = resolver
        self.targets: tuple[Target, ...] = ()  # replaced whole, never mutated: read lock-free
        self.tally = Tally(config.workers)  # made before the workers fork, shared by them
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def routes(self) -> Router:
        """Return the routing table: own routes, everything else balanced."""
        router = Router(fallback=self.forward)
        router.add("GET", "/healthz", self.health)
        router.add("GET", "/_lb/stats", self.stats)
        router.add("GET", "/_changes", self.no_feed)
        return router

    def no_feed(self, request: Request) -> Response:
        # A cache follows its upstream's feed directly; the feed is not a public API.
        raise HTTPError(HTTPStatus.NOT_FOUND, "the change feed is not served here")

    def health(self, request: Request) -> Response:
        if not any(target.healthy for target in self.targets):
            raise HTTPError(HTTPStatus.SERVICE_UNAVAILABLE, "no upstream is healthy",
                            "no_upstream")
        return json_response({"status": "ok"}, headers=NO_STORE)

    def stats(self, request: Request) -> Response:
        totals = self.tally.totals()  # every worker's counts; the health is this worker's view
        upstreams = []
        for target in self.targets:
            requests, failures = totals.get(target.address, (0, 0))
            upstreams.append({"address": target.address, "healthy": target.healthy,
                              "requests": requests, "failures": failures,
                              "cache": cache_stats(target)})
        return json_response({"strategy": self.config.strategy, "worker": os.getpid(),
                              "workers": self.config.workers, "upstreams": upstreams},
                             headers=NO_STORE)

    def forward(self, request: Request) -> Response:
        """Send the request to the first upstream in turn that takes it."""
        for target in self.candidates(request.path):
            try:
                answer = send(target.upstream, request)
            except UpstreamError as err:
                self.count(target, failed=True)
                target.healthy = False  # skipped until its health check passes again
                log.warning("lb: %s failed: %s", target.address, err)
                if err.sent and not replayable(request):
                    raise failure(err, "the upstream") from None
                continue
            self.count(target, failed=False)
            return to_response(answer)
        raise HTTPError(HTTPStatus.SERVICE_UNAVAILABLE, "no upstream could take the request",
                        "no_upstream")

    def candidates(self, path: str) -> list[Target]:
        """Return the targets to try, in order: healthy ones first, the rest as a last resort."""
        targets = self.targets
        if not targets:
            return []
        healthy = [t for t in targets if t.healthy]
        resting = [t for t in targets if not t.healthy]
        if self.config.strategy == "hash":
            # Rendezvous hashing: each path goes to the replica with the highest score.
            key = path.encode()
            return sorted(healthy, key=lambda t: score(key, t.seed), reverse=True) + resting
        if not healthy:
            return resting
        start = self.tally.turn() % len(healthy)
        return healthy[start:] + healthy[:start] + resting

    def count(self, target: Target, failed: bool) -> None:
        with self._lock:
            self.tally.add(target.address, failed)

    def refresh(self) -> None:
        """Resolve every upstream name again; keep known targets, add new, drop gone."""
        addresses: list[str] = []
        for name in self.config.upstreams:
            host, port = split_host_port(name)
            try:
                addresses.extend(self.resolver(host, port))
            except OSError as err:
                log.warning("lb: cannot resolve %s: %s", host, err)
                addresses.extend(t.address for t in self.targets
                                 if t.address.endswith(f":{port}"))
        known = {target.address: target for target in self.targets}
        wanted = list(dict.fromkeys(addresses))
        self.targets = tuple(known.get(a) or Target(a, self.config.timeout, self.config.fail_fast)
                             for a in wanted)
        for address, target in known.items():
            if address not in wanted:
                target.close()

    def check_health(self) -> None:
        """Probe every target's /healthz once."""
        for target in self.targets:
            try:
                target.healthy = target.probe.request("GET", "/healthz").status == 200
            except UpstreamError:
                target.healthy = False

    def start(self, worker: int = 0) -> None:
        """Resolve the upstreams, then keep them and their health fresh in the background
        (in each worker: ``worker`` is its number, 0 for the first or only one)."""
        self.tally.attach(worker)
        self.refresh()
        threading.Thread(target=self._watch, name="lb-watch", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        for target in self.targets:
            target.close()

    def _watch(self) -> None:
        per_resolve = max(1, round(self.config.resolve_interval / self.config.health_interval))
        for tick in itertools.count(1):
            if self._stopping.wait(self.config.health_interval):
                return
            if tick % per_resolve == 0:
                self.refresh()
            self.check_health()


def replayable(request: Request) -> bool:
    """Tell whether a request that may have been received may be sent again elsewhere."""
    return request.method in REPLAYABLE or "idempotency-key" in request.headers


def score(key: bytes, seed: bytes) -> int:
    """Return a well-mixed score for a (path, replica) pair: CRC32 mixes too little."""
    return int.from_bytes(hashlib.blake2b(key, digest_size=8, key=seed).digest(), "big")


def cache_stats(target: Target) -> Any:
    """Return an upstream's own /_cache/stats, or None if it has none."""
    try:
        answer = target.probe.request("GET", "/_cache/stats")
        return answer.json() if answer.status == 200 else None
    except (UpstreamError, ValueError):
        return None


def make_server(config: Config, resolver: Resolver = resolve) -> Server:
    """Build the load balancer's server, unstarted."""
    balancer = Balancer(config, resolver)
    server = Server((config.host, config.port), balancer.routes(), name="lb",
                    log_requests=config.log_requests)
    server.on_start.append(lambda: balancer.start(server.worker))
    server.on_close.append(balancer.stop)
    return server


def main() -> None:
    """Run the load balancer until SIGINT or SIGTERM."""
    run_main(Config.from_env, lambda config: serve(make_server(config), config.workers))
