"""Chaos run: one fault after another under a mixed load, with the launcher alone
bringing every victim back.

Starts ``python -m stack`` once, in a process group of its own, with 3 caches, a temporary
DATA_DIR and every port moved to --port-base (9100-9300; like batching and CACHE_TTL_S at their
defaults), signs up a few accounts and posts 50 tweets through the lb, then drives the lb from
keep-alive threads: readers of hot pages (the timeline and the seeded tweets' pages: cache
hits), and writers posting and liking (apart, so that a writer's pauses between retries never
slow the reads down and the hits' throughput measures the stack, not this client). Every
post and like carries an ``Idempotency-Key`` (a fresh uuid per logical request) and is sent
again with the same key after a 5xx, a 409 or no answer, up to three more times. Reads are
never retried. Then, each in a window of its own (a baseline, the
fault, an observation), it sends

  kill -9 to one cache, to the api, to dbcache, to the store and to one lb worker; SIGTERM to
  the api; SIGSTOP to the store, and SIGCONT 20 s later,

and never restarts anything itself. A victim is found afresh each time as the launcher's child
whose PORT variable is the service's port (read from /proc), an lb worker as a child of the lb's
master.

Per fault it reports the failed requests (any answer but a 2xx, or none) by kind; the recovery:
seconds from the fault (from SIGCONT for the stop) until the victim answers /healthz again (a
new process, for a kill), and until every kind of request succeeds again after its last
failure; for the stop, the cache hits' throughput against the window's own baseline, and how
the requests that were not hits were answered (the share of 503s and their p99). At the end
the load stops, the launcher gets SIGTERM (the api flushes its likes on the way down), and the
store's sqlite file is read directly: a tweet answered 201 and missing is lost, a text stored
more than once is doubled, and a tweet stored after nothing but error answers broke "an error
means nothing happened". Each window likes its own five tweets, so the likes stored on them,
against the likes answered 202 (plus those whose outcome no answer told), say lost or doubled
per fault.

Prints progress, then a Markdown table; writes bench/results/chaos.json and chaos.md.

    python3 bench/chaos.py [--quick | --scale 0.4] [--caches 3] [--port-base 9200]
                           [--readers 8] [--writers 6]
"""
from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stack.launcher import port_free, port_holder  # noqa: E402  (needs the path above)

RESULTS = ROOT / "bench" / "results"
HOST = "127.0.0.1"
PORTS_ALLOWED = range(9100, 9301)
WIRING = ("HOST", "PORT", "STORE_URL", "UPSTREAM_URL", "API_URL", "LB_UPSTREAMS")
PASSWORD = "correct horse battery"
ACCOUNTS = 4
SEED_TWEETS = 50
LIKED_PER_WINDOW = 5  # each window likes tweets of its own, so likes are told apart by fault
KINDS = ("read", "post", "like")
WRITE_MIX = {"post": 1, "like": 2}  # what each writer thread sends
TIMELINE_SHARE = 0.2  # of the reads; the rest read one seeded tweet's page
RETRY_PAUSES_S = (0.2, 0.5, 1.0)  # a write is sent at most four times, always with its key
# An answer that does not say what happened: none at all, or a proxy's "the upstream did not
# answer (in time)". A write that gave up after one of these may have landed.
UNKNOWN = frozenset({0, 502, 504})
CLIENT_TIMEOUT_S = 20.0  # above every service's own upstream timeout (the lb's 15 s)
HITS = frozenset({"HIT", "STALE"})  # answered from a front cache's copy (cache/app.py)
BASELINE_S, OBSERVE_S, STOP_S = 4.0, 10.0, 20.0
HEALTH_POLL_S = 0.05
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 150.0  # the launcher stops 8 services one by one, each drained (<= 15 s)
GOAL_RECOVERY_S = 3.0
GOAL_HIT_SHARE = 0.5
GOAL_503_P99_S = 1.0


@dataclass(frozen=True)
class Fault:
    name: str
    victim: str  # a service of the launcher's plan ("cache2", "api"), "lb worker", or ""
    signum: int = signal.SIGKILL


FAULTS = (
    Fault("none (baseline)", ""),
    Fault("kill -9 cache2", "cache2"),
    Fault("kill -9 api", "api"),
    Fault("kill -9 dbcache", "dbcache"),
    Fault("kill -9 store", "store"),
    Fault("kill -9 lb worker", "lb worker"),
    Fault("SIGTERM api", "api", signal.SIGTERM),
    Fault("SIGSTOP store 20 s", "store", signal.SIGSTOP),
)


@dataclass(frozen=True)
class Timing:
    baseline: float
    observe: float
    stop: float

    @classmethod
    def scaled(cls, scale: float) -> Timing:
        return cls(max(1.5, BASELINE_S * scale), max(3.0, OBSERVE_S * scale),
                   max(3.0, STOP_S * scale))


@dataclass
class Attempt:
    """One request as sent and answered; times in seconds since the load started."""

    kind: str  # read, post or like
    window: int  # the window its logical request started in
    start: float
    latency: float
    status: int  # 0: no answer (``error`` says why)
    error: str = ""
    cache: str = ""  # the X-Cache header
    page: str = ""  # a read's: "timeline" or "tweet"

    @property
    def end(self) -> float:
        return self.start + self.latency

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def hit(self) -> bool:
        return self.cache in HITS


@dataclass
class Write:
    """One logical post or like, however many times it was sent."""

    kind: str
    window: int
    key: str
    text: str = ""  # a post's
    tweet_id: int = 0  # a like's tweet; a post's id once answered 201
    acked: bool = False
    statuses: list[int] = field(default_factory=list)

    @property
    def unknown(self) -> bool:
        """Tell whether it gave up with an outcome no answer told."""
        return not self.acked and any(status in UNKNOWN for status in self.statuses)


@dataclass
class Window:
    """One fault's stretch of the run, in seconds since the load started."""

    index: int
    fault: Fault
    start: float
    fault_at: float
    resumed_at: float  # SIGCONT for a stop; the fault itself otherwise
    end: float
    victim_pid: int | None = None
    new_pid: int | None = None
    health_s: float | None = None  # until the victim answered /healthz again
    liked: list[int] = field(default_factory=list)


@dataclass
class Seed:
    run: str
    tokens: list[str]
    tweet_ids: list[int]


# -- pure helpers: what the numbers mean ---------------------------------------------------


def percentile(values: Iterable[float], share: float) -> float | None:
    """Return the nearest-rank percentile (None if there are no values)."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def failures_by_kind(attempts: Iterable[Attempt]) -> dict[str, int]:
    """Count the attempts that did not get a 2xx, per kind."""
    counts: Counter[str] = Counter(a.kind for a in attempts if not a.ok)
    return {kind: counts.get(kind, 0) for kind in KINDS}


def failure_causes(attempts: Iterable[Attempt]) -> dict[str, int]:
    """Count failed attempts by what they got ("503", "ConnectionResetError")."""
    return dict(Counter(a.error or str(a.status) for a in attempts if not a.ok).most_common())


def request_recovery(attempts: list[Attempt], since: float) -> float | None:
    """Return the seconds from ``since`` until every kind that failed succeeded again after
    its last failure (0 if none failed; None if one never did)."""
    worst = 0.0
    for kind in KINDS:
        mine = [a for a in attempts if a.kind == kind]
        failed = [a.start for a in mine if not a.ok]
        if not failed:
            continue
        last = max(failed)
        healed = [a.end for a in mine if a.ok and a.start >= last]
        if not healed:
            return None
        worst = max(worst, min(healed) - since)
    return worst


def failure_span(attempts: Iterable[Attempt], since: float) -> tuple[float, float] | None:
    """Return when the failures began and ended, in seconds after ``since`` (None if none)."""
    failed = [a for a in attempts if not a.ok]
    if not failed:
        return None
    return (round(min(a.start for a in failed) - since, 2),
            round(max(a.end for a in failed) - since, 2))


def throughput(attempts: Iterable[Attempt], start: float, end: float) -> float:
    """Return answers per second that arrived between ``start`` and ``end``."""
    if end <= start:
        return 0.0
    return sum(1 for a in attempts if start <= a.end < end) / (end - start)


def stop_figures(attempts: list[Attempt], window: Window) -> dict[str, Any]:
    """Describe the store's stop: hit throughput against the baseline, how the rest fared."""
    hits = [a for a in attempts if a.hit and a.ok]
    before = throughput(hits, window.start, window.fault_at)
    during = throughput(hits, window.fault_at, window.resumed_at)
    rest = [a for a in attempts if not a.hit and window.fault_at <= a.start < window.resumed_at]
    refused = [a for a in rest if a.status == 503]
    failed = [a for a in rest if not a.ok]
    return {
        "hits_per_s_before": round(before, 1), "hits_per_s_during": round(during, 1),
        "hit_share": round(during / before, 3) if before else None,
        "others": len(rest), "others_ok": sum(1 for a in rest if a.ok),
        "others_503": len(refused), "others_failed": len(failed),
        "share_503_of_failed": round(len(refused) / len(failed), 3) if failed else None,
        "p99_503_s": rounded(percentile((a.latency for a in refused), 0.99)),
        "p99_failed_s": rounded(percentile((a.latency for a in failed), 0.99)),
        "p99_others_s": rounded(percentile((a.latency for a in rest), 0.99)),
        "failed_causes": failure_causes(rest),
        "span_504_s": failure_span((a for a in rest if a.status == 504), window.fault_at),
    }


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def tweet_verdict(posts: list[Write], stored: dict[int, str]) -> dict[str, int]:
    """Compare the posts with the stored tweets (id -> text): lost, doubled, landed."""
    copies = Counter(stored.values())
    lost = sum(1 for p in posts if p.acked and stored.get(p.tweet_id) != p.text)
    doubled = sum(copies[p.text] - 1 for p in posts if copies[p.text] > 1)
    landed = [p for p in posts if not p.acked and copies[p.text] > 0]
    return {"acked": sum(1 for p in posts if p.acked), "lost": lost, "doubled": doubled,
            "gave_up": sum(1 for p in posts if not p.acked),
            "landed_unknown": sum(1 for p in landed if p.unknown),
            "landed_after_error": sum(1 for p in landed if not p.unknown)}


def like_verdict(likes: list[Write], stored: dict[int, int],
                 journaled: dict[int, int] | None = None) -> dict[str, int]:
    """Compare the likes sent with the likes stored per tweet (the seeded tweets start at 0).

    A tweet lost likes if it holds fewer than were answered 202; it was over-counted if it
    holds more than that plus the likes that gave up without an answer saying what happened
    (a like refused with an error answer must not count)."""
    acked: Counter[int] = Counter(w.tweet_id for w in likes if w.acked)
    unknown: Counter[int] = Counter(w.tweet_id for w in likes if w.unknown)
    tweets = {w.tweet_id for w in likes}
    journal = journaled or {}
    return {
        "acked": sum(acked.values()), "unknown": sum(unknown.values()),
        "gave_up": sum(1 for w in likes if not w.acked),
        "stored": sum(stored.get(t, 0) for t in tweets),
        "lost": sum(max(0, acked[t] - stored.get(t, 0)) for t in tweets),
        "doubled": sum(max(0, stored.get(t, 0) - acked[t] - unknown[t]) for t in tweets),
        "still_journaled": sum(journal.get(t, 0) for t in tweets),
    }


def fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def table_row(row: dict[str, Any]) -> str:
    """Render one fault's numbers as a Markdown table row."""
    failed = row["failed"]
    total = sum(failed.values())
    by_kind = ", ".join(f"{n} {kind}s" for kind, n in failed.items() if n)
    tweets, likes = row["tweets"], row["likes"]
    return (f"| {row['fault']} | {total}{f' ({by_kind})' if by_kind else ''} | "
            f"{fmt_s(row['recovery_health_s'])} / {fmt_s(row['recovery_requests_s'])} | "
            f"{tweets['lost']} / {tweets['doubled']} | {likes['lost']} / {likes['doubled']} | "
            f"{'; '.join(row['notes'])} |")


def table(rows: list[dict[str, Any]]) -> str:
    """Render the chaos table in Markdown."""
    head = ("| fault | failed requests | recovery s (healthz / requests) | tweets lost / doubled "
            "| likes lost / doubled | notes |\n|---|---|---|---|---|---|")
    return "\n".join([head, *(table_row(row) for row in rows)])


def notes_for(window: Window, attempts: list[Attempt], tweets: dict[str, int],
              likes: dict[str, int]) -> list[str]:
    """Say what the numbers alone do not: causes, give-ups, writes that landed anyway."""
    notes = []
    if window.fault.victim:
        notes.append(f"PID {window.victim_pid} -> {window.new_pid}")
    causes = failure_causes(attempts)
    if causes:
        notes.append("got " + ", ".join(f"{n}x {c}" for c, n in list(causes.items())[:4]))
    span = failure_span(attempts, window.fault_at)
    if span and window.fault.victim:
        notes.append(f"failures from {span[0]:+.1f} s to {span[1]:+.1f} s of the fault")
    pages = Counter(a.page for a in attempts if a.kind == "read" and not a.ok)
    if pages:
        notes.append("failed reads: " + ", ".join(
            f"{n} {page} pages" for page, n in sorted(pages.items())))
    gave_up = tweets["gave_up"] + likes["gave_up"]
    if gave_up:
        notes.append(f"{tweets['gave_up']} posts and {likes['gave_up']} likes gave up "
                     f"after {len(RETRY_PAUSES_S)} retries")
    if tweets["landed_after_error"]:
        notes.append(f"{tweets['landed_after_error']} tweets stored although every answer "
                     f"was an error")
    if tweets["landed_unknown"]:
        notes.append(f"{tweets['landed_unknown']} unanswered posts landed")
    if likes["still_journaled"]:
        notes.append(f"{likes['still_journaled']} likes still in the api's journal")
    return notes


# -- processes -----------------------------------------------------------------------------


def proc_stat(pid: int) -> tuple[str, int]:
    """Return a process's state letter and parent PID, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    """Tell whether a process runs (a zombie has exited; a stopped one still runs)."""
    try:
        return proc_stat(pid)[0] not in ("Z", "X")
    except (OSError, IndexError, ValueError):
        return False


def children(parent: int) -> list[int]:
    """Return the live processes whose parent is ``parent``."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                state, ppid = proc_stat(int(name))
            except (OSError, IndexError, ValueError):
                continue
            if ppid == parent and state not in ("Z", "X"):
                found.append(int(name))
    return sorted(found)


def environ(pid: int) -> dict[str, str]:
    """Return a process's environment ({} if it cannot be read)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as raw:
            pairs = raw.read().split(b"\0")
    except OSError:
        return {}
    text = (pair.decode(errors="replace") for pair in pairs if b"=" in pair)
    return dict(item.split("=", 1) for item in text)


def healthy(port: int, timeout: float = 0.5) -> bool:
    """Tell whether the service on ``port`` answers /healthz with ok right now."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=timeout) as answer:
            return bool(json.load(answer).get("status") == "ok")
    except (OSError, ValueError):
        return False


def service_ports(base: int, caches: int) -> dict[str, int]:
    """Return each service's port, all from ``base`` (caches right after the lb)."""
    if not 1 <= caches <= 18:
        raise SystemExit("--caches must be between 1 and 18")
    ports = {"lb": base, **{f"cache{n + 1}": base + 1 + n for n in range(caches)},
             "api": base + 20, "dbcache": base + 21, "store": base + 22, "web": base + 23}
    if not all(port in PORTS_ALLOWED for port in ports.values()):
        raise SystemExit(f"--port-base {base}: the ports must stay in 9100-9300")
    return ports


# -- the load ------------------------------------------------------------------------------


class Client:
    """One kept-alive connection to the lb; a new one after any failure."""

    def __init__(self, port: int, clock: Callable[[], float]) -> None:
        self.port = port
        self.clock = clock
        self.conn: http.client.HTTPConnection | None = None

    def send(self, kind: str, window: int, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[Attempt, bytes]:
        """Send one request once; return what happened and the body."""
        payload = json.dumps(body).encode() if body is not None else None
        sent = {**(headers or {}), **({"Content-Type": "application/json"} if payload else {})}
        start = self.clock()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=CLIENT_TIMEOUT_S)
            self.conn.request(method, path, payload, sent)
            answer = self.conn.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException) as err:
            self.close()
            return Attempt(kind, window, start, self.clock() - start, 0, type(err).__name__), b""
        if answer.will_close:
            self.close()
        return Attempt(kind, window, start, self.clock() - start, answer.status,
                       cache=answer.getheader("X-Cache") or ""), data

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Load:
    """Worker threads sending the mix to the lb until stopped, each keeping its own records."""

    def __init__(self, port: int, seed: Seed, readers: int, writers: int,
                 liked: dict[int, list[int]]) -> None:
        self.port = port
        self.seed = seed
        self.liked = liked  # window -> the tweets its likes go to
        self.window = 0  # set by the conductor; read by each logical request as it starts
        self.stopping = threading.Event()
        self.t0 = time.monotonic()
        workers = readers + writers
        self.attempts: list[list[Attempt]] = [[] for _ in range(workers)]
        self.writes: list[list[Write]] = [[] for _ in range(workers)]
        # Readers and writers apart: a writer pausing between retries must not slow the reads
        # down, or the hits' throughput would measure this client rather than the stack.
        self.threads = [threading.Thread(target=self.work, args=(n, n >= readers), daemon=True)
                        for n in range(workers)]

    def now(self) -> float:
        return time.monotonic() - self.t0

    def start(self) -> None:
        self.t0 = time.monotonic()
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        """Let every worker finish its logical request, then return."""
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=CLIENT_TIMEOUT_S * (len(RETRY_PAUSES_S) + 1) + 5)

    def work(self, n: int, writer: bool) -> None:
        rng = random.Random(n)
        client = Client(self.port, self.now)
        kinds, weights = list(WRITE_MIX), list(WRITE_MIX.values())
        while not self.stopping.is_set():
            window = self.window
            if writer:
                kind = rng.choices(kinds, weights)[0]
                self.writes[n].append(self.write(client, kind, window, rng, self.attempts[n]))
            else:
                path = self.page(rng)
                attempt = client.send("read", window, "GET", path)[0]
                attempt.page = "timeline" if path == "/tweets" else "tweet"
                self.attempts[n].append(attempt)
        client.close()

    def page(self, rng: random.Random) -> str:
        if rng.random() < TIMELINE_SHARE:
            return "/tweets"
        return f"/tweets/{rng.choice(self.seed.tweet_ids)}"

    def write(self, client: Client, kind: str, window: int, rng: random.Random,
              attempts: list[Attempt]) -> Write:
        """Make one logical post or like, sent again with its key until answered (or not)."""
        key = uuid.uuid4().hex
        headers = {"Idempotency-Key": key}
        if kind == "post":
            write = Write(kind, window, key, text=f"chaos {self.seed.run} w{window} {key}")
            path, body = "/tweets", {"text": write.text}
            headers["Authorization"] = f"Bearer {rng.choice(self.seed.tokens)}"
        else:
            write = Write(kind, window, key, tweet_id=rng.choice(self.liked[window]))
            path, body = f"/tweets/{write.tweet_id}/like", None
        for pause in (*RETRY_PAUSES_S, None):
            attempt, data = client.send(kind, window, "POST", path, body, headers)
            attempts.append(attempt)
            write.statuses.append(attempt.status)
            if attempt.ok:
                write.acked = True
                if kind == "post":
                    write.tweet_id = int(json.loads(data)["id"])
                return write
            if pause is None or not (attempt.status in UNKNOWN or attempt.status >= 500
                                     or attempt.status == 409):
                return write
            time.sleep(pause)
        return write

    def all_attempts(self) -> list[Attempt]:
        return [a for mine in self.attempts for a in mine]

    def all_writes(self) -> list[Write]:
        return [w for mine in self.writes for w in mine]

    def progress(self, windows: list[Window], every: float = 2.0) -> None:
        """Print one line every ``every`` seconds until stopped."""
        seen = [0] * len(self.attempts)
        while not self.stopping.wait(every):
            fresh = [a for n, mine in enumerate(self.attempts) for a in mine[seen[n]:]]
            seen = [len(mine) for mine in self.attempts]
            failed = failures_by_kind(fresh)
            name = FAULTS[self.window].name if self.window < len(FAULTS) else "-"
            print(f"  {self.now():6.1f} s  [{name}]  {len(fresh) / every:6.0f} req/s  "
                  f"{sum(1 for a in fresh if a.hit) / every:6.0f} hits/s  failed "
                  f"{failed['read']} reads {failed['post']} posts {failed['like']} likes",
                  flush=True)


# -- the stack -----------------------------------------------------------------------------


class Chaos:
    """The stack under test: started once, struck fault by fault, stopped, then read."""

    def __init__(self, ports: dict[str, int], caches: int, tmp: Path) -> None:
        self.ports = ports
        self.caches = caches
        self.data = tmp / "data"
        self.log_path = tmp / "launcher.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopped_pid: int | None = None  # a store under SIGSTOP, to SIGCONT whatever happens
        self.lb_workers = 0

    def start(self) -> None:
        """Start ``python -m stack`` and wait until every service answers."""
        busy = [f"{port}{f' ({port_holder(port)})' if port_holder(port) else ''}"
                for port in self.ports.values() if not port_free(HOST, port)]
        if busy:
            raise SystemExit(f"ports in use: {', '.join(busy)}; try another --port-base")
        env = {key: value for key, value in os.environ.items() if key not in WIRING}
        env.update({f"{name.upper()}_PORT": str(port) for name, port in self.ports.items()
                    if not name.startswith("cache")})
        env.update(CACHE_PORT=str(self.ports["cache1"]), CACHES=str(self.caches),
                   DATA_DIR=str(self.data), SCRYPT_N="16", LOG_LEVEL="WARNING",
                   PYTHONPATH=str(ROOT))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "stack"], cwd=ROOT, env=env,
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, process_group=0)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not all(healthy(port) for port in self.ports.values()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the stack did not come up:\n{self.log()[-2000:]}")
            time.sleep(0.2)
        self.lb_workers = len(children(self.pid("lb")))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pid(self, service: str) -> int:
        """Return the PID of the launcher's child serving ``service``'s port."""
        assert self.proc is not None
        port = str(self.ports[service])
        for child in children(self.proc.pid):
            if environ(child).get("PORT") == port:
                return child
        raise LookupError(f"no process serves {service} now")

    def victim(self, fault: Fault) -> int:
        if fault.victim == "lb worker":
            return children(self.pid("lb"))[0]
        return self.pid(fault.victim)

    def victims(self, fault: Fault) -> list[int]:
        """Return every process that could be the fault's victim now."""
        try:
            return children(self.pid("lb")) if fault.victim == "lb worker" else \
                [self.pid(fault.victim)]
        except LookupError:
            return []

    def back(self, fault: Fault, old: int) -> bool:
        """Tell whether the fault's victim serves again (a new process, after a kill)."""
        if fault.victim == "lb worker":
            workers = children(self.pid("lb"))
            return old not in workers and len(workers) >= self.lb_workers and \
                healthy(self.ports["lb"])
        if fault.signum != signal.SIGSTOP:
            try:
                if self.pid(fault.victim) == old:
                    return False
            except LookupError:
                return False
        return healthy(self.ports[fault.victim])

    def strike(self, load: Load, index: int, timing: Timing) -> Window:
        """Run one window: baseline, the fault, the observation."""
        fault = FAULTS[index]
        load.window = index
        start = load.now()
        time.sleep(timing.baseline)
        window = Window(index, fault, start, load.now(), load.now(), 0.0, liked=load.liked[index])
        if fault.victim:
            window.victim_pid = self.victim(fault)
            before = self.victims(fault)
            window.fault_at = load.now()
            print(f"  {window.fault_at:6.1f} s  {fault.name} (PID {window.victim_pid})",
                  flush=True)
            self.hit(fault, window, load, timing)
        deadline = window.resumed_at + timing.observe
        if fault.victim:
            window.health_s = self.await_back(fault, window, load, deadline)
        time.sleep(max(0.0, deadline - load.now()))
        window.end = load.now()
        if fault.victim:
            window.new_pid = next(iter(sorted(set(self.victims(fault)) - set(before))),
                                  window.victim_pid)
        return window

    def hit(self, fault: Fault, window: Window, load: Load, timing: Timing) -> None:
        """Send the fault's signal (and SIGCONT after the stop)."""
        assert window.victim_pid is not None
        if fault.signum == signal.SIGSTOP:
            self.stopped_pid = window.victim_pid
        os.kill(window.victim_pid, fault.signum)
        window.resumed_at = window.fault_at
        if fault.signum == signal.SIGSTOP:
            time.sleep(timing.stop)
            os.kill(window.victim_pid, signal.SIGCONT)
            self.stopped_pid = None
            window.resumed_at = load.now()
            print(f"  {window.resumed_at:6.1f} s  SIGCONT store", flush=True)

    def await_back(self, fault: Fault, window: Window, load: Load,
                   deadline: float) -> float | None:
        """Poll until the victim serves again; return the seconds since the fault (or the
        SIGCONT), None if it did not within the window."""
        assert window.victim_pid is not None
        while load.now() < deadline:
            if self.back(fault, window.victim_pid):
                return load.now() - window.resumed_at
            time.sleep(HEALTH_POLL_S)
        return None

    def stop(self) -> float:
        """SIGTERM the launcher (it stops every service, the api flushing); return seconds."""
        assert self.proc is not None
        started = time.monotonic()
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(STOP_TIMEOUT_S)
        return time.monotonic() - started

    def cleanup(self) -> None:
        """Leave nothing running: SIGCONT a stopped store, then end the launcher and every
        process still running with this run's DATA_DIR (only ever ours)."""
        if self.stopped_pid is not None and alive(self.stopped_pid):
            os.kill(self.stopped_pid, signal.SIGCONT)
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        time.sleep(3)  # orphans notice the launcher's death within ~2 s and stop themselves
        for pid in ours(str(self.data)):
            print(f"cleanup: killing leftover PID {pid}", file=sys.stderr)
            os.kill(pid, signal.SIGKILL)


def ours(data_dir: str) -> list[int]:
    """Return the live processes whose DATA_DIR is this run's own temporary directory."""
    return [int(name) for name in os.listdir("/proc") if name.isdigit()
            and int(name) != os.getpid() and alive(int(name))
            and environ(int(name)).get("DATA_DIR") == data_dir]


# -- set-up and reading the store ----------------------------------------------------------


def fetch(port: int, method: str, path: str, payload: Any = None, token: str = "") -> Any:
    """Send one set-up request through the lb; fail on anything but a 2xx."""
    headers = {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", data, headers,
                                     method=method)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read() or b"null")


def seed(port: int) -> Seed:
    """Sign up and log in the accounts, then post the tweets that are read and liked."""
    run = uuid.uuid4().hex[:8]
    tokens = []
    for n in range(ACCOUNTS):
        user = f"chaos_{run}_{n}"
        fetch(port, "POST", "/accounts", {"username": user, "password": PASSWORD})
        tokens.append(fetch(port, "POST", "/sessions",
                            {"username": user, "password": PASSWORD})["token"])
    ids = [int(fetch(port, "POST", "/tweets", {"text": f"chaos {run} seed {n}"},
                     tokens[n % ACCOUNTS])["id"]) for n in range(SEED_TWEETS)]
    return Seed(run, tokens, ids)


def read_store(data: Path, run: str) -> tuple[dict[int, str], dict[int, int]]:
    """Return this run's stored tweets (id -> text) and every tweet's likes (id -> likes)."""
    with sqlite3.connect(f"file:{data / 'twitter.sqlite3'}?mode=ro", uri=True) as db:
        texts = dict(db.execute("select id, text from tweets where text like ?",
                                (f"chaos {run} %",)))
        likes = dict(db.execute("select id, likes from tweets where text like ?",
                                (f"chaos {run} seed %",)))
    return texts, likes


def read_journal(data: Path) -> dict[int, int]:
    """Return the likes the api's journal still holds per tweet (pending or in a batch)."""
    held: Counter[int] = Counter()
    try:
        with sqlite3.connect(f"file:{data / 'likes.sqlite3'}?mode=ro", uri=True) as db:
            for tweet_id, count in db.execute("select tweet_id, count from pending"):
                held[int(tweet_id)] += int(count)
            for (likes,) in db.execute("select likes from batches"):
                held.update({int(k): int(v) for k, v in json.loads(likes).items()})
    except (sqlite3.Error, ValueError):
        return {}
    return dict(held)


# -- the run -------------------------------------------------------------------------------


def analyse(windows: list[Window], load: Load, data: Path, run: str) -> list[dict[str, Any]]:
    """Turn the records and the stored rows into one row per fault."""
    attempts, writes = load.all_attempts(), load.all_writes()
    texts, likes = read_store(data, run)
    journal = read_journal(data)
    rows = []
    for window in windows:
        mine = [a for a in attempts if a.window == window.index]
        posts = [w for w in writes if w.kind == "post" and w.window == window.index]
        liked = [w for w in writes if w.kind == "like" and w.window == window.index]
        tweets, like = tweet_verdict(posts, texts), like_verdict(liked, likes, journal)
        row: dict[str, Any] = {
            "fault": window.fault.name, "window": asdict(window),
            "requests": len(mine), "failed": failures_by_kind(mine),
            "failed_causes": failure_causes(mine),
            "failure_span_s": failure_span(mine, window.fault_at),
            "recovery_health_s": rounded(window.health_s),
            "recovery_requests_s": rounded(request_recovery(mine, window.resumed_at)),
            "tweets": tweets, "likes": like, "notes": notes_for(window, mine, tweets, like)}
        if window.fault.signum == signal.SIGSTOP:
            row["stop"] = stop_figures(mine, window)
            row["notes"].append(stop_note(row["stop"]))
        rows.append(row)
    return rows


def stop_note(stop: dict[str, Any]) -> str:
    """Say how the requests fared while the store was stopped."""
    share = stop["hit_share"]
    return (f"while stopped: hits at {share:.0%} of baseline" if share is not None else
            "while stopped: no baseline hits") + (
        f"; of {stop['others']} other requests {stop['others_ok']} ok, "
        f"{stop['others_503']} got 503 (p99 {fmt_ms(stop['p99_503_s'])}), "
        f"{stop['others_failed'] - stop['others_503']} other failures "
        f"(p99 of all failures {fmt_ms(stop['p99_failed_s'])}, of all "
        f"{fmt_ms(stop['p99_others_s'])})") + (
        f"; the 504s began {span[0]:+.1f} s to {span[1]:+.1f} s into the stop"
        if (span := stop["span_504_s"]) else "")


def totals(rows: list[dict[str, Any]], seed_lost: int) -> dict[str, Any]:
    """Add the rows up and judge them against the issue's goals."""
    def total(part: str, name: str) -> int:
        return sum(int(row[part][name]) for row in rows)
    stop = next((row["stop"] for row in rows if "stop" in row), None)
    faults = [row for row in rows if row["window"]["fault"]["victim"]]
    recovery = [max(math.inf if row[name] is None else row[name]
                    for name in ("recovery_health_s", "recovery_requests_s")) for row in faults]
    return {
        "tweets_lost": total("tweets", "lost") + seed_lost, "seed_tweets_lost": seed_lost,
        "tweets_doubled": total("tweets", "doubled"),
        "tweets_landed_after_error": total("tweets", "landed_after_error"),
        "likes_acked": total("likes", "acked"), "likes_lost": total("likes", "lost"),
        "likes_doubled": total("likes", "doubled"),
        "failed_requests": sum(sum(row["failed"].values()) for row in rows),
        "goals": {
            "no_loss": total("tweets", "lost") + seed_lost + total("likes", "lost") == 0,
            "no_doubles": total("tweets", "doubled") + total("likes", "doubled") == 0,
            "dead_cache_no_failures": all(sum(row["failed"].values()) == 0 for row in rows
                                          if row["fault"].startswith("kill -9 cache")),
            "recovery_within_3s": all(r <= GOAL_RECOVERY_S for r in recovery),
            "stop_hits_half": bool(stop and (stop["hit_share"] or 0) >= GOAL_HIT_SHARE),
            # "the rest get 503 within 1 s (p99)": at least 99 % of the failures are 503s, and
            # the p99 of every failure is within 1 s. (A write already sent to the store when
            # it stopped is a 504 when given up on: it may yet be done, so 503 would be wrong.)
            "stop_rest_503_p99_1s": bool(stop and stop["others_failed"] and
                                         stop["others_503"] >= 0.99 * stop["others_failed"] and
                                         (stop["p99_failed_s"] or math.inf) <= GOAL_503_P99_S),
        },
    }


def relaunches(log: str) -> list[str]:
    """Return the launcher's own lines about services it started again."""
    return [line.strip() for line in log.splitlines() if line.startswith("make run: ")]


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Start the stack, run every window, stop it, and return the results."""
    timing = Timing.scaled(0.4 if args.quick else args.scale)
    chaos = Chaos(service_ports(args.port_base, args.caches), args.caches, tmp)
    load: Load | None = None
    try:
        began = time.monotonic()
        chaos.start()
        print(f"stack up in {time.monotonic() - began:.1f} s (log: {chaos.log_path})", flush=True)
        seeded = seed(chaos.ports["lb"])
        liked = {n: seeded.tweet_ids[n * LIKED_PER_WINDOW:(n + 1) * LIKED_PER_WINDOW]
                 for n in range(len(FAULTS))}
        load = Load(chaos.ports["lb"], seeded, args.readers, args.writers, liked)
        load.start()
        windows: list[Window] = []
        threading.Thread(target=load.progress, args=(windows,), daemon=True).start()
        for index in range(len(FAULTS)):
            windows.append(chaos.strike(load, index, timing))
        load.stop()
        print(f"  {load.now():6.1f} s  load stopped; SIGTERM to the launcher", flush=True)
        stop_s = chaos.stop()
        log = chaos.log()
        texts, _ = read_store(chaos.data, seeded.run)
        seed_lost = sum(1 for t in seeded.tweet_ids if t not in texts)
        rows = analyse(windows, load, chaos.data, seeded.run)
    finally:
        if load is not None:
            load.stopping.set()
        chaos.cleanup()
    return {"rows": rows, "totals": totals(rows, seed_lost), "launcher_stop_s": round(stop_s, 1),
            "launcher_said": relaunches(log), "timing": asdict(timing),
            "elapsed_s": round(time.monotonic() - began, 1)}


def git_state() -> str:
    """Name the code measured: the commit, and whether the tree had changes."""
    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if dirty else "")


def write_results(result: dict[str, Any], command: str) -> str:
    """Write chaos.json and chaos.md; return the Markdown."""
    goals = result["totals"]["goals"]
    lines = [
        "# Chaos run (issue 13)", "",
        f"`{command}` on {result['date']}, code {result['code']}, {result['cpus']} CPUs, "
        f"{result['readers']} reader and {result['writers']} writer threads, "
        f"{result['caches']} caches; windows: "
        f"{result['timing']['baseline']:g} s baseline + fault + {result['timing']['observe']:g} s"
        f" (stop {result['timing']['stop']:g} s); whole run {result['elapsed_s']:g} s.", "",
        "Recovery: seconds from the fault (from SIGCONT for the stop) until the victim answers "
        "/healthz again / until every kind of request succeeded after its last failure.", "",
        table(result["rows"]), "",
        "Goals: " + ", ".join(f"{name} {'yes' if met else 'NO'}" for name, met in goals.items()),
        "", f"Totals: {json.dumps({k: v for k, v in result['totals'].items() if k != 'goals'})}",
        "", "The launcher said:", "", *(f"    {line}" for line in result["launcher_said"]), ""]
    markdown = "\n".join(lines)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "chaos.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "chaos.md").write_text(markdown)
    return markdown


def main() -> None:
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(1))  # clean up on the way out
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a ~1 minute smoke run (scale 0.4)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every window's time")
    parser.add_argument("--caches", type=int, default=3)
    parser.add_argument("--port-base", type=int, default=9200)
    parser.add_argument("--readers", type=int, default=8, help="threads reading hot pages")
    parser.add_argument("--writers", type=int, default=6,
                        help="threads posting and liking (a third posts, two thirds likes)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
        result = run(args, Path(tmp))
    result.update(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), code=git_state(),
                  cpus=os.cpu_count(), readers=args.readers, writers=args.writers,
                  caches=args.caches)
    command = " ".join(["python3 bench/chaos.py", *sys.argv[1:]])
    result["command"] = command
    print(write_results(result, command))


if __name__ == "__main__":
    main()
