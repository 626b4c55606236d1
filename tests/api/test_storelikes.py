"""``StoreLikes``, the like batcher's store over HTTP, against a real store on port 0.

The batcher's own tests run on an in-memory fake of the ``LikeStore`` protocol; these show
that the HTTP implementation keeps the same contract: the stored total of a tweet or None,
each batch id applied once (a duplicate answered with the current totals), missing tweets
named, and a failure that says whether the request may have reached the store.
"""
from __future__ import annotations

import uuid
from typing import Any

import pytest

from api.storeclient import BatchAnswer, StoreClient, StoreLikes, StoreUnavailable
from httpkit import Server, Upstream
from tests.fakes import Lab, closed_port_address


class RealStore:
    """The store's data API, used as the rest of the system would: accounts, tweets, and
    likes written by another API instance."""

    def __init__(self, client: Upstream) -> None:
        self.client = client
        self.author = 0

    def data(self, method: str, target: str, payload: Any = None) -> Any:
        answer = self.client.fetch(method, target, payload)
        assert answer.status < 300, answer.body
        return answer.json() if answer.body else None

    def new_tweet(self) -> int:
        """Post a tweet as the one test author; return its id."""
        if not self.author:
            self.author = self.data("POST", "/accounts", {
                "username": "alice", "password_hash": "h", "display_name": "Alice"})["id"]
        tweet = self.data("POST", "/tweets", {"author_id": self.author, "text": "like me",
                                              "hashtags": []})
        return int(tweet["id"])

    def likes_of(self, tweet: int) -> int:
        return int(self.data("GET", f"/tweets/{tweet}")["likes"])

    def add_likes(self, tweet: int, count: int) -> None:
        """Write likes as another API instance would."""
        self.data("POST", "/like-batches", {"batch_id": uuid.uuid4().hex,
                                            "likes": {str(tweet): count}})


@pytest.fixture
def real_store(lab: Lab, store: Server) -> RealStore:
    return RealStore(lab.client(store.url))


def store_likes(lab: Lab, url: str) -> StoreLikes:
    return StoreLikes(StoreClient(lab.client(url)))


def test_stored_likes_of_a_tweet_and_of_no_tweet(lab: Lab, store: Server,
                                                 real_store: RealStore) -> None:
    likes = store_likes(lab, store.url)
    tweet = real_store.new_tweet()
    assert likes.stored_likes(tweet) == 0
    real_store.add_likes(tweet, 5)
    assert likes.stored_likes(tweet) == 5
    assert likes.stored_likes(987_654) is None
    assert likes.client.accesses == 3  # each call is one database access


def test_a_batch_id_is_applied_once_and_a_duplicate_answers_the_current_totals(
        lab: Lab, store: Server, real_store: RealStore) -> None:
    likes = store_likes(lab, store.url)
    tweet, other = real_store.new_tweet(), real_store.new_tweet()
    both = {tweet: 3, other: 1}
    assert likes.apply_batch("b1", both) == BatchAnswer({tweet: 3, other: 1}, set())
    assert likes.apply_batch("b1", both) == BatchAnswer({tweet: 3, other: 1}, set(), True)
    assert (real_store.likes_of(tweet), real_store.likes_of(other)) == (3, 1)
    real_store.add_likes(tweet, 2)
    assert likes.apply_batch("b1", {tweet: 3}) == BatchAnswer({tweet: 5}, set(), True)
    assert likes.apply_batch("b2", {tweet: 3}) == BatchAnswer({tweet: 8}, set())
    assert real_store.likes_of(tweet) == 8
    assert real_store.data("GET", "/stats")["likes"] == 9  # 3 + 1 + 2 + 3: no batch twice


def test_a_batch_names_the_tweets_that_no_longer_exist(lab: Lab, store: Server,
                                                       real_store: RealStore) -> None:
    likes = store_likes(lab, store.url)
    tweet, deleted = real_store.new_tweet(), real_store.new_tweet()
    real_store.data("DELETE", f"/tweets/{deleted}")
    batch_id = uuid.uuid4().hex
    answer = likes.apply_batch(batch_id, {tweet: 2, deleted: 4, 987_654: 1})
    assert answer == BatchAnswer({tweet: 2}, {deleted, 987_654})
    assert real_store.data("GET", "/stats")["likes"] == 2
    # A duplicate is answered with the totals of the tweets that exist and names the rest
    # missing again (store.db.apply_like_batch); test_batcher's fake store does the same.
    again = likes.apply_batch(batch_id, {tweet: 2, deleted: 4, 987_654: 1})
    assert again == BatchAnswer({tweet: 2}, {deleted, 987_654}, True)


def test_a_store_that_cannot_be_reached_was_not_sent_anything(lab: Lab) -> None:
    likes = store_likes(lab, f"http://{closed_port_address()}")
    with pytest.raises(StoreUnavailable) as read:
        likes.stored_likes(1)
    with pytest.raises(StoreUnavailable) as batch:
        likes.apply_batch("b1", {1: 1})
    assert (read.value.sent, batch.value.sent) == (False, False)
    assert (read.value.status, batch.value.status) == (502, 502)


def test_a_store_that_hangs_up_on_a_batch_may_have_applied_it(lab: Lab) -> None:
    front = lab.dying_upstream(answers=0)  # reads the batch, then hangs up without a word
    likes = store_likes(lab, front.url)
    with pytest.raises(StoreUnavailable) as raised:
        likes.apply_batch("b1", {1: 1})
    assert raised.value.sent is True
    assert [seen.target for seen in front.requests("POST")] == ["/like-batches"]
