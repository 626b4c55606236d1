"""Service tests of the load balancer: a real lb on port 0 in front of fake upstreams (also on
port 0), asserting on what the client got and what each upstream saw."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from cache.app import Config as CacheConfig
from cache.app import make_server as make_cache
from httpkit import Request, Response, Server, Upstream
from httpkit.config import ConfigError
from lb.app import Balancer, Config, Resolver, make_server, resolve
from tests.api.helpers import error_code
from tests.fakes import (FakeClock, FakeResolver, FakeUpstream, Lab, closed_port_address,
                         wait_until)


@dataclass
class RunningLB:
    client: Upstream
    balancer: Balancer


StartLB = Callable[..., RunningLB]


def balancer_of(server: Server) -> Balancer:
    """The Balancer behind an lb server (its router forwards unknown paths to it)."""
    balancer = getattr(server.router.fallback, "__self__", None)
    assert isinstance(balancer, Balancer)
    return balancer


@pytest.fixture
def start_lb(lab: Lab) -> StartLB:
    """Start an lb over ``upstreams``; health checks every 0.05 s unless told otherwise."""
    def start(*upstreams: str, resolver: Resolver = resolve, **options: Any) -> RunningLB:
        options.setdefault("health_interval", 0.05)
        config = Config(port=0, upstreams=upstreams, **options)
        server = lab.serve(make_server(config, resolver))
        return RunningLB(lab.client(server.url), balancer_of(server))
    return start


def start_upstreams(lab: Lab, count: int) -> list[FakeUpstream]:
    return [lab.upstream() for _ in range(count)]


def addresses(upstreams: list[FakeUpstream]) -> list[str]:
    return [upstream.address for upstream in upstreams]


# --- stories ---------------------------------------------------------------------------------

def get_many(lb: RunningLB, count: int, path: str = "/tweets") -> list[int]:
    """GET ``path`` ``count`` times; return the statuses."""
    return [lb.client.request("GET", path).status for _ in range(count)]


def gets_seen(upstreams: list[FakeUpstream]) -> list[int]:
    """How many GETs each upstream has been sent."""
    return [len(upstream.requests("GET")) for upstream in upstreams]


def lb_stats(lb: RunningLB) -> dict[str, dict[str, Any]]:
    """``/_lb/stats``, each upstream keyed by its address."""
    answer = lb.client.request("GET", "/_lb/stats")
    assert answer.status == 200
    return {upstream["address"]: upstream for upstream in answer.json()["upstreams"]}


def is_healthy(lb: RunningLB, address: str) -> bool:
    return bool(lb_stats(lb)[address]["healthy"])


def owner(balancer: Balancer, path: str) -> str:
    """The upstream a path goes to first."""
    return balancer.candidates(path)[0].address


COMPOSE_REPLICAS = ["172.18.0.5:8101", "172.18.0.6:8101", "172.18.0.7:8101"]


def offline_balancer(strategy: str, replicas: list[str]) -> Balancer:
    """A Balancer over made-up addresses, never started: for choosing, not for sending."""
    balancer = Balancer(Config(upstreams=("cache:8101",), strategy=strategy),
                        FakeResolver({"cache:8101": replicas}))
    balancer.refresh()
    return balancer


# --- spreading -------------------------------------------------------------------------------

def test_round_robin_spreads_requests_evenly(lab: Lab, start_lb: StartLB) -> None:
    upstreams = start_upstreams(lab, 3)
    lb = start_lb(*addresses(upstreams))
    assert get_many(lb, 300) == [200] * 300
    assert gets_seen(upstreams) == [100, 100, 100]
    stats = lb_stats(lb)
    assert [stats[address]["requests"] for address in addresses(upstreams)] == [100] * 3
    assert all(stats[address]["healthy"] for address in addresses(upstreams))


def test_the_hash_strategy_sends_each_path_to_one_upstream(lab: Lab,
                                                           start_lb: StartLB) -> None:
    upstreams = start_upstreams(lab, 3)
    lb = start_lb(*addresses(upstreams), strategy="hash")
    paths = [f"/tweets/{number}" for number in range(60)]
    for _ in range(3):
        for path in paths:
            assert lb.client.request("GET", path).status == 200
    receivers = {path: {upstream.address for upstream in upstreams
                        for seen in upstream.requests() if seen.target == path}
                 for path in paths}
    assert all(len(receiver) == 1 for receiver in receivers.values()), receivers
    assert all(count > 0 for count in gets_seen(upstreams))  # different paths spread
    assert sum(gets_seen(upstreams)) == 180


def test_the_hash_strategy_moves_only_the_paths_of_an_unhealthy_upstream() -> None:
    balancer = offline_balancer("hash", COMPOSE_REPLICAS)
    paths = [f"/users/u{number}/timeline" for number in range(300)]
    before = {path: owner(balancer, path) for path in paths}
    dead = balancer.targets[1]
    dead.healthy = False
    after = {path: owner(balancer, path) for path in paths}
    assert {path: before[path] for path in paths if before[path] != dead.address} == {
        path: after[path] for path in paths if before[path] != dead.address}
    assert dead.address not in after.values()
    balancer.stop()


def test_the_hash_strategy_spreads_paths_evenly_over_replicas() -> None:
    balancer = offline_balancer("hash", COMPOSE_REPLICAS)
    shares = Counter(owner(balancer, f"/tweets/{number}") for number in range(1, 30_001))
    balancer.stop()
    assert all(9_000 <= shares[address] <= 11_000 for address in COMPOSE_REPLICAS), shares


# --- dead and unwell upstreams ---------------------------------------------------------------

def test_a_killed_upstream_costs_no_failed_request_and_is_readmitted_when_back(
        lab: Lab, start_lb: StartLB) -> None:
    upstreams = start_upstreams(lab, 3)
    lb = start_lb(*addresses(upstreams))
    assert get_many(lb, 30) == [200] * 30  # each upstream now holds a kept-alive connection
    victim = upstreams[1]
    victim.stop()
    assert get_many(lb, 300) == [200] * 300
    assert gets_seen(upstreams)[1] == 10 and sum(gets_seen(upstreams)) == 330
    assert not is_healthy(lb, victim.address)
    revived = lab.upstream(port=victim.port)
    assert wait_until(lambda: is_healthy(lb, victim.address))
    assert get_many(lb, 30) == [200] * 30
    assert len(revived.requests("GET")) == 10


def test_an_upstream_failing_its_health_check_is_skipped_until_it_passes(
        lab: Lab, start_lb: StartLB) -> None:
    upstreams = start_upstreams(lab, 3)
    unwell = upstreams[2]
    lb = start_lb(*addresses(upstreams))
    unwell.healthy = False
    assert wait_until(lambda: not is_healthy(lb, unwell.address))
    assert get_many(lb, 30) == [200] * 30
    assert gets_seen(upstreams)[2] == 0 and sum(gets_seen(upstreams)) == 30
    unwell.healthy = True
    assert wait_until(lambda: is_healthy(lb, unwell.address))
    assert get_many(lb, 30) == [200] * 30
    assert gets_seen(upstreams)[2] == 10


def test_round_robin_stays_even_over_the_healthy_upstreams_when_one_is_skipped(
        lab: Lab, start_lb: StartLB) -> None:
    upstreams = start_upstreams(lab, 3)
    unwell = upstreams[1]
    lb = start_lb(*addresses(upstreams))
    unwell.healthy = False
    assert wait_until(lambda: not is_healthy(lb, unwell.address))
    assert get_many(lb, 300) == [200] * 300
    assert gets_seen(upstreams) == [150, 0, 150]


def test_a_post_to_a_dead_upstream_is_retried_on_the_next(lab: Lab, start_lb: StartLB) -> None:
    dead, live = closed_port_address(), lab.upstream()
    lb = start_lb(dead, live.address, health_interval=60)  # the dead one stays first in turn
    answer = lb.client.request("POST", "/tweets", b'{"text": "hello"}',
                               {"content-type": "application/json"})
    assert answer.status == 200
    [post] = live.requests("POST")
    assert (post.target, post.body) == ("/tweets", b'{"text": "hello"}')
    stats = lb_stats(lb)
    assert (stats[dead]["failures"], stats[dead]["healthy"]) == (1, False)


def test_a_post_whose_upstream_hangs_up_after_reading_it_is_a_502_not_replayed(
        lab: Lab, start_lb: StartLB) -> None:
    dying, others = lab.dying_upstream(), start_upstreams(lab, 2)
    lb = start_lb(dying.address, *addresses(others), health_interval=60)
    answer = lb.client.request("POST", "/tweets", b'{"text": "once"}')
    assert answer.status == 502
    assert error_code(answer) == "upstream_unavailable"
    assert [seen.body for seen in dying.requests("POST")] == [b'{"text": "once"}']
    assert [other.requests() for other in others] == [[], []]


def test_a_keyed_post_whose_upstream_hangs_up_after_reading_it_is_sent_to_the_next(
        lab: Lab, start_lb: StartLB) -> None:
    dying, others = lab.dying_upstream(), start_upstreams(lab, 2)
    lb = start_lb(dying.address, *addresses(others), health_interval=60)
    answer = lb.client.request("POST", "/tweets", b'{"text": "once"}',
                               {"idempotency-key": "k-1"})
    assert answer.status == 200  # the api answers a repeat of a key with its first answer
    assert answer.json()["upstream"] == others[0].address
    [seen] = others[0].requests("POST")
    assert (seen.body, seen.headers["idempotency-key"]) == (b'{"text": "once"}', "k-1")
    assert len(dying.requests("POST")) == 1


def test_a_get_whose_upstream_hangs_up_after_reading_it_is_replayed(
        lab: Lab, start_lb: StartLB) -> None:
    dying, others = lab.dying_upstream(), start_upstreams(lab, 2)
    lb = start_lb(dying.address, *addresses(others), health_interval=60)
    answer = lb.client.request("GET", "/tweets/1")
    assert answer.status == 200
    assert answer.json()["upstream"] == others[0].address
    assert len(dying.requests("GET")) == 1
    assert gets_seen(others) == [1, 0]


def test_a_post_on_a_kept_connection_whose_upstream_dies_is_not_replayed(
        lab: Lab, start_lb: StartLB) -> None:
    dying, live = lab.dying_upstream(answers=1, crash=True), lab.upstream()
    lb = start_lb(dying.address, live.address, health_interval=60)
    assert lb.client.request("GET", "/a").json()["upstream"] == "dying"  # connection kept
    assert lb.client.request("GET", "/b").json()["upstream"] == live.address
    answer = lb.client.request("POST", "/tweets", b'{"text": "once"}')  # dying's turn again
    assert len(dying.requests("POST")) == 1
    assert live.requests("POST") == []
    assert answer.status == 502
    assert error_code(answer) == "upstream_unavailable"


# --- what is forwarded -----------------------------------------------------------------------

def test_requests_and_answers_pass_through_with_x_forwarded_for_and_no_hop_by_hop(
        lab: Lab, start_lb: StartLB) -> None:
    def created(request: Request) -> Response:
        return Response(201, b'{"id": 7}', [("Content-Type", "application/json"),
                                            ("Location", "/tweets/7"), ("Connection", "x-bar"),
                                            ("X-Bar", "hop"), ("X-Kept", "yes")])

    upstream = lab.upstream(created)
    lb = start_lb(upstream.address)
    answer = lb.client.request("POST", "/tweets?draft=0", b'{"text": "\xc3\xa9"}', {
        "connection": "x-foo", "x-foo": "hop", "keep-alive": "timeout=5", "x-client": "web",
        "content-type": "application/json"})
    assert (answer.status, answer.body) == (201, b'{"id": 7}')
    assert (answer.headers["location"], answer.headers["x-kept"]) == ("/tweets/7", "yes")
    assert "x-bar" not in answer.headers
    [seen] = upstream.requests()
    assert (seen.method, seen.target, seen.body) == ("POST", "/tweets?draft=0",
                                                     b'{"text": "\xc3\xa9"}')
    assert seen.headers["x-forwarded-for"] == "127.0.0.1"
    assert (seen.headers["x-client"], seen.headers["content-type"]) == ("web",
                                                                        "application/json")
    for name in ("connection", "x-foo", "keep-alive"):
        assert name not in seen.headers


def test_x_forwarded_for_is_appended_to(lab: Lab, start_lb: StartLB) -> None:
    upstream = lab.upstream()
    lb = start_lb(upstream.address)
    lb.client.request("GET", "/", headers={"x-forwarded-for": "203.0.113.9"})
    assert upstream.requests()[0].headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"


def test_head_is_forwarded_with_the_get_content_length(lab: Lab, start_lb: StartLB) -> None:
    upstream = lab.upstream()
    lb = start_lb(upstream.address)
    body = lb.client.request("GET", "/tweets/1").body
    head = lb.client.request("HEAD", "/tweets/1")
    assert (head.status, head.body) == (200, b"")
    # The fake echoes the method: "HEAD" is one character longer than "GET"; n is 1 then 2.
    assert head.headers["content-length"] == str(len(body) + 1)


# --- names that resolve to several addresses -------------------------------------------------

def test_a_name_counts_as_every_address_it_resolves_to_and_follows_changes(
        lab: Lab, start_lb: StartLB) -> None:
    upstreams = start_upstreams(lab, 3)
    resolver = FakeResolver({"cache:8101": addresses(upstreams)})
    lb = start_lb("cache:8101", resolver=resolver)
    assert get_many(lb, 30) == [200] * 30
    assert gets_seen(upstreams) == [10, 10, 10]

    resolver.table["cache:8101"] = addresses(upstreams[:2])  # scaled down
    lb.balancer.refresh()
    assert sorted(lb_stats(lb)) == sorted(addresses(upstreams[:2]))
    assert get_many(lb, 30) == [200] * 30
    assert gets_seen(upstreams) == [25, 25, 10]

    resolver.table["cache:8101"] = addresses(upstreams)  # scaled up again
    lb.balancer.refresh()
    assert get_many(lb, 30) == [200] * 30
    assert gets_seen(upstreams) == [35, 35, 20]


def test_names_are_re_resolved_in_the_background(lab: Lab, start_lb: StartLB) -> None:
    upstreams = start_upstreams(lab, 2)
    resolver = FakeResolver({"cache:8101": addresses(upstreams[:1])})
    lb = start_lb("cache:8101", resolver=resolver, resolve_interval=0.05)
    assert list(lb_stats(lb)) == addresses(upstreams[:1])
    resolver.table["cache:8101"] = addresses(upstreams)
    assert wait_until(lambda: sorted(lb_stats(lb)) == sorted(addresses(upstreams)))
    assert get_many(lb, 10) == [200] * 10
    assert gets_seen(upstreams) == [5, 5]


def test_a_name_that_stops_resolving_keeps_its_last_known_addresses(
        lab: Lab, start_lb: StartLB) -> None:
    upstream = lab.upstream()
    name = f"replicas:{upstream.port}"
    resolver = FakeResolver({name: [upstream.address]})
    lb = start_lb(name, resolver=resolver)
    del resolver.table[name]  # DNS hiccup
    lb.balancer.refresh()
    assert list(lb_stats(lb)) == [upstream.address]
    assert get_many(lb, 3) == [200] * 3


# --- the lb's own routes ---------------------------------------------------------------------

def test_stats_show_each_upstream_with_its_health_requests_and_cache(
        lab: Lab, start_lb: StartLB) -> None:
    origin, plain = lab.upstream(), lab.upstream()
    cache = lab.serve(make_cache(CacheConfig(port=0, upstream_url=origin.url), FakeClock()))
    cache_address = f"127.0.0.1:{cache.server_port}"
    lb = start_lb(cache_address, plain.address)
    assert get_many(lb, 4, "/tweets/1") == [200] * 4  # the cache sees a miss, then a hit
    answer = lb.client.request("GET", "/_lb/stats")
    assert answer.headers["cache-control"] == "no-store"
    assert answer.json()["strategy"] == "round_robin"
    stats = lb_stats(lb)
    assert (stats[plain.address]["healthy"], stats[plain.address]["requests"],
            stats[plain.address]["cache"]) == (True, 2, None)
    behind_cache = stats[cache_address]
    assert (behind_cache["healthy"], behind_cache["requests"]) == (True, 2)
    assert {key: behind_cache["cache"][key] for key in ("hits", "misses", "entries")} == {
        "hits": 1, "misses": 1, "entries": 1}
    assert len(origin.requests()) == 1
    assert plain.requests("GET")[0].target == "/tweets/1"  # stats probes are not forwarded


def test_healthz_is_ok_while_one_upstream_is_healthy_and_503_when_none(
        lab: Lab, start_lb: StartLB) -> None:
    live, dead = lab.upstream(), closed_port_address()
    lb = start_lb(live.address, dead)
    assert wait_until(lambda: not is_healthy(lb, dead))
    answer = lb.client.request("GET", "/healthz")
    assert (answer.status, answer.json()) == (200, {"status": "ok"})
    live.stop()
    assert wait_until(lambda: lb.client.request("GET", "/healthz").status == 503)
    assert error_code(lb.client.request("GET", "/healthz")) == "no_upstream"
    nowhere = lb.client.request("GET", "/tweets")
    assert nowhere.status == 503
    assert error_code(nowhere) == "no_upstream"


# --- configuration ---------------------------------------------------------------------------

def clear_lb_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HOST", "PORT", "LB_UPSTREAMS", "LB_STRATEGY", "LB_HEALTH_S", "LB_RESOLVE_S",
                 "UPSTREAM_TIMEOUT_S", "LOG_REQUESTS", "LB_WORKERS"):
        monkeypatch.delenv(name, raising=False)


def test_configuration_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_lb_environment(monkeypatch)
    assert Config.from_env() == Config()
    monkeypatch.setenv("LB_UPSTREAMS", " cache:8101 , [::1]:8102,")
    monkeypatch.setenv("LB_STRATEGY", "Hash")
    config = Config.from_env()
    assert (config.upstreams, config.strategy) == (("cache:8101", "[::1]:8102"), "hash")
    monkeypatch.setenv("LB_STRATEGY", "round-robin")
    assert Config.from_env().strategy == "round_robin"


@pytest.mark.parametrize("name, value", [("LB_STRATEGY", "random"),
                                         ("LB_UPSTREAMS", "cache"),
                                         ("LB_UPSTREAMS", "cache:http")])
def test_bad_configuration_is_refused(monkeypatch: pytest.MonkeyPatch, name: str,
                                      value: str) -> None:
    clear_lb_environment(monkeypatch)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError):
        Config.from_env()


def test_the_change_feed_is_not_served_through_the_lb(lab: Lab, start_lb: StartLB) -> None:
    upstreams = start_upstreams(lab, 2)
    for upstream in upstreams:
        lab.feed(upstream).publish(["tweet/1"])
    lb = start_lb(*addresses(upstreams))
    for query in ("", "?after=0&wait=5", "?epoch=x&after=1"):
        answer = lb.client.request("GET", f"/_changes{query}")
        assert answer.status == 404 and error_code(answer) == "not_found"
    assert [upstream.feed_polls for upstream in upstreams] == [0, 0]
    assert gets_seen(upstreams) == [0, 0]
