"""Unit tests of TTLCache: no sockets, and time only moves when the fake clock is moved."""
from __future__ import annotations

import pytest

from cache.ttl import TTLCache
from tests.fakes import FakeClock


def cache_with(clock: FakeClock, ttl: float = 60.0, max_entries: int = 100) -> TTLCache[str]:
    return TTLCache(ttl, max_entries, clock)


def stored_keys(cache: TTLCache[str], *keys: str) -> list[str]:
    """Return which of ``keys`` are stored, leaving the hit and miss counters as they were."""
    hits, misses = cache.stats.hits, cache.stats.misses
    found = [key for key in keys if cache.get(key) is not None]
    cache.stats.hits, cache.stats.misses = hits, misses
    return found


def test_an_entry_is_a_hit_at_59_9_seconds_and_a_miss_at_60_1(clock: FakeClock) -> None:
    cache = cache_with(clock)
    cache.put("/tweets/1", "hello")
    clock.advance(59.9)
    assert cache.get("/tweets/1") == ("hello", pytest.approx(59.9))
    clock.advance(0.2)
    assert cache.get("/tweets/1") is None
    assert len(cache) == 0
    assert (cache.stats.hits, cache.stats.misses, cache.stats.expirations) == (1, 1, 1)


def test_the_ttl_counts_from_storing_not_from_the_last_read(clock: FakeClock) -> None:
    cache = cache_with(clock)
    cache.put("/tweets/1", "hello")
    clock.advance(59.0)
    assert cache.get("/tweets/1") is not None
    clock.advance(1.1)
    assert cache.get("/tweets/1") is None


def test_storing_again_replaces_the_value_and_restarts_the_ttl(clock: FakeClock) -> None:
    cache = cache_with(clock)
    cache.put("/tweets/1", "first")
    clock.advance(30)
    cache.put("/tweets/1", "second")
    clock.advance(40)  # 70 s after the first store, 40 s after the second
    assert cache.get("/tweets/1") == ("second", pytest.approx(40))
    assert len(cache) == 1


def test_the_least_recently_used_entry_is_evicted_not_the_oldest(clock: FakeClock) -> None:
    cache = cache_with(clock, max_entries=3)
    for key in ("/a", "/b", "/c"):
        cache.put(key, key)
        clock.advance(1)
    assert cache.get("/a") is not None  # /a is the oldest stored, but now the latest used
    cache.put("/d", "/d")
    assert stored_keys(cache, "/a", "/b", "/c", "/d") == ["/a", "/c", "/d"]
    assert cache.stats.evictions == 1


def test_the_entry_count_never_exceeds_its_bound(clock: FakeClock) -> None:
    cache = cache_with(clock, max_entries=10)
    for number in range(100):
        cache.put(f"/tweets/{number}", "tweet")
        assert len(cache) <= 10
    assert len(cache) == 10
    assert cache.stats.evictions == 90
    assert stored_keys(cache, "/tweets/89", "/tweets/90", "/tweets/99") == [
        "/tweets/90", "/tweets/99"]


def test_replacing_an_entry_in_a_full_cache_evicts_nothing(clock: FakeClock) -> None:
    cache = cache_with(clock, max_entries=2)
    cache.put("/a", "1")
    cache.put("/b", "1")
    cache.put("/a", "2")
    assert stored_keys(cache, "/a", "/b") == ["/a", "/b"]
    assert cache.stats.evictions == 0


def test_invalidating_a_path_drops_every_query_variant_and_nothing_else(
        clock: FakeClock) -> None:
    cache = cache_with(clock)
    variants = ["/tweets", "/tweets?page=2", "/tweets?limit=5&cursor=9"]
    bystanders = ["/tweets/1", "/tweetsy", "/users/alice?tab=tweets"]
    for key in variants + bystanders:
        cache.put(key, "page")
    assert cache.invalidate_path("/tweets") == 3
    assert stored_keys(cache, *variants, *bystanders) == bystanders
    assert cache.stats.invalidations == 3
    assert cache.invalidate_path("/tweets") == 0


def test_expired_and_evicted_entries_leave_nothing_to_invalidate(clock: FakeClock) -> None:
    cache = cache_with(clock, max_entries=1)
    cache.put("/a?x=1", "a")
    cache.put("/b?x=1", "b")  # evicts /a?x=1
    clock.advance(61)
    assert cache.get("/c") is None  # expires /b?x=1
    assert cache.invalidate_path("/a") == 0
    assert cache.invalidate_path("/b") == 0
    assert cache.stats.invalidations == 0


def test_a_get_drops_only_the_expired_entries_and_keeps_the_fresh_ones(
        clock: FakeClock) -> None:
    cache = cache_with(clock, max_entries=10_000)
    for number in range(2_000):
        cache.put(f"/old/{number}", "old")
    clock.advance(30)
    for number in range(50):
        cache.put(f"/fresh/{number}", "fresh")
    cache.put("/old/7", "stored again")  # re-stored: fresh now, whatever its name says
    clock.advance(31)  # the first batch is 61 s old, the second 31 s
    assert cache.get("/fresh/0") == ("fresh", pytest.approx(31))
    assert len(cache) == 51
    assert cache.stats.expirations == 1_999
    assert len(stored_keys(cache, *(f"/fresh/{n}" for n in range(50)), "/old/7")) == 51


def test_stats_count_hits_misses_evictions_expirations_and_invalidations(
        clock: FakeClock) -> None:
    cache = cache_with(clock, max_entries=2)
    cache.put("/a", "a")
    cache.get("/a")
    cache.get("/a")
    cache.get("/nothing")
    cache.put("/b", "b")
    cache.put("/c", "c")  # evicts /a, the least recently used
    cache.invalidate_path("/b")
    clock.advance(60)
    cache.get("/c")  # expired: a miss
    stats = cache.stats
    assert (stats.hits, stats.misses, stats.evictions, stats.expirations,
            stats.invalidations) == (2, 2, 1, 1, 1)
    assert len(cache) == 0


# --- surrogate keys (the change feed) ---------------------------------------------------------

def tagged_cache(clock: FakeClock, max_entries: int = 100) -> TTLCache[str]:
    """A cache holding a tweet, two lists showing it, and a bystander."""
    cache = cache_with(clock, max_entries=max_entries)
    cache.put("/tweets/7", "tweet", ("tweet/7",))
    cache.put("/tweets?limit=5", "timeline", ("timeline", "tweet/7", "tweet/6"))
    cache.put("/hashtags/cats/tweets", "tag page", ("tag/cats", "tweet/7"))
    cache.put("/tweets/6", "other tweet", ("tweet/6",))
    return cache


ALL = ["/tweets/7", "/tweets?limit=5", "/hashtags/cats/tweets", "/tweets/6"]


def test_dropping_a_key_drops_exactly_the_entries_carrying_it(clock: FakeClock) -> None:
    cache = tagged_cache(clock)
    assert set(cache.tagged(["tweet/7"])) == {"/tweets/7", "/tweets?limit=5",
                                              "/hashtags/cats/tweets"}
    assert cache.drop_tagged(["tweet/7"]) == 3
    assert stored_keys(cache, *ALL) == ["/tweets/6"]
    assert cache.stats.dropped_by_key == 3
    assert cache.drop_tagged(["tweet/7"]) == 0  # nothing left carrying it
    assert cache.drop_tagged(["no/such-key"]) == 0
    assert cache.stats.dropped_by_key == 3
    assert (cache.stats.invalidations, cache.stats.evictions, cache.stats.cleared) == (0, 0, 0)


def test_dropping_several_keys_counts_an_entry_carrying_two_of_them_once(
        clock: FakeClock) -> None:
    cache = tagged_cache(clock)
    assert cache.drop_tagged(["tweet/6", "timeline", "tag/dogs"]) == 2
    assert stored_keys(cache, *ALL) == ["/tweets/7", "/hashtags/cats/tweets"]
    assert len(cache) == 2


def test_an_untagged_entry_is_never_dropped_by_key(clock: FakeClock) -> None:
    cache = cache_with(clock)
    cache.put("/plain", "no surrogate key")
    assert cache.drop_tagged(["/plain", "", "timeline"]) == 0
    assert stored_keys(cache, "/plain") == ["/plain"]


def test_storing_again_with_other_keys_forgets_the_old_ones(clock: FakeClock) -> None:
    cache = cache_with(clock)
    cache.put("/tweets", "page 1", ("timeline", "tweet/1"))
    cache.put("/tweets", "page 2", ("timeline", "tweet/2"))  # tweet/1 scrolled off
    assert cache.drop_tagged(["tweet/1"]) == 0
    assert stored_keys(cache, "/tweets") == ["/tweets"]
    assert cache.drop_tagged(["tweet/2"]) == 1


def test_after_a_drop_by_key_the_path_lru_and_expiry_bookkeeping_still_hold(
        clock: FakeClock) -> None:
    cache = tagged_cache(clock, max_entries=3)  # /tweets/7 was evicted by the fourth put
    assert cache.stats.evictions == 1
    assert cache.drop_tagged(["tweet/7"]) == 2  # the two lists; the evicted tweet is gone
    assert cache.invalidate_path("/tweets") == 0  # /tweets?limit=5 left the path index too
    assert stored_keys(cache, "/tweets/6") == ["/tweets/6"]
    clock.advance(10)
    cache.put("/tweets?limit=5", "timeline again", ("timeline",))
    cache.put("/a", "a")
    cache.put("/b", "b")  # four stored: the least recently used, /tweets/6, goes
    assert cache.stats.evictions == 2
    assert stored_keys(cache, "/tweets/6", "/tweets?limit=5", "/a", "/b") == [
        "/tweets?limit=5", "/a", "/b"]
    assert len(cache) == 3
    clock.advance(55)  # everything is 55 s old, /tweets/6 would be 65 s
    assert cache.get("/a") is not None and cache.stats.expirations == 0
    clock.advance(6)
    assert cache.get("/a") is None
    assert len(cache) == 0 and cache.stats.expirations == 3
    assert cache.drop_tagged(["timeline"]) == 0  # expired entries leave no key behind


def test_evicted_and_expired_entries_leave_no_keys_behind(clock: FakeClock) -> None:
    cache = cache_with(clock, max_entries=1)
    cache.put("/a", "a", ("k/a", "shared"))
    cache.put("/b", "b", ("k/b", "shared"))  # evicts /a
    assert cache.tagged(["k/a", "shared"]) == {"/b": False}
    clock.advance(61)
    assert cache.get("/b") is None  # expired
    assert cache.tagged(["k/b", "shared"]) == {}
    assert cache.drop_tagged(["k/a", "k/b", "shared"]) == 0


def test_clear_drops_everything_counts_it_and_leaves_a_working_cache(clock: FakeClock) -> None:
    cache = tagged_cache(clock)
    cache.put("/untagged?x=1", "x")
    assert cache.clear() == 5
    assert len(cache) == 0 and stored_keys(cache, *ALL, "/untagged?x=1") == []
    assert cache.stats.cleared == 5
    assert cache.invalidate_path("/untagged") == 0
    assert cache.drop_tagged(["tweet/7", "timeline"]) == 0
    assert cache.clear() == 0 and cache.stats.cleared == 5
    cache.put("/tweets/7", "fresh", ("tweet/7",))
    assert cache.get("/tweets/7") == ("fresh", 0)
    clock.advance(61)
    assert cache.get("/tweets/7") is None and cache.stats.expirations == 1
    assert (cache.stats.dropped_by_key, cache.stats.invalidations) == (0, 0)


def test_after_clear_the_least_recently_used_is_still_the_one_evicted(clock: FakeClock) -> None:
    cache = tagged_cache(clock, max_entries=3)
    cache.clear()
    for key in ("/a", "/b", "/c"):
        cache.put(key, key, (f"k{key}",))
    assert cache.get("/a") is not None
    cache.put("/d", "/d")
    assert stored_keys(cache, "/a", "/b", "/c", "/d") == ["/a", "/c", "/d"]
    assert cache.stats.evictions == 2  # one before the clear, one now
    assert cache.drop_tagged(["k/b"]) == 0


def test_tagged_tells_which_entries_answered_a_hit_since_they_were_stored(
        clock: FakeClock) -> None:
    cache = cache_with(clock)
    cache.put("/read", "r", ("k",))
    cache.put("/unread", "u", ("k",))
    assert cache.get("/read") is not None
    assert cache.tagged(["k"]) == {"/read": True, "/unread": False}
    cache.put("/read", "r2", ("k",))  # a fresh copy has not been read yet
    assert cache.tagged(["k"]) == {"/read": False, "/unread": False}
    cache.drop_keys(["/unread"])
    assert cache.tagged(["k"]) == {"/read": False} and cache.stats.dropped_by_key == 1


def test_bytes_are_bounded_as_well_as_entries_the_least_recently_used_going_first(
        clock: FakeClock) -> None:
    cache: TTLCache[str] = TTLCache(60.0, 100, clock, max_bytes=100, size=len)
    cache.put("/a", "x" * 30)  # 32 bytes with its key
    cache.put("/b", "x" * 30)
    cache.put("/c", "x" * 30)
    assert cache.stored_bytes == 96
    cache.get("/a")  # /b is now the least recently used
    cache.put("/d", "x" * 30)
    assert stored_keys(cache, "/a", "/b", "/c", "/d") == ["/a", "/c", "/d"]
    assert (cache.stored_bytes, cache.stats.evictions) == (96, 1)
    cache.put("/e", "x" * 200)  # alone over the budget: not kept, nothing evicted for it
    assert stored_keys(cache, "/e") == [] and cache.stats.too_large == 1
    cache.put("/a", "y")  # replacing an entry gives its bytes back
    cache.drop_tagged([])
    cache.invalidate_path("/c")
    assert cache.stored_bytes == 3 + 32
    cache.clear()
    assert cache.stored_bytes == 0
