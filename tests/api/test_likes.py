"""Service tests of the public API, likes: 202 with the running count, batched and sent
straight to the store alike; no token needed; an unknown or deleted tweet is a 404; a new
tweet starts with none."""
from __future__ import annotations

import pytest

from httpkit import Server
from tests.api.conftest import StartApi
from tests.api.helpers import (Client, User, delete_tweet, error_code, join, like, post_tweet,
                               read_tweet)


# --- likes -------------------------------------------------------------------------------------

@pytest.fixture(params=[True, False], ids=["batched", "direct"])
def liking_api(request: pytest.FixtureRequest, start_api: StartApi, store: Server) -> Client:
    """The API with the like batcher (default) and with LIKE_BATCHING=off."""
    return start_api(store.url, like_batching=request.param)


def test_liking_answers_202_with_the_running_count(liking_api: Client) -> None:
    api = liking_api
    alice = join(api, "alice")
    tweet = post_tweet(api, alice, "like me")
    other = post_tweet(api, alice, "not me")
    assert [like(api, tweet["id"]) for _ in range(3)] == [1, 2, 3]
    assert read_tweet(api, tweet["id"])["likes"] == 3
    assert read_tweet(api, other["id"])["likes"] == 0
    assert api.get_json("/tweets")["tweets"][1]["likes"] == 3
    stats = api.get_json("/stats")
    assert stats["likes_received"] == 3


@pytest.mark.parametrize("path", ["/tweets/999/like", "/tweets/0/like",
                                  f"/tweets/{'9' * 30}/like"])
def test_liking_an_unknown_tweet_is_a_404(liking_api: Client, path: str) -> None:
    answer = liking_api.fetch("POST", path)
    assert answer.status == 404 and error_code(answer) == "not_found"


def test_liking_a_deleted_tweet_is_a_404(liking_api: Client) -> None:
    api = liking_api
    alice = join(api, "alice")
    tweet = post_tweet(api, alice, "soon gone")
    like(api, tweet["id"])
    delete_tweet(api, alice, tweet["id"])
    assert api.fetch("POST", f"/tweets/{tweet['id']}/like").status == 404


def test_liking_needs_no_token_and_ignores_a_body(api: Client, alice: User) -> None:
    tweet = post_tweet(api, alice, "like me")
    answer = api.request("POST", f"/tweets/{tweet['id']}/like", b"whatever")
    assert answer.status == 202 and answer.json() == {"id": tweet["id"], "likes": 1}


# --- bugs --------------------------------------------------------------------------------------

def test_a_new_tweet_starts_with_no_likes(api: Client, alice: User) -> None:
    gone = post_tweet(api, alice, "liked, then deleted")
    like(api, gone["id"])
    like(api, gone["id"])
    delete_tweet(api, alice, gone["id"])
    fresh = post_tweet(api, alice, "brand new")
    assert read_tweet(api, fresh["id"])["likes"] == 0
    assert like(api, fresh["id"]) == 1
