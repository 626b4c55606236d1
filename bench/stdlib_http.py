"""httpkit's hand-written pieces against the standard library's own, side by side in one run.

Three pieces, each measured in interleaved rounds (the order switching every round) and
reported as medians with the hand/stdlib ratio of every round:

  server   the request cycle: ``httpkit.server.Handler`` against ``BaseHTTPRequestHandler``
           set up as its docs allow (``wbufsize = -1`` so ``handle_one_request`` flushes
           head and body in one write, ``disable_nagle_algorithm``, ``do_*`` dispatching to
           the same router); one server process each, driven by wrk (GET, and POST with a
           body), else by a Python keep-alive client
  client   the pooled keep-alive client: ``httpkit.Upstream`` against a pool of
           ``http.client.HTTPConnection`` objects, sequential GETs to one fast server
  headers  parsing a request's head: ``httpkit.wire.parse_head`` (what the server and the
           client run on every message) against ``http.client.parse_headers`` (the ``email``
           parser ``BaseHTTPRequestHandler`` and ``http.client`` use)

The whole chain with the stdlib cycle in every service: ``bench/ab.py`` with
``--after-env PYTHONPATH=bench/stdlib_cycle`` (whose ``sitecustomize`` swaps the handler in).

    python3 bench/stdlib_http.py [--rounds 6] [--seconds 3]
"""
from __future__ import annotations

import argparse
import http.client
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ab import wait_up, wrk  # noqa: E402  (needs the path above)
from bench.origin import make_server  # noqa: E402
from httpkit import Server, Upstream, serve, wire  # noqa: E402
from httpkit.messages import Request  # noqa: E402
from tests.harness import free_port  # noqa: E402

RESULT = ROOT / "bench" / "results" / "stdlib_http.md"
HEADER_BLOCK = (b"Host: 127.0.0.1:8000\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n"
                b"Authorization: Bearer 0123456789abcdef0123456789abcdef\r\n"
                b"Content-Type: application/json\r\nContent-Length: 27\r\n\r\n")
HEAD = "POST /tweets HTTP/1.1\r\n" + HEADER_BLOCK[:-4].decode("latin-1")


class StdlibHandler(BaseHTTPRequestHandler):
    """The stock request cycle, set up for one write per answer, routing through ``server``."""

    protocol_version = "HTTP/1.1"
    wbufsize = -1  # a buffered wfile: head and body leave in handle_one_request's one flush
    disable_nagle_algorithm = True
    server: Server

    def do_any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = Request(self.command, self.path, unquote(path), query, headers, body,
                          self.client_address[0])
        response = self.server.respond(request)
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_any

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet, as httpkit's server is unless asked to log requests."""


def use_stdlib_cycle() -> None:
    """Make every ``httpkit.Server`` built from now on answer with ``StdlibHandler``."""
    original = Server.__init__

    def init(self: Server, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.RequestHandlerClass = StdlibHandler

    Server.__init__ = init  # type: ignore[method-assign]


class StdlibPool:
    """Pooled keep-alive requests with ``http.client``, as ``Upstream`` pools its own."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[http.client.HTTPConnection] = []
        self.lock = threading.Lock()

    def request(self, method: str, target: str, body: bytes = b"",
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        with self.lock:
            conn = self.idle.pop() if self.idle else None
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        conn.request(method, target, body or None, headers or {})
        answer = conn.getresponse()
        data = answer.read()
        if answer.will_close:
            conn.close()
        else:
            with self.lock:
                self.idle.append(conn)
        return answer.status, data


def start_server(kind: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``kind`` ("hand" or "stdlib") serving bench.origin's router in its own process."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port)])
    wait_up(f"http://127.0.0.1:{port}/healthz", 10.0)
    return proc, port


def wrk_one_thread(url: str, seconds: int, script: str | None) -> float:
    """One wrk thread, 8 connections: the server under test gets the other core."""
    return wrk(url, seconds, script, threads=1, connections=8)


def python_client(url: str, seconds: int, script: str | None) -> float:
    """Sequential keep-alive GETs or POSTs for ``seconds``; return requests/s."""
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    pool = StdlibPool("127.0.0.1", port)
    method, body = ("POST", b'{"text": "a post body of a typical size"}') if script else \
        ("GET", b"")
    count, deadline = 0, time.monotonic() + seconds
    start = time.monotonic()
    while time.monotonic() < deadline:
        pool.request(method, "/tweets/1", body)
        count += 1
    return count / (time.monotonic() - start)


def interleaved(rounds: int, sides: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Run each side once per round, the order switching every round."""
    seen: dict[str, list[float]] = {name: [] for name in sides}
    for number in range(rounds):
        order = list(sides) if number % 2 == 0 else list(reversed(sides))
        for name in order:
            seen[name].append(sides[name]())
    return seen


def row(piece: str, unit: str, seen: dict[str, list[float]], higher_is_better: bool) -> str:
    hand, stdlib = seen["hand"], seen["stdlib"]
    ratios = [h / s if higher_is_better else s / h for h, s in zip(hand, stdlib)]
    return (f"| {piece} | {statistics.median(hand):,.1f} {unit} | "
            f"{statistics.median(stdlib):,.1f} {unit} | {statistics.median(ratios):.2f} | "
            f"{min(ratios):.2f}–{max(ratios):.2f} |")


def measure_server(rounds: int, seconds: int) -> list[str]:
    drive = wrk_one_thread if shutil.which("wrk") else python_client
    work = tempfile.mkdtemp(prefix="fpt-stdlib-")
    post = os.path.join(work, "post.lua")
    with open(post, "w") as out:
        out.write('wrk.method = "POST"\nwrk.body = \'{"text": "a post body of a typical size"}\'\n'
                  'wrk.headers["Content-Type"] = "application/json"\n')
    procs = {kind: start_server(kind) for kind in ("hand", "stdlib")}
    try:
        rows = []

        def run(kind: str, script: str | None) -> Callable[[], float]:
            url = f"http://127.0.0.1:{procs[kind][1]}/tweets/1"
            return lambda: drive(url, seconds, script)

        for label, script in (("server cycle, GET", None), ("server cycle, POST", post)):
            seen = interleaved(rounds, {kind: run(kind, script) for kind in procs})
            client = "wrk" if drive is wrk_one_thread else "python"
            rows.append(row(f"{label} ({client})", "req/s", seen, True))
        return rows
    finally:
        for proc, _ in procs.values():
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def measure_client(rounds: int, seconds: int) -> list[str]:
    proc, port = start_server("hand")
    try:
        upstream = Upstream(f"http://127.0.0.1:{port}")
        pool = StdlibPool("127.0.0.1", port)

        def timed(send: Callable[[], object]) -> float:
            count, deadline = 0, time.monotonic() + seconds
            start = time.perf_counter()
            while time.monotonic() < deadline:
                send()
                count += 1
            return (time.perf_counter() - start) / count * 1e6

        seen = interleaved(rounds, {
            "hand": lambda: timed(lambda: upstream.request("GET", "/tweets/1")),
            "stdlib": lambda: timed(lambda: pool.request("GET", "/tweets/1"))})
        upstream.close()
        return [row("pooled client, GET round trip", "µs", seen, False)]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def measure_headers(rounds: int) -> list[str]:
    def per_call(parse: Callable[[], object]) -> float:
        number = 20_000
        return timeit.timeit(parse, number=number) / number * 1e6

    seen = interleaved(rounds, {
        "hand": lambda: per_call(lambda: wire.parse_head(HEAD)),
        "stdlib": lambda: per_call(lambda: http.client.parse_headers(io.BytesIO(HEADER_BLOCK)))})
    return [row("parse 6 request headers", "µs", seen, False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--serve", choices=["hand", "stdlib"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        if args.serve == "stdlib":
            use_stdlib_cycle()
        serve(make_server(args.port))
        return
    lines = [f"`python3 bench/stdlib_http.py --rounds {args.rounds} --seconds {args.seconds}`, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; ratios > 1: the "
             "hand-written piece is faster (µs rows compare time per call).", "",
             "| piece | httpkit (hand-written) | stdlib | hand/stdlib, median | range |",
             "| --- | ---: | ---: | ---: | --- |"]
    print("\n".join(lines), flush=True)
    for line in measure_headers(args.rounds) + measure_client(args.rounds, args.seconds) + \
            measure_server(args.rounds, args.seconds):
        print(line, flush=True)
        lines.append(line)
    RESULT.write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {RESULT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
