"""Publishing to the api's change feed, coalesced so that a busy key is dropped a few times a
second, not on every write.

Each time a key is published, every cached page showing it is dropped on every replica and
fetched again by the next reader. A hot list (``timeline`` under a stream of posts) or a hot
tweet (thousands of likes a second) would then never stay cached, so the api publishes each
key at most once per interval:

- writes (``FEED_COALESCE_S``, 0.5 s, with a leading edge): a key not published during the
  last interval is published at once, so a lone write reaches every replica within
  milliseconds, exactly; a key written again within the interval is published when it ends,
  with every other key due then;
- likes (``LIKE_PUBLISH_S``, 1 s, no leading edge): liked tweets are gathered and published
  together once per interval, so that a page showing twenty liked tweets is refreshed once a
  second rather than twenty times.

What is published at the end of an interval is published ``soft``: a cache fetches such an
entry again at once and keeps answering the old copy for the moment that takes (RFC 5861's
stale-while-revalidate), instead of making its readers wait on a miss. That costs no truth
that coalescing had not already given up: those keys were untrue for up to an interval
anyway. A leading edge is published hard, so the first reader after a lone write never sees
the old copy.

A reader on any replica sees a write within about one interval.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Iterable

from httpkit.feed import ChangeFeed


class Coalescer:
    """Publish keys to ``feed``, each at most once per ``interval`` seconds."""

    def __init__(self, feed: ChangeFeed, interval: float, leading: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.feed = feed
        self.interval = interval
        self.leading = leading
        self.clock = clock
        self._published: dict[str, float] = {}  # key -> when it was last published
        self._marked: set[str] = set()  # changed since, waiting for the interval to end
        self._last_round = clock()  # without a leading edge: when marked keys last went out
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def publish(self, keys: Iterable[str]) -> list[str]:
        """Note that ``keys`` changed; return those published right now."""
        keys = list(dict.fromkeys(keys))
        if self.interval <= 0:
            self.feed.publish(keys)
            return keys
        now = self.clock()
        with self._lock:
            if not self.leading:
                self._marked.update(keys)
                return []
            quiet = [key for key in keys if key not in self._marked
                     and now - self._published.get(key, float("-inf")) >= self.interval]
            self._marked.update(key for key in keys if key not in quiet)
            self._published.update((key, now) for key in quiet)
            self.feed.publish(quiet)
            return quiet

    def tick(self) -> int:
        """Publish the marked keys whose interval has ended; return how many."""
        now = self.clock()
        with self._lock:
            if self.leading:
                due = {key for key in self._marked
                       if now - self._published[key] >= self.interval}
            elif now - self._last_round >= self.interval:
                due, self._last_round = set(self._marked), now
            else:
                return 0
            self._marked -= due
            if self.leading:
                self._published.update((key, now) for key in due)
                for key in [k for k, at in self._published.items()
                            if now - at >= self.interval and k not in self._marked]:
                    del self._published[key]  # quiet again: the next change goes out at once
            self.feed.publish(sorted(due), soft=True)
            return len(due)

    def start(self) -> None:
        """Tick in the background, several times per interval."""
        period = max(0.01, min(0.1, self.interval / 4))
        threading.Thread(target=self._run, args=(period,), name="feed-coalescer",
                         daemon=True).start()

    def _run(self, period: float) -> None:
        while not self._stopped.wait(period):
            self.tick()

    def stop(self) -> None:
        """Stop ticking, after publishing every marked key."""
        self._stopped.set()
        with self._lock:
            marked, self._marked = self._marked, set()
        self.feed.publish(sorted(marked), soft=True)
