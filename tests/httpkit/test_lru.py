"""httpkit.lru: bounded by count (the entry set longest ago goes first) and by age."""
from __future__ import annotations

from httpkit.lru import LRU
from tests.fakes import FakeClock


def test_past_most_the_entry_set_longest_ago_is_forgotten() -> None:
    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    lru.put("a", 3)  # set again: now the newest
    lru.put("c", 4)
    assert (lru.get("a"), lru.get("b"), lru.get("c")) == (3, None, 4)
    assert "b" not in lru and "a" in lru and len(lru) == 2


def test_an_entry_older_than_its_ttl_reads_as_absent() -> None:
    clock = FakeClock()
    lru: LRU[str, bool] = LRU(10, ttl=30.0, clock=clock)
    lru.put("token", True)
    clock.advance(29)
    assert lru.get("token") is True
    clock.advance(1)
    assert lru.get("token") is None
    lru.put("token", True)  # set again: good for another 30 s
    assert lru.get("token") is True


def test_pop_forgets_a_key_and_ignores_an_unknown_one() -> None:
    lru: LRU[int, int] = LRU(10)
    lru.put(1, 10)
    lru.pop(1)
    lru.pop(2)
    assert lru.get(1) is None and len(lru) == 0
