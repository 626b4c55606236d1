"""Two checkouts side by side: the hot paths of one against the other, in interleaved rounds.

``make bench`` compares configurations of one checkout; telling whether a change made a path
slower needs the change's two sides measured in the same minutes on this noisy machine. This
starts ``python -m stack`` from each checkout at once (two caches each, ports from
--port-base), then alternates ``wrk`` runs on them, the order switching every round:

  like   POST /tweets/1/like straight to the api (a hot tweet, batching on)
  hit    GET /tweets/1 through the lb (a front-cache hit)

and prints each side's median req/s and the after/before ratio of every round, with its
median. Needs wrk.

    git worktree add /tmp/before <rev>
    python3 bench/ab.py /tmp/before .  [--rounds 6] [--seconds 3] [--port-base 9400]

``--after-env NAME=VALUE`` sets a variable for the after side only, so one checkout can be
measured against itself in another set-up (``bench/stdlib_http.py`` uses it).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chain import http  # noqa: E402  (needs the path above)

PASSWORD = "correct horse battery"


def ports(base: int) -> dict[str, int]:
    """Return the launcher's port settings for one side: store first, lb, web and the
    Mastodon gateway at +10 (every service on a port of its side: two sides share none)."""
    return {"STORE_PORT": base, "DBCACHE_PORT": base + 1, "API_PORT": base + 2,
            "CACHE_PORT": base + 3, "LB_PORT": base + 10, "WEB_PORT": base + 11,
            "MASTODON_PORT": base + 12}


def wait_up(url: str, seconds: float = 30.0) -> None:
    """Wait until ``url`` answers 200."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def wrk(url: str, seconds: int, script: str | None, threads: int = 2,
        connections: int = 32) -> float:
    """Run wrk (32 connections on 2 threads unless told); return its requests/s."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
               *(["-s", script] if script else []), url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise SystemExit(f"wrk said:\n{out}")
    return float(found[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--port-base", type=int, default=9400)
    parser.add_argument("--after-env", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/ab.py needs wrk (apt-get install wrk)")
    sides = {"before": (args.before, args.port_base), "after": (args.after, args.port_base + 30)}
    work = tempfile.mkdtemp(prefix="fpt-ab-")
    like_script = os.path.join(work, "like.lua")
    with open(like_script, "w") as out:
        out.write('wrk.method = "POST"\n')
    extra = {"before": {}, "after": dict(pair.split("=", 1) for pair in args.after_env)}
    procs = []
    try:
        for name, (root, base) in sides.items():
            env = {**os.environ, **{k: str(v) for k, v in ports(base).items()},
                   "CACHES": "2", "DATA_DIR": os.path.join(work, name), "SCRYPT_N": "16",
                   **extra[name]}
            procs.append(subprocess.Popen([sys.executable, "-m", "stack"], cwd=root, env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for name, (_, base) in sides.items():
            lb = f"http://127.0.0.1:{base + 10}"
            wait_up(f"{lb}/healthz")
            http("POST", f"{lb}/accounts", {"username": "bench", "password": PASSWORD})
            token = http("POST", f"{lb}/sessions",
                         {"username": "bench", "password": PASSWORD})["token"]
            http("POST", f"{lb}/tweets", {"text": "hot"}, {"authorization": f"Bearer {token}"})
        paths = {"like": (2, "/tweets/1/like", like_script), "hit": (10, "/tweets/1", None)}
        seen: dict[tuple[str, str], list[float]] = {}
        for round_ in range(args.rounds):
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for kind, (offset, path, script) in paths.items():
                for name in order:
                    url = f"http://127.0.0.1:{sides[name][1] + offset}{path}"
                    seen.setdefault((name, kind), []).append(wrk(url, args.seconds, script))
        for kind in paths:
            before, after = seen[("before", kind)], seen[("after", kind)]
            ratios = [a / b for b, a in zip(before, after)]
            print(f"{kind}: before {statistics.median(before):,.0f} req/s, after "
                  f"{statistics.median(after):,.0f} req/s; after/before per round "
                  f"{', '.join(f'{r:.2f}' for r in ratios)}; "
                  f"median {statistics.median(ratios):.2f}")
    finally:
        for proc in procs:
            proc.send_signal(2)  # Ctrl-C: each launcher stops its services
        for proc in procs:
            proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
