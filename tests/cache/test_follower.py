"""Following an upstream's change feed (``cache.follower``): one ``FeedFollower.poll`` at a
time against a fake upstream serving a real ``ChangeFeed``, then ``Followers`` over the
addresses a fake resolver gives, and a real cache that keeps answering while the feed is gone.
Polls ask with ``wait=0`` where the test drives them one by one, so no poll is held open."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from cache.app import Config, make_server
from cache.follower import NO_FEED_RETRY_S, RETRY_S, FeedFollower, Followers
from httpkit import Upstream
from tests.cache.test_app import cache_stats
from tests.fakes import FakeClock, FakeResolver, FakeUpstream, Lab, keyed, wait_until


@dataclass
class Heard:
    """What a follower handed to its cache, in order."""

    calls: list[tuple[str, list[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keys(self, keys: list[str]) -> None:
        with self.lock:
            self.calls.append(("keys", keys))

    def soft(self, keys: list[str]) -> None:
        with self.lock:
            self.calls.append(("soft", keys))

    def reset(self) -> None:
        with self.lock:
            self.calls.append(("reset", []))

    def take(self) -> list[tuple[str, list[str]]]:
        """Return what was heard since the last take."""
        with self.lock:
            calls, self.calls = self.calls, []
        return calls

    def all_keys(self) -> list[str]:
        with self.lock:
            return [key for kind, keys in self.calls if kind == "keys" for key in keys]


@pytest.fixture
def heard() -> Heard:
    return Heard()


def follower_of(lab: Lab, upstream: FakeUpstream, heard: Heard,
                clock: FakeClock | None = None) -> FeedFollower:
    follower = FeedFollower(upstream.url, heard.keys, heard.reset, wait=0,
                            clock=clock or FakeClock(), on_soft=heard.soft)
    lab.stops.append(follower.upstream.close)
    return follower


# --- one follower, one poll at a time --------------------------------------------------------

def test_first_contact_is_a_reset_then_keys_are_handed_over_as_they_come(
        lab: Lab, heard: Heard) -> None:
    upstream = lab.upstream()
    feed = lab.feed(upstream)
    feed.publish(["tweet/1"])  # before the cache came: its copies are newer than this
    follower = follower_of(lab, upstream, heard)
    assert follower.poll() == 0.0
    assert heard.take() == [("reset", [])]
    state = follower.state
    assert (state.state, state.epoch, state.seq, state.resets) == ("following", feed.epoch, 1, 1)

    assert follower.poll() == 0.0  # nothing new: ask again at once
    assert heard.take() == []
    feed.publish(["tweet/7", "timeline"])
    feed.publish(["tweet/8"], soft=True)
    follower.poll()
    assert heard.take() == [("keys", ["tweet/7", "timeline"]), ("soft", ["tweet/8"])]
    assert (state.seq, state.changes, state.keys, state.resets) == (3, 1, 3, 1)
    follower.poll()
    assert heard.take() == []
    assert upstream.feed_polls == 4 and upstream.requests() == []


def test_the_lag_is_the_time_from_publication_to_arrival(lab: Lab, heard: Heard) -> None:
    upstream = lab.upstream()
    clock = FakeClock(2_000.0)
    feed = lab.feed(upstream)
    feed.clock = clock
    follower = follower_of(lab, upstream, heard, clock)
    follower.poll()
    feed.publish(["tweet/1"])
    clock.advance(0.25)
    follower.poll()
    assert follower.state.lag_s == pytest.approx(0.25)
    assert follower.state.view()["lag_s"] == pytest.approx(0.25)


def test_after_the_upstream_was_unreachable_the_follower_catches_up_on_what_it_missed(
        lab: Lab, heard: Heard) -> None:
    upstream = lab.upstream()
    feed = lab.feed(upstream)
    follower = follower_of(lab, upstream, heard)
    follower.poll()
    feed.publish(["tweet/1"])
    follower.poll()
    heard.take()
    upstream.stop()
    delays = [follower.poll() for _ in range(3)]
    assert follower.state.state == "unreachable"
    assert all(delay > 0 for delay in delays) and delays == sorted(delays)  # backing off
    assert heard.take() == []  # nothing dropped: the cache lives on its TTL meanwhile
    feed.publish(["tweet/2"])  # writes go on while this cache cannot hear of them
    feed.publish(["tweet/3", "timeline"])
    back = lab.upstream(port=upstream.port)
    back.feed = feed  # the same process, reachable again: the same epoch
    assert follower.poll() < RETRY_S[0]  # reached: no more backing off
    assert heard.take() == [("keys", ["tweet/2", "tweet/3", "timeline"])]
    state = follower.state
    assert (state.state, state.seq, state.resets) == ("following", 3, 1)


def test_a_new_epoch_is_a_reset(lab: Lab, heard: Heard) -> None:
    upstream = lab.upstream()
    old = lab.feed(upstream)
    follower = follower_of(lab, upstream, heard)
    follower.poll()
    old.publish(["tweet/1"])
    follower.poll()
    heard.take()
    new = lab.feed(upstream)  # the upstream restarted: its feed starts again at 0
    new.publish(["tweet/9"])
    follower.poll()
    assert heard.take() == [("reset", [])]
    assert (follower.state.epoch, follower.state.seq, follower.state.resets) == (
        new.epoch, 1, 2)
    new.publish(["tweet/10"])
    follower.poll()
    assert heard.take() == [("keys", ["tweet/10"])]


def test_a_follower_too_far_behind_is_reset(lab: Lab, heard: Heard) -> None:
    upstream = lab.upstream()
    feed = lab.feed(upstream, keep=2)
    follower = follower_of(lab, upstream, heard)
    follower.poll()
    heard.take()
    for number in range(3):
        feed.publish([f"tweet/{number}"])
    follower.poll()
    assert heard.take() == [("reset", [])]
    assert follower.state.seq == 3


def test_an_upstream_without_a_feed_leaves_the_cache_on_its_ttl(lab: Lab, heard: Heard) -> None:
    upstream = lab.upstream()  # no feed: /_changes is a 404
    follower = follower_of(lab, upstream, heard)
    assert follower.poll() == NO_FEED_RETRY_S
    assert follower.state.state == "no_feed"
    assert heard.take() == []
    assert upstream.feed_polls == 1


def test_an_unreachable_upstream_hands_nothing_over(lab: Lab, heard: Heard) -> None:
    upstream = lab.upstream()
    follower = follower_of(lab, upstream, heard)
    upstream.stop()
    assert follower.poll() > 0
    assert follower.state.state == "unreachable"
    assert follower.state.view()["since_reached_s"] is None  # never reached
    assert heard.take() == []


# --- every address of the upstream's name ----------------------------------------------------

def follower_threads() -> set[str]:
    return {thread.name for thread in threading.enumerate() if thread.name.startswith("feed-")}


def test_every_address_the_name_resolves_to_is_followed_and_a_gone_one_no_longer(
        lab: Lab, heard: Heard) -> None:
    first, second = lab.upstream(), lab.upstream()
    feeds = lab.feed(first), lab.feed(second)
    resolver = FakeResolver({"api.test:8200": [first.address, second.address]})
    followers = Followers("http://api.test:8200", heard.keys, heard.reset, wait=5.0,
                          resolve_interval=60.0, resolver=resolver, on_soft=heard.soft)
    lab.stops.append(followers.stop)
    followers.refresh()
    assert set(followers.following) == {first.address, second.address}
    assert wait_until(lambda: [s["resets"] for s in followers.stats()] == [1, 1])
    feeds[0].publish(["tweet/1"])
    feeds[1].publish(["tweet/2"])
    assert wait_until(lambda: sorted(heard.all_keys()) == ["tweet/1", "tweet/2"])
    assert {state["address"] for state in followers.stats()} == {first.address, second.address}

    followers.refresh()  # the same addresses: no second follower of either
    assert len(followers.following) == 2
    assert len(follower_threads() & {f"feed-{first.address}", f"feed-{second.address}"}) == 2

    resolver.table["api.test:8200"] = [first.address]  # the second replica went away
    followers.refresh()
    assert set(followers.following) == {first.address}
    assert [state["address"] for state in followers.stats()] == [first.address]
    feeds[1].publish(["tweet/lost"])  # answers the long poll under way; then it stops
    assert wait_until(lambda: f"feed-{second.address}" not in follower_threads())
    polls = second.feed_polls
    feeds[1].publish(["tweet/never"])
    feeds[0].publish(["tweet/3"])
    assert wait_until(lambda: "tweet/3" in heard.all_keys())
    assert "tweet/never" not in heard.all_keys()
    assert second.feed_polls == polls


def test_a_name_that_stops_resolving_keeps_what_is_followed(lab: Lab, heard: Heard) -> None:
    upstream = lab.upstream()
    lab.feed(upstream)
    resolver = FakeResolver({"api.test:8200": [upstream.address]})
    followers = Followers("http://api.test:8200", heard.keys, heard.reset, wait=5.0,
                          resolve_interval=60.0, resolver=resolver)
    lab.stops.append(followers.stop)
    followers.refresh()
    resolver.table.clear()  # a DNS hiccup is not a replica going away
    followers.refresh()
    assert set(followers.following) == {upstream.address}


def test_stop_ends_every_follower(lab: Lab, heard: Heard) -> None:
    upstreams = [lab.upstream(), lab.upstream()]
    feeds = [lab.feed(upstream) for upstream in upstreams]
    resolver = FakeResolver({"api.test:8200": [u.address for u in upstreams]})
    followers = Followers("http://api.test:8200", heard.keys, heard.reset, wait=5.0,
                          resolve_interval=60.0, resolver=resolver)
    followers.refresh()
    assert wait_until(lambda: all(s["state"] == "following" for s in followers.stats()))
    followers.stop()
    for feed in feeds:
        feed.publish(["tweet/1"])  # answers the long polls under way
    names = {f"feed-{u.address}" for u in upstreams}
    assert wait_until(lambda: not follower_threads() & names)
    late = lab.upstream()
    lab.feed(late)
    resolver.table["api.test:8200"].append(late.address)  # a replica that came too late
    followers.refresh()  # stopped: resolving again starts nobody
    assert late.address not in followers.following
    assert f"feed-{late.address}" not in follower_threads() and late.feed_polls == 0


# --- a real cache while its upstream is away -------------------------------------------------

def feed_state(cache: Upstream) -> dict[str, Any]:
    state: dict[str, Any] = cache_stats(cache)["feed"]["upstreams"][0]
    return state


def test_while_the_feed_is_unreachable_the_cache_answers_its_copies_then_catches_up(
        lab: Lab, clock: FakeClock) -> None:
    upstream = lab.upstream()
    keys = {"/tweets/1": "tweet/1", "/tweets/2": "tweet/2"}
    upstream.answer = keyed(upstream, keys)
    feed = lab.feed(upstream)
    server = lab.serve(make_server(Config(port=0, upstream_url=upstream.url), clock))
    cache = lab.client(server.url)
    assert wait_until(lambda: feed_state(cache)["resets"] == 1)
    first = {target: cache.request("GET", target) for target in keys}
    assert [answer.headers["x-cache"] for answer in first.values()] == ["MISS", "MISS"]

    upstream.stop()
    assert wait_until(lambda: feed_state(cache)["state"] == "unreachable")
    clock.advance(30)
    for target in keys:  # the api is down: cached reads still answer (the TTL alone)
        copy = cache.request("GET", target)
        assert (copy.status, copy.headers["x-cache"]) == (200, "HIT")
        assert copy.body == first[target].body
    feed.publish(["tweet/1"])  # a write this cache could not hear of

    back = lab.upstream(port=upstream.port)
    back.answer = keyed(back, keys)
    back.feed = feed  # the same process reachable again: the same epoch
    assert wait_until(lambda: feed_state(cache)["seq"] == feed.seq, timeout=5.0)
    state = feed_state(cache)
    assert (state["state"], state["epoch"], state["resets"]) == ("following", feed.epoch, 1)
    assert cache.request("GET", "/tweets/1").headers["x-cache"] == "MISS"  # caught up
    assert cache.request("GET", "/tweets/2").headers["x-cache"] == "HIT"  # not reset
    clock.advance(31)
    assert cache.request("GET", "/tweets/2").headers["x-cache"] == "MISS"  # the TTL holds
