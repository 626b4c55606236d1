"""Service tests of the public API, tweets: posting (the text rules, the token it needs,
until when a token works), reading the timeline a page at a time, editing and deleting (only
by the author, with a valid token), and the ids a deleted tweet leaves behind."""
from __future__ import annotations

from typing import Any

import pytest

from api import auth
from api.app import Config
from tests.api.conftest import World
from tests.api.helpers import (Client, User, bearer, delete_tweet, edit_tweet, error_code, log_in,
                               page_through, post_tweet, read_tweet, texts, timeline)
from tests.fakes import FakeClock

TOKEN_TTL = Config().token_ttl


# --- posting -----------------------------------------------------------------------------------

def test_posting_makes_a_tweet_with_its_hashtags(api: Client, alice: User) -> None:
    tweet = post_tweet(api, alice, "  Hello #World and #world, #Café #日本語 #WORLD #x_1!  \n")
    assert tweet["text"] == "Hello #World and #world, #Café #日本語 #WORLD #x_1!"
    assert tweet["hashtags"] == ["world", "café", "日本語", "x_1"]
    assert tweet["author"] == "alice" and tweet["likes"] == 0 and tweet["edited_at"] is None
    assert tweet["created_at"].endswith("Z")
    assert set(tweet) == {"id", "author", "text", "hashtags", "likes", "created_at", "edited_at"}
    assert read_tweet(api, tweet["id"]) == tweet
    assert api.get_json("/accounts/alice")["tweet_count"] == 1


def test_280_emoji_are_accepted_and_281_characters_refused(api: Client, alice: User) -> None:
    tweet = post_tweet(api, alice, "😀" * 280)
    assert read_tweet(api, tweet["id"])["text"] == "😀" * 280
    assert post_tweet(api, alice, " " + "a" * 280 + " ")["text"] == "a" * 280
    for text in ["a" * 281, "😀" * 281, "é" * 281]:
        answer = api.fetch("POST", "/tweets", {"text": text}, alice.auth)
        assert answer.status == 400 and error_code(answer) == "invalid_text"


@pytest.mark.parametrize("payload, code", [
    ({"text": ""}, "invalid_text"), ({"text": "   "}, "invalid_text"),
    ({"text": "\n\t \r\n"}, "invalid_text"), ({"text": "bell\x07"}, "invalid_text"),
    ({}, "invalid_field"), ({"text": None}, "invalid_field"), ({"text": 42}, "invalid_field"),
    ({"text": ["hello"]}, "invalid_field"), ({"body": "hello"}, "invalid_field"),
])
def test_a_tweet_without_usable_text_is_a_400(world: World, payload: dict[str, Any],
                                              code: str) -> None:
    before = timeline(world.api)
    answer = world.api.fetch("POST", "/tweets", payload, world.alice.auth)
    assert answer.status == 400 and error_code(answer) == code
    assert timeline(world.api) == before


def forged_token(alice: User) -> str:
    """A well-formed token signed with a key that is not the API's."""
    account = alice.token.split(".")[0]
    return auth.Tokens(b"not the key", 1.0, lambda: 0.0).issue(int(account), 0)


def tampered_token(alice: User, bob: User) -> str:
    """Alice's signature on Bob's account id."""
    _, generation, session, expiry, signature = alice.token.split(".")
    return f"{bob.account['id']}.{generation}.{session}.{expiry}.{signature}"


@pytest.mark.parametrize("kind", ["missing", "empty", "not bearer", "no token", "garbage",
                                  "two parts", "forged", "tampered"])
def test_posting_without_a_valid_token_is_a_401(world: World, kind: str) -> None:
    api, alice, bob = world.api, world.alice, world.bob
    before = timeline(api)
    headers = {
        "missing": {}, "empty": {"authorization": ""},
        "not bearer": {"authorization": f"Basic {alice.token}"},
        "no token": {"authorization": "Bearer"}, "garbage": bearer("garbage"),
        "two parts": bearer(alice.token.rsplit(".", 1)[0]),
        "forged": bearer(forged_token(alice)), "tampered": bearer(tampered_token(alice, bob)),
    }[kind]
    answer = api.fetch("POST", "/tweets", {"text": "let me in"}, headers)
    assert answer.status == 401 and error_code(answer) == "unauthorized"
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert timeline(api) == before


def test_a_token_works_until_it_expires(api: Client, clock: FakeClock, alice: User) -> None:
    clock.advance(TOKEN_TTL - 1)
    post_tweet(api, alice, "just in time")
    clock.advance(1)
    assert api.fetch("POST", "/tweets", {"text": "too late"}, alice.auth).status == 401
    post_tweet(api, log_in(api, "alice"), "logged in again")


def test_the_token_is_checked_before_the_body(world: World) -> None:
    answer = world.api.request("POST", "/tweets", b"{not json")
    assert answer.status == 401


# --- reading tweets ----------------------------------------------------------------------------

@pytest.mark.parametrize("count", [6, 7])
def test_the_timeline_pages_newest_first_without_overlap_or_gaps(api: Client, alice: User,
                                                                 bob: User, count: int) -> None:
    posted = [post_tweet(api, (alice, bob)[n % 2], f"tweet {n}")["id"] for n in range(count)]
    pages = page_through(api, "/tweets", "tweets", limit=3)
    assert [len(page) for page in pages] == [3, 3] + ([1] if count == 7 else [])
    assert [t["id"] for page in pages for t in page] == posted[::-1]


def test_the_timeline_defaults_to_20(api: Client, alice: User) -> None:
    for n in range(21):
        post_tweet(api, alice, f"tweet {n}")
    page = api.get_json("/tweets")
    assert len(page["tweets"]) == 20 and page["next"] is not None
    assert texts(page)[0] == "tweet 20"


def test_a_new_tweet_on_top_does_not_shift_the_next_page(api: Client, alice: User) -> None:
    for n in range(4):
        post_tweet(api, alice, f"tweet {n}")
    first = api.get_json("/tweets?limit=2")
    post_tweet(api, alice, "newer")
    second = api.get_json(f"/tweets?limit=2&cursor={first['next']}")
    assert texts(first) + texts(second) == ["tweet 3", "tweet 2", "tweet 1", "tweet 0"]


@pytest.mark.parametrize("path", ["/tweets/999", "/tweets/0", "/tweets/abc", "/tweets/-1",
                                  "/tweets/1.5", "/tweets/9223372036854775807",
                                  "/tweets/9223372036854775808", "/tweets/" + "9" * 40,
                                  "/tweets/1x", "/tweets/%31%30%30"])
def test_an_unknown_tweet_is_a_404(world: World, path: str) -> None:
    answer = world.api.get(path)
    assert answer.status == 404 and error_code(answer) == "not_found"


# --- editing and deleting ----------------------------------------------------------------------

def test_editing_changes_the_text_and_hashtags_and_sets_edited_at(api: Client,
                                                                  alice: User) -> None:
    tweet = post_tweet(api, alice, "learning #Python and #sql")
    edited = edit_tweet(api, alice, tweet["id"], "  now #Rust and #python  ")
    assert edited["text"] == "now #Rust and #python"
    assert edited["hashtags"] == ["rust", "python"]
    assert edited["edited_at"] is not None and edited["edited_at"] >= tweet["created_at"]
    assert {k: edited[k] for k in ("id", "author", "created_at")} == \
        {k: tweet[k] for k in ("id", "author", "created_at")}
    assert read_tweet(api, tweet["id"]) == edited


def test_only_the_author_may_edit_or_delete(api: Client, alice: User, bob: User) -> None:
    tweet = post_tweet(api, alice, "mine")
    answer = api.fetch("PUT", f"/tweets/{tweet['id']}", {"text": "yours now"}, bob.auth)
    assert answer.status == 403 and error_code(answer) == "not_author"
    answer = api.fetch("DELETE", f"/tweets/{tweet['id']}", headers=bob.auth)
    assert answer.status == 403 and error_code(answer) == "not_author"
    assert read_tweet(api, tweet["id"]) == tweet


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_changing_a_tweet_needs_a_valid_token(api: Client, clock: FakeClock, alice: User,
                                              method: str) -> None:
    tweet = post_tweet(api, alice, "mine")
    payload = {"text": "changed"} if method == "PUT" else None
    for headers in [{}, bearer("garbage"), bearer(forged_token(alice))]:
        answer = api.fetch(method, f"/tweets/{tweet['id']}", payload, headers)
        assert answer.status == 401 and error_code(answer) == "unauthorized"
    clock.advance(TOKEN_TTL)
    assert api.fetch(method, f"/tweets/{tweet['id']}", payload, alice.auth).status == 401
    assert read_tweet(api, tweet["id"]) == tweet


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize("tweet_id", ["999", "0", "9" * 30])
def test_changing_an_unknown_tweet_is_a_404(world: World, method: str, tweet_id: str) -> None:
    payload = {"text": "changed"} if method == "PUT" else None
    answer = world.api.fetch(method, f"/tweets/{tweet_id}", payload, world.alice.auth)
    assert answer.status == 404 and error_code(answer) == "not_found"


def test_an_edit_with_bad_text_is_a_400(api: Client, alice: User) -> None:
    tweet = post_tweet(api, alice, "mine")
    for payload in [{"text": "  "}, {"text": "a" * 281}, {}, {"text": 1}]:
        assert api.fetch("PUT", f"/tweets/{tweet['id']}", payload, alice.auth).status == 400
    assert api.request("PUT", f"/tweets/{tweet['id']}", b"{", alice.auth).status == 400
    assert read_tweet(api, tweet["id"]) == tweet


def test_deleting_a_tweet_removes_it_everywhere(api: Client, alice: User) -> None:
    keep = post_tweet(api, alice, "keep #stay")
    gone = post_tweet(api, alice, "remove me #gone")
    delete_tweet(api, alice, gone["id"])
    assert api.get(f"/tweets/{gone['id']}").status == 404
    assert [t["id"] for t in api.get_json("/tweets")["tweets"]] == [keep["id"]]
    assert [t["id"] for t in api.get_json("/accounts/alice/tweets")["tweets"]] == [keep["id"]]
    assert api.get_json("/tweets/search?q=remove")["tweets"] == []
    assert api.get_json("/hashtags/gone/tweets")["tweets"] == []
    assert api.get_json("/accounts/alice")["tweet_count"] == 1
    again = api.fetch("DELETE", f"/tweets/{gone['id']}", headers=alice.auth)
    assert again.status == 404
    assert api.fetch("PUT", f"/tweets/{gone['id']}", {"text": "back"}, alice.auth).status == 404


def test_a_delete_answers_the_tweet_when_asked_to(api: Client, alice: User) -> None:
    tweet = post_tweet(api, alice, "say it #once")
    api.fetch("POST", f"/tweets/{tweet['id']}/like")
    prefer = {**alice.auth, "prefer": "return=representation"}
    answer = api.fetch("DELETE", f"/tweets/{tweet['id']}", headers=prefer)
    assert answer.status == 200
    assert answer.json() == {**tweet, "likes": 1}  # pending likes counted, as on a read
    assert api.get(f"/tweets/{tweet['id']}").status == 404


# --- bugs --------------------------------------------------------------------------------------

def test_a_token_with_a_non_ascii_byte_is_a_401(world: World) -> None:
    answer = world.api.fetch("POST", "/tweets", {"text": "hi"},
                             {"authorization": "Bearer 1.2.\xe9"})
    assert answer.status == 401


def test_a_deleted_tweets_id_is_never_given_to_a_new_tweet(api: Client, alice: User) -> None:
    gone = post_tweet(api, alice, "deleted soon")
    delete_tweet(api, alice, gone["id"])
    assert post_tweet(api, alice, "new")["id"] != gone["id"]
