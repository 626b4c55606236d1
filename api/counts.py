"""Running like counts: what a like or a read of a tweet is answered with, from one place.

    count = stored + in flight + pending

- pending: likes journaled here and not yet passed on;
- in flight: likes in batches taken for the store and not yet acknowledged;
- stored: the tweet's stored total as last seen here, from a read (true, since every cache
  on the way follows the store's change feed) or from the store's acknowledgement of a batch
  (exact). A read answered while a batch is in flight may or may not include that batch, so
  it does not change ``stored`` then; and a read can be overtaken by an acknowledgement, so
  ``stored`` keeps the larger of the two (a like total only grows).

While a batch is in flight and no stored total is known here (after a restart, or when the
store was never reached), the in-flight likes are left out rather than maybe counted twice.
The count may lag then, but it is never below the last count answered for the tweet, which
is journaled with each like and so survives a restart: a count never goes backwards.

Not thread-safe: the like batcher calls it under its lock.
"""
from __future__ import annotations

from dataclasses import dataclass

from httpkit.lru import LRU

from api.journal import Batch, Pending

REMEMBERED = 100_000  # tweets whose stored total and last pass are remembered


@dataclass
class Unwritten:
    """One tweet's likes not yet acknowledged by the store."""

    pending: int = 0
    since: float = 0.0  # when the age rule's clock started
    inflight: int = 0
    answered: int = 0  # the last count answered: no later answer goes below it


class LikeCounts:
    """Stored totals, pending and in-flight likes, and the counts they make."""

    def __init__(self) -> None:
        self.unwritten: dict[int, Unwritten] = {}
        self.stored: LRU[int, int] = LRU(REMEMBERED)
        self.last_passed: LRU[int, float] = LRU(REMEMBERED)

    def knows(self, tweet_id: int) -> bool:
        """Tell whether the tweet's stored total is known here (so it exists)."""
        return tweet_id in self.stored

    def count(self, tweet_id: int, read: int | None = None) -> int:
        """Return the running count, given the stored total a read returned (if any)."""
        entry = self.unwritten.get(tweet_id)
        stored = self.stored.get(tweet_id)
        if read is not None and (entry is None or not entry.inflight):
            stored = max(read, stored or 0)
            self.stored.put(tweet_id, stored)
        if entry is None:
            return stored or 0
        if entry.inflight and stored is None:
            total = (read or 0) + entry.pending  # the read may hold the batch already
        else:
            total = (stored or 0) + entry.inflight + entry.pending
        entry.answered = max(entry.answered, total)
        return entry.answered

    def like(self, tweet_id: int, now: float) -> Unwritten:
        """Add one pending like; return the tweet's entry (its ``since`` starts the age rule
        at the last pass, or now)."""
        entry = self.unwritten.get(tweet_id)
        if entry is None:
            since = self.last_passed.get(tweet_id)
            entry = Unwritten(since=now if since is None else since)
            self.unwritten[tweet_id] = entry
        entry.pending += 1
        entry.answered += 1  # the truth grew by one since the last answer
        return entry

    def unlike(self, tweet_id: int) -> None:
        """Take back a like that could not be journaled."""
        entry = self.unwritten[tweet_id]
        entry.pending -= 1
        entry.answered -= 1
        self._drop_if_written(tweet_id, entry)

    def due(self, now: float, batch_size: int, max_age: float, everything: bool) -> dict[int, int]:
        """Return the pending likes the two rules (or ``everything``) say to pass on."""
        return {tweet: entry.pending for tweet, entry in self.unwritten.items()
                if entry.pending and (everything or entry.pending > batch_size
                                      or now - entry.since > max_age)}

    def take(self, batch: Batch, now: float) -> None:
        """Move a batch's likes from pending to in flight."""
        for tweet, count in batch.likes.items():
            entry = self.unwritten[tweet]
            entry.pending -= count
            entry.inflight += count
            self.last_passed.put(tweet, now)

    def landed(self, batch: Batch, totals: dict[int, int], missing: set[int]) -> None:
        """Account for a batch the store acknowledged, with its exact totals."""
        for tweet, count in batch.likes.items():
            entry = self.unwritten.get(tweet)
            if entry is not None:
                entry.inflight -= count
            if tweet in missing:
                self.stored.pop(tweet)
            elif tweet in totals:
                self.stored.put(tweet, totals[tweet])
            if entry is not None:
                self._drop_if_written(tweet, entry)

    def restore(self, pending: list[Pending], batches: list[Batch]) -> None:
        """Load what a journal held from before a crash or a stop."""
        for row in pending:
            self.unwritten[row.tweet_id] = Unwritten(row.count, row.since, 0, row.answered)
        for batch in batches:
            for tweet, count in batch.likes.items():
                entry = self.unwritten.setdefault(tweet, Unwritten())
                entry.inflight += count
                entry.answered = max(entry.answered, batch.answered.get(tweet, 0))

    def forget(self, tweet_id: int) -> None:
        """Forget a deleted tweet's total, so that a later like of its id is checked again."""
        self.stored.pop(tweet_id)
        entry = self.unwritten.get(tweet_id)
        if entry is not None:
            entry.answered = 0

    def answered(self, batch_likes: dict[int, int]) -> dict[int, int]:
        """Return the last count answered for each tweet of a batch (journaled with it)."""
        return {tweet: self.unwritten[tweet].answered for tweet in batch_likes}

    def _drop_if_written(self, tweet_id: int, entry: Unwritten) -> None:
        if not entry.pending and not entry.inflight:
            del self.unwritten[tweet_id]
