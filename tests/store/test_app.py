"""Service tests of store: a real server on port 0 over a temporary DATA_DIR."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from httpkit import Upstream, UpstreamResponse
from store.app import Config, make_server
from tests.api.helpers import error_code
from tests.fakes import FeedReader
from tests.harness import start_in_thread, stop_thread


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
    answer = store.fetch("POST", "/accounts", {"username": username, "password_hash": "h",
                                               "display_name": username.title()})
    assert answer.status == 201, answer.body
    account: dict[str, Any] = answer.json()
    return account


def post_tweet(store: Upstream, author_id: int, text: str, tags: list[str]) -> dict[str, Any]:
    answer = store.fetch("POST", "/tweets", {"author_id": author_id, "text": text,
                                             "hashtags": tags})
    assert answer.status == 201, answer.body
    tweet: dict[str, Any] = answer.json()
    return tweet


def test_health_and_stats_are_never_cached(store: Upstream) -> None:
    for path in ("/healthz", "/stats"):
        answer = store.request("GET", path)
        assert answer.status == 200
        assert answer.headers["cache-control"] == "no-store"
    assert store.request("GET", "/healthz").json() == {"status": "ok"}


def test_account_round_trip_and_case_insensitive_conflict(store: Upstream) -> None:
    alice = sign_up(store, "Alice")
    assert store.request("GET", "/accounts/alice").json() == alice
    taken = store.fetch("POST", "/accounts", {"username": "ALICE", "password_hash": "h"})
    assert taken.status == 409 and error_code(taken) == "username_taken"
    assert store.request("GET", "/accounts/nobody").status == 404


def test_credentials_are_separate_and_not_cacheable(store: Upstream) -> None:
    sign_up(store, "alice")
    answer = store.request("GET", "/accounts/alice/credentials")
    assert answer.json()["password_hash"] == "h"
    assert answer.headers["cache-control"] == "no-store"
    assert "password_hash" not in store.request("GET", "/accounts/alice").json()
    assert b"password_hash" not in store.request("GET", "/accounts").body


def test_passwords_and_token_generations_are_never_cached_and_publish_nothing(
        store: Upstream) -> None:
    alice = sign_up(store, "alice")
    feed = FeedReader(store)
    target = f"/token-generations/{alice['id']}"
    until = 1_800_003_600  # the fake clock + 1 hour
    answers = [store.request("GET", target),
               store.fetch("PUT", target, {"through": 0}),
               store.fetch("POST", f"{target}/ended", {"session": 9, "until": until}),
               store.fetch("POST", f"{target}/ended", {"session": 4, "until": until}),
               store.request("GET", target),
               store.fetch("PUT", "/accounts/ALICE/password", {"password_hash": "h2"}),
               store.request("GET", "/accounts/alice/credentials"),
               store.request("GET", target)]
    assert [answer.json().get("generation") for answer in answers] == [0, 1, 1, 1, 1, 2, 2, 2]
    assert [answer.json().get("ended") for answer in answers] == [
        [], [], [9], [4, 9], [4, 9], None, None, []]
    assert answers[4].json() == {"account_id": alice["id"], "username": "alice",
                                 "generation": 1, "ended": [4, 9]}
    assert answers[5].json() == {"id": alice["id"], "username": "alice", "generation": 2}
    assert answers[6].json()["password_hash"] == "h2"
    for answer in answers:
        assert answer.status == 200 and answer.headers["cache-control"] == "no-store"
        assert "changed-keys" not in answer.headers and "surrogate-key" not in answer.headers
    assert feed.keys() == []


@pytest.mark.parametrize("method, target, payload, status", [
    ("GET", "/token-generations/999", None, 404),
    ("GET", "/token-generations/0", None, 404),
    ("GET", "/token-generations/" + "9" * 30, None, 404),
    ("PUT", "/token-generations/999", {"through": 0}, 404),
    ("PUT", "/token-generations/1", {"through": -1}, 400),
    ("PUT", "/token-generations/1", {"through": "0"}, 400),
    ("PUT", "/token-generations/1", {"through": 2 ** 63}, 400),
    ("POST", "/token-generations/999/ended", {"session": 1, "until": 1}, 404),
    ("POST", "/token-generations/1/ended", {"session": 0, "until": 1}, 400),
    ("POST", "/token-generations/1/ended", {"session": -1, "until": 1}, 400),
    ("POST", "/token-generations/1/ended", {"session": 1, "until": -1}, 400),
    ("POST", "/token-generations/1/ended", {"session": 1}, 400),
    ("POST", "/token-generations/1/ended", {"until": 1}, 400),
    ("POST", "/token-generations/1/ended", {"session": "1", "until": 1}, 400),
    ("POST", "/token-generations/1/ended", {"session": True, "until": 1}, 400),
    ("POST", "/token-generations/1/ended", {"session": 2 ** 63, "until": 1}, 400),
    ("POST", "/token-generations/1/ended", {"session": 1, "until": 2 ** 63}, 400),
    ("GET", "/token-generations/1/ended", None, 405),
    ("PUT", "/accounts/nobody/password", {"password_hash": "h"}, 404),
    ("PUT", "/accounts/alice/password", {}, 400),
])
def test_bad_generation_and_password_requests(store: Upstream, method: str, target: str,
                                              payload: Any, status: int) -> None:
    sign_up(store, "alice")
    answer = store.fetch(method, target, payload)
    assert answer.status == status, answer.body


def test_tweet_lifecycle_with_author_guard(store: Upstream) -> None:
    alice, bob = sign_up(store, "alice"), sign_up(store, "bob")
    tweet = post_tweet(store, alice["id"], "hello #World", ["world"])
    assert tweet["author"] == "alice" and tweet["edited_at"] is None
    path = f"/tweets/{tweet['id']}"
    refused = store.fetch("PUT", path, {"text": "x", "hashtags": [], "author_id": bob["id"]})
    assert refused.status == 403 and error_code(refused) == "not_author"
    edited = store.fetch("PUT", path, {"text": "bye #moon", "hashtags": ["moon"],
                                       "author_id": alice["id"]}).json()
    assert edited["text"] == "bye #moon" and edited["edited_at"] is not None
    assert store.request("DELETE", f"{path}?author_id={bob['id']}").status == 403
    deleted = store.request("DELETE", f"{path}?author_id={alice['id']}")
    assert deleted.status == 200 and deleted.json()["text"] == "bye #moon"
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
    first = store.fetch("POST", "/like-batches", batch).json()
    again = store.fetch("POST", "/like-batches", batch).json()
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
    answer = store.fetch(method, path, payload)
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


# --- surrogate keys and the change feed --------------------------------------------------------

def surrogate_keys(answer: UpstreamResponse) -> list[str]:
    return answer.headers.get("surrogate-key", "").split()


def changed_keys(answer: UpstreamResponse) -> list[str]:
    assert "changed-keys" in answer.headers, answer.headers
    return answer.headers["changed-keys"].split()


@pytest.fixture
def cast(store: Upstream) -> dict[str, Any]:
    """alice (#cats, #dogs) and bob (#cats): three tweets, ids 1-3."""
    alice, bob = sign_up(store, "alice"), sign_up(store, "bob")
    tweets = [post_tweet(store, alice["id"], "hello #cats", ["cats"]),
              post_tweet(store, bob["id"], "hello #cats from bob", ["cats"]),
              post_tweet(store, alice["id"], "walk #dogs", ["dogs"])]
    assert [tweet["id"] for tweet in tweets] == [1, 2, 3]
    return {"alice": alice, "bob": bob, "tweets": tweets}


@pytest.mark.parametrize("target,keys", [
    ("/tweets", ["timeline", "tweet/3", "tweet/2", "tweet/1"]),
    ("/tweets?limit=1", ["timeline", "tweet/3"]),
    ("/tweets?limit=2&cursor=2", ["timeline", "tweet/1"]),
    ("/tweets/2", ["tweet/2"]),
    ("/tweets/search?q=hello", ["search", "tweet/2", "tweet/1"]),
    ("/tweets/search?q=nothing", ["search"]),
    ("/hashtags/cats/tweets", ["tag/cats", "tweet/2", "tweet/1"]),
    ("/hashtags/CATS/tweets", ["tag/cats", "tweet/2", "tweet/1"]),
    ("/hashtags/none/tweets", ["tag/none"]),
    ("/accounts/alice/tweets", ["account/alice", "tweet/3", "tweet/1"]),
    ("/accounts/ALICE/tweets", ["account/alice", "tweet/3", "tweet/1"]),
    ("/accounts/alice", ["account/alice"]),
    ("/accounts/Alice", ["account/alice"]),
    ("/accounts", ["accounts", "account/bob", "account/alice"]),
    ("/accounts/search?q=b", ["accounts", "account/bob"]),
    ("/hashtags", ["hashtags"]),
    ("/hashtags?q=d", ["hashtags"]),
])
def test_every_cacheable_read_names_what_it_shows(store: Upstream, cast: dict[str, Any],
                                                  target: str, keys: list[str]) -> None:
    answer = store.request("GET", target)
    assert answer.status == 200
    assert surrogate_keys(answer) == keys
    assert "cache-control" not in answer.headers


@pytest.mark.parametrize("target", ["/accounts/alice/credentials", "/stats", "/healthz",
                                    "/_changes", "/tweets/99", "/accounts/nobody"])
def test_answers_never_to_be_cached_name_nothing(store: Upstream, cast: dict[str, Any],
                                                 target: str) -> None:
    assert surrogate_keys(store.request("GET", target)) == []


def test_a_sign_up_names_the_account_lists(store: Upstream) -> None:
    feed = FeedReader(store)
    answer = store.fetch("POST", "/accounts", {"username": "Carol", "password_hash": "h"})
    assert answer.status == 201
    assert changed_keys(answer) == ["accounts"]
    assert feed.keys() == ["accounts"]


def test_a_post_names_every_list_it_heads_and_its_author(store: Upstream) -> None:
    alice = sign_up(store, "Alice")
    feed = FeedReader(store)
    answer = store.fetch("POST", "/tweets", {"author_id": alice["id"], "text": "hi #Cats #dogs",
                                             "hashtags": ["cats", "dogs"]})
    assert answer.status == 201
    expected = ["timeline", "search", "hashtags", "account/alice", "tag/cats", "tag/dogs"]
    assert changed_keys(answer) == expected
    assert feed.keys() == expected


def test_an_edit_names_the_tweet_and_its_old_and_new_tags(
        store: Upstream, cast: dict[str, Any]) -> None:
    feed = FeedReader(store)
    answer = store.fetch("PUT", "/tweets/1", {"text": "now #dogs and #birds",
                                              "hashtags": ["dogs", "birds"],
                                              "author_id": cast["alice"]["id"]})
    assert answer.status == 200
    expected = ["tweet/1", "search", "hashtags", "tag/cats", "tag/dogs", "tag/birds"]
    assert changed_keys(answer) == expected
    assert feed.keys() == expected


def test_a_delete_names_the_tweet_its_author_and_its_tags(
        store: Upstream, cast: dict[str, Any]) -> None:
    feed = FeedReader(store)
    answer = store.request("DELETE", f"/tweets/3?author_id={cast['alice']['id']}")
    assert answer.status == 200
    expected = ["tweet/3", "timeline", "search", "hashtags", "account/alice", "tag/dogs"]
    assert changed_keys(answer) == expected
    assert feed.keys() == expected


def test_a_like_batch_names_only_the_tweets_it_changed(
        store: Upstream, cast: dict[str, Any]) -> None:
    feed = FeedReader(store)
    batch = {"batch_id": "b-keys", "likes": {"1": 2, "3": 1, "999": 4}}
    answer = store.fetch("POST", "/like-batches", batch)
    assert answer.status == 200
    assert changed_keys(answer) == ["tweet/1", "tweet/3"]
    assert feed.keys() == ["tweet/1", "tweet/3"]
    again = store.fetch("POST", "/like-batches", batch)  # a resend changes nothing
    assert again.json()["duplicate"] is True
    assert changed_keys(again) == []
    assert feed.keys() == []


@pytest.mark.parametrize("method,path,payload", [
    ("POST", "/accounts", {"username": "ALICE", "password_hash": "h"}),  # taken
    ("PUT", "/tweets/1", {"text": "x", "hashtags": [], "author_id": 2}),  # bob's is 2
    ("DELETE", "/tweets/1?author_id=2", None),
    ("DELETE", "/tweets/99", None),
    ("POST", "/tweets", {"author_id": 999, "text": "x"}),
    ("POST", "/like-batches", {"batch_id": "b-none", "likes": {"999": 1}}),
])
def test_a_refused_or_empty_write_publishes_nothing(store: Upstream, cast: dict[str, Any],
                                                    method: str, path: str,
                                                    payload: Any) -> None:
    feed = FeedReader(store)
    seq = feed.seq
    answer = store.fetch(method, path, payload)
    assert answer.headers.get("changed-keys", "") == ""
    assert feed.keys() == [] and feed.seq == seq


def test_reading_the_feed_is_not_a_data_request(store: Upstream) -> None:
    first = store.request("GET", "/stats").json()
    before = store.request("GET", "/stats").json()
    own = before["queries"] - first["queries"]  # what reading /stats itself runs
    FeedReader(store).read()
    assert store.request("GET", "/_changes?after=abc").status == 400
    after = store.request("GET", "/stats").json()
    assert after["requests"] == before["requests"] == 0
    assert after["queries"] - before["queries"] == own


READS = ["/tweets", "/tweets?limit=1", "/tweets?limit=1&cursor=3", "/tweets/1", "/tweets/2",
         "/tweets/3", "/tweets/search?q=hello", "/tweets/search?q=now", "/hashtags",
         "/hashtags?q=c", "/hashtags/cats/tweets", "/hashtags/dogs/tweets",
         "/hashtags/birds/tweets", "/accounts", "/accounts/alice", "/accounts/bob",
         "/accounts/alice/tweets", "/accounts/bob/tweets", "/accounts/search?q=c",
         "/accounts/search?q=b"]


def snapshot(store: Upstream) -> dict[str, tuple[int, bytes, list[str]]]:
    snap = {}
    for target in READS:
        answer = store.request("GET", target)
        snap[target] = (answer.status, answer.body, surrogate_keys(answer))
    return snap


@pytest.mark.parametrize("write", ["sign_up", "post", "edit", "delete", "like"])
def test_every_read_a_write_made_untrue_carries_a_key_the_write_named(
        store: Upstream, cast: dict[str, Any], write: str) -> None:
    alice, bob = cast["alice"]["id"], cast["bob"]["id"]
    before = snapshot(store)
    answer = {
        "sign_up": lambda: store.fetch("POST", "/accounts", {"username": "carol",
                                                             "password_hash": "h"}),
        "post": lambda: store.fetch("POST", "/tweets", {"author_id": bob, "text": "hello #cats",
                                                        "hashtags": ["cats"]}),
        "edit": lambda: store.fetch("PUT", "/tweets/1", {"text": "now #birds",
                                                         "hashtags": ["birds"],
                                                         "author_id": alice}),
        "delete": lambda: store.request("DELETE", f"/tweets/2?author_id={bob}"),
        "like": lambda: store.fetch("POST", "/like-batches", {"batch_id": "b-o",
                                                              "likes": {"2": 1}}),
    }[write]()
    assert 200 <= answer.status < 300
    changed = set(changed_keys(answer))
    after = snapshot(store)
    untrue = [target for target in READS if after[target][:2] != before[target][:2]]
    assert untrue, "the write changed no read: the check proves nothing"
    kept_untrue = [target for target in untrue
                   if before[target][0] == 200 and not changed & set(before[target][2])]
    assert kept_untrue == [], f"a cache would keep these untrue after the {write}"


@pytest.mark.parametrize("target", ["/tweets?limit=2", "/tweets/search?q=hello&limit=1"])
def test_deleting_the_last_tweet_beyond_a_page_drops_that_page_whose_next_it_ends(
        store: Upstream, cast: dict[str, Any], target: str) -> None:
    page = store.request("GET", target)
    assert page.json()["next"] is not None and "tweet/1" not in surrogate_keys(page)
    deleted = store.request("DELETE", f"/tweets/1?author_id={cast['alice']['id']}")
    assert store.request("GET", target).json()["next"] is None  # no older page any more
    assert set(changed_keys(deleted)) & set(surrogate_keys(page)), (
        "a cached copy keeps a link to an older page that is now empty")


def keyed_post(store: Upstream, author_id: int, text: str, key: str,
               fingerprint: str) -> UpstreamResponse:
    return store.fetch("POST", "/tweets", {
        "author_id": author_id, "text": text, "hashtags": [],
        "idempotency": {"scope": f"tweets:{author_id}", "key": key,
                        "fingerprint": fingerprint, "window_s": 86400}})


def test_a_keyed_write_done_before_is_answered_again_and_changes_and_publishes_nothing(
        store: Upstream) -> None:
    alice = sign_up(store, "Alice")
    first = keyed_post(store, alice["id"], "hi", "k1", "f1")
    assert first.status == 201 and "idempotent-replayed" not in first.headers
    feed = FeedReader(store)
    again = keyed_post(store, alice["id"], "hi", "k1", "f1")
    assert (again.status, again.json()) == (201, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    assert "changed-keys" not in again.headers and feed.keys() == []
    assert len(store.fetch("GET", "/tweets").json()["tweets"]) == 1


def test_a_key_reused_for_another_write_is_a_422_and_a_bad_idempotency_field_a_400(
        store: Upstream) -> None:
    alice = sign_up(store, "Alice")
    keyed_post(store, alice["id"], "hi", "k1", "f1")
    other = keyed_post(store, alice["id"], "other", "k1", "f2")
    assert (other.status, error_code(other)) == (422, "idempotency_key_reused")
    for field in ({"scope": "s", "key": "", "fingerprint": "f", "window_s": 1},
                  {"scope": "s", "key": "k", "fingerprint": "f", "window_s": 0},
                  {"scope": "s", "key": "k"}):
        answer = store.fetch("POST", "/tweets", {"author_id": alice["id"], "text": "x",
                                                 "hashtags": [], "idempotency": field})
        assert answer.status == 400, field
