"""Service tests of soft changes (stale-while-revalidate): a real cache following the change
feed of a fake upstream. A soft change makes the cache fetch the tagged entries readers use
again at once, answering them meanwhile (``X-Cache: STALE``, for at most CACHE_STALE_S), and
drop those nobody read. Time is a fake clock; only the feed's delivery and the background
fetch are waited for, with a deadline."""
from __future__ import annotations

import threading
from typing import Any

import pytest

from cache.app import Config, make_server
from httpkit import Request, Response, Upstream, json_response
from httpkit.feed import ChangeFeed
from tests.fakes import FakeClock, FakeUpstream, Lab, wait_until

WINDOW = 1.0


class TaggedUpstream:
    """Answers ``/tweets/{n}`` with a version number, tagged ``tweet/{n}``."""

    def __init__(self, lab: Lab) -> None:
        self.version = 1
        self.gate: threading.Event | None = None  # when set, answers wait for it
        self.fake: FakeUpstream = lab.upstream(self.answer)
        self.fake.feed = ChangeFeed()

    def answer(self, request: Request) -> Response:
        version = self.version
        if self.gate is not None:
            self.gate.wait(timeout=15)
        tweet = request.path.rsplit("/", 1)[1]
        return json_response({"tweet": tweet, "version": version},
                             headers=[("Surrogate-Key", f"tweet/{tweet}")])

    def fetches(self, target: str) -> int:
        return sum(1 for seen in self.fake.requests("GET") if seen.target == target)


@pytest.fixture
def upstream(lab: Lab) -> TaggedUpstream:
    return TaggedUpstream(lab)


@pytest.fixture
def cache(lab: Lab, clock: FakeClock, upstream: TaggedUpstream) -> Upstream:
    config = Config(port=0, upstream_url=upstream.fake.url, stale_window=WINDOW, feed_wait=5.0)
    server = lab.serve(make_server(config, clock))
    client = lab.client(server.url)
    assert wait_until(lambda: following(client)), "the cache never reached the feed"
    return client


def following(cache: Upstream) -> bool:
    return all(u["state"] == "following" for u in feed_stats(cache)["upstreams"])


def feed_stats(cache: Upstream) -> dict[str, Any]:
    stats: dict[str, Any] = cache.request("GET", "/_cache/stats").json()["feed"]
    return stats


def read(cache: Upstream, target: str) -> tuple[str, int]:
    answer = cache.request("GET", target)
    assert answer.status == 200
    return answer.headers["x-cache"], answer.json()["version"]


def publish(upstream: TaggedUpstream, cache: Upstream, keys: list[str], soft: bool) -> None:
    """Publish on the upstream's feed and wait until the cache has heard it."""
    assert upstream.fake.feed is not None
    seq = upstream.fake.feed.publish(keys, soft=soft)
    assert wait_until(lambda: feed_stats(cache)["upstreams"][0]["seq"] >= seq)


def read_twice(cache: Upstream, target: str) -> None:
    """Fetch a page and read it from the cache once: an entry readers use."""
    assert read(cache, target)[0] == "MISS"
    assert read(cache, target)[0] == "HIT"


def test_a_soft_change_fetches_again_at_once_what_readers_use(
        upstream: TaggedUpstream, cache: Upstream) -> None:
    read_twice(cache, "/tweets/1")
    read_twice(cache, "/tweets/2")
    upstream.version = 2
    publish(upstream, cache, ["tweet/1"], soft=True)
    # Nobody reads: the cache fetches it again by itself, so the next reader gets the truth.
    assert wait_until(lambda: upstream.fetches("/tweets/1") == 2)
    assert wait_until(lambda: read(cache, "/tweets/1") == ("HIT", 2))
    assert read(cache, "/tweets/2") == ("HIT", 1)  # not tagged: untouched
    assert upstream.fetches("/tweets/2") == 1
    assert feed_stats(cache)["revalidations"] == 1


def test_while_it_is_fetched_again_the_old_copy_is_answered_stale(
        lab: Lab, upstream: TaggedUpstream, cache: Upstream) -> None:
    read_twice(cache, "/tweets/1")
    upstream.gate = threading.Event()
    lab.gates.append(upstream.gate)
    upstream.version = 2
    publish(upstream, cache, ["tweet/1"], soft=True)
    assert [read(cache, "/tweets/1") for _ in range(5)] == [("STALE", 1)] * 5
    upstream.gate.set()
    assert wait_until(lambda: read(cache, "/tweets/1") == ("HIT", 2))
    assert upstream.fetches("/tweets/1") == 2  # the first miss, and one fetch again
    stats = feed_stats(cache)
    assert stats["stale_hits"] >= 5 and stats["revalidations"] == 1


def test_an_entry_nobody_read_is_dropped_not_fetched_again(
        upstream: TaggedUpstream, cache: Upstream) -> None:
    assert read(cache, "/tweets/1") == ("MISS", 1)  # stored, never answered from memory
    upstream.version = 2
    publish(upstream, cache, ["tweet/1"], soft=True)
    assert read(cache, "/tweets/1") == ("MISS", 2)
    assert upstream.fetches("/tweets/1") == 2 and feed_stats(cache)["revalidations"] == 0


def test_an_entry_stale_for_longer_than_the_window_is_no_longer_answered(
        lab: Lab, upstream: TaggedUpstream, cache: Upstream, clock: FakeClock) -> None:
    read_twice(cache, "/tweets/1")
    upstream.gate = threading.Event()  # the fetch again hangs
    lab.gates.append(upstream.gate)
    upstream.version = 2
    publish(upstream, cache, ["tweet/1"], soft=True)
    assert read(cache, "/tweets/1") == ("STALE", 1)
    clock.advance(WINDOW + 0.001)  # never answered that old: this reader waits for the fetch
    answers: list[tuple[str, int]] = []
    reader = threading.Thread(target=lambda: answers.append(read(cache, "/tweets/1")))
    reader.start()
    assert wait_until(lambda: feed_stats(cache)["stale_hits"] == 1 and reader.is_alive()), \
        (answers, feed_stats(cache))
    upstream.gate.set()
    reader.join(timeout=15)
    assert answers == [("MISS", 2)], (answers, feed_stats(cache))


def test_a_hard_change_drops_a_stale_entry(upstream: TaggedUpstream, cache: Upstream) -> None:
    read_twice(cache, "/tweets/1")
    upstream.version = 2
    publish(upstream, cache, ["tweet/1"], soft=True)
    publish(upstream, cache, ["tweet/1"], soft=False)
    assert read(cache, "/tweets/1") == ("MISS", 2)


def test_a_fetch_under_way_across_a_soft_change_is_stored_stale(
        lab: Lab, upstream: TaggedUpstream, cache: Upstream) -> None:
    upstream.gate = threading.Event()
    lab.gates.append(upstream.gate)
    answers: list[tuple[str, int]] = []
    reader = threading.Thread(target=lambda: answers.append(read(cache, "/tweets/1")))
    reader.start()
    assert wait_until(lambda: upstream.fetches("/tweets/1") == 1)
    upstream.version = 2  # too late for the fetch under way, which read version 1
    publish(upstream, cache, ["tweet/1"], soft=True)
    upstream.gate.set()
    reader.join(timeout=5)
    assert answers == [("MISS", 1)]
    assert read(cache, "/tweets/1") == ("STALE", 1)  # kept, but not as fresh
    assert wait_until(lambda: read(cache, "/tweets/1") == ("HIT", 2))
