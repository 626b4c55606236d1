"""Staleness under load: how long a post, an edit and a like take to reach every replica while
`load_test.py load` keeps the stack busy (its default mix: ~100 posts and ~400 likes a second
here), so that the api coalesces what it publishes (`FEED_COALESCE_S`, `LIKE_PUBLISH_S`).

bench/staleness.py measures writes on a quiet stack, where every key goes out at once; this
measures the bound coalescing gives. It starts a stack with 3 caches on free ports, starts
the load, and then, one write at a time through the lb, polls each replica directly (plain
GETs) until it shows the write: the new tweet in `/tweets?limit=100`, the edited text on the
tweet's page, the like's count on the tweet's page. Prints p50/p99/max per kind and writes
bench/results/underload.json.

    python3 bench/underload.py [--writes 30] [--caches 3]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chain import RESULTS  # noqa: E402  (needs the path above)
from tests.harness import running_stack  # noqa: E402

POLL_S = 0.005
CAP_S = 10.0


def fetch(method: str, url: str, payload: Any = None, token: str = "") -> Any:
    """Send one JSON request and return the decoded answer."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data, headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read() or b"null")


def until_every(replicas: list[str], shows: Callable[[str], bool]) -> float:
    """Poll every replica until each shows the write; return the seconds it took."""
    started = time.monotonic()
    left = set(replicas)
    while left and time.monotonic() - started < CAP_S:
        left = {replica for replica in left if not shows(replica)}
        time.sleep(POLL_S)
    return CAP_S if left else time.monotonic() - started


def measure(lb: str, replicas: list[str], writes: int) -> dict[str, list[float]]:
    """Post, edit and like ``writes`` times; return each kind's staleness per write."""
    user = f"ul{os.getpid()}"
    credentials = {"username": user, "password": "correct horse"}
    fetch("POST", f"{lb}/accounts", credentials)
    token = fetch("POST", f"{lb}/sessions", credentials)["token"]
    seen: dict[str, list[float]] = {"post": [], "edit": [], "like": []}
    for n in range(writes):
        tweet = fetch("POST", f"{lb}/tweets", {"text": f"under load {n}"}, token)["id"]
        seen["post"].append(until_every(replicas, lambda r: tweet in [
            t["id"] for t in fetch("GET", f"http://{r}/tweets?limit=100")["tweets"]]))
        fetch("PUT", f"{lb}/tweets/{tweet}", {"text": f"edited {n}"}, token)
        seen["edit"].append(until_every(replicas, lambda r: fetch(
            "GET", f"http://{r}/tweets/{tweet}")["text"] == f"edited {n}"))
        likes = fetch("POST", f"{lb}/tweets/{tweet}/like")["likes"]
        seen["like"].append(until_every(replicas, lambda r: fetch(
            "GET", f"http://{r}/tweets/{tweet}")["likes"] >= likes))
    return seen


def summary(values: list[float]) -> dict[str, float]:
    """Return p50, p99 and max, in seconds."""
    ordered = sorted(values)
    p99 = statistics.quantiles(ordered, n=100, method="inclusive")[98] if len(ordered) > 1 \
        else ordered[0]
    return {"p50": round(statistics.median(ordered), 3), "p99": round(p99, 3),
            "max": round(ordered[-1], 3)}


def main() -> None:
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))  # stop what we started
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=30)
    parser.add_argument("--caches", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data, \
            running_stack(Path(data), args.caches, front=(),
                          env={"LOG_LEVEL": "WARNING"}) as running:
        replicas = [f"127.0.0.1:{running.ports['cache'] + n}" for n in range(args.caches)]
        lb = running.url("lb")
        load = subprocess.Popen([sys.executable, str(ROOT / "load_test.py"), "load",
                                 "--url", lb, "--duration", "600"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(5)  # past the load test's set-up, into its mix
            seen = measure(lb, replicas, args.writes)
        finally:  # the load stops before the stack does
            load.terminate()
            load.wait(timeout=30)
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": " ".join(["python3 bench/underload.py", *sys.argv[1:]]),
              "caches": args.caches, "summary_s": {k: summary(v) for k, v in seen.items()},
              "staleness_s": seen}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "underload.json").write_text(json.dumps(result, indent=2) + "\n")
    for kind, numbers in result["summary_s"].items():
        print(f"{kind:<5} p50 {numbers['p50']:.3f} s  p99 {numbers['p99']:.3f} s  "
              f"max {numbers['max']:.3f} s")


if __name__ == "__main__":
    main()
