"""Service tests of store: a real server on port 0 over a temporary DATA_DIR."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from httpkit import Upstream, UpstreamResponse, start_in_thread, stop_thread
from store.app import Config, make_server


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Upstream]:
    server = make_server(Config(port=0, data_dir=str(tmp_path)), FakeClock())
    thread = start_in_thread(server)
    client = Upstream(server.url)
    yield client
    client.close()
    stop_thread(server, thread)


def sign_up(store: Upstream, username: str) -> dict[str, Any]:
    answer = store.call("POST", "/accounts", {"username": username, "password_hash": "h",
                                              "display_name": username.title()})
    assert answer.status == 201, answer.body
    account: dict[str, Any] = answer.json()
    return account


def post_tweet(store: Upstream, author_id: int, text: str, tags: list[str]) -> dict[str, Any]:
    answer = store.call("POST", "/tweets", {"author_id": author_id, "text": text,
                                            "hashtags": tags})
    assert answer.status == 201, answer.body
    tweet: dict[str, Any] = answer.json()
    return tweet


def error_code(answer: UpstreamResponse) -> str:
    code: str = answer.json()["error"]["code"]
    return code


def test_health_and_stats_are_never_cached(store: Upstream) -> None:
    for path in ("/healthz", "/stats"):
        answer = store.request("GET", path)
        assert answer.status == 200
        assert answer.headers["cache-control"] == "no-store"
    assert store.request("GET", "/healthz").json() == {"status": "ok"}


def test_account_round_trip_and_case_insensitive_conflict(store: Upstream) -> None:
    alice = sign_up(store, "Alice")
    assert store.request("GET", "/accounts/alice").json() == alice
    taken = store.call("POST", "/accounts", {"username": "ALICE", "password_hash": "h"})
    assert taken.status == 409 and error_code(taken) == "username_taken"
    assert store.request("GET", "/accounts/nobody").status == 404


def test_credentials_are_separate_and_not_cacheable(store: Upstream) -> None:
    sign_up(store, "alice")
    answer = store.request("GET", "/accounts/alice/credentials")
    assert answer.json()["password_hash"] == "h"
    assert answer.headers["cache-control"] == "no-store"
    assert "password_hash" not in store.request("GET", "/accounts/alice").json()
    assert b"password_hash" not in store.request("GET", "/accounts").body


def test_tweet_lifecycle_with_author_guard(store: Upstream) -> None:
    alice, bob = sign_up(store, "alice"), sign_up(store, "bob")
    tweet = post_tweet(store, alice["id"], "hello #World", ["world"])
    assert tweet["author"] == "alice" and tweet["edited_at"] is None
    path = f"/tweets/{tweet['id']}"
    refused = store.call("PUT", path, {"text": "x", "hashtags": [], "author_id": bob["id"]})
    assert refused.status == 403 and error_code(refused) == "not_author"
    edited = store.call("PUT", path, {"text": "bye #moon", "hashtags": ["moon"],
                                      "author_id": alice["id"]}).json()
    assert edited["text"] == "bye #moon" and edited["edited_at"] is not None
    assert store.request("DELETE", f"{path}?author_id={bob['id']}").status == 403
    assert store.request("DELETE", f"{path}?author_id={alice['id']}").status == 204
    assert store.request("GET", path).status == 404
    assert store.request("DELETE", path).status == 404


def test_pages_search_and_hashtags(store: Upstream) -> None:
    alice = sign_up(store, "alice")
    ids = [post_tweet(store, alice["id"], f"tweet {n} #Søk", ["søk"])["id"] for n in range(5)]
    first = store.request("GET", "/tweets?limit=3").json()
    second = store.request("GET", f"/tweets?limit=3&cursor={first['next']}").json()
    assert [t["id"] for t in first["tweets"] + second["tweets"]] == ids[::-1]
    assert second["next"] is None
    found = store.request("GET", "/tweets/search?q=S%C3%98K").json()["tweets"]
    assert len(found) == 5
    tags = store.request("GET", "/hashtags?q=s").json()["hashtags"]
    assert tags == [{"tag": "søk", "tweets": 5}]
    tagged = store.request("GET", "/hashtags/S%C3%B8k/tweets?limit=2").json()
    assert [t["id"] for t in tagged["tweets"]] == ids[:2:-1][:2]
    by_author = store.request("GET", "/accounts/ALICE/tweets").json()["tweets"]
    assert len(by_author) == 5


@pytest.mark.parametrize("q", ['"', "*", "NEAR(a b)", "a AND", "' OR 1=1 --", "%_"])
def test_hostile_search_is_plain_text(store: Upstream, q: str) -> None:
    from urllib.parse import quote
    assert store.request("GET", f"/tweets/search?q={quote(q)}").status == 200
    assert store.request("GET", f"/accounts/search?q={quote(q)}").status == 200


def test_like_batches_apply_once(store: Upstream) -> None:
    alice = sign_up(store, "alice")
    tweet = post_tweet(store, alice["id"], "like me", [])
    batch = {"batch_id": "b-1", "likes": {str(tweet["id"]): 3, "999": 2}}
    first = store.call("POST", "/like-batches", batch).json()
    again = store.call("POST", "/like-batches", batch).json()
    assert first["duplicate"] is False and first["missing"] == [999]
    assert again["duplicate"] is True
    assert store.request("GET", f"/tweets/{tweet['id']}").json()["likes"] == 3


@pytest.mark.parametrize("method,path,payload,status", [
    ("POST", "/accounts", {"username": 5, "password_hash": "h"}, 400),
    ("POST", "/tweets", {"author_id": "1", "text": "x"}, 400),
    ("POST", "/tweets", {"author_id": 999, "text": "x"}, 404),
    ("POST", "/tweets", {"author_id": 1, "text": "x", "hashtags": [1]}, 400),
    ("POST", "/like-batches", {"batch_id": "b", "likes": {"x": 1}}, 400),
    ("POST", "/like-batches", {"batch_id": "b", "likes": {"1": True}}, 400),
    ("POST", "/like-batches", {"batch_id": "", "likes": {}}, 400),
    ("GET", "/tweets?limit=0", None, 400),
    ("GET", "/tweets?limit=101", None, 400),
    ("GET", "/tweets?cursor=abc", None, 400),
    ("GET", "/tweets/abc", None, 404),
    ("PATCH", "/tweets/1", None, 405),
])
def test_bad_requests_are_refused_clearly(store: Upstream, method: str, path: str,
                                          payload: Any, status: int) -> None:
    answer = store.call(method, path, payload)
    assert answer.status == status
    assert set(answer.json()["error"]) == {"code", "message"}


def test_malformed_json_is_400(store: Upstream) -> None:
    answer = store.request("POST", "/accounts", b"{not json")
    assert answer.status == 400 and error_code(answer) == "malformed_json"


def test_stats_count_queries(store: Upstream) -> None:
    before = store.request("GET", "/stats").json()
    store.request("GET", "/tweets")
    after = store.request("GET", "/stats").json()
    assert after["queries"] > before["queries"]
    assert after["requests"] == before["requests"] + 1  # reading /stats is not counted
