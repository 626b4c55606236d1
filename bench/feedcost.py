"""What following the change feed costs: hit rate and work with the feed and with the TTL alone.

For each round it starts whole stacks on free ports, one after the other: the caches
following their upstream's feed (`CACHE_FEED=on`, the default) with each `FEED_COALESCE_S`
asked for, and living by the TTL alone (`CACHE_FEED=off`, the seed's caches); runs the same
`load_test.py load` against each (3 caches, its default mix of reads, posts and likes), and
reads what the caches did. Rounds alternate the configurations, and the table reports
medians, so that the noise of this shared machine falls on all alike. Writes
bench/results/feedcost.json and docs/bench/feedcost.md.

    python3 bench/feedcost.py [--rounds 3] [--duration 30] [--caches 3] [--coalesce 0.5,0]
"""
from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chain import DOCS, RESULTS  # noqa: E402  (needs the path above)
from tests.harness import running_stack  # noqa: E402


def modes(coalesce: list[str]) -> dict[str, dict[str, str]]:
    """Return each configuration's name and the environment that differs: the feed with each
    FEED_COALESCE_S asked for (0 publishes every write's keys at once), and the TTL alone."""
    named = {f"feed, FEED_COALESCE_S={value}": {"CACHE_FEED": "on", "FEED_COALESCE_S": value}
             for value in coalesce}
    return {**named, "ttl only": {"CACHE_FEED": "off"}}


def run_one(mode: dict[str, str], args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Start a stack (no front ends) with the mode's environment, load it, return what it
    did."""
    report = workdir / "load.json"
    with running_stack(workdir / f"run-{time.monotonic_ns()}", args.caches, front=(),
                       env={"LOG_LEVEL": "WARNING", **mode}) as running:
        lb = running.url("lb")
        subprocess.run([sys.executable, str(ROOT / "load_test.py"), "load", "--url", lb,
                        "--duration", str(args.duration), "--json", str(report)],
                       check=True, capture_output=True, timeout=args.duration + 240)
        caches = [u["cache"] for u in fetch(f"{lb}/_lb/stats")["upstreams"]]
    return summary(json.loads(report.read_text()), caches)


def fetch(url: str) -> Any:
    """GET a JSON document."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def summary(load: dict[str, Any], caches: list[dict[str, Any]]) -> dict[str, Any]:
    """Pick out hit rate, traffic to the API and the feed's own traffic."""
    saved = load["savings"]
    feeds = [c["feed"] for c in caches if c.get("feed")]
    upstreams = [u for f in feeds for u in f["upstreams"]]
    return {"requests_per_s": load["requests_per_s"], "errors": load["error_count"],
            "p99_ms": load["latency_ms"]["p99"],
            "hit_rate": saved["front_cache"]["hit_rate"],
            "api_calls_per_request": round(saved["api"]["calls"] / load["requests"], 4),
            "db_accesses_per_request": round(saved["api"]["db_accesses"] / load["requests"], 4),
            "dropped_by_key": sum(f["dropped_by_key"] for f in feeds),
            "stale_hits": sum(f.get("stale_hits", 0) for f in feeds),
            "revalidations": sum(f.get("revalidations", 0) for f in feeds),
            "refused_in_flight": sum(f["refused_in_flight"] for f in feeds),
            "feed_polls": sum(u["polls"] for u in upstreams),
            "feed_bytes": sum(u["bytes"] for u in upstreams),
            "duration_s": load["duration_s"]}


def medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Return the median of every number over the runs."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def markdown(table: dict[str, dict[str, float]], meta: dict[str, Any]) -> str:
    """Render the medians as a Markdown table."""
    rows = [("front-cache hit rate", "hit_rate", "{:.1%}"),
            ("requests/s (load_test, client-bound)", "requests_per_s", "{:,.0f}"),
            ("p99 latency, ms", "p99_ms", "{:.0f}"), ("errors", "errors", "{:.0f}"),
            ("API calls per request", "api_calls_per_request", "{:.3f}"),
            ("database accesses per request", "db_accesses_per_request", "{:.3f}"),
            ("entries dropped by the feed (hard changes)", "dropped_by_key", "{:,.0f}"),
            ("answers from entries marked stale (soft changes)", "stale_hits", "{:,.0f}"),
            ("background refetches of stale entries", "revalidations", "{:,.0f}"),
            ("fetches not stored (changed mid-way)", "refused_in_flight", "{:,.0f}"),
            ("feed requests (all caches)", "feed_polls", "{:,.0f}"),
            ("feed bytes received (all caches)", "feed_bytes", "{:,.0f}")]
    lines = [f"# The change feed's cost under load ({meta['date']})", "",
             f"`{meta['command']}`: {meta['rounds']} alternating rounds, medians; "
             f"`load_test.py load --duration {meta['duration']}`, its default mix, "
             f"{meta['caches']} caches.", "",
             "| | " + " | ".join(table) + " |", "|---" + "|---:" * len(table) + "|"]
    for label, key, form in rows:
        lines.append(f"| {label} | "
                     + " | ".join(form.format(table[mode][key]) for mode in table) + " |")
    baseline = table["ttl only"]["hit_rate"]
    lines.append("")
    lines += [f"Hit rate against the TTL alone, {mode}: "
              f"{100 * (row['hit_rate'] - baseline):+.1f} points."
              for mode, row in table.items() if mode != "ttl only"]
    return "\n".join(lines) + "\n"


def main() -> None:
    # A SIGTERM unwinds like an exception, so every stack started is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--caches", type=int, default=3)
    parser.add_argument("--coalesce", default="0.5,0",
                        help="FEED_COALESCE_S values to compare (default 0.5,0: the default "
                        "and every write at once)")
    args = parser.parse_args()
    configurations = modes([value.strip() for value in args.coalesce.split(",") if value])
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in configurations}
    with tempfile.TemporaryDirectory() as tmp:
        for round_number in range(1, args.rounds + 1):
            for mode, environment in configurations.items():
                runs[mode].append(run_one(environment, args, Path(tmp)))
                print(f"round {round_number} {mode}: {json.dumps(runs[mode][-1])}", flush=True)
    table = {mode: medians(results) for mode, results in runs.items()}
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": " ".join(["python3 bench/feedcost.py", *sys.argv[1:]]),
            "rounds": args.rounds, "duration": args.duration, "caches": args.caches}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "feedcost.json").write_text(json.dumps({**meta, "runs": runs, "medians": table},
                                                      indent=2) + "\n")
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / "feedcost.md").write_text(markdown(table, meta))
    print(markdown(table, meta))


if __name__ == "__main__":
    main()
