"""The api's side of cache coherence, against a real store: reads carry the store's
Surrogate-Key, writes name the store's Changed-Keys and publish them into the api's own
``GET /_changes`` (which the front caches follow), likes are published soft once per
LIKE_PUBLISH_S, and the feed is no API call. FEED_COALESCE_S is 0 where a test makes several
writes in a row, so each is published at once; ``test_coalescer.py`` and
``test_publisher.py`` test the coalescing rules on a fake clock."""
from __future__ import annotations

from typing import Any, Callable

import pytest

from httpkit import Server, UpstreamResponse
from tests.api.conftest import StartApi, StartCache
from tests.api.helpers import (Client, User, delete_tweet, edit_tweet, join, like, log_in,
                               post_tweet, sign_up)
from tests.fakes import FeedReader, Lab, wait_until


@pytest.fixture
def api(start_api: StartApi, store: Server) -> Client:
    """An api that publishes every write at once (no coalescing)."""
    return start_api(store.url, feed_coalesce=0)


@pytest.fixture
def alice(api: Client) -> User:
    """alice, with two tweets: 1 "hello #cats", 2 "hello again #dogs"."""
    user = join(api, "alice")
    assert post_tweet(api, user, "hello #cats")["id"] == 1
    assert post_tweet(api, user, "hello again #dogs")["id"] == 2
    return user


def surrogate_keys(answer: UpstreamResponse) -> list[str]:
    return answer.headers.get("surrogate-key", "").split()


def changed_keys(answer: UpstreamResponse) -> list[str]:
    return answer.headers.get("changed-keys", "").split()


def last_answer(client: Client) -> UpstreamResponse:
    return client.answers[-1][2]


def feed_of(lab: Lab, server_url: str) -> FeedReader:
    return FeedReader(lab.client(server_url))


def soft_keys_heard(feed: FeedReader, heard: list[str], hard: list[str]) -> list[str]:
    """Read the feed once more; collect soft and hard keys; return the soft ones so far."""
    data = feed.read()
    heard.extend(data["soft"])
    hard.extend(data["keys"])
    return heard


READS = ["/tweets", "/tweets?limit=1", "/tweets/1", "/tweets/search?q=hello",
         "/hashtags", "/hashtags?q=c", "/hashtags/cats/tweets", "/accounts", "/accounts/alice",
         "/accounts/alice/tweets", "/accounts/search?q=al"]


# --- reads ------------------------------------------------------------------------------------

def test_every_read_carries_the_keys_the_store_gave_it(
        api: Client, alice: User, store_client: Client) -> None:
    for target in READS:
        answer = api.get(target)
        assert answer.status == 200, target
        keys = surrogate_keys(answer)
        assert keys, f"{target}: a cacheable answer names nothing"
        assert keys == surrogate_keys(store_client.get(target)), target


def test_what_the_keys_name(api: Client, alice: User) -> None:
    assert surrogate_keys(api.get("/tweets")) == ["timeline", "tweet/2", "tweet/1"]
    assert surrogate_keys(api.get("/tweets/1")) == ["tweet/1"]
    assert surrogate_keys(api.get("/hashtags/CATS/tweets")) == ["tag/cats", "tweet/1"]
    assert surrogate_keys(api.get("/accounts/Alice")) == ["account/alice"]


def test_the_keys_come_through_dbcache_when_it_answers(lab: Lab, start_api: StartApi,
                                                       start_cache: StartCache,
                                                       store: Server) -> None:
    dbcache = start_cache(store.url, name="dbcache")
    api = start_api(dbcache.url, feed_coalesce=0)
    alice = join(api, "alice")
    post_tweet(api, alice, "hello #cats")
    stats = lab.client(dbcache.url)
    hits = stats.request("GET", "/_cache/stats").json()["hits"]
    answers = [api.get("/hashtags/cats/tweets") for _ in range(3)]
    assert stats.request("GET", "/_cache/stats").json()["hits"] > hits  # dbcache answered
    assert [surrogate_keys(answer) for answer in answers] == [["tag/cats", "tweet/1"]] * 3


def test_answers_not_to_be_cached_by_key_name_nothing(api: Client, alice: User) -> None:
    for target in ["/logs", "/stats", "/openapi.json", "/healthz", "/_changes", "/tweets/99"]:
        assert surrogate_keys(api.get(target)) == [], target


# --- writes -----------------------------------------------------------------------------------

WRITES: dict[str, Callable[[Client, User], Any]] = {
    "sign_up": lambda api, alice: sign_up(api, "carol"),
    "post": lambda api, alice: post_tweet(api, alice, "hi #birds"),
    "edit": lambda api, alice: edit_tweet(api, alice, 1, "bye #birds"),
    "delete": lambda api, alice: delete_tweet(api, alice, 1),
}
EXPECTED = {
    "sign_up": ["accounts"],
    "post": ["timeline", "search", "hashtags", "account/alice", "tag/birds"],
    "edit": ["tweet/1", "search", "hashtags", "tag/cats", "tag/birds"],
    "delete": ["tweet/1", "timeline", "search", "hashtags", "account/alice", "tag/cats"],
}


@pytest.mark.parametrize("write", list(WRITES))
def test_a_write_names_and_publishes_the_keys_the_store_named(
        lab: Lab, api: Client, alice: User, store: Server, write: str) -> None:
    api_feed, store_feed = feed_of(lab, api.url), feed_of(lab, store.url)
    WRITES[write](api, alice)
    answer = last_answer(api)
    assert changed_keys(answer) == EXPECTED[write]  # the front cache relaying it drops these
    assert store_feed.keys() == EXPECTED[write]
    assert api_feed.keys() == EXPECTED[write]  # ... and every other replica hears of them


def test_logging_in_and_refused_writes_publish_nothing(
        lab: Lab, api: Client, alice: User) -> None:
    bob = join(api, "bob")
    api_feed = feed_of(lab, api.url)
    log_in(api, "alice")
    assert api.fetch("PUT", "/tweets/1", {"text": "mine now"}, bob.auth).status == 403
    assert api.fetch("DELETE", "/tweets/1", headers=bob.auth).status == 403
    assert api.fetch("POST", "/accounts", {"username": "ALICE",
                                           "password": "long enough"}).status == 409
    assert api.fetch("POST", "/tweets", {"text": ""}, alice.auth).status == 400
    assert api.fetch("POST", "/tweets/99/like").status == 404
    assert api_feed.keys() == []


def test_a_key_written_again_at_once_is_published_soft_when_its_interval_ends(
        lab: Lab, start_api: StartApi, store: Server) -> None:
    api = start_api(store.url, feed_coalesce=0.3)
    api_feed = feed_of(lab, api.url)
    sign_up(api, "carol")
    assert changed_keys(last_answer(api)) == ["accounts"]  # the leading edge, at once
    sign_up(api, "dave")
    assert changed_keys(last_answer(api)) == []  # "accounts" went out a moment ago
    first = api_feed.read()
    assert (first["keys"], first["soft"]) == (["accounts"], [])
    soft: list[str] = []
    hard: list[str] = []
    assert wait_until(lambda: "accounts" in soft_keys_heard(api_feed, soft, hard))
    assert (hard, soft) == ([], ["accounts"])


# --- likes ------------------------------------------------------------------------------------

def test_a_like_is_published_soft_within_like_publish_s(
        lab: Lab, start_api: StartApi, store: Server) -> None:
    api = start_api(store.url, like_publish=0.05, feed_coalesce=0)
    alice = join(api, "alice")
    tweet = post_tweet(api, alice, "like me")
    api_feed = feed_of(lab, api.url)
    assert like(api, tweet["id"]) == 1
    assert changed_keys(last_answer(api)) == []  # a like drops nothing at once
    like(api, tweet["id"])
    soft: list[str] = []
    hard: list[str] = []
    assert wait_until(lambda: f"tweet/{tweet['id']}" in soft_keys_heard(api_feed, soft, hard))
    assert soft == [f"tweet/{tweet['id']}"]  # two likes, one change
    assert hard == []  # a count may lag a moment: never dropped, only refetched


def test_without_batching_each_like_is_a_store_write_in_the_store_feed(
        lab: Lab, start_api: StartApi, store: Server) -> None:
    api = start_api(store.url, like_batching=False, feed_coalesce=0)
    alice = join(api, "alice")
    tweet = post_tweet(api, alice, "like me")
    store_feed = feed_of(lab, store.url)
    like(api, tweet["id"])
    assert store_feed.keys() == [f"tweet/{tweet['id']}"]  # what dbcache follows


# --- the feed is no API call ------------------------------------------------------------------

def test_reading_the_feed_is_not_logged_nor_a_db_access(lab: Lab, api: Client,
                                                        alice: User) -> None:
    before = api.get_json("/logs")
    feed = feed_of(lab, api.url)
    feed.read()
    assert api.get("/_changes?after=abc").status == 400
    after = api.get_json("/logs")
    assert after["total"] == before["total"] + 1  # the /logs read in between, only
    assert ["GET", "/_changes"] not in after["calls"]
    assert after["db_accesses"] == before["db_accesses"]
    answer = api.get("/_changes")
    assert answer.headers["cache-control"] == "no-store"
