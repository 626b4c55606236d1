"""What the call log costs: memory per logged call, memory under 60 KB paths, and paging a
million-call log that lives mostly on disk.

    python3 bench/calllog.py [--calls 1000000] [--requests 1000]

- ``per_call``: bytes Python allocated per call (tracemalloc), for paths like the API's, in
  the log's memory part (a budget large enough that nothing spills) and, for comparison, in
  the obvious list of (method, path) tuples; plus the bytes each call takes on disk once
  spilled.
- ``long_paths_in_process``: tracemalloc growth of a CallLog after ``--requests`` calls with
  60 KB paths.
- ``long_paths_api``: a real ``python -m api`` process (on a free loopback port, a throwaway
  DATA_DIR, no store needed: the paths match no route) sent ``--requests`` GETs with 60 KB
  paths over one kept-alive connection; its VmRSS before and after, and /logs' answer.
- ``million``: ``--calls`` appends to a CallLog with a 64 KiB budget (nearly all on file),
  then every page of it followed by ``next``, checked in order, and one page deep in it.

Writes bench/results/calllog.json.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.calllog import CallLog  # noqa: E402  (needs the path above)
from tests.harness import free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results"
LONG = 60_000


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
    log = CallLog(memory_bytes=2 ** 40)  # all in memory: the cost of the memory part
    for method, path in calls:
        log.append(method, path)
    return log


def as_tuples(calls: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # Fresh strings, as request parsing makes them (not the shared ones of the input list).
    return [(method + "", "".join(path)) for method, path in calls]


def per_call(count: int) -> dict[str, Any]:
    calls = paths(count)
    with tempfile.TemporaryDirectory() as directory:
        log = CallLog(directory, memory_bytes=64 * 1024)
        for method, path in calls:
            log.append(method, path)
        disk = sum(os.path.getsize(p) for p in Path(directory).glob("calls-*"))
        on_file = log._stored
        log.close()
    return {"calls": count,
            "call_log_bytes_per_call": round(measure(as_call_log, calls), 1),
            "tuple_list_bytes_per_call": round(measure(as_tuples, calls), 1),
            "disk_bytes_per_spilled_call": round(disk / on_file, 1)}


def long_paths_in_process(requests: int) -> dict[str, Any]:
    long = [f"/x/{n}/" + "a" * LONG for n in range(requests)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    log = CallLog()
    for path in long:
        log.append("GET", path)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return {"requests": requests, "path_bytes": len(long[0]), "grown_bytes": grown,
            "bytes_per_call": round(grown / requests, 1)}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def api_port() -> int:
    """A free loopback port away from make run's 8000-8500."""
    while True:
        port = free_port()
        if not 8000 <= port <= 8500:
            return port


def get(connection: http.client.HTTPConnection, target: str) -> tuple[int, bytes]:
    connection.request("GET", target)
    answer = connection.getresponse()
    return answer.status, answer.read()


def long_paths_api(requests: int) -> dict[str, Any]:
    port = api_port()
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "PORT": str(port), "DATA_DIR": data, "SECRET_KEY": "bench",
               "STORE_URL": f"http://127.0.0.1:{api_port()}", "LOG_REQUESTS": "off"}
        process = subprocess.Popen([sys.executable, "-m", "api"], cwd=ROOT, env=env)
        try:
            connection = wait_for(port)
            for n in range(50):  # warm up: first-use allocations are not the log's
                get(connection, f"/x/{n}")
            before = rss_kib(process.pid)
            statuses = {get(connection, f"/x/{n}/" + "a" * LONG)[0] for n in range(requests)}
            after = rss_kib(process.pid)
            status, body = get(connection, "/logs")
            page = json.loads(body)
            connection.close()
        finally:
            process.terminate()
            process.wait(15)
    return {"requests": requests, "path_bytes": LONG + 5, "statuses": sorted(statuses),
            "rss_before_kib": before, "rss_after_kib": after,
            "rss_growth_mib": round((after - before) / 1024, 2),
            "logs_status": status, "logs_body_bytes": len(body), "logs_calls": len(page["calls"]),
            "logs_total": page["total"], "logged_path_example": page["calls"][-2][1][-40:]}


def wait_for(port: int) -> http.client.HTTPConnection:
    deadline = time.monotonic() + 20
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            get(connection, "/openapi.json")  # answered without the store
            return connection
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def million(calls: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        log = CallLog(directory, memory_bytes=64 * 1024)
        start = time.perf_counter()
        for n in range(calls):
            log.append("GET", f"/tweets/{n}")
        appended = time.perf_counter() - start
        start, at, pages, seen, largest = time.perf_counter(), 0, 0, 0, 0
        while True:
            page = log.read(at, 100_000)
            assert [p for _, p in page.calls] == [f"/tweets/{n}"
                                                  for n in range(at, at + len(page.calls))]
            largest = max(largest, len(json.dumps(page.calls, separators=(",", ":"))))
            pages, seen = pages + 1, seen + len(page.calls)
            if page.next is None:
                break
            at = page.next
        paged = time.perf_counter() - start
        timings = []
        for _ in range(5):  # the median: one read is short enough for a GC pass to show
            start = time.perf_counter()
            deep = log.read(calls - calls // 10, 1000)
            timings.append((time.perf_counter() - start) * 1000)
        deep_ms = statistics.median(timings)
        assert deep.calls[0][1] == f"/tweets/{calls - calls // 10}"
        result = {"calls": calls, "memory_budget_bytes": 64 * 1024, "on_file": log._stored,
                  "append_us_per_call": round(appended / calls * 1e6, 2),
                  "pages_of_limit_100000": pages, "seen_in_order": seen,
                  "largest_page_json_bytes": largest,
                  "paging_everything_s": round(paged, 2),
                  "page_of_1000_at_90_percent_ms": round(deep_ms, 2)}
        log.close()
    return result


def main() -> None:
    """Measure and write the result."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": " ".join(["python3 bench/calllog.py", *sys.argv[1:]]),
              "per_call": per_call(args.calls),
              "long_paths_in_process": long_paths_in_process(args.requests),
              "long_paths_api": long_paths_api(args.requests),
              "million": million(args.calls)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "calllog.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
