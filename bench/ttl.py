"""Expiry work stays flat as the cache grows: the cost of one access at 1 k and at 1 M entries.

Each measured access stores a new key and reads an old one while the clock moves so that one
entry expires per access (the steady state of a full cache under a 60 s TTL), so every access
does its expiry work. Median of several runs, in microseconds. Writes bench/results/ttl.json.

    python3 bench/ttl.py
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cache.ttl import TTLCache  # noqa: E402  (needs the path above)

RESULTS = ROOT / "bench" / "results"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def per_access_us(size: int, accesses: int = 100_000) -> float:
    """Fill a cache with ``size`` entries, then time accesses that each expire one entry."""
    clock = Clock()
    step = 60.0 / size  # one entry stored per step: the oldest expires as each new one lands
    cache: TTLCache[bytes] = TTLCache(ttl=60.0, max_entries=size * 2, clock=clock)
    for n in range(size):
        clock.now = n * step
        cache.put(f"/tweets/{n}", b"x")
    runs = []
    for run in range(5):
        start = time.perf_counter()
        for n in range(size + run * accesses, size + (run + 1) * accesses):
            clock.now = n * step
            cache.put(f"/tweets/{n}", b"x")
            cache.get(f"/tweets/{n - size // 2}")
        runs.append((time.perf_counter() - start) / accesses * 1e6)
    assert len(cache) <= size + 1
    return statistics.median(runs)


def main() -> None:
    """Measure at 1 k and 1 M entries and write the result."""
    small, large = per_access_us(1_000), per_access_us(1_000_000)
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": "python3 bench/ttl.py",
              "put_and_get_us_at_1k_entries": round(small, 2),
              "put_and_get_us_at_1m_entries": round(large, 2), "ratio": round(large / small, 2)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ttl.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
