"""Side-by-side benchmark: what each layer costs and saves, as ratios measured in one run.

Starts every configuration itself on free loopback ports, then measures them in interleaved
rounds with the same client (wrk when installed, else a built-in Python client), and reports
medians of the per-round ratios to a bare server built on the shared handler (the ceiling):

  bare            bench.origin: the shared HTTP server answering a fixed tweet
  cache hit       a cache answering from memory (its upstream is the bare server)
  lb -> cache     the load balancer in front of that cache, with LB_WORKERS=1 and 2
  api read        GET /tweets/1 on the API through dbcache to the store (no front caches)
  lb read         the same read through lb -> cache -> api -> dbcache -> store (the lb
                  with its default workers, 2 on this machine, as `make run` starts it)
  like ...        POST /tweets/{id}/like: through lb or straight to the API, batching on
                  and off, all on one hot tweet or spread over 1,000 tweets

Writes bench/results/chain.json, docs/bench/chain.md and SVG charts in docs/bench/.

    python3 bench/chain.py [--rounds 5] [--seconds 3] [--connections 32]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stack.launcher import Service  # noqa: E402  (needs the path above)
from tests.harness import free_ports, running_stack  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs" / "bench"
SPREAD = 1000


def http(method: str, url: str, payload: Any = None, headers: dict[str, str] | None = None) -> Any:
    """Send one request with urllib and return the decoded JSON answer."""
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data, headers or {}, method=method)
    with urllib.request.urlopen(request, timeout=30) as answer:
        body = answer.read()
    return json.loads(body) if body else None


@dataclass
class Case:
    """One measured path: a URL and the method to hit it with."""

    name: str
    url: str
    method: str = "GET"
    paths: list[str] = field(default_factory=list)  # several paths: spread over them
    stats_url: str = ""  # the API whose /stats tells store requests per like


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


class Client:
    """Drive load at a case for some seconds: wrk when installed, else Python threads."""

    def __init__(self, connections: int, seconds: int, workdir: Path) -> None:
        self.connections = connections
        self.seconds = seconds
        self.workdir = workdir
        self.wrk = shutil.which("wrk")

    @property
    def name(self) -> str:
        return "wrk" if self.wrk else "python threads"

    def run(self, case: Case) -> Result:
        return self._wrk(case) if self.wrk else self._python(case)

    def _wrk(self, case: Case) -> Result:
        script = self.workdir / f"{re.sub(r'[^a-z0-9]+', '_', case.name)}.lua"
        paths = case.paths or [""]
        script.write_text(
            f'wrk.method = "{case.method}"\n'
            "local paths = {" + ",".join(json.dumps(p) for p in paths) + "}\n"
            "local n = 0\n"
            "request = function()\n"
            "  n = n + 1\n"
            "  return wrk.format(nil, wrk.path .. paths[(n % #paths) + 1])\n"
            "end\n")
        threads = "2" if self.connections >= 2 else "1"
        assert self.wrk is not None
        command = [self.wrk, "-t", threads, "-c", str(self.connections),
                   "-d", f"{self.seconds}s", "--latency", "-s", str(script), case.url]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
        pattern = r"(?:Non-2xx or 3xx responses|Socket errors:.*?)(\d+)"
        errors = sum(int(n) for n in re.findall(pattern, out))
        return Result(rps, wrk_ms(out, "50%"), wrk_ms(out, "99%"), errors)

    def _python(self, case: Case) -> Result:
        latencies: list[float] = []
        errors = [0]
        lock = threading.Lock()
        deadline = time.monotonic() + self.seconds

        def worker(offset: int) -> None:
            from http.client import HTTPConnection
            host, port = case.url.split("//")[1].split("/")[0].split(":")
            base = "/" + case.url.split("//")[1].partition("/")[2]
            conn = HTTPConnection(host, int(port), timeout=30)
            mine: list[float] = []
            n = offset
            while time.monotonic() < deadline:
                path = base.rstrip("/") + (case.paths[n % len(case.paths)] if case.paths else "")
                n += 1
                start = time.perf_counter()
                conn.request(case.method, path or "/")
                answer = conn.getresponse()
                answer.read()
                mine.append(time.perf_counter() - start)
                if answer.status >= 400:
                    with lock:
                        errors[0] += 1
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(self.connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        latencies.sort()
        count = len(latencies)
        return Result(count / self.seconds, 1000 * latencies[count // 2],
                      1000 * latencies[min(count - 1, int(count * 0.99))], errors[0])


def wrk_ms(out: str, percentile: str) -> float:
    """Read one latency percentile from wrk's --latency output, in ms."""
    found = re.search(rf"{re.escape(percentile)}\s+([\d.]+)(us|ms|s)", out)
    if not found:
        return float("nan")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found[2]]
    return float(found[1]) * scale


class Bench:
    """Start the configurations, seed their data, and measure them side by side."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.stacks = ExitStack()  # every configuration started, stopped last first
        self.cases: list[Case] = []

    def start(self, name: str, services: list[Service]) -> None:
        self.stacks.enter_context(running_stack(self.workdir / name, services=services,
                                                env={"LOG_LEVEL": "WARNING"}))

    def stop(self) -> None:
        self.stacks.close()

    def build(self) -> None:
        """Start every configuration and define the cases."""
        origin, cache, lb, lb2 = free_ports(["origin", "cache", "lb", "lb2"]).values()
        self.start("ceiling", [
            Service("origin", "bench.origin", origin),
            Service("cache", "cache", cache, {"UPSTREAM_URL": f"http://127.0.0.1:{origin}"}),
            Service("lb", "lb", lb, {"LB_UPSTREAMS": f"127.0.0.1:{cache}", "LB_WORKERS": "1"}),
            Service("lb2", "lb", lb2, {"LB_UPSTREAMS": f"127.0.0.1:{cache}",
                                       "LB_WORKERS": "2"})])
        self.cases += [Case("bare server", f"http://127.0.0.1:{origin}/tweets/1"),
                       Case("cache hit", f"http://127.0.0.1:{cache}/tweets/1"),
                       Case("lb (1 worker) -> cache hit", f"http://127.0.0.1:{lb}/tweets/1"),
                       Case("lb (2 workers) -> cache hit", f"http://127.0.0.1:{lb2}/tweets/1")]
        chain = self.chain("batched", batching=True)
        unbatched = self.chain("unbatched", batching=False)
        self.cases += [Case("api read (dbcache hit)", f"{chain['api']}/tweets/1"),
                       Case("lb read (front cache hit)", f"{chain['lb']}/tweets/1")]
        for label, urls, batching in (("batching on", chain, True),
                                      ("batching off", unbatched, False)):
            for where in ("lb", "api"):
                if where == "lb" and not batching:
                    continue
                base, stats = f"{urls[where]}/tweets/", f"{urls['api']}/stats"
                self.cases.append(Case(f"like via {where}, hot, {label}", base, "POST",
                                       ["1/like"], stats))
                self.cases.append(Case(f"like via {where}, spread, {label}", base, "POST",
                                       [f"{n}/like" for n in range(1, SPREAD + 1)], stats))

    def chain(self, name: str, batching: bool) -> dict[str, str]:
        """Start store, dbcache, api, one cache and lb; seed 1,000 tweets; return URLs."""
        store, dbcache, api, cache, lb = free_ports(["store", "dbcache", "api", "cache",
                                                     "lb"]).values()
        url = {"store": store, "dbcache": dbcache, "api": api, "cache": cache, "lb": lb}
        urls = {key: f"http://127.0.0.1:{port}" for key, port in url.items()}
        self.start(name, [
            Service("store", "store", store),
            Service("dbcache", "dbcache", dbcache, {"UPSTREAM_URL": urls["store"]}),
            # Likes wait at most 1 s here (60 s by default), so that every round's likes are
            # written before its counts are read.
            Service("api", "api", api, {"STORE_URL": urls["dbcache"], "LIKE_MAX_AGE_S": "1",
                                        "LIKE_BATCHING": "on" if batching else "off"}),
            Service("cache", "cache", cache, {"UPSTREAM_URL": urls["api"]}),
            Service("lb", "lb", lb, {"LB_UPSTREAMS": f"127.0.0.1:{cache}"})])
        account = http("POST", f"{urls['store']}/accounts",
                       {"username": "bench", "password_hash": "x", "display_name": "Bench"})
        for n in range(SPREAD):
            http("POST", f"{urls['store']}/tweets",
                 {"author_id": account["id"], "text": f"tweet {n} #bench", "hashtags": ["bench"]})
        return urls

    def measure(self, client: Client, rounds: int) -> dict[str, list[dict[str, Any]]]:
        """Run every case once per round, in the same order, and keep every result."""
        results: dict[str, list[dict[str, Any]]] = {case.name: [] for case in self.cases}
        for case in self.cases:  # warm every cache and connection pool first
            client.run(Case(case.name, case.url, case.method, case.paths[:1]))
        for round_number in range(1, rounds + 1):
            for case in self.cases:
                before = flushed(case.stats_url) if case.stats_url else None
                result = client.run(case)
                record: dict[str, Any] = vars(result).copy()
                if before is not None:
                    record.update(like_costs(before, flushed(case.stats_url)))
                results[case.name].append(record)
                print(f"round {round_number}: {case.name:<34} {result.rps:9.0f} req/s  "
                      f"p99 {result.p99_ms:6.1f} ms  errors {result.errors}", flush=True)
        return results


def flushed(stats_url: str) -> dict[str, Any]:
    """Wait until the API has no pending likes (at most 10 s), then return its /stats."""
    deadline = time.monotonic() + 10
    while True:
        stats: dict[str, Any] = http("GET", stats_url)
        if not stats.get("pending") or time.monotonic() > deadline:
            return stats
        time.sleep(0.2)


def like_costs(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float | None]:
    """Store requests and SQL statements per like between two /stats readings."""
    likes = after["likes_received"] - before["likes_received"]
    requests = after["store_requests"] - before["store_requests"]
    queries = (after["database"]["store"]["queries"] - before["database"]["store"]["queries"])
    return {"store_requests_per_like": requests / likes if likes else None,
            "store_queries_per_like": queries / likes if likes else None}


def summarise(results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Median req/s, and the median of per-round ratios to the bare server."""
    bare = results["bare server"]
    rows = []
    for name, runs in results.items():
        ratios = [run["rps"] / base["rps"] for run, base in zip(runs, bare)]
        per_like = [run["store_requests_per_like"] for run in runs
                    if run.get("store_requests_per_like") is not None]
        queries = [run["store_queries_per_like"] for run in runs
                   if run.get("store_queries_per_like") is not None]
        rows.append({"case": name, "rps": statistics.median(run["rps"] for run in runs),
                     "ratio": statistics.median(ratios),
                     "p99_ms": statistics.median(run["p99_ms"] for run in runs),
                     "errors": sum(run["errors"] for run in runs),
                     "store_requests_per_like": statistics.median(per_like) if per_like else None,
                     "store_queries_per_like": statistics.median(queries) if queries else None})
    return rows


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """Render the summary as a Markdown table."""
    lines = [f"# Side-by-side benchmark ({meta['date']})", "",
             f"Command: `{meta['command']}`. Client: {meta['client']}, "
             f"{meta['connections']} connections, {meta['rounds']} interleaved rounds of "
             f"{meta['seconds']} s; medians. Machine: {meta['machine']}.", "",
             "| path | req/s | ratio to bare server | p99 ms | store requests per like "
             "| store SQL statements per like | errors |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['case']} | {row['rps']:,.0f} | {row['ratio']:.2f}x | "
                     f"{row['p99_ms']:.1f} | {number(row['store_requests_per_like'])} | "
                     f"{number(row['store_queries_per_like'])} | {row['errors']} |")
    return "\n".join(lines) + "\n"


def number(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def svg_chart(rows: list[dict[str, Any]], title: str) -> str:
    """A horizontal bar chart of the ratios."""
    width, label_width, bar, gap = 720, 280, 22, 8
    height = len(rows) * (bar + gap) + 40
    biggest = max(row["ratio"] for row in rows) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             'font-family="sans-serif" font-size="12">',
             f'<text x="10" y="18" font-size="14" font-weight="bold">{title}</text>']
    for index, row in enumerate(rows):
        y = 30 + index * (bar + gap)
        length = (width - label_width - 70) * row["ratio"] / biggest
        parts.append(f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end">'
                     f'{row["case"].replace(">", "&gt;")}</text>'
                     f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar}" '
                     f'fill="#1d6fb8"/><text x="{label_width + length + 5:.1f}" y="{y + 15}">'
                     f'{row["ratio"]:.2f}x</text>')
    parts.append("</svg>\n")
    return "".join(parts)


def main() -> None:
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="fpt-bench-"))
    bench = Bench(workdir)
    try:
        bench.build()
        client = Client(args.connections, args.seconds, workdir)
        results = bench.measure(client, args.rounds)
    finally:
        bench.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    rows = summarise(results)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": " ".join(["python3 bench/chain.py", *sys.argv[1:]]),
            "client": client.name, "connections": args.connections, "rounds": args.rounds,
            "seconds": args.seconds, "machine": f"{os.cpu_count()} cores, Python "
                                                f"{sys.version.split()[0]}"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    DOCS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "chain.json").write_text(json.dumps({"meta": meta, "summary": rows,
                                                    "runs": results}, indent=2) + "\n")
    table = markdown(rows, meta)
    (DOCS / "chain.md").write_text(table)
    reads = [row for row in rows if not row["case"].startswith("like")]
    likes = [row for row in rows if row["case"].startswith("like")]
    (DOCS / "reads.svg").write_text(svg_chart(reads, "Reads: req/s as a share of the bare server"))
    (DOCS / "likes.svg").write_text(svg_chart(likes, "Likes: req/s as a share of the bare server"))
    print("\n" + table)


if __name__ == "__main__":
    main()
