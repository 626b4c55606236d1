"""Front-cache hit rate against the number of cache replicas, round robin against hash routing.

For each strategy and replica count it starts a whole stack on free ports (as `make run`
wires it), runs `load_test.py load` with reads only from a few clients for a fixed number of
requests, and reads the caches' hits and misses (what load_test reports from /_lb/stats).
Writes bench/results/hitrate.json and docs/bench/hitrate.md.

    python3 bench/hitrate.py [--requests 6000] [--replicas 1,2,4]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chain import DOCS, RESULTS  # noqa: E402  (needs the path above)
from tests.harness import running_stack  # noqa: E402


def run_one(strategy: str, replicas: int, requests: int, workdir: Path) -> dict[str, Any]:
    """Start a stack (no front ends), run reads through its lb, return the front caches'
    counts."""
    report = workdir / f"{strategy}-{replicas}.json"
    with running_stack(workdir / f"{strategy}-{replicas}", replicas, front=(),
                       env={"LOG_LEVEL": "WARNING", "LB_STRATEGY": strategy}) as running:
        subprocess.run([sys.executable, str(ROOT / "load_test.py"), "load",
                        "--url", running.url("lb"), "--mix", "reads=100",
                        "--concurrency", "4", "--requests", str(requests), "--tweets", "100",
                        "--seed", "7", "--json", str(report)],
                       check=True, capture_output=True, text=True)
    front = json.loads(report.read_text())["savings"]["front_cache"]
    return {"strategy": strategy, "replicas": replicas, "requests": requests,
            "hits": front["hits"], "misses": front["misses"],
            "passed_on": front["upstream_requests"], "hit_rate": front["hit_rate"]}


def main() -> None:
    """Measure every combination and write the table."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--replicas", default="1,2,4")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="fpt-hitrate-") as workdir:
        for replicas in (int(n) for n in args.replicas.split(",")):
            for strategy in ("round_robin", "hash"):
                row = run_one(strategy, replicas, args.requests, Path(workdir))
                print(f"{strategy:<12} {replicas} replicas: hit rate {row['hit_rate']:.1%} "
                      f"({row['hits']} hits, {row['misses']} misses)", flush=True)
                rows.append(row)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": "python3 bench/hitrate.py " + " ".join(sys.argv[1:])}
    RESULTS.mkdir(parents=True, exist_ok=True)
    DOCS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "hitrate.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [f"# Front-cache hit rate ({meta['date']})", "",
             f"Command: `{meta['command']}`: reads only (load_test.py's read mix over 100 "
             "tweets, 4 clients, seed 7), counted by the caches themselves. Misses are the "
             "reads the caches passed on to the API.", "",
             "| replicas | round robin: hit rate | misses | hash: hit rate | misses |",
             "|---:|---:|---:|---:|---:|"]
    for replicas in sorted({row["replicas"] for row in rows}):
        by = {row["strategy"]: row for row in rows if row["replicas"] == replicas}
        rr, hashed = by["round_robin"], by["hash"]
        lines.append(f"| {replicas} | {rr['hit_rate']:.1%} | {rr['misses']} | "
                     f"{hashed['hit_rate']:.1%} | {hashed['misses']} |")
    (DOCS / "hitrate.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
