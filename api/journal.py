"""The like journal: the API's own sqlite3 file, where a like is committed before its 202.

Three tables. ``pending`` holds, per tweet, the likes not yet passed on, when the age rule's
clock started, and the last count answered for the tweet (so that no count answered after a
restart is lower than one answered before it). ``batches`` holds each batch taken out of
``pending`` until the store acknowledges it, under the id the store applies once; it is
written in the same transaction that empties the tweets' ``pending`` rows, so a crash at any
point leaves every like in exactly one of the two tables. ``like_keys`` holds the answer to
each like sent with an Idempotency-Key, written in the transaction of the like, so a retry
after a crash finds the like and its answer or neither.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from api.idempotency import Keyed
from httpkit.keys import owner_only

SCHEMA = """
create table if not exists pending (
    tweet_id integer primary key,
    count integer not null,
    since real not null,              -- when the age rule's clock started for this tweet
    answered integer not null default 0   -- the last running count answered for it
);
create table if not exists batches (
    batch_id text primary key,
    likes text not null,              -- JSON {tweet id: count}
    created real not null,
    answered text not null default '{}'   -- JSON {tweet id: last count answered}
);
create table if not exists like_keys (
    scope text not null,
    key text not null,
    fingerprint text not null,
    answer text not null,             -- JSON, as first answered
    until real not null,              -- when the key stops counting
    primary key (scope, key)
) without rowid;
create index if not exists like_keys_until on like_keys (until);
"""
PENDING_LIKE = ("insert into pending (tweet_id, count, since, answered) values (?, 1, ?, ?)"
                " on conflict (tweet_id) do update set count = count + 1,"
                " answered = excluded.answered")


@dataclass
class Batch:
    """Likes taken out of pending together, sent to the store under one id."""

    batch_id: str
    likes: dict[int, int]
    answered: dict[int, int]  # the last count answered for each tweet when it was taken


@dataclass
class Pending:
    """One tweet's journaled likes not yet passed on."""

    tweet_id: int
    count: int
    since: float
    answered: int


class LikeJournal:
    """Commit likes and batches to a local sqlite3 file (not thread-safe: callers lock)."""

    def __init__(self, path: str) -> None:
        owner_only(path)  # what was liked, and the answers to keyed likes
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("pragma journal_mode=wal")
        self._db.execute("pragma synchronous=normal")  # survives a process crash, cheaply
        # A checkpoint every ~1 MB, and the WAL cut back to 1 MB after it (the store does the
        # same): by default it grows to ~4 MB and never shrinks, taking a small disk's space.
        self._db.execute("pragma wal_autocheckpoint = 256")
        self._db.execute(f"pragma journal_size_limit = {1 << 20}")
        self._db.executescript(SCHEMA)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        # A journal written before the ``answered`` columns existed still replays.
        for table, column, kind in (("pending", "answered", "integer not null default 0"),
                                    ("batches", "answered", "text not null default '{}'")):
            names = {row[1] for row in self._db.execute(f"pragma table_info({table})")}
            if column not in names:
                self._db.execute(f"alter table {table} add column {column} {kind}")

    def add_like(self, tweet_id: int, since: float, answered: int,
                 keyed: Keyed | None = None, answer: Any = None, now: float = 0.0) -> None:
        """Commit one like of a tweet and the count it is answered with, and the answer of
        a keyed like with it (dropping the keys out of their window)."""
        if keyed is None:  # one statement is its own transaction
            self._db.execute(PENDING_LIKE, (tweet_id, since, answered))
            return
        self._db.execute("begin")
        try:
            self._db.execute(PENDING_LIKE, (tweet_id, since, answered))
            self._db.execute("delete from like_keys where until < ?", (now,))
            self._db.execute(
                "insert or replace into like_keys (scope, key, fingerprint, answer, until)"
                " values (?, ?, ?, ?, ?)", (keyed.scope, keyed.key, keyed.fingerprint,
                                            json.dumps(answer), now + keyed.window))
        except BaseException:
            self._db.execute("rollback")
            raise
        self._db.execute("commit")

    def replay(self, keyed: Keyed | None, now: float) -> None:
        """Raise Replayed (or the 422) if this keyed like was answered within its window."""
        if keyed is None:
            return
        row = self._db.execute("select fingerprint, answer from like_keys"
                               " where scope = ? and key = ? and until >= ?",
                               (keyed.scope, keyed.key, now)).fetchone()
        if row is not None:
            keyed.replay(row[0], json.loads(row[1]))

    def take(self, batch: Batch, now: float) -> None:
        """Move the batch's tweets out of pending and into a journaled batch, atomically."""
        self._db.execute("begin")
        try:
            self._db.execute(
                "insert into batches (batch_id, likes, created, answered) values (?, ?, ?, ?)",
                (batch.batch_id, json.dumps(batch.likes), now, json.dumps(batch.answered)))
            self._db.executemany("delete from pending where tweet_id = ?",
                                 [(tweet,) for tweet in batch.likes])
        except BaseException:
            self._db.execute("rollback")
            raise
        self._db.execute("commit")

    def done(self, batch_id: str) -> None:
        """Forget a batch the store acknowledged."""
        self._db.execute("delete from batches where batch_id = ?", (batch_id,))

    def pending(self) -> list[Pending]:
        """Return the pending likes of every tweet, as journaled."""
        return [Pending(*row) for row in self._db.execute(
            "select tweet_id, count, since, answered from pending")]

    def batches(self) -> list[Batch]:
        """Return the unacknowledged batches, oldest first."""
        return [Batch(batch_id, {int(t): c for t, c in json.loads(likes).items()},
                      {int(t): c for t, c in json.loads(answered).items()})
                for batch_id, likes, answered in self._db.execute(
                    "select batch_id, likes, answered from batches order by created")]

    def close(self) -> None:
        self._db.close()
