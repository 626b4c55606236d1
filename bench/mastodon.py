"""Mastodon public timeline reads under a short load: are they served by the caches?

Starts a stack on free ports (as `make run` wires it, the web left out), fills the timeline,
then has a few client threads read GET /api/v1/timelines/public through the gateway with a
token on every request, as Mastodon clients send them. Reports the reads per second, the
front caches' hit rate over the run (from /_lb/stats) and how many reads reached the API.
Side by side in the same run, the same reads sent to the lb *with* the token, as a gateway
that passed it on would: the caches pass every such request on.

    python3 bench/mastodon.py [--reads 3000] [--clients 4]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from httpkit import Upstream  # noqa: E402  (needs the path above)
from tests.harness import running_stack  # noqa: E402


def caches(lb: Upstream) -> tuple[int, int]:
    """Return the front caches' hits and misses so far."""
    stats = lb.request("GET", "/_lb/stats").json()
    hits = sum(u["cache"]["hits"] for u in stats["upstreams"] if u.get("cache"))
    misses = sum(u["cache"]["misses"] for u in stats["upstreams"] if u.get("cache"))
    return hits, misses


def api_calls(lb: Upstream) -> int:
    return int(lb.request("GET", "/stats").json()["calls"])


def run_reads(url: str, target: str, headers: dict[str, str], reads: int,
              clients: int) -> float:
    """Send ``reads`` GETs from ``clients`` threads; return the seconds it took."""
    def client(count: int) -> None:
        upstream = Upstream(url)
        for _ in range(count):
            answer = upstream.request("GET", target, headers=headers)
            assert answer.status == 200, answer.status
        upstream.close()
    threads = [threading.Thread(target=client, args=(reads // clients,))
               for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def measure(name: str, url: str, target: str, headers: dict[str, str], lb: Upstream,
            reads: int, clients: int) -> dict[str, Any]:
    hits, misses = caches(lb)
    calls = api_calls(lb)
    seconds = run_reads(url, target, headers, reads, clients)
    hits_after, misses_after = caches(lb)
    served, passed = hits_after - hits, misses_after - misses
    return {"reads": name, "requests": reads, "req_per_s": round(reads / seconds),
            "cache_hit_rate": round(served / max(served + passed, 1), 4),
            "reached_api": api_calls(lb) - calls - 1}  # less the /stats read itself


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data, \
            running_stack(Path(data), 2, front=("mastodon",)) as running:
        lb = Upstream(running.url("lb"))
        try:
            lb.fetch("POST", "/accounts", {"username": "reader", "password": "long enough"})
            token = lb.fetch("POST", "/sessions", {"username": "reader",
                                                   "password": "long enough"}).json()["token"]
            auth = {"authorization": f"Bearer {token}"}
            for n in range(40):
                lb.fetch("POST", "/tweets", {"text": f"tweet {n} #bench"}, auth)
            rows = [measure("gateway: /api/v1/timelines/public", running.url("mastodon"),
                            "/api/v1/timelines/public?limit=20", auth, lb, args.reads,
                            args.clients),
                    measure("lb with the token: /tweets", lb.url, "/tweets?limit=20", auth, lb,
                            args.reads, args.clients)]
        finally:
            lb.close()
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
