"""A change feed: what each acknowledged write made untrue, for the caches that follow it.

``store`` and ``api`` tag every cacheable answer with ``Surrogate-Key`` (the names of what it
shows: ``tweet/7``, ``account/alice``, ``timeline``, ...). Before a write is answered, they
``publish`` the keys it made untrue, under a rising sequence number. A cache follows the feed
with a long poll, ``GET /_changes?epoch=E&after=N&wait=S``, and drops the entries carrying
those keys, as a CDN does with surrogate-key purges (Fastly, Varnish xkey) and Facebook's
memcache does by tailing the database's commit log.

The answer is ``{"epoch", "seq", "keys", "soft", "time"}``: the keys changed after ``N`` up
to ``seq`` (``time`` is when the newest of them was published, for the follower's lag), at
once when there are any, else after up to ``S`` seconds with none. ``keys`` must be dropped;
``soft`` keys (like counts, which may lag by design) may be answered a moment longer while the
follower fetches them again (RFC 5861's stale-while-revalidate). It is ``"reset": true`` when
the follower's epoch is not this process's (a restart: anything may have changed) or when
``N`` is older than the changes kept; the follower then drops everything.
"""
from __future__ import annotations

import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Callable, Iterable

from httpkit.errors import HTTPError
from httpkit.messages import Request, Response, json_response, whole_number

KEEP = 10_000  # changes kept; a follower further behind than this is told to reset
KEEP_KEYS = 100_000  # ... and keys kept in them, so that memory stays bounded (~10 MB)
MOST_KEYS = 5_000  # more keys than this in one answer: a reset is cheaper to apply
MOST_WAIT_S = 30.0
NO_STORE = [("Cache-Control", "no-store")]
SECONDS = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3})?")


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    time: float
    keys: tuple[str, ...]
    soft: bool = False


class ChangeFeed:
    """The keys made untrue by each write, newest ``keep`` of them, with a long poll."""

    def __init__(self, keep: int = KEEP, clock: Callable[[], float] = time.time,
                 keep_keys: int = KEEP_KEYS) -> None:
        self.epoch = secrets.token_hex(8)  # new in every process: a restart is a reset
        self.seq = 0
        self.clock = clock
        self.keep_keys = keep_keys
        self._kept_keys = 0
        self._changes: deque[Change] = deque(maxlen=keep)
        self._changed = threading.Condition()
        self._wakes = 0  # each wake() answers the long polls waiting at that moment
        self.closed = False

    def publish(self, keys: Iterable[str], soft: bool = False) -> int:
        """Record the keys a write made untrue (``soft``: they may be revalidated rather
        than dropped); return the change's sequence number (0: no keys)."""
        unique = tuple(dict.fromkeys(key for key in keys if key))
        if not unique:
            return 0
        with self._changed:
            self.seq += 1
            if len(self._changes) == self._changes.maxlen:
                self._kept_keys -= len(self._changes[0].keys)  # about to be pushed out
            self._changes.append(Change(self.seq, self.clock(), unique, soft))
            self._kept_keys += len(unique)
            while self._kept_keys > self.keep_keys and len(self._changes) > 1:
                self._kept_keys -= len(self._changes.popleft().keys)
            self._changed.notify_all()
            return self.seq

    def read(self, epoch: str, after: int, wait: float = 0.0) -> dict[str, Any]:
        """Return what changed after ``after``, waiting up to ``wait`` s for a change."""
        deadline = time.monotonic() + min(wait, MOST_WAIT_S)
        with self._changed:
            wakes = self._wakes
            while True:
                if epoch != self.epoch or after > self.seq or self._lost(after):
                    return self._reset()
                if after < self.seq:
                    return self._since(after)
                left = deadline - time.monotonic()
                if left <= 0 or self.closed or self._wakes != wakes:
                    return {"epoch": self.epoch, "seq": self.seq, "keys": [], "soft": []}
                self._changed.wait(left)

    def close(self) -> None:
        """Answer every waiting follower now, and any later one 503 (the service is
        stopping)."""
        with self._changed:
            self.closed = True
        self.wake()

    def wake(self) -> None:
        """Answer every waiting follower now, with what there is."""
        with self._changed:
            self._wakes += 1
            self._changed.notify_all()

    def _lost(self, after: int) -> bool:
        # Changes after ``after`` were pushed out of the deque: the follower missed some.
        return after < self.seq and (not self._changes or self._changes[0].seq > after + 1)

    def _since(self, after: int) -> dict[str, Any]:
        newer: list[Change] = []
        for change in reversed(self._changes):
            if change.seq <= after:
                break
            newer.append(change)
        newer.reverse()
        keys = dict.fromkeys(key for change in newer if not change.soft for key in change.keys)
        soft = [key for change in newer if change.soft for key in change.keys if key not in keys]
        soft = list(dict.fromkeys(soft))
        if len(keys) + len(soft) > MOST_KEYS:
            return self._reset()
        return {"epoch": self.epoch, "seq": self.seq, "keys": list(keys), "soft": soft,
                "time": newer[-1].time}

    def _reset(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "seq": self.seq, "keys": [], "soft": [], "reset": True}


def changes_handler(feed: ChangeFeed) -> Callable[[Request], Response]:
    """Return the handler of ``GET /_changes`` for ``feed`` (never cached)."""
    def changes(request: Request) -> Response:
        query = request.query
        after, wait = whole_number(query.get("after", "0") or "0"), query.get("wait", "0") or "0"
        if after is None or not SECONDS.fullmatch(wait):
            raise HTTPError(HTTPStatus.BAD_REQUEST,
                            "after must be a sequence number and wait a number of seconds",
                            "invalid_query")
        if feed.closed:
            raise HTTPError(HTTPStatus.SERVICE_UNAVAILABLE, "the service is stopping",
                            "stopping")
        answer = feed.read(query.get("epoch", ""), after, float(wait))
        return json_response(answer, headers=NO_STORE)
    return changes


# The header of a cacheable answer naming what it shows, and that of a write's answer naming
# what it made untrue (a cache relaying the write drops those entries at once, before the
# feed tells the other replicas).
SURROGATE_KEY = "Surrogate-Key"
CHANGED_KEYS = "Changed-Keys"


def tweet_key(tweet_id: int) -> str:
    """Return the surrogate key of one tweet."""
    return f"tweet/{tweet_id}"


def account_key(username: str) -> str:
    """Return the surrogate key of one account (usernames are unique ignoring case)."""
    return f"account/{username.lower()}"


def tag_key(tag: str) -> str:
    """Return the surrogate key of one hashtag's page."""
    return f"tag/{tag.lower()}"


def key_header(keys: Iterable[str]) -> str:
    """Join keys into one header value, each once, in order."""
    return " ".join(dict.fromkeys(keys))
