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
