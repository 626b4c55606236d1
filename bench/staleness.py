"""Staleness after a write: how long until every replica, and every page showing it, is true.

Starts a whole stack (store, dbcache, api, 3 front caches, round-robin lb) on free loopback
ports, once with the change feed and once with ``CACHE_FEED=off`` (the TTL-only baseline),
and for each kind of write repeats, many times:

1. settle: wait until every cache has applied what its upstream's feed already announced
   (the setup writes below), so that no late drop empties a copy warmed in step 2;
2. warm every (replica, page) pair that shows what the write changes: a GET with
   ``Cache-Control: no-cache`` straight to each replica, so that each holds a fresh copy of
   the old state, as a busy replica would;
3. make the write through the lb;
4. poll every pair directly, one thread per pair, with plain GETs (what any reader gets)
   every ``--poll`` seconds from the moment the write is sent (readers keep reading during
   a write, and so re-cache the counts a like storm shows halfway) until it shows the new
   state, and a moment (``--hold``) longer to catch a page that goes back to the old state
   ("reverts"). Only answers that arrive after the write's answer count as showing it.

A pair's staleness is the time from the write's answer to the answer that first showed the
new state; a write's staleness is the slowest of its pairs. The kinds and what "new state"
means on each page (each kind has its own author and hashtag):

  post     the new tweet is on the timeline, the profile's tweets and the tag page, and the
           profile's tweet_count went up
  edit     a tweet posted just before shows the new text on its page, the timeline, the
           profile's tweets and its tag page, and the edit's new tag's page lists it
  delete   a tweet posted just before is 404 on its page and gone from the timeline, the
           profile's tweets and the tag page, and tweet_count went down
  account  a new account is in /accounts and in /accounts/search?q=<its name>
  likes    after --likes likes through the lb, a tweet posted just before shows the last
           202's count on its page, the timeline, the profile's tweets and the tag page

Reports p50/p99/max over writes (p99 interpolated between ranks, statistics.quantiles), per
kind and per page, with timeouts (--cap) counted at the cap. The goal (from the issue): p99
<= 1 s for post, edit, delete and account, <= 2 s for like counts, with the feed. Writes
bench/results/staleness.json and docs/bench/staleness.md.

    python3 bench/staleness.py [--writes 30] [--baseline-writes 3] [--ttl S] [--kinds post,...]
"""
from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness import running_stack, stack_ports  # noqa: E402  (needs the path above)

RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs" / "bench"
HOST = "127.0.0.1"
CACHES = 3
KINDS = ("post", "edit", "delete", "account", "likes")
GOAL_S = {"post": 1.0, "edit": 1.0, "delete": 1.0, "account": 1.0, "likes": 2.0}
LIKE_PUBLISH_S = 1.0  # the api's default (a liked tweet is published at most once a second)
PASSWORD = "correct horse"
NO_CACHE = {"Cache-Control": "no-cache"}

Check = Callable[[int, Any], bool]  # (status, decoded body) -> shows the new state


class BenchError(Exception):
    """A write or a setup step got an answer it should not have."""


@dataclass
class Answer:
    status: int
    body: Any


class Client:
    """One kept-alive connection to one service; a GET on a connection it closed is resent."""

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        host, port = address.rsplit(":", 1)
        self.host, self.port, self.timeout = host, int(port), timeout
        self.conn: http.client.HTTPConnection | None = None

    def fetch(self, method: str, path: str, payload: Any = None,
              headers: dict[str, str] | None = None) -> Answer:
        """Send one request and return its status and decoded JSON body."""
        body = json.dumps(payload).encode() if payload is not None else None
        sent = {**(headers or {}), **({"Content-Type": "application/json"} if body else {})}
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body, sent)
                answer = self.conn.getresponse()
                data = answer.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2 or method != "GET":
                    raise
                continue
            return Answer(answer.status, json.loads(data) if data else None)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def once(address: str, method: str, path: str, payload: Any = None,
         headers: dict[str, str] | None = None) -> Answer:
    """Send one request on a connection of its own (a write is never sent twice)."""
    client = Client(address)
    try:
        return client.fetch(method, path, payload, headers)
    finally:
        client.close()


# -- pages and writes ------------------------------------------------------------------------

@dataclass
class Page:
    name: str
    path: str
    shows: Check


@dataclass
class Write:
    pages: list[Page]
    do: Callable[[], None]


def tweet_in(status: int, body: Any, tweet_id: int | None) -> dict[str, Any] | None:
    """Return the tweet with ``tweet_id`` as an answer shows it (a tweet, or a page of them)."""
    if status != 200 or not isinstance(body, dict) or tweet_id is None:
        return None
    if "tweets" in body:
        return next((t for t in body["tweets"] if t.get("id") == tweet_id), None)
    return body if body.get("id") == tweet_id else None


def tweet_count_is(count: int) -> Check:
    """A profile page showing ``count`` tweets."""
    return lambda status, body: status == 200 and body.get("tweet_count") == count


def tweet_pages(user: str, tag: str) -> list[tuple[str, str]]:
    """The lists a tweet of ``user`` with ``#tag`` is on: (page name, path)."""
    return [("timeline", "/tweets"), ("profile tweets", f"/accounts/{user}/tweets"),
            ("tag page", f"/hashtags/{tag}/tweets")]


class Writer:
    """Make each kind of write through the lb, each kind as its own author with its own tag."""

    def __init__(self, lb: str, likes: int) -> None:
        self.lb = lb
        self.like_count = likes
        self.tokens: dict[str, str] = {}
        self.quiet_at = 0.0  # when the last like storm's coalesced publication is surely out
        self.counts: dict[str, int] = {}
        for kind in ("post", "edit", "delete", "likes"):
            user = f"sb_{kind}"
            self.sign_up(user)
            token = self.fetch("POST", "/sessions", {"username": user, "password": PASSWORD})
            self.tokens[user], self.counts[user] = token["token"], 0

    def fetch(self, method: str, path: str, payload: Any = None, user: str = "") -> Any:
        """Send one request through the lb; fail on anything but a 2xx."""
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        answer = once(self.lb, method, path, payload, headers)
        if not 200 <= answer.status < 300:
            raise BenchError(f"{method} {path} answered {answer.status}: {answer.body}")
        return answer.body

    def sign_up(self, username: str) -> None:
        self.fetch("POST", "/accounts", {"username": username, "password": PASSWORD})

    def wait_quiet(self) -> None:
        """Wait out the last like storm's late publication, lest it drop a copy warmed next."""
        time.sleep(max(0.0, min(self.quiet_at - time.monotonic(), LIKE_PUBLISH_S + 0.25)))

    def tweet(self, user: str, text: str) -> int:
        """Post a tweet as ``user``; return its id."""
        tweet = self.fetch("POST", "/tweets", {"text": text}, user)
        self.counts[user] += 1
        return int(tweet["id"])

    def post(self, n: int) -> Write:
        user, tag, made = "sb_post", "spost", {}

        def do() -> None:
            made["id"] = self.tweet(user, f"post {n} #{tag}")

        def listed(status: int, body: Any) -> bool:
            return tweet_in(status, body, made.get("id")) is not None
        pages = [Page(name, path, listed) for name, path in tweet_pages(user, tag)]
        pages.append(Page("profile", f"/accounts/{user}", tweet_count_is(self.counts[user] + 1)))
        return Write(pages, do)

    def edit(self, n: int) -> Write:
        user, tag, new_tag = "sb_edit", "sedit", f"snew{n}"
        tweet_id = self.tweet(user, f"edit me {n} #{tag}")
        text = f"edited {n} #{tag} #{new_tag}"

        def do() -> None:
            self.fetch("PUT", f"/tweets/{tweet_id}", {"text": text}, user)

        def edited(status: int, body: Any) -> bool:
            found = tweet_in(status, body, tweet_id)
            return found is not None and found.get("text") == text
        pages = [("tweet", f"/tweets/{tweet_id}"), *tweet_pages(user, tag),
                 ("new tag page", f"/hashtags/{new_tag}/tweets")]
        return Write([Page(name, path, edited) for name, path in pages], do)

    def delete(self, n: int) -> Write:
        user, tag = "sb_delete", "sdelete"
        tweet_id = self.tweet(user, f"delete me {n} #{tag}")

        def do() -> None:
            self.fetch("DELETE", f"/tweets/{tweet_id}", None, user)
            self.counts[user] -= 1

        def gone(status: int, body: Any) -> bool:
            return status == 200 and tweet_in(status, body, tweet_id) is None
        pages = [Page("tweet", f"/tweets/{tweet_id}", lambda status, body: status == 404)]
        pages += [Page(name, path, gone) for name, path in tweet_pages(user, tag)]
        pages.append(Page("profile", f"/accounts/{user}", tweet_count_is(self.counts[user] - 1)))
        return Write(pages, do)

    def account(self, n: int) -> Write:
        username = f"sb_new_{n}"

        def listed(status: int, body: Any) -> bool:
            accounts = body.get("accounts", []) if status == 200 else []
            return any(account.get("username") == username for account in accounts)
        return Write([Page("accounts", "/accounts", listed),
                      Page("account search", f"/accounts/search?q={quote(username)}", listed)],
                     lambda: self.sign_up(username))

    def likes(self, n: int) -> Write:
        user, tag, final = "sb_likes", "slikes", {}
        tweet_id = self.tweet(user, f"like me {n} #{tag}")

        def do() -> None:
            self.quiet_at = time.monotonic() + LIKE_PUBLISH_S + 0.25
            likes = None
            for _ in range(self.like_count):
                likes = self.fetch("POST", f"/tweets/{tweet_id}/like")["likes"]
            final["likes"] = likes  # only now: the readers polling meanwhile wait for this

        def counted(status: int, body: Any) -> bool:
            found = tweet_in(status, body, tweet_id)
            return found is not None and found.get("likes") == final.get("likes")
        pages = [("tweet", f"/tweets/{tweet_id}"), *tweet_pages(user, tag)]
        return Write([Page(name, path, counted) for name, path in pages], do)


# -- measuring one write ---------------------------------------------------------------------

@dataclass
class Timing:
    """What the probes of one write share."""

    interval: float
    cap: float
    ready: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    go: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    start: float = math.inf  # monotonic time of the write's answer, once it came


@dataclass
class Probe:
    """One (replica, page) pair: warm it, then poll it until it shows the new state."""

    replica: str
    page: Page
    phase: float = 0.0  # delay before the first poll: the probes' polls are spread out
    warm_status: int = 0
    seen_s: float | None = None
    polls: int = 0
    errors: int = 0
    reverts: int = 0  # answers showing the old state again after the new one

    def run(self, timing: Timing) -> None:
        client = Client(self.replica)
        try:
            self.warm_status = client.fetch("GET", self.page.path, headers=NO_CACHE).status
        except (OSError, http.client.HTTPException, ValueError):
            self.warm_status = 0
        finally:
            timing.ready.release()
        if timing.go.wait(timing.cap) and not timing.stop.wait(self.phase):
            self.watch(client, timing)
        client.close()

    def watch(self, client: Client, timing: Timing) -> None:
        # Polling starts with the write, as readers keep reading during one (and re-cache
        # what a like storm shows halfway), but only answers after the write's count.
        while not timing.stop.is_set() and time.monotonic() < timing.start + timing.cap:
            shows = self.look(client)
            since = time.monotonic() - timing.start
            if shows and self.seen_s is None and since >= 0:
                self.seen_s = since
            elif shows is False and self.seen_s is not None:
                self.reverts += 1
            timing.stop.wait(timing.interval)

    def look(self, client: Client) -> bool | None:
        """GET the page once: whether it shows the new state (None: no answer)."""
        self.polls += 1
        try:
            answer = client.fetch("GET", self.page.path)
        except (OSError, http.client.HTTPException, ValueError):
            self.errors += 1
            return None
        try:
            return self.page.shows(answer.status, answer.body)
        except (AttributeError, KeyError, TypeError):
            return False

    def record(self) -> dict[str, Any]:
        return {"replica": self.replica, "page": self.page.name, "path": self.page.path,
                "warm_status": self.warm_status, "seen_s": rounded(self.seen_s),
                "polls": self.polls, "errors": self.errors, "reverts": self.reverts}


def measure(write: Write, replicas: list[str], interval: float, cap: float,
            hold: float) -> tuple[float, list[Probe]]:
    """Warm every pair, make the write, poll every pair; return the write's time and probes."""
    timing = Timing(interval, cap)
    pairs = [(replica, page) for replica in replicas for page in write.pages]
    probes = [Probe(replica, page, n * interval / len(pairs))
              for n, (replica, page) in enumerate(pairs)]
    threads = [threading.Thread(target=probe.run, args=(timing,), daemon=True)
               for probe in probes]
    for thread in threads:
        thread.start()
    try:
        for _ in probes:
            if not timing.ready.acquire(timeout=30):
                raise BenchError("a replica did not answer the warming GET within 30 s")
        timing.go.set()
        began = time.monotonic()
        write.do()
        timing.start = time.monotonic()
        wait_seen(probes, timing)
        timing.stop.wait(hold)  # keep polling a moment: a page must not go back
    finally:
        timing.stop.set()
        timing.go.set()
        for thread in threads:
            thread.join(timeout=15)
    return timing.start - began, probes


def wait_seen(probes: list[Probe], timing: Timing) -> None:
    """Return once every probe saw the new state, or the cap ran out."""
    while time.monotonic() < timing.start + timing.cap:
        if all(probe.seen_s is not None for probe in probes):
            return
        time.sleep(min(timing.interval, 0.01))


# -- one stack, every write ------------------------------------------------------------------

@dataclass
class Mode:
    name: str  # "feed" or "baseline"
    writes: int
    interval: float
    env: dict[str, str]


class Bench:
    """A stack of one mode, the writer that drives it, and the records of its writes."""

    def __init__(self, mode: Mode, workdir: Path, args: argparse.Namespace) -> None:
        self.mode, self.args = mode, args
        self.data_dir = workdir / mode.name
        self.ports = stack_ports(CACHES, front=())  # no front ends
        self.replicas = [f"{HOST}:{self.ports['cache'] + n}" for n in range(CACHES)]
        self.records: list[dict[str, Any]] = []
        self.cache_stats: list[Any] = []

    def address(self, name: str) -> str:
        return f"{HOST}:{self.ports[name]}"

    def run(self, kinds: list[str]) -> None:
        """Start the stack, make every write of every kind, stop the stack."""
        with running_stack(self.data_dir, CACHES, env={"LOG_LEVEL": "WARNING", **self.mode.env},
                           ports=self.ports):
            writer = Writer(self.address("lb"), self.args.likes)
            for kind in kinds:
                for n in range(1, self.mode.writes + 1):
                    self.records.append(self.one(writer, kind, n))
            self.cache_stats = [once(r, "GET", "/_cache/stats").body for r in self.replicas]

    def one(self, writer: Writer, kind: str, n: int) -> dict[str, Any]:
        """Prepare, settle, warm, write and poll one write; return its record."""
        record: dict[str, Any] = {"kind": kind, "n": n}
        try:
            writer.wait_quiet()
            write = getattr(writer, kind)(n)
            record["settled"] = self.settle()
            write_s, probes = measure(write, self.replicas, self.mode.interval,
                                      self.args.cap, self.args.hold)
        except (BenchError, OSError, http.client.HTTPException) as err:
            print(f"{self.mode.name} {kind} {n}: failed: {err}", flush=True)
            return {**record, "error": str(err)}
        seen = [probe.seen_s for probe in probes]
        slowest = max(probes, key=lambda p: self.args.cap if p.seen_s is None else p.seen_s)
        record.update(write_s=rounded(write_s),
                      staleness_s=None if None in seen else rounded(max(s or 0 for s in seen)),
                      slowest=f"{self.name_of(slowest.replica)} {slowest.page.name}",
                      reverts=sum(p.reverts for p in probes),
                      warm_failures=sum(p.warm_status != 200 for p in probes),
                      pairs=[dict(probe.record(), replica=self.name_of(probe.replica))
                             for probe in probes])
        self.report(record)
        return record

    def name_of(self, replica: str) -> str:
        return f"cache{self.replicas.index(replica) + 1}"

    def report(self, record: dict[str, Any]) -> None:
        value = record["staleness_s"]
        shown = f">{self.args.cap:.0f} s (timeout)" if value is None else f"{value:.3f} s"
        extra = "".join(f", {record[key]} {key.replace('_', ' ')}"
                        for key in ("reverts", "warm_failures") if record[key])
        print(f"{self.mode.name:<8} {record['kind']:<7} {record['n']:>3}/{self.mode.writes}: "
              f"{shown:>10}  slowest: {record['slowest']}{extra}", flush=True)

    def settle(self, timeout: float = 5.0) -> bool:
        """Wait until each cache applied everything its upstream's feed has announced."""
        if self.mode.env.get("CACHE_FEED") == "off":
            return True
        deadline = time.monotonic() + timeout
        for upstream, caches in (("api", self.replicas), ("store", [self.address("dbcache")])):
            seq = once(self.address(upstream), "GET", "/_changes?after=0&wait=0").body["seq"]
            for cache in caches:
                while followed(cache) < seq:
                    if time.monotonic() > deadline:
                        return False
                    time.sleep(0.005)
        return True


def followed(cache: str) -> int:
    """Return the feed sequence number ``cache`` has applied (the lowest over its upstreams)."""
    feed = once(cache, "GET", "/_cache/stats").body.get("feed") or {}
    return min((int(up["seq"]) for up in feed.get("upstreams", [])), default=-1)


# -- summary and output ----------------------------------------------------------------------

def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p99 (interpolated between ranks) and max of ``values``."""
    if not values:
        return {"p50": None, "p99": None, "max": None}
    p99 = statistics.quantiles(values, n=100, method="inclusive")[98] if len(values) > 1 \
        else values[0]
    return {"p50": rounded(statistics.median(values)), "p99": rounded(p99),
            "max": rounded(max(values))}


def summarise(records: list[dict[str, Any]], cap: float) -> dict[str, Any]:
    """Per kind: percentiles of the per-write staleness and of each page's slowest replica."""
    summary: dict[str, Any] = {}
    for kind in dict.fromkeys(record["kind"] for record in records):
        done = [r for r in records if r["kind"] == kind and "error" not in r]
        values = [cap if r["staleness_s"] is None else r["staleness_s"] for r in done]
        pages: dict[str, list[float | None]] = {}
        for record in done:
            for name in dict.fromkeys(pair["page"] for pair in record["pairs"]):
                seen = [p["seen_s"] for p in record["pairs"] if p["page"] == name]
                pages.setdefault(name, []).append(None if None in seen else max(seen))
        summary[kind] = {
            **percentiles(values), "writes": len(done),
            "errors": sum("error" in r for r in records if r["kind"] == kind),
            "timeouts": sum(r["staleness_s"] is None for r in done),
            "reverts": sum(r["reverts"] for r in done),
            "warm_failures": sum(r["warm_failures"] for r in done),
            "pages": {name: {**percentiles([cap if v is None else v for v in seen]),
                             "timeouts": seen.count(None)} for name, seen in pages.items()}}
    return summary


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def markdown(report: dict[str, Any]) -> str:
    """Render the summaries as Markdown tables."""
    meta, feed, base = report["meta"], report["feed"]["summary"], report["baseline"]["summary"]
    lines = [f"# Staleness after a write, on every replica and every page ({meta['date']})", "",
             f"Command: `{meta['command']}` ({meta['machine']}; took "
             f"{meta.get('duration_s', 0) / 60:.1f} min).", "", meta["how"], "",
             "| write | goal (p99, feed) | feed p50 | feed p99 | feed max | goal met "
             "| TTL only p50 | TTL only p99 | TTL only max |",
             "|---|---:|---:|---:|---:|:---:|---:|---:|---:|"]
    for kind in meta["kinds"]:
        f, b = feed.get(kind, {}), base.get(kind, {})
        met = "—" if f.get("p99") is None else \
            ("yes" if f["p99"] <= GOAL_S[kind] and not f["timeouts"] else "no")
        lines.append(f"| {kind} | ≤ {GOAL_S[kind]:.0f} s | {seconds(f.get('p50'))} | "
                     f"{seconds(f.get('p99'))} | {seconds(f.get('max'))} | {met} | "
                     f"{seconds(b.get('p50'))} | {seconds(b.get('p99'))} | "
                     f"{seconds(b.get('max'))} |")
    lines += ["", counts_line("With the feed", report["feed"]),
              counts_line("TTL only", report["baseline"])]
    for label, summary in (("with the feed", feed), ("TTL only", base)):
        lines += page_table(label, summary)
    return "\n".join(lines) + "\n"


def counts_line(label: str, run: dict[str, Any]) -> str:
    """Say how many writes were measured and what went wrong, for one mode."""
    summary = run["summary"]
    total = {key: sum(s[key] for s in summary.values())
             for key in ("writes", "timeouts", "reverts", "errors", "warm_failures")}
    return (f"{label}: {total['writes']} writes ({run['writes_per_kind']} per kind, polled every "
            f"{run['poll_s'] * 1000:.0f} ms), {total['timeouts']} timeouts, {total['reverts']} "
            f"reverts to the old state, {total['errors']} failed writes, "
            f"{total['warm_failures']} failed warming GETs.")


def page_table(label: str, summary: dict[str, Any]) -> list[str]:
    """Per kind and page: the slowest replica's staleness, over writes."""
    if not summary:
        return []
    lines = ["", f"Per page, {label} (each write's slowest replica for that page):", "",
             "| write | page | p50 | p99 | max | timeouts |", "|---|---|---:|---:|---:|---:|"]
    for kind, row in summary.items():
        for page, cell in row["pages"].items():
            lines.append(f"| {kind} | {page} | {seconds(cell['p50'])} | {seconds(cell['p99'])} "
                         f"| {seconds(cell['max'])} | {cell['timeouts']} |")
    return lines


def print_table(report: dict[str, Any]) -> None:
    """Print write kind x {p50, p99, max} for both modes."""
    print(f"\n{'write':<8} {'feed p50':>9} {'p99':>9} {'max':>9} {'goal':>5}   "
          f"{'TTL p50':>9} {'p99':>9} {'max':>9}")
    for kind in report["meta"]["kinds"]:
        f = report["feed"]["summary"].get(kind, {})
        b = report["baseline"]["summary"].get(kind, {})
        met = "" if f.get("p99") is None else ("ok" if f["p99"] <= GOAL_S[kind] else "MISS")
        print(f"{kind:<8} {seconds(f.get('p50')):>9} {seconds(f.get('p99')):>9} "
              f"{seconds(f.get('max')):>9} {met:>5}   {seconds(b.get('p50')):>9} "
              f"{seconds(b.get('p99')):>9} {seconds(b.get('max')):>9}")


HOW = ("3 front caches behind a round-robin lb; every write through the lb; staleness is the "
       "time from the write's answer until a plain GET straight to a replica first showed the "
       "new state, for every replica and every page showing the write (a write's staleness: "
       "its slowest pair). Each copy was warmed with a no-cache GET just before the write. "
       "TTL only: CACHE_FEED=off on every cache (entries live CACHE_TTL_S, only the replica "
       "relaying a write drops what it names). Polling starts when the write is sent, so "
       "readers re-cache what a like storm shows halfway; a number is only as fine as the poll "
       "interval (the slowest of 12-15 pairs polled in staggered phases is about one interval "
       "late). Likes: the api publishes a liked tweet at most once per LIKE_PUBLISH_S (1 s), "
       "so about 1 s is the designed bound. p99 is interpolated between ranks; timeouts count "
       "at the cap.")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=30, help="writes per kind with the feed")
    parser.add_argument("--baseline-writes", type=int, default=3,
                        help="writes per kind with CACHE_FEED=off (each takes about the TTL)")
    parser.add_argument("--ttl", type=float, default=None,
                        help="CACHE_TTL_S for the baseline (default: the caches' own, 60 s)")
    parser.add_argument("--likes", type=int, default=12, help="likes per likes write")
    parser.add_argument("--poll", type=float, default=0.02, help="poll interval, feed run (s)")
    parser.add_argument("--baseline-poll", type=float, default=0.1,
                        help="poll interval, baseline run (s)")
    parser.add_argument("--cap", type=float, default=75.0, help="longest wait per write (s)")
    parser.add_argument("--hold", type=float, default=0.3,
                        help="how long to keep polling after every pair showed the write (s)")
    parser.add_argument("--kinds", default=",".join(KINDS))
    return parser.parse_args()


def run_mode(mode: Mode, kinds: list[str], workdir: Path,
             args: argparse.Namespace) -> dict[str, Any]:
    """Measure one mode (nothing when it has no writes); return its records and summary."""
    run: dict[str, Any] = {"writes_per_kind": mode.writes, "poll_s": mode.interval,
                           "env": mode.env, "summary": {}, "records": []}
    if mode.writes <= 0:
        return run
    bench = Bench(mode, workdir, args)
    bench.run(kinds)
    run.update(summary=summarise(bench.records, args.cap), records=bench.records,
               cache_stats=bench.cache_stats)
    return run


def main() -> None:
    """Measure with the feed and without it, print the table, write the results."""
    args = parse_args()
    kinds = [kind for kind in args.kinds.split(",") if kind]
    if not set(kinds) <= set(KINDS):
        sys.exit(f"--kinds: choose from {', '.join(KINDS)}")
    baseline_env = {"CACHE_FEED": "off", **({"CACHE_TTL_S": f"{args.ttl:g}"} if args.ttl else {})}
    started = time.monotonic()
    report: dict[str, Any] = {"meta": {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(["python3 bench/staleness.py", *sys.argv[1:]]), "how": HOW,
        "kinds": kinds, "caches": CACHES, "likes_per_write": args.likes, "cap_s": args.cap,
        "hold_s": args.hold, "goal_p99_s": GOAL_S,
        "machine": f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"}}
    with tempfile.TemporaryDirectory(prefix="fpt-staleness-") as workdir:
        report["feed"] = run_mode(Mode("feed", args.writes, args.poll, {"CACHE_FEED": "on"}),
                                  kinds, Path(workdir), args)
        report["baseline"] = run_mode(Mode("baseline", args.baseline_writes,
                                           args.baseline_poll, baseline_env),
                                      kinds, Path(workdir), args)
    report["meta"]["duration_s"] = round(time.monotonic() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    DOCS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "staleness.json").write_text(json.dumps(report, indent=2) + "\n")
    (DOCS / "staleness.md").write_text(markdown(report))
    print_table(report)
    print(f"\ntook {report['meta']['duration_s']:.0f} s; wrote bench/results/staleness.json and "
          "docs/bench/staleness.md")


if __name__ == "__main__":
    main()
