"""Idempotency-Key on the API's four POSTs: a retry gets the first answer and changes nothing
twice, across a restart of the API too; the same key for another request is a 422."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api.idempotency import Keyed, Recent, Replayed
from httpkit import HTTPError, Server, UpstreamResponse
from tests.api.conftest import StartApi, api_until_stopped
from tests.api.helpers import PASSWORD, Client, User, error_code, join, read_tweet
from tests.fakes import FakeClock


def keyed(key: str) -> dict[str, str]:
    return {"idempotency-key": key}


def post(api: Client, user: User, text: str, key: str) -> UpstreamResponse:
    return api.fetch("POST", "/tweets", {"text": text}, {**user.auth, **keyed(key)})


def like(api: Client, tweet_id: int, key: str) -> UpstreamResponse:
    return api.fetch("POST", f"/tweets/{tweet_id}/like", headers=keyed(key))


def timeline_ids(api: Client) -> list[int]:
    return [tweet["id"] for tweet in api.get_json("/tweets", fresh=True)["tweets"]]


def test_a_tweet_posted_again_with_its_key_is_the_first_answer_and_one_tweet(
        api: Client) -> None:
    ada = join(api, "ada")
    first = post(api, ada, "hello", "k-1")
    again = post(api, ada, "hello", "k-1")
    assert (first.status, again.status) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert "changed-keys" not in again.headers  # nothing changed, nothing for caches to drop
    assert timeline_ids(api) == [first.json()["id"]]


def test_a_key_used_for_other_text_is_a_422_and_other_authors_keys_are_their_own(
        api: Client) -> None:
    ada, bob = join(api, "ada"), join(api, "bob")
    post(api, ada, "hello", "k-1")
    other = post(api, ada, "something else", "k-1")
    assert (other.status, error_code(other)) == (422, "idempotency_key_reused")
    assert post(api, bob, "hello", "k-1").status == 201  # bob's k-1 is not ada's
    assert len(timeline_ids(api)) == 2


@pytest.mark.parametrize("value", ["", " ", "a b", "é", "x" * 256, '"unterminated', '"a"b"'])
def test_a_malformed_key_is_a_400_that_says_what_a_key_is(api: Client, value: str) -> None:
    ada = join(api, "ada")
    answer = api.request("POST", "/tweets", b'{"text": "hi"}',
                         {**ada.auth, "content-type": "application/json",
                          "idempotency-key": value})
    assert (answer.status, error_code(answer)) == (400, "invalid_idempotency_key")
    assert timeline_ids(api) == []


def test_a_key_may_be_a_structured_field_string_or_a_bare_token(api: Client) -> None:
    ada = join(api, "ada")
    first = post(api, ada, "hello", '"k \\"1\\""')  # the sf-string k "1"
    assert post(api, ada, "hello", '"k \\"1\\""').headers["idempotent-replayed"] == "true"
    assert post(api, ada, "hello", "x" * 255).json()["id"] != first.json()["id"]


def test_a_sign_up_retried_with_its_key_is_answered_again_and_without_it_is_a_409(
        api: Client) -> None:
    body = {"username": "ada", "password": PASSWORD, "display_name": "Ada"}
    first = api.fetch("POST", "/accounts", body, keyed("s-1"))
    again = api.fetch("POST", "/accounts", body, keyed("s-1"))
    assert (first.status, again.status) == (201, 201)
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert api.fetch("POST", "/accounts", body).status == 409
    other = api.fetch("POST", "/accounts", {**body, "username": "bob"}, keyed("s-1"))
    assert (other.status, error_code(other)) == (422, "idempotency_key_reused")
    assert [a["username"] for a in api.get_json("/accounts", fresh=True)["accounts"]] == ["ada"]


def test_a_refused_sign_up_records_nothing_so_its_key_works_once_the_input_is_right(
        api: Client) -> None:
    short = api.fetch("POST", "/accounts", {"username": "ada", "password": "x"}, keyed("s-1"))
    assert short.status == 400
    right = api.fetch("POST", "/accounts", {"username": "ada", "password": PASSWORD},
                      keyed("s-1"))
    assert right.status == 201 and "idempotent-replayed" not in right.headers


def test_a_log_in_retried_with_its_key_gets_the_same_token(api: Client) -> None:
    join(api, "ada")
    body = {"username": "ada", "password": PASSWORD}
    first = api.fetch("POST", "/sessions", body, keyed("l-1"))
    again = api.fetch("POST", "/sessions", body, keyed("l-1"))
    assert again.json()["token"] == first.json()["token"]
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["cache-control"] == "no-store"
    wrong = api.fetch("POST", "/sessions", {**body, "password": "not it at all"}, keyed("l-1"))
    assert (wrong.status, error_code(wrong)) == (422, "idempotency_key_reused")


def test_a_like_retried_with_its_key_counts_once_and_answers_its_first_count(
        api: Client) -> None:
    ada = join(api, "ada")
    tweet = post(api, ada, "hello", "k-1").json()["id"]
    first = like(api, tweet, "like-1")
    assert like(api, tweet, "like-2").json()["likes"] == 2
    again = like(api, tweet, "like-1")
    assert first.json() == {"id": tweet, "likes": 1}
    assert (again.status, again.json()) == (202, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    assert read_tweet(api, tweet, fresh=True)["likes"] == 2
    other = post(api, ada, "another", "k-2").json()["id"]
    reused = like(api, other, "like-1")
    assert (reused.status, error_code(reused)) == (422, "idempotency_key_reused")


def test_a_like_key_counts_for_its_window_only(api: Client, clock: FakeClock) -> None:
    ada = join(api, "ada")
    tweet = post(api, ada, "hello", "k-1").json()["id"]
    like(api, tweet, "like-1")
    clock.advance(86_399)
    assert like(api, tweet, "like-1").headers.get("idempotent-replayed") == "true"
    clock.advance(2)
    assert like(api, tweet, "like-1").json()["likes"] == 2


def test_unbatched_likes_send_a_keyed_like_as_one_batch_the_store_applies_once(
        start_api: StartApi, store: Server) -> None:
    api = start_api(store.url, like_batching=False)
    ada = join(api, "ada")
    tweet = post(api, ada, "hello", "k-1").json()["id"]
    assert like(api, tweet, "like-1").json()["likes"] == 1
    again = like(api, tweet, "like-1")
    assert again.json()["likes"] == 1 and again.headers["idempotent-replayed"] == "true"
    assert read_tweet(api, tweet, fresh=True)["likes"] == 1


def test_tweets_and_likes_keep_their_keys_across_a_restart_of_the_api(
        tmp_path: Path, store: Server, clock: FakeClock) -> None:
    def run(step: Any) -> Any:  # a stop flushes the likes; a kill is in test_faults
        with api_until_stopped(store.url, str(tmp_path / "api"), clock) as api:
            return step(api)

    def first(api: Client) -> tuple[dict[str, Any], int]:
        ada = join(api, "ada")
        tweet = post(api, ada, "hello", "k-1").json()
        assert like(api, tweet["id"], "like-1").status == 202
        return ada.auth, tweet

    auth, tweet = run(first)

    def again(api: Client) -> None:
        answer = api.fetch("POST", "/tweets", {"text": "hello"}, {**auth, **keyed("k-1")})
        assert answer.json() == tweet and answer.headers["idempotent-replayed"] == "true"
        assert like(api, tweet["id"], "like-1").headers["idempotent-replayed"] == "true"
        assert read_tweet(api, tweet["id"], fresh=True)["likes"] == 1
        assert timeline_ids(api) == [tweet["id"]]

    run(again)


def test_recent_answers_expire_with_their_window_and_are_bounded_in_number() -> None:
    clock = FakeClock()
    recent = Recent(clock, most=2)
    a, b, c = (Keyed("s", key, "f", window=10.0) for key in "abc")
    recent.keep(a, 1)
    with pytest.raises(Replayed) as replay:
        recent.replay(a)
    assert replay.value.answer == 1
    with pytest.raises(HTTPError):
        recent.replay(Keyed("s", "a", "other", window=10.0))
    recent.keep(b, 2)
    recent.keep(c, 3)  # the oldest, a, makes room
    recent.replay(a)
    clock.advance(11)
    recent.replay(b)  # out of its window
    recent.replay(None)
