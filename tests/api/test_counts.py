"""Unit tests of ``api/counts.py``: what a like or a read of a tweet is answered with.

    count = stored + in flight + pending, never below the last count answered

``LikeCounts`` is driven by hand here, as the batcher drives it: ``like`` for a like,
``count`` for an answer (with the stored total a read returned, if any), ``take`` when a
batch leaves for the store, ``landed`` when the store acknowledges it, ``restore`` for what
a journal held. No batcher, no journal file, no store.
"""
from __future__ import annotations

import pytest

from api import counts as counts_module
from api.counts import LikeCounts
from api.journal import Batch, Pending

T = 7  # the tweet of most tests
NOW = 1_000.0


def liked(counts: LikeCounts, times: int, tweet: int = T, now: float = NOW) -> list[int]:
    """Like a tweet ``times`` times as the batcher does; return the counts answered."""
    answers = []
    for _ in range(times):
        counts.like(tweet, now)
        answers.append(counts.count(tweet))
    return answers


def taken(counts: LikeCounts, likes: dict[int, int], now: float = NOW,
          batch_id: str = "b1") -> Batch:
    """Take a batch as the batcher does: with the answered counts it journals."""
    batch = Batch(batch_id, likes, counts.answered(likes))
    counts.take(batch, now)
    return batch


# -- stored + pending -----------------------------------------------------------------------


def test_a_tweet_never_seen_counts_zero_and_is_not_known() -> None:
    counts = LikeCounts()
    assert counts.count(T) == 0
    assert not counts.knows(T)


def test_a_read_makes_the_stored_total_known() -> None:
    counts = LikeCounts()
    assert counts.count(T, 5) == 5
    assert counts.knows(T)
    assert counts.count(T) == 5


def test_likes_add_to_the_stored_total() -> None:
    counts = LikeCounts()
    counts.count(T, 5)
    assert liked(counts, 3) == [6, 7, 8]
    assert counts.count(T, 5) == 8


def test_a_read_keeps_the_larger_of_itself_and_the_known_total() -> None:
    counts = LikeCounts()
    counts.count(T, 5)
    assert counts.count(T, 3) == 5  # an older copy, overtaken by what is known
    assert counts.stored.get(T) == 5
    assert counts.count(T, 9) == 9  # another instance wrote 4 more
    assert counts.stored.get(T) == 9


def test_a_like_that_could_not_be_journaled_is_taken_back() -> None:
    counts = LikeCounts()
    counts.count(T, 5)
    counts.like(T, NOW)
    counts.unlike(T)
    assert T not in counts.unwritten
    assert counts.count(T) == 5
    assert liked(counts, 1) == [6]


# -- the rules' due set ---------------------------------------------------------------------


def test_due_by_size_only_past_the_batch_size() -> None:
    counts = LikeCounts()
    liked(counts, 10)
    assert counts.due(NOW, 10, 60.0, everything=False) == {}
    liked(counts, 1)
    assert counts.due(NOW, 10, 60.0, everything=False) == {T: 11}


def test_due_by_age_only_past_the_max_age_and_everything_on_demand() -> None:
    counts = LikeCounts()
    liked(counts, 1)
    assert counts.due(NOW + 60.0, 10, 60.0, everything=False) == {}
    assert counts.due(NOW + 60.001, 10, 60.0, everything=False) == {T: 1}
    assert counts.due(NOW, 10, 60.0, everything=True) == {T: 1}


def test_the_age_of_new_likes_starts_at_the_last_pass() -> None:
    counts = LikeCounts()
    liked(counts, 11)
    batch = taken(counts, {T: 11}, now=NOW + 50)
    counts.landed(batch, {T: 11}, set())
    assert counts.like(T, NOW + 55).since == NOW + 50
    assert counts.like(8, NOW + 55).since == NOW + 55  # never passed on: from now


def test_likes_in_flight_are_not_due_again() -> None:
    counts = LikeCounts()
    liked(counts, 11)
    taken(counts, {T: 11})
    assert counts.due(NOW, 10, 60.0, everything=True) == {}


# -- batches in flight and acknowledged -----------------------------------------------------


def test_in_flight_likes_count_on_top_of_a_known_total() -> None:
    counts = LikeCounts()
    counts.count(T, 5)
    liked(counts, 11)
    taken(counts, {T: 11})
    liked(counts, 1)
    assert counts.count(T) == 17  # 5 stored + 11 in flight + 1 pending


def test_a_read_while_a_batch_is_in_flight_does_not_change_the_stored_total() -> None:
    # The read may or may not hold the batch already: 16 could be 5 + the 11 in flight.
    counts = LikeCounts()
    counts.count(T, 5)
    liked(counts, 11)
    taken(counts, {T: 11})
    assert counts.count(T, 16) == 16
    assert counts.stored.get(T) == 5
    assert counts.count(T) == 16  # not 27


def test_in_flight_likes_are_left_out_when_no_stored_total_is_known() -> None:
    # The store was never reached, so the 11 likes were answered 1..11; the tweet had 5
    # before them. A read of 16 taken while the batch of 11 is in flight may hold it, so
    # the count is the read + 1 pending: 17, neither 28 (the batch twice) nor 12 (the 5
    # stored before left out).
    counts = LikeCounts()
    assert liked(counts, 11) == list(range(1, 12))
    taken(counts, {T: 11})
    counts.like(T, NOW)
    assert counts.count(T, 16) == 17
    assert not counts.knows(T)


def test_never_below_the_last_count_answered_while_the_total_is_unknown() -> None:
    counts = LikeCounts()
    assert liked(counts, 11)[-1] == 11
    taken(counts, {T: 11})
    assert counts.count(T) == 11  # not 0: the in-flight likes are left out
    assert counts.count(T, 0) == 11  # a read from before the batch
    assert liked(counts, 1) == [12]  # not 1: pending only


def test_an_acknowledgement_gives_the_exact_total() -> None:
    counts = LikeCounts()
    liked(counts, 11)
    batch = taken(counts, {T: 11})
    liked(counts, 1)
    counts.landed(batch, {T: 14}, set())  # another instance wrote 3 meanwhile
    assert counts.stored.get(T) == 14
    assert counts.count(T) == 15
    assert counts.unwritten[T].inflight == 0


def test_a_written_tweet_leaves_the_unwritten_table() -> None:
    counts = LikeCounts()
    liked(counts, 11)
    counts.landed(taken(counts, {T: 11}), {T: 11}, set())
    assert T not in counts.unwritten
    assert counts.count(T) == 11


def test_a_tweet_missing_from_the_store_is_no_longer_known() -> None:
    counts = LikeCounts()
    counts.count(T, 5)
    liked(counts, 11)
    counts.landed(taken(counts, {T: 11}), {}, {T})
    assert not counts.knows(T)  # the next like checks it again
    assert T not in counts.unwritten


def test_forget_drops_the_total_and_the_floor() -> None:
    counts = LikeCounts()
    counts.count(T, 30)
    liked(counts, 11)
    taken(counts, {T: 11})
    counts.forget(T)
    assert not counts.knows(T)
    assert counts.count(T) == 0  # a deleted tweet's old count is no floor for its id


def test_the_answered_counts_of_a_batch_are_the_last_ones_answered() -> None:
    counts = LikeCounts()
    counts.count(T, 5)
    liked(counts, 11)
    liked(counts, 2, tweet=8)
    assert counts.answered({T: 11, 8: 2}) == {T: 16, 8: 2}


# -- a restart ------------------------------------------------------------------------------


def test_restored_counts_never_go_below_the_journaled_answers_and_are_exact_once_acked() -> None:
    # Before the crash: 11 likes answered 1..11 went out in a batch the store may have
    # applied, then one more was answered 12. After: the store's total is unknown.
    counts = LikeCounts()
    batch = Batch("b1", {T: 11}, {T: 11})
    counts.restore([Pending(T, 1, NOW, 12)], [batch])
    assert counts.count(T) == 12  # not 1 (pending only)
    assert counts.count(T, 0) == 12  # a read from before the batch landed
    assert counts.count(T, 11) == 12  # a read that holds it: 11 + 1, not 23
    assert liked(counts, 1) == [13]
    counts.landed(batch, {T: 11}, set())
    assert counts.count(T) == 13  # exact: 11 stored + 2 pending
    assert counts.count(T, 11) == 13
    assert liked(counts, 1) == [14]


def test_a_restored_batch_alone_keeps_its_answered_count() -> None:
    counts = LikeCounts()
    counts.restore([], [Batch("b1", {T: 11}, {T: 11}), Batch("b2", {T: 11}, {T: 22})])
    assert counts.unwritten[T].inflight == 22
    assert counts.count(T) == 22
    assert counts.count(T, 11) == 22  # the read may hold the first batch only


def test_restored_pending_likes_keep_their_age() -> None:
    counts = LikeCounts()
    counts.restore([Pending(T, 2, NOW - 70, 2)], [])
    assert counts.due(NOW, 10, 60.0, everything=False) == {T: 2}


# -- bounded memory -------------------------------------------------------------------------


def test_remembered_totals_are_bounded_least_recently_set_first(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counts_module, "REMEMBERED", 3)
    counts = LikeCounts()
    for tweet in (1, 2, 3):
        counts.count(tweet, tweet * 10)
    counts.stored.put(1, 11)  # set again: the most recent now
    counts.count(4, 40)
    assert [tweet for tweet in (1, 2, 3, 4) if counts.knows(tweet)] == [1, 3, 4]
    counts.count(5, 50)  # 3 was set longest ago
    assert [tweet for tweet in (1, 3, 4, 5) if counts.knows(tweet)] == [1, 4, 5]
