"""The like batcher: likes are answered at once and written to the store in batches.

A tweet's pending likes are passed on when it has more than LIKE_BATCH_SIZE (10) of them, or
when they have waited more than LIKE_MAX_AGE_S (60 s) since its likes were last passed on (or
first became pending). A background thread checks the age rule several times a second, so a
tweet that gets one like and nothing more is still written about a minute later; everything
due at once goes in one batch request.

Nothing is lost and nothing counts twice:
- each like is committed to a local sqlite3 journal (the API's own file) before its 202, and
  the journal is replayed on start, so an API crash loses nothing;
- a batch is written to the journal, with its id, in the same transaction that takes its
  likes out of the pending table; it leaves the journal only when the store acknowledges it.
  The store applies each batch id once, so a retry after a lost answer is not re-counted;
- while the store is down, batches are retried with backoff and likes keep being accepted;
- on shutdown everything pending is sent if the store answers, and kept otherwise.

Running counts: a like answers stored + pending (+ in flight). The stored part is the last
total the store acknowledged, or what a read returned, whichever is larger. And no count is
ever below the last one answered for the tweet (plus one for a new like): while a batch is
being sent the store may or may not hold it, and when the store was never reached the stored
total is not known at all, but the last answer is a count that was true when it was given.
So the count a client sees never goes backwards, whatever lands when.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Callable

from httpkit import HTTPError

from api.storeclient import StoreClient, StoreUnavailable

log = logging.getLogger(__name__)

JOURNAL_SCHEMA = """
create table if not exists pending (
    tweet_id integer primary key,
    count integer not null,
    since real not null            -- when the age rule's clock started for this tweet
);
create table if not exists batches (
    batch_id text primary key,
    likes text not null,           -- JSON {tweet id: count}
    created real not null
);
"""
KNOWN_TWEETS = 100_000  # tweets whose stored like total we remember (LRU)
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 5.0)


@dataclass
class Batch:
    batch_id: str
    likes: dict[int, int]
    maybe_applied: bool = False  # sent at least once in a way that may have reached the store


@dataclass
class Counters:
    received: int = 0
    written: int = 0
    batches: int = 0
    store_requests: int = 0
    retries: int = 0
    dropped: int = 0  # likes for tweets deleted before their batch landed


@dataclass
class LikeBatcher:
    """Take likes, journal them, and pass them on to the store by the two rules."""

    store: StoreClient
    journal_path: str
    batch_size: int = 10
    max_age: float = 60.0
    clock: Callable[[], float] = time.time
    tick: float = 0.2
    counters: Counters = field(default_factory=Counters)

    def __post_init__(self) -> None:
        self._db = sqlite3.connect(self.journal_path, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("pragma journal_mode=wal")
        self._db.execute("pragma synchronous=normal")  # survives a process crash, cheaply
        self._db.executescript(JOURNAL_SCHEMA)
        self._pending: dict[int, list[float]] = {}  # tweet -> [count, since]
        self._inflight: dict[int, int] = {}  # tweet -> likes in unacknowledged batches
        self._maybe_applied: dict[int, int] = {}  # ... of which the store may hold already
        self._unacked: list[Batch] = []
        self._known: OrderedDict[int, int] = OrderedDict()  # tweet -> stored like total
        self._last_passed: OrderedDict[int, float] = OrderedDict()
        self._answered: OrderedDict[int, int] = OrderedDict()  # tweet -> last count answered
        self._lock = threading.Lock()  # guards the dicts and the journal connection
        self._flushing = threading.Lock()  # one flush at a time
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._retry_at = 0.0
        self._failures = 0
        self._thread: threading.Thread | None = None
        self._replay()

    # -- taking likes --------------------------------------------------------------------

    def like(self, tweet_id: int) -> int:
        """Record one like (journaled before returning) and return the running count."""
        stored = self._stored_total(tweet_id)
        now = self.clock()
        with self._lock:
            entry = self._pending.get(tweet_id)
            if entry is None:
                since = self._last_passed.get(tweet_id, now)
                entry = self._pending[tweet_id] = [0, since]
            entry[0] += 1
            self._db.execute(
                "insert into pending (tweet_id, count, since) values (?, 1, ?)"
                " on conflict (tweet_id) do update set count = count + 1", (tweet_id, entry[1]))
            self.counters.received += 1
            due = entry[0] > self.batch_size
            count = self._answer(tweet_id, self._running(tweet_id, stored),
                                 self._answered.get(tweet_id, 0) + 1)
        if due:
            self._wake.set()
        return count

    def _stored_total(self, tweet_id: int) -> int:
        """Return the tweet's stored like total; 404 if it does not exist."""
        with self._lock:
            known = self._known.get(tweet_id)
        if known is not None:
            return known
        try:
            answer = self.store.call("GET", f"/tweets/{tweet_id}")
        except HTTPError:
            return 0  # the store is down: accept the like; a missing tweet is dropped later
        if answer.status == HTTPStatus.NOT_FOUND:
            raise HTTPError(HTTPStatus.NOT_FOUND, "no such tweet")
        likes = int(answer.json()["likes"]) if answer.status == HTTPStatus.OK else 0
        with self._lock:
            if not self._maybe_applied.get(tweet_id):  # else the read is no clean baseline
                self._remember(tweet_id, max(likes, self._known.get(tweet_id, 0)))
        return likes

    def saw(self, tweet_id: int, stored_likes: int) -> None:
        """Note a stored like total read from the database (it may be an older copy)."""
        with self._lock:
            self._remember(tweet_id, max(stored_likes, self._known.get(tweet_id, 0)))

    def forget(self, tweet_id: int) -> None:
        """Forget a deleted tweet, so that a later like of its id is checked again."""
        with self._lock:
            self._known.pop(tweet_id, None)
            self._answered.pop(tweet_id, None)

    def pending(self, tweet_id: int) -> int:
        """Return the likes received for a tweet but not yet acknowledged by the store."""
        with self._lock:
            return self._unwritten(tweet_id)

    def likes(self, tweet_id: int, stored_likes: int) -> int:
        """Return the running count for a tweet whose stored total a read returned."""
        with self._lock:
            return self._answer(tweet_id, self._running(tweet_id, stored_likes),
                                self._answered.get(tweet_id, 0))

    def _answer(self, tweet_id: int, count: int, floor: int) -> int:
        """Return ``count``, raised to ``floor``, and remember it (call under the lock).

        The truth never goes down (a deleted tweet is forgotten), so a count once answered
        is still a lower bound, and one more with each like this API took since.
        """
        count = max(count, floor)
        if count:
            self._answered[tweet_id] = count
            self._answered.move_to_end(tweet_id)
            if len(self._answered) > KNOWN_TWEETS:
                self._answered.popitem(last=False)
        return count

    def _running(self, tweet_id: int, read: int) -> int:
        """Stored + in flight + pending, never more than the truth (call under the lock).

        A read may come from a cache copy older than the batches already written, or may
        already include a batch whose acknowledgement has not arrived. The total the store
        last acknowledged is exact and excludes what is in flight, so it wins. Without it, the
        likes of a batch that may have reached the store are left out rather than maybe
        counted twice: the count may lag for a moment, but it never goes backwards.
        """
        entry = self._pending.get(tweet_id)
        pending = int(entry[0]) if entry else 0
        inflight = self._inflight.get(tweet_id, 0)
        known = self._known.get(tweet_id)
        if not inflight:
            return max(read, known or 0) + pending
        if known is not None:
            return known + inflight + pending
        return read + inflight - self._maybe_applied.get(tweet_id, 0) + pending

    def _unwritten(self, tweet_id: int) -> int:
        entry = self._pending.get(tweet_id)
        return (int(entry[0]) if entry else 0) + self._inflight.get(tweet_id, 0)

    def _remember(self, tweet_id: int, total: int) -> None:
        self._known[tweet_id] = total
        self._known.move_to_end(tweet_id)
        if len(self._known) > KNOWN_TWEETS:
            self._known.popitem(last=False)

    # -- passing likes on ----------------------------------------------------------------

    def flush(self, everything: bool = False) -> bool:
        """Send what is due (or ``everything``); return False if the store could not be had."""
        with self._flushing:
            if not self._retry_unacked():
                return False
            batch = self._take(everything)
            return batch is None or self._send(batch)

    def _retry_unacked(self) -> bool:
        """Resend batches the store has not acknowledged, oldest first."""
        while self._unacked:
            if self.clock() < self._retry_at:
                return False
            self.counters.retries += 1
            if not self._send(self._unacked[0]):
                return False
        return True

    def _take(self, everything: bool) -> Batch | None:
        """Move the due tweets' likes into a new journaled batch."""
        now = self.clock()
        with self._lock:
            due = {tweet: int(count) for tweet, (count, since) in self._pending.items()
                   if everything or count > self.batch_size or now - since > self.max_age}
            if not due:
                return None
            batch = Batch(uuid.uuid4().hex, due)
            self._db.execute("begin")
            self._db.execute("insert into batches (batch_id, likes, created) values (?, ?, ?)",
                             (batch.batch_id, json.dumps(due), now))
            self._db.executemany("delete from pending where tweet_id = ?", [(t,) for t in due])
            self._db.execute("commit")
            for tweet, count in due.items():
                del self._pending[tweet]
                self._inflight[tweet] = self._inflight.get(tweet, 0) + count
                self._last_passed[tweet] = now
                self._last_passed.move_to_end(tweet)
            while len(self._last_passed) > KNOWN_TWEETS:
                self._last_passed.popitem(last=False)
            self._unacked.append(batch)
        return batch

    def _send(self, batch: Batch) -> bool:
        """Send one batch; on acknowledgement drop it from the journal."""
        self.counters.store_requests += 1
        self._mark_maybe_applied(batch, True)
        try:
            result = self.store.json("POST", "/like-batches", {
                "batch_id": batch.batch_id,
                "likes": {str(tweet): count for tweet, count in batch.likes.items()}})
        except HTTPError as err:
            if isinstance(err, StoreUnavailable) and not err.sent:
                self._mark_maybe_applied(batch, False)  # it never reached the store
            self._failures += 1
            self._retry_at = self.clock() + BACKOFF_S[min(self._failures, len(BACKOFF_S)) - 1]
            log.warning("like batch %s not sent (%s); will retry", batch.batch_id, err.message)
            return False
        self._failures = 0
        self._acknowledge(batch, result)
        return True

    def _mark_maybe_applied(self, batch: Batch, maybe: bool) -> None:
        """Record whether the store may already hold this batch's likes."""
        with self._lock:
            self._set_maybe_applied(batch, maybe)

    def _set_maybe_applied(self, batch: Batch, maybe: bool) -> None:
        if batch.maybe_applied == maybe:
            return
        batch.maybe_applied = maybe
        for tweet, count in batch.likes.items():
            left = self._maybe_applied.get(tweet, 0) + (count if maybe else -count)
            if left > 0:
                self._maybe_applied[tweet] = left
            else:
                self._maybe_applied.pop(tweet, None)

    def _acknowledge(self, batch: Batch, result: dict[str, Any]) -> None:
        totals = {int(tweet): total for tweet, total in result.get("likes", {}).items()}
        missing = {int(tweet) for tweet in result.get("missing", [])}
        with self._lock:
            self._set_maybe_applied(batch, False)
            self._db.execute("delete from batches where batch_id = ?", (batch.batch_id,))
            self._unacked.remove(batch)
            for tweet, count in batch.likes.items():
                left = self._inflight.get(tweet, 0) - count
                if left > 0:
                    self._inflight[tweet] = left
                else:
                    self._inflight.pop(tweet, None)
                if tweet in missing:
                    self.counters.dropped += count
                    self._known.pop(tweet, None)
                else:
                    self.counters.written += count
                if tweet in totals:  # the store's total is exact, duplicates included
                    self._remember(tweet, totals[tweet])
            self.counters.batches += 1

    # -- life cycle ----------------------------------------------------------------------

    def _replay(self) -> None:
        """Load what the journal holds from before a crash or a stop."""
        for tweet, count, since in self._db.execute("select tweet_id, count, since from pending"):
            self._pending[tweet] = [count, since]
        for batch_id, likes in self._db.execute(
                "select batch_id, likes from batches order by created"):
            batch = Batch(batch_id, {int(t): c for t, c in json.loads(likes).items()})
            self._unacked.append(batch)
            for tweet, count in batch.likes.items():
                self._inflight[tweet] = self._inflight.get(tweet, 0) + count
            self._set_maybe_applied(batch, True)  # it may have landed before the crash
        if self._pending or self._unacked:
            log.info("like journal: %d tweets pending, %d batches to resend",
                     len(self._pending), len(self._unacked))

    def start(self) -> None:
        """Resend what the journal holds, then start the thread that sends batches."""
        if self._unacked:  # before taking likes: their counts then rest on acknowledged totals
            self.flush()
        self._thread = threading.Thread(target=self._run, name="like-batcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.tick)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self.flush()
            except Exception:  # keep the thread alive whatever happens; the journal holds all
                log.exception("like batcher: flush failed")

    def stop(self) -> None:
        """Stop the thread, send everything pending if the store answers, keep the rest."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._retry_at = 0.0
        if not self.flush(everything=True):
            log.warning("like batcher: store unavailable at shutdown; likes kept in the journal")
        with self._lock:
            self._db.close()

    def stats(self) -> dict[str, Any]:
        """Return the counters DESIGN.md lists."""
        now = self.clock()
        with self._lock:
            pending = sum(int(entry[0]) for entry in self._pending.values())
            oldest = min((since for _, since in self._pending.values()), default=None)
            inflight = sum(self._inflight.values())
        counts = self.counters
        return {"batching": True, "likes_received": counts.received,
                "likes_written": counts.written, "batches": counts.batches,
                "store_requests": counts.store_requests, "pending": pending + inflight,
                "oldest_pending_age_s": round(now - oldest, 3) if oldest is not None else None,
                "retries": counts.retries, "likes_dropped": counts.dropped,
                "batch_size": self.batch_size, "max_age_s": self.max_age}
