"""Memory per logged API call: the call log against the obvious list of (method, path) tuples.

    python3 bench/calllog.py [--calls 1000000]

Measured with tracemalloc (what Python actually allocated), for paths like the API's.
Writes bench/results/calllog.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.calllog import CallLog  # noqa: E402  (needs the path above)

RESULTS = ROOT / "bench" / "results"


def paths(count: int) -> list[tuple[str, str]]:
    """A mix of calls as the load test makes them."""
    shapes = ["/tweets/{n}", "/tweets", "/tweets/{n}/like", "/accounts/user{n}",
              "/hashtags/tag{n}/tweets", "/tweets/search"]
    return [("POST" if n % 6 == 2 else "GET", shapes[n % 6].format(n=100_000 + n))
            for n in range(count)]


def measure(build: Callable[[list[tuple[str, str]]], Any], calls: list[tuple[str, str]]) -> float:
    """Return the bytes allocated per call while ``build`` keeps every call."""
    tracemalloc.start()
    kept = build(calls)
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept
    return size / len(calls)


def as_call_log(calls: list[tuple[str, str]]) -> CallLog:
    log = CallLog()
    for method, path in calls:
        log.append(method, path)
    return log


def as_tuples(calls: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # Fresh strings, as request parsing makes them (not the shared ones of the input list).
    return [(method + "", "".join(path)) for method, path in calls]


def main() -> None:
    """Measure both ways and write the result."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1_000_000)
    args = parser.parse_args()
    calls = paths(args.calls)
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": " ".join(["python3 bench/calllog.py", *sys.argv[1:]]),
              "calls": args.calls,
              "call_log_bytes_per_call": round(measure(as_call_log, calls), 1),
              "tuple_list_bytes_per_call": round(measure(as_tuples, calls), 1)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "calllog.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
