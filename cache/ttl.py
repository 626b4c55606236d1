"""A bounded TTL cache with least-recently-used eviction and O(1) expiry.

Bounded twice: by entries and by bytes (``size`` tells what a value weighs), since a few
large answers (``?limit=100`` pages) can weigh as much as thousands of small ones.

Every entry lives for the same TTL, so the order entries were stored in is the order they
expire in: expiry only ever looks at the oldest entry, never scans (DESIGN.md asks for amortised
O(1) per access). Two ordered dicts hold the same keys: ``_by_age`` in store order (for
expiry) and ``_by_use`` in use order (for LRU eviction). An index from path to keys lets a
write invalidate every stored query of its path (RFC 9111 §4.4), and one from surrogate key
(``tweet/7``, ``timeline``) to keys lets the change feed drop every entry that shows a thing.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Generic, TypeVar

V = TypeVar("V")


@dataclass(slots=True)
class Stats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    expirations: int = 0
    invalidations: int = 0
    dropped_by_key: int = 0  # entries dropped because a surrogate key they carry changed
    cleared: int = 0  # entries dropped by a reset of the change feed
    too_large: int = 0  # values refused because alone they weigh more than max_bytes


@dataclass(slots=True)
class Entry(Generic[V]):
    value: V
    stored_at: float
    path: str
    tags: tuple[str, ...] = ()
    read: bool = False  # answered a hit since it was stored
    size: int = 0


@dataclass
class TTLCache(Generic[V]):
    """Map keys (path + query) to values for ``ttl`` seconds, at most ``max_entries`` of them
    weighing at most ``max_bytes`` together."""

    ttl: float = 60.0
    max_entries: int = 10_000
    clock: Callable[[], float] = time.monotonic
    stats: Stats = field(default_factory=Stats)
    max_bytes: int = 64 << 20
    size: Callable[[V], int] = lambda value: 0

    @property
    def stored_bytes(self) -> int:
        """Return what the entries weigh together (their keys included)."""
        return self._bytes

    def __post_init__(self) -> None:
        self._by_age: OrderedDict[str, Entry[V]] = OrderedDict()
        self._by_use: OrderedDict[str, None] = OrderedDict()
        self._paths: dict[str, set[str]] = {}
        self._tagged: dict[str, set[str]] = {}  # surrogate key -> keys of the entries carrying it
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._by_age)

    def get(self, key: str) -> tuple[V, float] | None:
        """Return ``(value, age in seconds)`` and count a hit, or None and count a miss."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            entry = self._by_age.get(key)
            if entry is None:
                self.stats.misses += 1
                return None
            self._by_use.move_to_end(key)
            self.stats.hits += 1
            entry.read = True
            return entry.value, now - entry.stored_at

    def put(self, key: str, value: V, tags: tuple[str, ...] = ()) -> None:
        """Store ``value`` tagged with surrogate keys, replacing any entry for ``key``; evict
        the least recently used."""
        path = key.partition("?")[0]
        size = len(key) + self.size(value)
        with self._lock:
            now = self.clock()
            self._expire(now)
            self._remove(key)
            if size > self.max_bytes:
                self.stats.too_large += 1
                return
            self._by_age[key] = Entry(value, now, path, tags, size=size)
            self._by_use[key] = None
            self._bytes += size
            self._paths.setdefault(path, set()).add(key)
            for tag in tags:
                self._tagged.setdefault(tag, set()).add(key)
            while len(self._by_use) > self.max_entries or self._bytes > self.max_bytes:
                self._remove(next(iter(self._by_use)))
                self.stats.evictions += 1

    def discard(self, key: str) -> None:
        """Drop the entry for ``key``, if any."""
        with self._lock:
            self._remove(key)

    def invalidate_path(self, path: str) -> int:
        """Drop every entry stored for ``path`` whatever its query; return how many."""
        with self._lock:
            keys = list(self._paths.get(path, ()))
            for key in keys:
                self._remove(key)
            self.stats.invalidations += len(keys)
            return len(keys)

    def drop_tagged(self, tags: list[str]) -> int:
        """Drop every entry carrying any of these surrogate keys; return how many."""
        with self._lock:
            keys = {key for tag in tags for key in self._tagged.get(tag, ())}
            for key in keys:
                self._remove(key)
            self.stats.dropped_by_key += len(keys)
            return len(keys)

    def tagged(self, tags: list[str]) -> dict[str, bool]:
        """Return the keys of the entries carrying any of these surrogate keys, each with
        whether it answered a hit since it was stored."""
        with self._lock:
            return {key: self._by_age[key].read
                    for tag in tags for key in self._tagged.get(tag, ())}

    def drop_keys(self, keys: list[str]) -> None:
        """Drop these entries, counted as dropped by their surrogate keys."""
        with self._lock:
            for key in keys:
                self._remove(key)
            self.stats.dropped_by_key += len(keys)

    def clear(self) -> int:
        """Drop every entry; return how many."""
        with self._lock:
            count = len(self._by_age)
            self._by_age.clear()
            self._by_use.clear()
            self._paths.clear()
            self._tagged.clear()
            self._bytes = 0
            self.stats.cleared += count
            return count

    def _expire(self, now: float) -> None:
        # Entries expire in store order, so only the oldest ones are ever looked at.
        while self._by_age:
            key, entry = next(iter(self._by_age.items()))
            if now - entry.stored_at < self.ttl:
                return
            self._remove(key)
            self.stats.expirations += 1

    def _remove(self, key: str) -> None:
        entry = self._by_age.pop(key, None)
        if entry is None:
            return
        del self._by_use[key]
        self._bytes -= entry.size
        keys = self._paths[entry.path]
        keys.discard(key)
        if not keys:
            del self._paths[entry.path]
        for tag in entry.tags:
            tagged = self._tagged[tag]
            tagged.discard(key)
            if not tagged:
                del self._tagged[tag]
