"""A bounded map: past ``most`` entries it forgets the one set longest ago, and an entry older
than ``ttl`` seconds reads as absent. Thread-safe; what the services remember of each other
(usernames, display names, stored like totals, accounts) is kept in one."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most ``most`` entries, each good for ``ttl`` seconds after it was set (None: for
    ever), by ``clock``."""

    def __init__(self, most: int, ttl: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.most = most
        self.ttl = ttl
        self.clock = clock
        self._items: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """Return the value set for ``key``, or None (never set, forgotten, or too old)."""
        found = self._items.get(key)  # one C call, atomic: only writes take the lock
        if found is None or (self.ttl is not None and found[1] + self.ttl <= self.clock()):
            return None
        return found[0]

    def put(self, key: K, value: V) -> None:
        """Set ``key``, forgetting the entry set longest ago when there are too many."""
        when = self.clock() if self.ttl is not None else 0.0
        with self._lock:
            self._items[key] = (value, when)
            self._items.move_to_end(key)
            if len(self._items) > self.most:
                self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        """Forget ``key`` if it is set."""
        with self._lock:
            self._items.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._items)
