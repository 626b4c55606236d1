"""Following the upstream's change feed, so that a cache drops what a write made untrue.

One thread per upstream address long-polls ``GET /_changes`` (``httpkit.feed``) and hands the
keys to the cache: hard keys to drop, soft keys to mark stale and fetch again; a reset (the
upstream restarted, or this cache fell too far behind) drops everything. A name that
resolves to several addresses (api replicas) is followed at every one of them, and resolved
again every ``resolve_interval`` seconds, as ``lb`` does for caches.

While the feed cannot be reached the cache lives by its TTL alone, as a cache with no feed
does: it keeps answering what it holds. The follower retries within a second and, once it
reaches the feed again, catches up on what it missed (same epoch) or resets (a new one). An
upstream that answers 404 has no feed: the cache stays on its TTL and asks again now and then.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlencode, urlsplit

from httpkit.client import Upstream, UpstreamError, resolve

log = logging.getLogger(__name__)

RETRY_S = (0.1, 0.25, 0.5, 1.0)  # after a failure: catch up soon once the upstream is back
# After an answer with changes, wait this long before asking again, so that a stream of
# writes (a store taking a like per request with LIKE_BATCHING=off) is fetched a few changes
# per answer, not one HTTP exchange per write; it adds at most this much to staleness.
LINGER_S = 0.005
NO_FEED_RETRY_S = 10.0

Resolver = Callable[[str, int], list[str]]


@dataclass
class FeedState:
    """What one follower knows, for ``/_cache/stats``."""

    address: str
    state: str = "connecting"  # following | unreachable | no_feed
    epoch: str = ""
    seq: int = 0
    polls: int = 0  # requests made to the feed
    bytes: int = 0  # bytes of the answers' bodies
    changes: int = 0  # answers that carried keys
    keys: int = 0  # keys received
    resets: int = 0
    lag_s: float | None = None  # publication to arrival here, for the newest change applied
    reached_at: float | None = None  # monotonic time of the last answer (a quiet feed answers
    # once per long poll, so up to CACHE_FEED_WAIT_S apart)

    def view(self) -> dict[str, Any]:
        """Return the state as JSON-ready data."""
        since = None if self.reached_at is None else round(time.monotonic() - self.reached_at, 3)
        return {"address": self.address, "state": self.state, "epoch": self.epoch,
                "seq": self.seq, "polls": self.polls, "bytes": self.bytes,
                "changes": self.changes, "keys": self.keys,
                "resets": self.resets, "lag_s": self.lag_s, "since_reached_s": since}


class FeedFollower:
    """Follow the change feed of one upstream address."""

    def __init__(self, url: str, on_keys: Callable[[list[str]], None],
                 on_reset: Callable[[], None], wait: float = 20.0,
                 clock: Callable[[], float] = time.time,
                 on_soft: Callable[[list[str]], None] | None = None) -> None:
        self.upstream = Upstream(url, connect_timeout=1.0, read_timeout=wait + 5.0, max_idle=1)
        self.state = FeedState(self.upstream.authority)
        self.on_keys = on_keys
        self.on_soft = on_soft or on_keys
        self.on_reset = on_reset
        self.wait = wait
        self.clock = clock
        self._failures = 0
        self._stopped = threading.Event()

    def poll(self) -> float:
        """Ask the feed once and apply its answer; return how long to wait before asking again."""
        state = self.state
        query = urlencode({"epoch": state.epoch, "after": state.seq, "wait": f"{self.wait:.3g}"})
        try:
            state.polls += 1
            answer = self.upstream.request("GET", f"/_changes?{query}")
            state.bytes += len(answer.body)
            if answer.status == 404:
                self._lost("no_feed")
                return NO_FEED_RETRY_S
            if answer.status != 200:
                raise ValueError(f"the feed answered {answer.status}")
            data = answer.json()
            epoch, seq = str(data["epoch"]), int(data["seq"])
            keys, soft = list(data["keys"]), list(data.get("soft", []))
        except (UpstreamError, ValueError, KeyError, TypeError) as err:
            if self._failures == 0 and not self._stopped.is_set():
                log.warning("cache: change feed of %s unreachable (%s); on the TTL alone until "
                            "it is back", state.address, err)
            self._lost("unreachable")
            return RETRY_S[min(self._failures, len(RETRY_S)) - 1]
        self.apply(data, keys, soft)
        state.epoch, state.seq = epoch, seq
        state.state, state.reached_at = "following", time.monotonic()
        self._failures = 0
        return LINGER_S if keys or soft else 0.0

    def apply(self, data: dict[str, Any], keys: list[Any], soft: list[Any]) -> None:
        """Act on one answer of the feed: a reset, or the keys it names."""
        state = self.state
        if data.get("reset"):
            self.on_reset()  # the upstream restarted or we fell behind: anything may be untrue
            state.resets += 1
        elif keys or soft:
            if keys:
                self.on_keys([str(key) for key in keys])
            if soft:
                self.on_soft([str(key) for key in soft])
            state.changes += 1
            state.keys += len(keys) + len(soft)
            if isinstance(data.get("time"), (int, float)):
                state.lag_s = round(max(0.0, self.clock() - data["time"]), 4)

    def _lost(self, why: str) -> None:
        self._failures += 1
        self.state.state = why

    def run(self, stopped: threading.Event) -> None:
        """Poll until ``stopped`` is set."""
        self._stopped = stopped
        delay = 0.0
        while not stopped.wait(delay):
            try:
                delay = self.poll()
            except Exception:  # keep following whatever happens; the TTL still bounds staleness
                log.exception("cache: change feed follower failed")
                delay = RETRY_S[-1]
        self.upstream.close()


class Followers:
    """One follower thread per address the upstream URL's host resolves to."""

    def __init__(self, url: str, on_keys: Callable[[list[str]], None],
                 on_reset: Callable[[], None], wait: float = 20.0,
                 resolve_interval: float = 5.0, resolver: Resolver = resolve,
                 clock: Callable[[], float] = time.time,
                 on_soft: Callable[[list[str]], None] | None = None) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.on_keys, self.on_reset, self.on_soft = on_keys, on_reset, on_soft
        self.wait, self.resolve_interval = wait, resolve_interval
        self.resolver, self.clock = resolver, clock
        self.following: dict[str, tuple[FeedFollower, threading.Event]] = {}
        self._stopped = threading.Event()

    def start(self) -> None:
        """Follow every address now, and keep the list fresh in the background."""
        self.refresh()
        threading.Thread(target=self._watch, name="feed-resolve", daemon=True).start()

    def refresh(self) -> None:
        """Resolve the upstream again: follow new addresses, stop following gone ones."""
        try:
            addresses = self.resolver(self.host, self.port)
        except OSError as err:
            log.warning("cache: cannot resolve %s: %s", self.host, err)
            return
        for address in addresses:
            if address not in self.following and not self._stopped.is_set():
                follower = FeedFollower(f"http://{address}{self.prefix}", self.on_keys,
                                        self.on_reset, self.wait, self.clock, self.on_soft)
                stop = threading.Event()
                self.following[address] = (follower, stop)
                threading.Thread(target=follower.run, args=(stop,), daemon=True,
                                 name=f"feed-{address}").start()
        for address in [a for a in self.following if a not in addresses]:
            self.following.pop(address)[1].set()

    def _watch(self) -> None:
        while not self._stopped.wait(self.resolve_interval):
            self.refresh()

    def stop(self) -> None:
        """Stop every follower (a long poll under way ends with its answer)."""
        self._stopped.set()
        for _, stop in self.following.values():
            stop.set()

    def stats(self) -> list[dict[str, Any]]:
        """Return each follower's state."""
        return [follower.state.view() for follower, _ in list(self.following.values())]
