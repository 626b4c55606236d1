"""The dashboard's memory: the stack's counters sampled every few seconds while someone is
looking, so the dashboard can draw the last minutes rather than totals since start-up.

Sampling costs two requests (the API's /stats and the load balancer's /_lb/stats), so it runs
only while the dashboard was viewed in the last ``WATCHED_S``; the history is a bounded deque
(``KEEP`` samples, ten minutes at the default interval). Counters only grow, so a counter that
went down means its service restarted and counts from zero again: that step counts what the
new process counted (``Step.of``).
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Callable

SAMPLE_S = 5.0
WATCHED_S = 600.0
KEEP = 120

Counters = dict[str, int]


def counters(api: dict[str, Any] | None, lb: dict[str, Any] | None) -> Counters:
    """Pick the counters the dashboard draws from the API's and the load balancer's stats."""
    api = api or {}
    fronts = [u["cache"] for u in (lb or {}).get("upstreams", []) if u.get("cache")]
    dbcache = ((api.get("database") or {}).get("dbcache")) or {}
    feeds = [c["feed"] for c in [*fronts, dbcache] if c.get("feed")]
    return {
        "cache_hits": sum(int(c.get("hits", 0)) for c in fronts),
        "cache_passed": sum(int(c.get("upstream_requests", 0)) for c in fronts),
        "likes_received": int(api.get("likes_received", 0)),
        "likes_written": int(api.get("likes_written", 0)),
        "likes_dropped": int(api.get("likes_dropped", 0)),
        "feed_dropped": sum(int(f.get("dropped_by_key", 0)) for f in feeds),
    }


@dataclass(frozen=True)
class Sample:
    at: float
    counts: Counters


@dataclass(frozen=True)
class Step:
    """What happened between two samples, per second."""
    at: float  # the end of the step
    seconds: float
    counts: Counters  # how much each counter went up

    @classmethod
    def of(cls, before: Sample, after: Sample) -> Step:
        grew = {}
        for name, now in after.counts.items():
            then = before.counts.get(name, 0)
            grew[name] = now - then if now >= then else now  # went down: a restart
        return cls(after.at, after.at - before.at, grew)

    def rate(self, name: str) -> float:
        return self.counts.get(name, 0) / self.seconds


class History:
    """A bounded history of counter samples, taken by ``run`` while the dashboard is viewed."""

    def __init__(self, read: Callable[[], Counters | None], clock: Callable[[], float],
                 every: float = SAMPLE_S, keep: int = KEEP, watched_s: float = WATCHED_S) -> None:
        self.read = read
        self.clock = clock
        self.every = every
        self.watched_s = watched_s
        self.samples: deque[Sample] = deque(maxlen=keep)
        self.viewed_at: float | None = None
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def viewed(self, counts: Counters) -> None:
        """Note a view of the dashboard, with the counters it just read (a sample too, unless
        one was taken a moment ago)."""
        self.viewed_at = self.clock()
        self.add(counts)

    def add(self, counts: Counters) -> bool:
        """Keep a sample, unless the last one is under half an interval old (two views in a
        row, or a view just after the sampler ran, would make a step too short to mean much);
        return whether it was kept."""
        now = self.clock()
        with self.lock:
            if self.samples and now - self.samples[-1].at < self.every / 2:
                return False
            self.samples.append(Sample(now, counts))
            return True

    def watched(self) -> bool:
        return self.viewed_at is not None and self.clock() - self.viewed_at < self.watched_s

    def sample(self) -> bool:
        """Take a sample if someone watches; return whether one was kept."""
        if not self.watched():
            return False
        counts = self.read()
        if counts is None:  # the API is down: a gap, not a drop to zero
            return False
        return self.add(counts)

    def steps(self) -> list[Step]:
        """What happened between each two samples, oldest first."""
        with self.lock:
            samples = list(self.samples)
        return [Step.of(a, b) for a, b in pairwise(samples) if b.at > a.at]  # clock set back

    def run(self) -> None:
        """Sample every ``every`` seconds until ``stop``."""
        while not self.stopped.wait(self.every):
            self.sample()

    def start(self) -> None:
        threading.Thread(target=self.run, name="dashboard-sampler", daemon=True).start()

    def stop(self) -> None:
        self.stopped.set()
