"""Numbers from outside, in the API and the store: every one is read by one helper, so an
absurdly long one is a 400 (or a 404 for an id), never a 500, and an id has one spelling."""
from __future__ import annotations

import pytest

from tests.api.conftest import World
from tests.api.helpers import Client, error_code, join, post_tweet

HUGE = "9" * 5000  # past int()'s 4,300-digit limit
BEYOND_64_BITS = str(2 ** 63)


@pytest.mark.parametrize("number", [HUGE, BEYOND_64_BITS, "0", "0304", "%EF%BC%93"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "POST"])
def test_a_tweet_id_that_is_not_one_spelled_the_one_way_is_a_404_in_every_method(
        world: World, method: str, number: str) -> None:
    target = f"/tweets/{number}/like" if method == "POST" else f"/tweets/{number}"
    for service in (world.api, world.store):
        if service is world.store and method == "POST":
            continue  # the store takes likes in batches
        answer = service.fetch(method, target, {"text": "x", "hashtags": []}
                               if method == "PUT" else None, world.alice.auth)
        assert answer.status == 404, (service.url, method, number, answer.body[:200])


@pytest.mark.parametrize("query", [f"limit={HUGE}", f"cursor={HUGE}", "limit=0", "limit=101",
                                   "cursor=0", "limit=-1", "cursor=1e3", "limit=%EF%BC%92"])
@pytest.mark.parametrize("path", ["/tweets", "/accounts", "/tweets/search?q=fox",
                                  "/hashtags/cats/tweets", "/accounts/alice/tweets"])
def test_a_bad_limit_or_cursor_is_a_400_in_the_api_and_the_store(
        world: World, path: str, query: str) -> None:
    target = f"{path}{'&' if '?' in path else '?'}{query}"
    for service in (world.api, world.store):
        answer = service.get(target)
        assert answer.status == 400, (service.url, target, answer.body[:200])
        assert error_code(answer) in ("invalid_limit", "invalid_cursor")


@pytest.mark.parametrize("query", [f"after={HUGE}", f"limit={HUGE}", "after=-1", "limit=0"])
def test_a_bad_logs_page_is_a_400(world: World, query: str) -> None:
    answer = world.api.get(f"/logs?{query}")
    assert (answer.status, error_code(answer)) == (400, "invalid_query")


def test_the_change_feed_refuses_a_huge_sequence_number(world: World) -> None:
    for service in (world.api, world.store):
        assert service.get(f"/_changes?after={HUGE}").status == 400


def test_a_token_with_a_huge_account_id_is_a_401(world: World) -> None:
    answer = world.api.fetch("POST", "/tweets", {"text": "hi"},
                             {"authorization": f"Bearer {HUGE}.{HUGE}.sig"})
    assert answer.status == 401


def test_deleting_tweet_0304_deletes_nothing_and_leaves_tweet_304s_cache_entry_true(
        api: Client) -> None:
    ada = join(api, "ada")
    tweet = post_tweet(api, ada, "hello")["id"]
    padded = f"/tweets/0{tweet}"
    assert api.fetch("DELETE", padded, headers=ada.auth).status == 404
    assert api.get(f"/tweets/{tweet}").status == 200


def test_the_store_has_no_magic_author_id(store_client: Client) -> None:
    store = store_client
    owner = store.fetch("POST", "/accounts", {"username": "owner", "password_hash": "h"}).json()
    tweet = store.fetch("POST", "/tweets", {"author_id": owner["id"], "text": "mine",
                                            "hashtags": []}).json()["id"]
    edit = store.fetch("PUT", f"/tweets/{tweet}",
                       {"text": "not yours", "hashtags": [], "author_id": 0})
    assert edit.status == 403
    assert store.fetch("DELETE", f"/tweets/{tweet}?author_id=0").status == 403
    assert store.fetch("DELETE", f"/tweets/{tweet}?author_id=").status == 400
    assert store.get(f"/tweets/{tweet}").json()["text"] == "mine"
