"""Service tests of the public API with what stands behind it: a real dbcache absorbing
repeated reads and dropping what an edit changes, ``no-cache`` passed on, the whole story
through it, /logs never kept by a front cache, and a store unreachable (502) or too slow
(504)."""
from __future__ import annotations

from typing import Any

import pytest

from httpkit import Request, Response, Server, json_response
from tests.api.conftest import StartApi, StartCache
from tests.api.helpers import (PASSWORD, Client, delete_tweet, edit_tweet, error_code, join, like,
                               logged, post_tweet, read_tweet, texts)
from tests.fakes import Lab, closed_port_address, wait_until


# --- behind caches -----------------------------------------------------------------------------

@pytest.fixture
def dbcache(start_cache: StartCache, store: Server) -> Server:
    return start_cache(store.url, name="dbcache")


@pytest.fixture
def api_via_dbcache(start_api: StartApi, dbcache: Server) -> Client:
    return start_api(dbcache.url)


def store_queries(store_client: Client) -> int:
    queries: int = store_client.get_json("/stats")["queries"]
    return queries


def cache_stats(lab: Lab, cache: Server) -> dict[str, Any]:
    answer = lab.client(cache.url).request("GET", "/_cache/stats")
    assert answer.status == 200
    stats: dict[str, Any] = answer.json()
    return stats


def test_dbcache_absorbs_repeated_reads(api_via_dbcache: Client, store_client: Client,
                                        lab: Lab, dbcache: Server) -> None:
    api = api_via_dbcache
    alice = join(api, "alice")
    tweet = post_tweet(api, alice, "read me often")
    read_tweet(api, tweet["id"])  # the miss that fills dbcache
    accesses = api.get_json("/logs")["db_accesses"]
    queries = store_queries(store_client)
    hits = cache_stats(lab, dbcache)["hits"]
    for _ in range(5):
        assert read_tweet(api, tweet["id"])["text"] == "read me often"
    assert api.get_json("/logs")["db_accesses"] == accesses + 5
    assert store_queries(store_client) == queries + 1  # only the /stats query itself
    assert cache_stats(lab, dbcache)["hits"] == hits + 5


def test_an_edit_drops_every_list_showing_the_tweet_from_dbcache(api_via_dbcache: Client,
                                                                 lab: Lab, store: Server,
                                                                 dbcache: Server) -> None:
    api = api_via_dbcache
    alice = join(api, "alice")
    tweet = post_tweet(api, alice, "first draft #draft")
    # Once dbcache has heard of the post from the store's feed, what it stores stays.
    seq = lab.client(store.url).request("GET", "/_changes").json()["seq"]
    assert wait_until(lambda: cache_stats(lab, dbcache)["feed"]["upstreams"][0]["seq"] >= seq)
    lists = ["/tweets", "/accounts/alice/tweets", "/hashtags/draft/tweets"]
    for _ in range(2):
        for target in lists:
            assert texts(api.get_json(target)) == ["first draft #draft"]
    stats = cache_stats(lab, dbcache)
    dropped = stats["feed"]["dropped_by_key"]
    assert stats["hits"] >= len(lists)  # held by dbcache: the second round was answered from it
    edit_tweet(api, alice, tweet["id"], "second draft #draft")
    # Other paths than the edit's, yet every one shows the tweet: the store's answer named
    # tweet/N in Changed-Keys and dbcache dropped them as the answer passed through.
    for target in lists:
        assert texts(api.get_json(target)) == ["second draft #draft"]
    assert cache_stats(lab, dbcache)["feed"]["dropped_by_key"] >= dropped + len(lists)


def test_a_no_cache_read_is_passed_on_to_dbcache(api_via_dbcache: Client, lab: Lab,
                                                 dbcache: Server) -> None:
    api = api_via_dbcache
    alice = join(api, "alice")
    tweet = post_tweet(api, alice, "first draft")
    refreshes = cache_stats(lab, dbcache)["refreshes"]
    assert texts(api.get_json("/tweets", fresh=True)) == ["first draft"]
    assert texts(api.get_json("/accounts/alice/tweets", fresh=True)) == ["first draft"]
    fresh = read_tweet(api, tweet["id"], fresh=True)
    assert fresh["text"] == "first draft"
    # The API passed no-cache on to dbcache each time it was asked to.
    assert cache_stats(lab, dbcache)["refreshes"] == refreshes + 3


def test_the_whole_story_works_through_dbcache(api_via_dbcache: Client) -> None:
    api = api_via_dbcache
    alice = join(api, "alice")
    bob = join(api, "bob")
    tweet = post_tweet(api, alice, "hello #world")
    assert like(api, tweet["id"]) == 1
    assert api.fetch("PUT", f"/tweets/{tweet['id']}", {"text": "x"}, bob.auth).status == 403
    edit_tweet(api, alice, tweet["id"], "bye #world")
    assert read_tweet(api, tweet["id"])["text"] == "bye #world"
    assert texts(api.get_json("/tweets/search?q=bye")) == ["bye #world"]
    delete_tweet(api, alice, tweet["id"])
    assert api.get(f"/tweets/{tweet['id']}").status == 404
    assert api.fetch("POST", "/accounts", {"username": "Alice", "password": PASSWORD}).status \
        == 409


def test_logs_are_never_cached_by_a_front_cache(api: Client, lab: Lab,
                                                start_cache: StartCache) -> None:
    front = Client(start_cache(api.url).url)
    lab.stops.append(front.close)
    api.get("/tweets")
    first = front.get("/logs")
    second = front.get("/logs")
    assert first.headers["x-cache"] == second.headers["x-cache"] == "MISS"
    assert second.json()["total"] == first.json()["total"] + 1
    assert second.json()["calls"][-1] == ["GET", "/logs"]
    assert front.get("/stats").headers["x-cache"] == front.get("/stats").headers["x-cache"] \
        == "MISS"
    assert front.get_json("/_cache/stats")["entries"] == 0


# --- when the database is unreachable ----------------------------------------------------------

def test_an_unreachable_store_is_a_502_and_an_unhealthy_api(start_api: StartApi) -> None:
    api = start_api(f"http://{closed_port_address()}")
    answer = api.get("/healthz")
    assert answer.status == 503 and error_code(answer) == "store_unavailable"
    for path in ["/tweets", "/tweets/1", "/accounts/alice", "/hashtags"]:
        answer = api.get(path)
        assert answer.status == 502, path
        assert error_code(answer) == "upstream_unavailable"
    assert api.fetch("POST", "/accounts", {"username": "alice", "password": PASSWORD}).status \
        == 502
    assert logged(api)[-1] == ["GET", "/logs"]  # the API itself still answers


def test_a_store_that_does_not_answer_in_time_is_a_504(lab: Lab, start_api: StartApi) -> None:
    gate = lab.gate()

    def slow(request: Request) -> Response:
        gate.wait(5)
        return json_response({})
    upstream = lab.upstream(slow)
    api = start_api(upstream.url, timeout=0.2)
    answer = api.get("/tweets/1")
    assert answer.status == 504 and error_code(answer) == "upstream_timeout"
