"""Service tests of a cache kept true by surrogate keys: a real cache on port 0 in front of a
fake upstream whose answers carry Surrogate-Key and which serves a real change feed. What the
feed says is applied asynchronously, so a test waits (bounded) until the cache's follower has
read up to the feed's seq before it looks; TTLs pass on the fake clock. Soft changes (marked
stale, fetched again) are tested in test_stale.py."""
from __future__ import annotations

import threading
from typing import Any, Callable

import pytest

from cache.app import Config, make_server
from httpkit import Request, Response, Upstream, UpstreamResponse, json_response
from httpkit.feed import SURROGATE_KEY, ChangeFeed
from tests.cache.test_app import answering, cache_stats, get, x_cache
from tests.fakes import FakeClock, FakeUpstream, Lab, keyed, wait_until

StartCache = Callable[..., Upstream]

KEYS = {
    "/tweets/7": "tweet/7",
    "/tweets/8": "tweet/8",
    "/tweets": "timeline tweet/8 tweet/7",
    "/hashtags/cats/tweets": "tag/cats tweet/7",
    "/accounts/bob": "account/bob",
}


@pytest.fixture
def upstream(lab: Lab) -> FakeUpstream:
    """A fake api: numbered answers tagged as KEYS says."""
    upstream = lab.upstream()
    upstream.answer = keyed(upstream, KEYS)
    return upstream


@pytest.fixture
def feed(lab: Lab, upstream: FakeUpstream) -> ChangeFeed:
    return lab.feed(upstream)


@pytest.fixture
def start_cache(lab: Lab, clock: FakeClock, upstream: FakeUpstream) -> StartCache:
    """Start a cache in front of ``upstream``; return a client once its follower is in step
    with the feed (its first contact is a reset, which would drop what a test warms)."""
    def start(**options: Any) -> Upstream:
        options.setdefault("upstream_url", upstream.url)
        server = lab.serve(make_server(Config(port=0, **options), clock))
        cache = lab.client(server.url)
        if options.get("follow_feed", True) and upstream.feed is not None:
            in_step(cache, upstream.feed)
        return cache
    return start


@pytest.fixture
def cache(start_cache: StartCache, feed: ChangeFeed) -> Upstream:
    return start_cache()


def feed_stats(cache: Upstream) -> dict[str, Any]:
    stats: dict[str, Any] = cache_stats(cache)["feed"]
    return stats


def in_step(cache: Upstream, feed: ChangeFeed) -> None:
    """Wait until the cache's follower has read everything ``feed`` published."""
    def caught_up() -> bool:
        [state] = feed_stats(cache)["upstreams"]
        return bool(state["epoch"] == feed.epoch and state["seq"] == feed.seq)
    assert wait_until(caught_up), feed_stats(cache)


def states(cache: Upstream, targets: list[str]) -> list[str]:
    return [x_cache(get(cache, target)) for target in targets]


def warm(cache: Upstream, targets: list[str]) -> None:
    assert states(cache, targets) == ["MISS"] * len(targets)
    assert states(cache, targets) == ["HIT"] * len(targets)


def held(gate: threading.Event, version: dict[str, int]) -> Callable[[Request], Response]:
    """An upstream answer naming the data version current when the request arrived, held
    until ``gate`` opens: a read that began before a change and ends after it."""
    def answer(request: Request) -> Response:
        seen = version["now"]
        gate.wait(10)
        return json_response({"target": request.target, "version": seen},
                             headers=[(SURROGATE_KEY, KEYS.get(request.path, ""))])
    return answer


def get_in_thread(cache: Upstream, target: str) -> tuple[threading.Thread,
                                                         list[UpstreamResponse]]:
    answers: list[UpstreamResponse] = []
    reader = threading.Thread(target=lambda: answers.append(get(cache, target)), daemon=True)
    reader.start()
    return reader, answers


# --- the feed drops what a write made untrue -----------------------------------------------

def test_a_published_key_drops_exactly_the_entries_showing_it(
        cache: Upstream, feed: ChangeFeed, upstream: FakeUpstream) -> None:
    targets = list(KEYS)
    warm(cache, targets)
    feed.publish(["tweet/7"])  # an edit of tweet 7, through another replica
    in_step(cache, feed)
    assert states(cache, targets) == ["MISS", "HIT", "MISS", "MISS", "HIT"]
    assert get(cache, "/tweets/7").json()["n"] == len(targets) + 1  # fetched afresh
    stats = cache_stats(cache)
    assert stats["feed"]["dropped_by_key"] == 3
    assert stats["feed"]["dropped_by_reset"] == 0
    assert stats["invalidations"] == 0  # not by path: by key


def test_keys_nobody_stored_drop_nothing(cache: Upstream, feed: ChangeFeed) -> None:
    warm(cache, list(KEYS))
    feed.publish(["tweet/99", "account/carol", "tag/dogs"])
    in_step(cache, feed)
    assert states(cache, list(KEYS)) == ["HIT"] * len(KEYS)
    assert feed_stats(cache)["dropped_by_key"] == 0


def test_a_write_naming_changed_keys_drops_them_at_once_on_the_cache_it_passed(
        start_cache: StartCache, upstream: FakeUpstream) -> None:
    cache = start_cache(follow_feed=False)  # no feed: only the write's answer can tell it
    targets = list(KEYS)
    warm(cache, targets)
    upstream.answer = answering(200, b'{"id": 7}', ("Changed-Keys", "tweet/7 tag/cats"))
    assert cache.request("PUT", "/tweets/7", b'{"text": "edited #cats"}').status == 200
    upstream.answer = keyed(upstream, KEYS)
    assert states(cache, targets) == ["MISS", "HIT", "MISS", "MISS", "HIT"]


@pytest.mark.parametrize("status", [400, 403, 404, 503])
def test_a_failed_write_drops_nothing_whatever_keys_it_names(
        start_cache: StartCache, upstream: FakeUpstream, status: int) -> None:
    cache = start_cache(follow_feed=False)
    warm(cache, ["/tweets", "/tweets/8"])
    upstream.answer = answering(status, b'{"error": {"code": "no", "message": "no"}}',
                                ("Changed-Keys", "timeline tweet/8"))
    assert cache.request("DELETE", "/tweets/8").status == status
    upstream.answer = keyed(upstream, KEYS)
    assert states(cache, ["/tweets", "/tweets/8"]) == ["HIT", "HIT"]


# --- fetches under way across a change --------------------------------------------------------

def test_a_fetch_under_way_when_its_key_changes_is_answered_but_not_stored(
        lab: Lab, cache: Upstream, feed: ChangeFeed, upstream: FakeUpstream) -> None:
    gate, version = lab.gate(), {"now": 1}
    upstream.answer = held(gate, version)
    reader, answers = get_in_thread(lab.client(cache.url), "/tweets/7")
    assert wait_until(lambda: len(upstream.requests("GET")) == 1)
    version["now"] = 2
    feed.publish(["tweet/7"])
    in_step(cache, feed)
    gate.set()
    reader.join(5)
    assert (answers[0].status, answers[0].json()["version"]) == (200, 1)  # answered
    again = get(cache, "/tweets/7")
    assert (x_cache(again), again.json()["version"]) == ("MISS", 2)  # its copy was not kept
    assert feed_stats(cache)["refused_in_flight"] == 1
    assert x_cache(get(cache, "/tweets/7")) == "HIT"


def test_a_fetch_under_way_across_a_change_of_other_keys_is_stored(
        lab: Lab, cache: Upstream, feed: ChangeFeed, upstream: FakeUpstream) -> None:
    gate = lab.gate()
    upstream.answer = held(gate, {"now": 1})
    reader, answers = get_in_thread(lab.client(cache.url), "/tweets/7")
    assert wait_until(lambda: len(upstream.requests("GET")) == 1)
    feed.publish(["tweet/8", "timeline"])
    in_step(cache, feed)
    gate.set()
    reader.join(5)
    assert answers[0].status == 200
    assert x_cache(get(cache, "/tweets/7")) == "HIT"
    assert feed_stats(cache)["refused_in_flight"] == 0


def test_a_miss_after_a_change_does_not_take_the_answer_of_a_fetch_begun_before_it(
        lab: Lab, cache: Upstream, feed: ChangeFeed, upstream: FakeUpstream) -> None:
    gate, version = lab.gate(), {"now": 1}
    upstream.answer = held(gate, version)
    before, before_answers = get_in_thread(lab.client(cache.url), "/tweets/7")
    assert wait_until(lambda: len(upstream.requests("GET")) == 1)
    version["now"] = 2  # the write lands in the database ...
    feed.publish(["tweet/7"])  # ... and is announced before this next reader asks
    in_step(cache, feed)
    after, after_answers = get_in_thread(lab.client(cache.url), "/tweets/7")
    # It either waits on the fetch under way or makes its own; then the old fetch ends.
    assert wait_until(lambda: cache_stats(cache)["coalesced"] >= 1
                      or len(upstream.requests("GET")) >= 2)
    gate.set()
    before.join(5)
    after.join(5)
    assert before_answers[0].json()["version"] == 1
    assert after_answers[0].json()["version"] == 2, "it was answered from before the change"
    assert len(upstream.requests("GET")) == 2
    assert get(cache, "/tweets/7").json()["version"] == 2


def test_a_miss_after_a_write_through_this_cache_does_not_take_an_older_404(
        lab: Lab, cache: Upstream, upstream: FakeUpstream) -> None:
    """Read-after-write on the relaying cache: a reader that asks for the new tweet after
    its POST was answered must not be handed the 404 of a fetch begun before the post."""
    gate, exists = lab.gate(), {"now": False}

    def answer(request: Request) -> Response:
        if request.method == "POST":
            exists["now"] = True
            return Response(201, b'{"id": 9}', [("Content-Type", "application/json"),
                                                ("Location", "/tweets/9")])
        found = exists["now"]
        gate.wait(10)
        if not found:
            return answering(404, b'{"error": {"code": "not_found", "message": "no"}}')(request)
        return json_response({"id": 9}, headers=[(SURROGATE_KEY, "tweet/9")])
    upstream.answer = answer
    early, early_answers = get_in_thread(lab.client(cache.url), "/tweets/9")
    assert wait_until(lambda: len(upstream.requests("GET")) == 1)
    assert cache.request("POST", "/tweets", b'{"text": "hi"}').status == 201
    late, late_answers = get_in_thread(lab.client(cache.url), "/tweets/9")
    assert wait_until(lambda: cache_stats(cache)["coalesced"] >= 1
                      or len(upstream.requests("GET")) >= 2)
    gate.set()
    early.join(5)
    late.join(5)
    assert early_answers[0].status == 404  # it began before the tweet existed
    assert late_answers[0].status == 200, "the writer's own read missed what it wrote"


def test_concurrent_misses_with_no_change_still_share_one_fetch(
        lab: Lab, cache: Upstream, upstream: FakeUpstream) -> None:
    gate = lab.gate()
    upstream.answer = held(gate, {"now": 1})
    readers = [get_in_thread(lab.client(cache.url), "/tweets/7") for _ in range(3)]
    assert wait_until(lambda: cache_stats(cache)["coalesced"] == 2)
    gate.set()
    for reader, answers in readers:
        reader.join(5)
        assert answers[0].status == 200
    assert len(upstream.requests("GET")) == 1


# --- resets -----------------------------------------------------------------------------------

def restart_feed(lab: Lab, upstream: FakeUpstream, old: ChangeFeed) -> ChangeFeed:
    """Serve a new feed (a new epoch, as a restarted api's), and end the long poll under way
    on the old one so the follower asks the new one."""
    new = lab.feed(upstream)
    old.close()
    return new


def test_a_reset_drops_every_entry(lab: Lab, cache: Upstream, feed: ChangeFeed,
                                   upstream: FakeUpstream) -> None:
    upstream.answer = keyed(upstream, {})  # untagged answers go too
    warm(cache, list(KEYS))
    new = restart_feed(lab, upstream, feed)
    in_step(cache, new)
    assert feed_stats(cache)["upstreams"][0]["resets"] == 2
    assert states(cache, list(KEYS)) == ["MISS"] * len(KEYS)
    stats = cache_stats(cache)
    assert stats["feed"]["dropped_by_reset"] == len(KEYS)
    assert stats["feed"]["dropped_by_key"] == 0


def test_a_fetch_under_way_across_a_reset_is_not_stored(
        lab: Lab, cache: Upstream, feed: ChangeFeed, upstream: FakeUpstream) -> None:
    gate = lab.gate()
    upstream.answer = held(gate, {"now": 1})
    reader, answers = get_in_thread(lab.client(cache.url), "/accounts/bob")
    assert wait_until(lambda: len(upstream.requests("GET")) == 1)
    new = restart_feed(lab, upstream, feed)
    in_step(cache, new)
    gate.set()
    reader.join(5)
    assert answers[0].status == 200
    assert x_cache(get(cache, "/accounts/bob")) == "MISS"


# --- without the feed ---------------------------------------------------------------------

def test_with_the_feed_off_no_feed_is_ever_asked_and_the_ttl_alone_rules(
        lab: Lab, start_cache: StartCache, feed: ChangeFeed, upstream: FakeUpstream,
        clock: FakeClock) -> None:
    off = start_cache(follow_feed=False)
    warm(off, ["/tweets/7"])
    feed.publish(["tweet/7"])
    # A cache that follows a feed polls it as it starts: once this one has, the other had
    # the time to as well.
    other = lab.upstream()
    lab.feed(other)
    lab.serve(make_server(Config(port=0, upstream_url=other.url), clock))
    assert wait_until(lambda: other.feed_polls >= 1)
    assert x_cache(get(off, "/tweets/7")) == "HIT"
    assert upstream.feed_polls == 0
    assert cache_stats(off)["feed"] is None
    clock.advance(60)
    assert x_cache(get(off, "/tweets/7")) == "MISS"


def test_cache_feed_off_in_the_environment_switches_the_feed_off(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CACHE_FEED", raising=False)
    assert Config.from_env().follow_feed is True
    monkeypatch.setenv("CACHE_FEED", "off")
    assert Config.from_env().follow_feed is False


def test_an_upstream_without_a_feed_leaves_the_cache_working_on_its_ttl(
        start_cache: StartCache, upstream: FakeUpstream, clock: FakeClock) -> None:
    cache = start_cache()  # the fake answers /_changes with a 404
    assert wait_until(lambda: feed_stats(cache)["upstreams"][0]["state"] == "no_feed")
    warm(cache, ["/tweets/7"])
    clock.advance(59.9)
    assert x_cache(get(cache, "/tweets/7")) == "HIT"
    clock.advance(0.2)
    assert x_cache(get(cache, "/tweets/7")) == "MISS"
    assert upstream.feed_polls == 1  # asked once; not again for a while
