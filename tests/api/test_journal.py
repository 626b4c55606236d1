"""Unit tests of ``api/journal.py``: the like journal on a file in ``tmp_path``.

Every like is in ``pending`` or in one journaled batch, never both and never neither; the
last count answered per tweet is journaled with it, so the counts restored after a restart
(``LikeCounts.restore``) never go below what was answered before it.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from api.counts import LikeCounts
from api.journal import Batch, LikeJournal, Pending

OpenJournal = Callable[[], LikeJournal]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "likes.sqlite3"


@pytest.fixture
def open_journal(path: Path) -> Iterator[OpenJournal]:
    """Open the test's journal file (again, as a restarted API would); closed at the end."""
    opened: list[LikeJournal] = []

    def open_() -> LikeJournal:
        opened.append(LikeJournal(str(path)))
        return opened[-1]
    yield open_
    for journal in opened:
        journal.close()


def test_likes_accumulate_per_tweet_keeping_the_first_since_and_the_last_answer(
        open_journal: OpenJournal) -> None:
    journal = open_journal()
    journal.add_like(7, since=100.0, answered=1)
    journal.add_like(7, since=105.0, answered=2)
    journal.add_like(8, since=103.0, answered=31)
    assert sorted(journal.pending(), key=lambda row: row.tweet_id) == [
        Pending(7, 2, 100.0, 2), Pending(8, 1, 103.0, 31)]
    assert journal.batches() == []


def test_take_moves_likes_into_a_batch_and_done_forgets_it(open_journal: OpenJournal) -> None:
    journal = open_journal()
    for answered in (1, 2, 3):
        journal.add_like(7, 100.0, answered)
    journal.add_like(8, 100.0, 1)
    batch = Batch("b1", {7: 3}, {7: 3})
    journal.take(batch, now=110.0)
    assert journal.pending() == [Pending(8, 1, 100.0, 1)]
    assert journal.batches() == [batch]
    journal.done("b1")
    assert journal.batches() == []
    assert journal.pending() == [Pending(8, 1, 100.0, 1)]


def test_batches_come_back_oldest_first(open_journal: OpenJournal) -> None:
    journal = open_journal()
    journal.add_like(7, 100.0, 1)
    journal.take(Batch("zz-first", {7: 1}, {7: 1}), now=110.0)
    journal.add_like(7, 111.0, 2)
    journal.take(Batch("aa-second", {7: 1}, {7: 2}), now=120.0)
    assert [batch.batch_id for batch in journal.batches()] == ["zz-first", "aa-second"]


def test_a_take_that_fails_half_way_leaves_every_like_pending(
        open_journal: OpenJournal, path: Path) -> None:
    journal = open_journal()
    journal.add_like(7, 100.0, 1)
    journal.add_like(8, 100.0, 1)
    with sqlite3.connect(path) as other:  # the delete fails after the batch was inserted
        other.execute("create trigger no_delete before delete on pending"
                      " when old.tweet_id = 8 begin select raise(abort, 'disk trouble'); end")
    with pytest.raises(sqlite3.DatabaseError):
        journal.take(Batch("b1", {7: 1, 8: 1}, {7: 1, 8: 1}), now=110.0)
    assert journal.batches() == []
    assert sorted(row.tweet_id for row in journal.pending()) == [7, 8]
    reopened = open_journal()
    assert (reopened.batches(), len(reopened.pending())) == ([], 2)


def test_a_reopened_journal_holds_pending_likes_batches_and_answered_counts(
        open_journal: OpenJournal) -> None:
    journal = open_journal()
    for answered in range(16, 27):  # 11 likes on top of 15 stored
        journal.add_like(7, 100.0, answered)
    journal.take(Batch("b1", {7: 11}, {7: 26}), now=110.0)
    journal.add_like(7, 110.0, 27)
    journal.close()
    reopened = open_journal()
    assert reopened.pending() == [Pending(7, 1, 110.0, 27)]
    assert reopened.batches() == [Batch("b1", {7: 11}, {7: 26})]


def test_a_journal_from_before_the_answered_columns_is_upgraded_and_replays(
        open_journal: OpenJournal, path: Path) -> None:
    with sqlite3.connect(path) as old:  # the schema of the batcher before the split
        old.executescript("""
            create table pending (tweet_id integer primary key, count integer not null,
                                  since real not null);
            create table batches (batch_id text primary key, likes text not null,
                                  created real not null);
            insert into pending values (7, 2, 100.0);
            insert into batches values ('b1', '{"7": 11, "8": 1}', 90.0);
        """)
    old.close()
    journal = open_journal()
    assert journal.pending() == [Pending(7, 2, 100.0, 0)]
    assert journal.batches() == [Batch("b1", {7: 11, 8: 1}, {})]
    journal.add_like(7, 120.0, 3)
    journal.take(Batch("b2", {7: 3}, {7: 3}), now=130.0)
    assert [batch.answered for batch in journal.batches()] == [{}, {7: 3}]
    counts = LikeCounts()
    counts.restore(journal.pending(), journal.batches())
    assert (counts.unwritten[7].inflight, counts.unwritten[8].inflight) == (14, 1)
    assert counts.count(7, 0) == 3  # the answered floor it journaled since the upgrade


def test_after_a_restart_no_count_goes_below_one_answered_before_it(
        open_journal: OpenJournal) -> None:
    # Before the crash: 11 likes answered 1..11, taken in a batch the store may have
    # applied (its answer was never seen), then one more like answered 12.
    before = LikeCounts()
    journal = open_journal()
    for _ in range(11):
        entry = before.like(7, 100.0)
        journal.add_like(7, entry.since, before.count(7))
    batch = Batch("b1", {7: 11}, before.answered({7: 11}))
    journal.take(batch, now=110.0)
    before.take(batch, 110.0)
    entry = before.like(7, 111.0)
    journal.add_like(7, entry.since, before.count(7))
    assert before.count(7) == 12
    journal.close()

    after = LikeCounts()  # the restarted API: the store's total is unknown
    reopened = open_journal()
    after.restore(reopened.pending(), reopened.batches())
    assert after.count(7) == 12  # not 1: pending only
    assert after.count(7, 0) == 12  # the store had not applied the batch (yet)
    assert after.count(7, 11) == 12  # it had: 11 + 1 pending, not 23
    [replayed] = reopened.batches()
    after.landed(replayed, {7: 11}, set())  # the resent batch is acknowledged, exactly
    reopened.done(replayed.batch_id)
    after.like(7, 120.0)
    assert after.count(7) == 13  # 11 stored + 2 pending: exact again
    assert after.count(7, 11) == 13
