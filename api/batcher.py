"""The like batcher: likes are answered at once and written to the store in batches.

A tweet's pending likes are passed on when it has more than LIKE_BATCH_SIZE (10) of them, or
when they have waited more than LIKE_MAX_AGE_S (60 s) since its likes were last passed on (or
first became pending). A background thread checks the age rule several times a second, so a
tweet that gets one like and nothing more is still written about a minute later; everything
due at once goes in one batch request.

Three jobs, three pieces: ``api.journal`` commits each like before its 202 and each batch
until the store acknowledges it; ``api.counts`` says what a like or a read is answered with;
this module holds the rules and the flusher that sends batches through a ``LikeStore``.

Nothing is lost and nothing counts twice:
- a like is in the journal before it is answered, and the journal is replayed on start;
- a batch is journaled, with its id, in the transaction that takes its likes out of pending,
  and leaves the journal only when the store acknowledges it; the store applies each batch
  id once, so a batch resent after a lost answer or a crash is not counted again;
- while the store is down, batches are retried with backoff and likes keep being accepted;
- on shutdown everything pending is sent if the store answers, and kept otherwise.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Callable

from httpkit import HTTPError
from httpkit.errors import storage_full

from api.counts import LikeCounts
from api.idempotency import Keyed
from api.journal import Batch, LikeJournal
from api.storeclient import LikeStore, StoreUnavailable

log = logging.getLogger(__name__)

BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 5.0)


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

    store: LikeStore
    journal_path: str
    batch_size: int = 10
    max_age: float = 60.0
    clock: Callable[[], float] = time.time
    tick: float = 0.2
    counters: Counters = field(default_factory=Counters)

    def __post_init__(self) -> None:
        self.journal = LikeJournal(self.journal_path)
        self.counts = LikeCounts()
        self._unacked: list[Batch] = []  # oldest first; sent one at a time
        self._lock = threading.Lock()  # guards counts, the journal and _unacked
        self._flushing = threading.Lock()  # one flush at a time
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._retry_at = 0.0
        self._failures = 0
        self._quiet_until = 0.0  # a full disk is logged at most once a minute
        self._thread: threading.Thread | None = None
        self._unacked = self.journal.batches()
        self.counts.restore(self.journal.pending(), self._unacked)
        if self.counts.unwritten:
            log.info("like journal: %d tweets with likes to write, %d batches to resend",
                     len(self.counts.unwritten), len(self._unacked))

    # -- taking likes --------------------------------------------------------------------

    def like(self, tweet_id: int, keyed: Keyed | None = None) -> int:
        """Record one like (journaled before returning) and return the running count; raise
        Replayed with the first answer if this keyed like was taken before."""
        if keyed is not None:
            with self._lock:  # a replay is answered even if the tweet is gone by now
                self.journal.replay(keyed, self.clock())
        stored = None if self._knows(tweet_id) else self._read_stored(tweet_id)
        now = self.clock()
        with self._lock:
            self.journal.replay(keyed, now)  # again: the same key may have raced this one
            if stored is not None:
                self.counts.count(tweet_id, stored)
            entry = self.counts.like(tweet_id, now)
            count = self.counts.count(tweet_id)
            try:
                self.journal.add_like(tweet_id, entry.since, count, keyed,
                                      {"id": tweet_id, "likes": count}, now)
            except Exception:
                self.counts.unlike(tweet_id)  # the journal is the commit point
                raise
            self.counters.received += 1
            due = entry.pending > self.batch_size
        if due:
            self._wake.set()
        return count

    def _knows(self, tweet_id: int) -> bool:
        with self._lock:
            return self.counts.knows(tweet_id)

    def _read_stored(self, tweet_id: int) -> int | None:
        """Return the tweet's stored total, None if the store cannot say; 404 if no tweet."""
        try:
            stored = self.store.stored_likes(tweet_id)
        except HTTPError:
            return None  # the store is down: accept the like; a missing tweet is dropped later
        if stored is None:
            raise HTTPError(HTTPStatus.NOT_FOUND, "no such tweet")
        return stored

    def likes(self, tweet_id: int, stored_likes: int) -> int:
        """Return the running count for a tweet whose stored total a read returned."""
        with self._lock:
            return self.counts.count(tweet_id, stored_likes)

    def saw(self, tweet_id: int, stored_likes: int) -> None:
        """Note a tweet's stored total (e.g. 0 for a new tweet), sparing a like its read."""
        self.likes(tweet_id, stored_likes)

    def forget(self, tweet_id: int) -> None:
        """Forget a deleted tweet, so that a later like of its id is checked again."""
        with self._lock:
            self.counts.forget(tweet_id)

    def pending(self, tweet_id: int) -> int:
        """Return the likes received for a tweet but not yet acknowledged by the store."""
        with self._lock:
            entry = self.counts.unwritten.get(tweet_id)
            return entry.pending + entry.inflight if entry else 0

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
            due = self.counts.due(now, self.batch_size, self.max_age, everything)
            if not due:
                return None
            batch = Batch(uuid.uuid4().hex, due, self.counts.answered(due))
            self.journal.take(batch, now)
            self.counts.take(batch, now)
            self._unacked.append(batch)
        return batch

    def _send(self, batch: Batch) -> bool:
        """Send one batch; on acknowledgement drop it from the journal."""
        self.counters.store_requests += 1
        try:
            answer = self.store.apply_batch(batch.batch_id, batch.likes)
        except HTTPError as err:
            self._failures += 1
            self._retry_at = self.clock() + BACKOFF_S[min(self._failures, len(BACKOFF_S)) - 1]
            sent = not isinstance(err, StoreUnavailable) or err.sent
            log.warning("like batch %s not %s (%s); will retry", batch.batch_id,
                        "acknowledged" if sent else "sent", err.message)
            return False
        self._failures = 0
        with self._lock:
            self.journal.done(batch.batch_id)
            self._unacked.remove(batch)
            self.counts.landed(batch, answer.totals, answer.missing)
            dropped = sum(count for tweet, count in batch.likes.items() if tweet in answer.missing)
            self.counters.dropped += dropped
            self.counters.written += sum(batch.likes.values()) - dropped
            self.counters.batches += 1
        return True

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Resend what the journal holds, then start the thread that sends batches."""
        if self._unacked:  # acknowledged totals make the counts of those tweets exact again
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
            except Exception as exc:  # keep the thread alive; the journal holds everything
                self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        """Log a failed flush: a full disk once a minute, anything else with its traceback."""
        if storage_full(exc) is None:
            log.exception("like batcher: flush failed")
        elif self.clock() >= self._quiet_until:
            self._quiet_until = self.clock() + 60
            log.warning("like batcher: the disk is full; batches wait in memory and the journal")

    def stop(self) -> None:
        """Stop the thread, send everything pending if the store answers, keep the rest."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._retry_at = 0.0
        try:
            flushed = self.flush(everything=True)
        except Exception as exc:
            self._failed(exc)
            flushed = False
        if not flushed:
            log.warning("like batcher: store unavailable at shutdown; likes kept in the journal")
        with self._lock:
            self.journal.close()

    def stats(self) -> dict[str, Any]:
        """Return the counters DESIGN.md lists."""
        now = self.clock()
        with self._lock:
            entries = list(self.counts.unwritten.values())
        unwritten = sum(entry.pending + entry.inflight for entry in entries)
        oldest = min((entry.since for entry in entries if entry.pending), default=None)
        counts = self.counters
        return {"batching": True, "likes_received": counts.received,
                "likes_written": counts.written, "batches": counts.batches,
                "store_requests": counts.store_requests, "pending": unwritten,
                "oldest_pending_age_s": round(now - oldest, 3) if oldest is not None else None,
                "retries": counts.retries, "likes_dropped": counts.dropped,
                "batch_size": self.batch_size, "max_age_s": self.max_age}
