"""Service tests of the public API: a real store on port 0 (sqlite file in tmp_path) and the API
in front of it, and a real dbcache or front cache where the story needs one. Each test reads
as what a user does and asserts what they would see; token expiry runs on a fake clock."""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from api import auth
from api.app import Config
from httpkit import Request, Response, Server, json_response
from tests.api.conftest import WORLD_TWEETS, StartApi, StartCache, World, api_until_stopped
from tests.api.helpers import (PASSWORD, Client, User, bearer, delete_tweet, edit_tweet,
                               error_code, join, like, log_in, page_through, post_tweet,
                               read_tweet, sign_up, texts)
from tests.fakes import FakeClock, Lab, closed_port_address, wait_until

TOKEN_TTL = Config().token_ttl


@pytest.fixture
def alice(api: Client) -> User:
    return join(api, "alice", "Alice Liddell")


@pytest.fixture
def bob(api: Client) -> User:
    return join(api, "bob")


# --- signing up --------------------------------------------------------------------------------

def test_signing_up_makes_an_account_and_says_where_it_is(api: Client) -> None:
    account = sign_up(api, "alice", display_name="  Alice   Liddell ")
    assert account["username"] == "alice" and account["display_name"] == "Alice Liddell"
    assert account["tweet_count"] == 0 and isinstance(account["id"], int)
    assert account["created_at"].endswith("Z")
    assert set(account) == {"id", "username", "display_name", "created_at", "tweet_count"}
    assert api.get_json("/accounts/alice") == account


def test_without_a_display_name_the_username_is_shown(api: Client) -> None:
    assert sign_up(api, "bob")["display_name"] == "bob"
    assert sign_up(api, "carol", display_name="   ")["display_name"] == "carol"


def accounts(api: Client) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.get_json("/accounts?limit=100")["accounts"]
    return found


def timeline(api: Client) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.get_json("/tweets?limit=100")["tweets"]
    return found


BAD_SIGN_UPS: list[tuple[str, dict[str, Any], str]] = [
    ("username too short", {"username": "ab", "password": PASSWORD}, "invalid_username"),
    ("username too long", {"username": "a" * 31, "password": PASSWORD}, "invalid_username"),
    ("username with a dash", {"username": "al-ice", "password": PASSWORD}, "invalid_username"),
    ("username with a space", {"username": "al ice", "password": PASSWORD}, "invalid_username"),
    ("username not ASCII", {"username": "élise", "password": PASSWORD}, "invalid_username"),
    ("reserved username", {"username": "search", "password": PASSWORD}, "invalid_username"),
    ("reserved, other case", {"username": "Search", "password": PASSWORD}, "invalid_username"),
    ("password of 7", {"username": "carol", "password": "1234567"}, "invalid_password"),
    ("password of 1025", {"username": "carol", "password": "x" * 1025}, "invalid_password"),
    ("username a number", {"username": 12345, "password": PASSWORD}, "invalid_field"),
    ("username null", {"username": None, "password": PASSWORD}, "invalid_field"),
    ("password a number", {"username": "carol", "password": 12345678}, "invalid_field"),
    ("password a list", {"username": "carol", "password": [PASSWORD]}, "invalid_field"),
    ("password true", {"username": "carol", "password": True}, "invalid_field"),
    ("display_name a number", {"username": "carol", "password": PASSWORD, "display_name": 5},
     "invalid_field"),
    ("display_name too long", {"username": "carol", "password": PASSWORD,
                               "display_name": "x" * 51}, "invalid_field"),
    ("display_name with a control character",
     {"username": "carol", "password": PASSWORD, "display_name": "a\x1bb"}, "invalid_field"),
    ("no fields", {}, "invalid_field"),
    ("no password", {"username": "carol"}, "invalid_field"),
    ("no username", {"password": PASSWORD}, "invalid_field"),
]


@pytest.mark.parametrize("payload, code", [case[1:] for case in BAD_SIGN_UPS],
                         ids=[case[0] for case in BAD_SIGN_UPS])
def test_a_bad_sign_up_is_refused_with_400_and_makes_no_account(world: World,
                                                                payload: dict[str, Any],
                                                                code: str) -> None:
    before = accounts(world.api)
    answer = world.api.fetch("POST", "/accounts", payload)
    assert answer.status == 400
    assert error_code(answer) == code
    assert accounts(world.api) == before


@pytest.mark.parametrize("body", [b"", b"{", b"not json", b"{'username': 'alice'}",
                                  b"\xff\xfe{}", b'{"username": "carol",}'],
                         ids=["empty", "cut off", "words", "single quotes", "not UTF-8",
                              "trailing comma"])
def test_a_malformed_json_body_is_refused_with_400(world: World, body: bytes) -> None:
    answer = world.api.request("POST", "/accounts", body, {"content-type": "application/json"})
    assert answer.status == 400 and error_code(answer) == "malformed_json"


@pytest.mark.parametrize("body", [b"[]", b'["alice", "password"]', b'"alice"', b"null", b"42",
                                  b"true"])
def test_a_json_body_that_is_not_an_object_is_refused_with_400(world: World,
                                                               body: bytes) -> None:
    answer = world.api.request("POST", "/accounts", body, {"content-type": "application/json"})
    assert answer.status == 400 and error_code(answer) == "malformed_json"


def test_a_deeply_nested_json_body_is_refused_with_400(world: World) -> None:
    answer = world.api.request("POST", "/accounts", b"[" * 30_000 + b"]" * 30_000)
    assert answer.status == 400 and error_code(answer) == "malformed_json"


@pytest.mark.parametrize("taken", ["alice", "ALICE", "Alice", "aLiCe"])
def test_a_username_taken_in_any_case_is_a_409(api: Client, taken: str) -> None:
    first = sign_up(api, "alice")
    answer = api.fetch("POST", "/accounts", {"username": taken, "password": "another password"})
    assert answer.status == 409 and error_code(answer) == "username_taken"
    assert api.get_json("/accounts")["accounts"] == [first]
    log_in(api, "alice")  # the first owner's password still works


# --- logging in --------------------------------------------------------------------------------

def test_logging_in_gives_a_token_and_the_account(api: Client) -> None:
    account = sign_up(api, "alice")
    answer = api.fetch("POST", "/sessions", {"username": "alice", "password": PASSWORD})
    assert answer.status == 201
    assert answer.headers["cache-control"] == "no-store"
    data = answer.json()
    assert set(data) == {"token", "account"}
    assert data["account"] == account
    assert isinstance(data["token"], str) and len(data["token"]) > 20


def test_logging_in_ignores_the_case_of_the_username(api: Client) -> None:
    sign_up(api, "Alice")
    assert log_in(api, "aLICE").username == "Alice"


@pytest.mark.parametrize("username, password", [
    ("alice", "wrong password"), ("alice", PASSWORD.upper()), ("alice", ""),
    ("nobody", PASSWORD), ("no such user!", PASSWORD), ("", ""), ("search", PASSWORD),
])
def test_a_bad_username_or_password_is_a_401(world: World, username: str,
                                             password: str) -> None:
    answer = world.api.fetch("POST", "/sessions", {"username": username, "password": password})
    assert answer.status == 401 and error_code(answer) == "unauthorized"
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert "token" not in answer.json()


@pytest.mark.parametrize("payload", [{}, {"username": "alice"}, {"password": PASSWORD},
                                     {"username": "alice", "password": 12345678}])
def test_a_log_in_without_both_strings_is_a_400(world: World,
                                                payload: dict[str, Any]) -> None:
    answer = world.api.fetch("POST", "/sessions", payload)
    assert answer.status == 400 and error_code(answer) == "invalid_field"


def test_a_token_still_works_after_the_api_restarts(start_api: StartApi, store: Server,
                                                    tmp_path: Path, clock: FakeClock) -> None:
    with api_until_stopped(store.url, str(tmp_path / "api"), clock) as first:
        alice = join(first, "alice")
    again = start_api(store.url)  # the same DATA_DIR, where the generated key was kept
    post_tweet(again, alice, "still logged in")


def test_apis_sharing_a_secret_key_accept_each_others_tokens(start_api: StartApi, store: Server,
                                                             tmp_path: Path) -> None:
    first = start_api(store.url, secret_key="shared", data_dir=str(tmp_path / "one"))
    second = start_api(store.url, secret_key="shared", data_dir=str(tmp_path / "two"))
    other = start_api(store.url, data_dir=str(tmp_path / "three"))
    alice = join(first, "alice")
    post_tweet(second, alice, "same key")
    assert other.fetch("POST", "/tweets", {"text": "other key"}, alice.auth).status == 401


# --- accounts ----------------------------------------------------------------------------------

def test_accounts_are_listed_newest_first_a_page_at_a_time(api: Client) -> None:
    names = [f"user{n}" for n in range(7)]
    for name in names:
        sign_up(api, name)
    pages = page_through(api, "/accounts", "accounts", limit=3)
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [a["username"] for page in pages for a in page] == names[::-1]


@pytest.mark.parametrize("query, code", [
    ("limit=0", "invalid_limit"), ("limit=101", "invalid_limit"), ("limit=abc", "invalid_limit"),
    ("limit=-1", "invalid_limit"), ("limit=2.5", "invalid_limit"),
    ("cursor=abc", "invalid_cursor"), ("cursor=0", "invalid_cursor"),
    ("cursor=-5", "invalid_cursor"),
])
@pytest.mark.parametrize("route", ["/accounts", "/tweets", "/accounts/alice/tweets",
                                   "/hashtags/python/tweets", "/tweets/search?q=x"])
def test_a_bad_limit_or_cursor_is_a_400(world: World, route: str, query: str,
                                        code: str) -> None:
    joiner = "&" if "?" in route else "?"
    answer = world.api.get(f"{route}{joiner}{query}")
    assert answer.status == 400 and error_code(answer) == code


def test_a_limit_of_1_or_100_is_fine(api: Client) -> None:
    sign_up(api, "alice")
    sign_up(api, "bob")
    assert len(api.get_json("/accounts?limit=1")["accounts"]) == 1
    assert len(api.get_json("/accounts?limit=100")["accounts"]) == 2


def test_account_search_puts_prefix_matches_first_and_ignores_case(api: Client) -> None:
    for username, display in [("malice", "Mal"), ("alice", "Alice"), ("bob", "Alien Bob"),
                              ("carol", "Carol")]:
        sign_up(api, username, display_name=display)
    for q in ["ali", "ALI", "Ali"]:
        found = api.get_json(f"/accounts/search?q={q}")["accounts"]
        assert [a["username"] for a in found] == ["alice", "bob", "malice"], q
    assert api.get_json("/accounts/search?q=zzz")["accounts"] == []
    assert [a["username"] for a in api.get_json("/accounts/search?q=ali&limit=1")["accounts"]] \
        == ["alice"]


@pytest.mark.parametrize("q", ["", "%20%20", "%25", "_", "%22", "'%20OR%201=1%20--"])
def test_account_search_answers_odd_queries_with_200(world: World, q: str) -> None:
    answer = world.api.get(f"/accounts/search?q={q}")
    assert answer.status == 200
    assert isinstance(answer.json()["accounts"], list)


def test_an_overlong_search_is_a_400(world: World) -> None:
    api = world.api
    for route in ["/accounts/search", "/tweets/search"]:
        assert api.get(f"{route}?q={'a' * 200}").status == 200
        answer = api.get(f"{route}?q={'a' * 201}")
        assert answer.status == 400 and error_code(answer) == "invalid_query"


def test_one_account_is_found_in_any_case(api: Client) -> None:
    account = sign_up(api, "Alice")
    assert api.get_json("/accounts/alice") == account
    assert api.get_json("/accounts/ALICE") == account


@pytest.mark.parametrize("username", ["nobody", "ab", "al-ice", "%C3%A9lise", "a" * 31])
def test_an_unknown_account_is_a_404(world: World, username: str) -> None:
    api = world.api
    for route in [f"/accounts/{username}", f"/accounts/{username}/tweets"]:
        answer = api.get(route)
        assert answer.status == 404 and error_code(answer) == "not_found", route


def test_an_accounts_tweets_are_its_own_newest_first(api: Client, alice: User,
                                                     bob: User) -> None:
    for n in range(5):
        post_tweet(api, alice, f"alice {n}")
        post_tweet(api, bob, f"bob {n}")
    pages = page_through(api, "/accounts/alice/tweets", "tweets", limit=2)
    assert [t["text"] for page in pages for t in page] == [f"alice {n}" for n in range(4, -1, -1)]
    assert api.get_json("/accounts/ALICE/tweets")["tweets"][0]["author"] == "alice"
    assert api.get_json("/accounts/alice")["tweet_count"] == 5


def test_an_account_without_tweets_has_an_empty_list(api: Client, alice: User) -> None:
    assert api.get_json("/accounts/alice/tweets") == {"tweets": [], "next": None, "prev": None,
                                                      "authors": {}}


def test_pages_go_back_to_newer_ones_with_prev_and_after(api: Client, alice: User) -> None:
    ids = [post_tweet(api, alice, f"tweet {n} #t")["id"] for n in range(7)]
    for path in ("/tweets", "/accounts/alice/tweets", "/hashtags/t/tweets",
                 "/tweets/search?q=tweet"):
        joiner = "&" if "?" in path else "?"
        first = api.get_json(f"{path}{joiner}limit=3")
        assert [t["id"] for t in first["tweets"]] == ids[:3:-1] and first["prev"] is None
        second = api.get_json(f"{path}{joiner}limit=3&cursor={first['next']}")
        assert [t["id"] for t in second["tweets"]] == ids[3:0:-1]
        assert second["prev"] == str(ids[3])
        back = api.get_json(f"{path}{joiner}limit=3&after={second['prev']}")
        assert back == first | {"next": str(ids[4])}, path  # the newest page: prev is null
        middle = api.get_json(f"{path}{joiner}limit=2&after={ids[1]}")
        assert [t["id"] for t in middle["tweets"]] == [ids[3], ids[2]]
        assert (middle["prev"], middle["next"]) == (str(ids[3]), str(ids[2]))
        between = api.get_json(f"{path}{joiner}cursor={ids[5]}&after={ids[1]}")
        assert [t["id"] for t in between["tweets"]] == [ids[4], ids[3], ids[2]]
        assert between["authors"] == {"alice": "Alice Liddell"}
        assert api.get(f"{path}{joiner}after=0").status == 400
    accounts = api.get_json("/accounts?after=" + str(2 ** 63))
    assert accounts == {"accounts": [], "next": None, "prev": None}


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


# --- search ------------------------------------------------------------------------------------

@pytest.mark.parametrize("q, expected", [
    ("quick", ["Quick thinking saves the DAY", "The quick brown fox"]),
    ("QUICK", ["Quick thinking saves the DAY", "The quick brown fox"]),
    ("quick fox", ["The quick brown fox"]),
    ("fox quick", ["The quick brown fox"]),
    ("  the   DAY ", ["Quick thinking saves the DAY"]),
    ("quick dog", []),
    ("ecole", ["école d'été"]),
    ("zebra", []),
])
def test_search_finds_tweets_holding_every_word_ignoring_case(world: World, q: str,
                                                              expected: list[str]) -> None:
    assert texts(world.api.get_json(f"/tweets/search?q={quote(q)}")) == expected


@pytest.mark.parametrize("q", ['"', '"quick', "*", "quick*", "NEAR(", "NEAR(quick fox)", "AND",
                               "quick AND", "OR", "NOT quick", "' OR 1=1 --", "'; drop table "
                               "tweets; --", "^quick", "text:quick", "(", ")", "-", "{}", "\\",
                               "%", "_", "\x00", "\ufffd"])
def test_hostile_search_strings_are_answered_200(world: World, q: str) -> None:
    answer = world.api.get(f"/tweets/search?q={quote(q)}")
    assert answer.status == 200, answer.body
    assert isinstance(answer.json()["tweets"], list)
    assert texts({"tweets": timeline(world.api)}) == WORLD_TWEETS[::-1]  # nothing was harmed


def test_search_words_that_are_fts_operators_match_as_words(world: World) -> None:
    syntax = [WORLD_TWEETS[-1]]
    assert texts(world.api.get_json(f"/tweets/search?q={quote('NEAR( AND OR')}")) == syntax
    assert texts(world.api.get_json(f"/tweets/search?q={quote('syntax NOT')}")) == []


def test_empty_search_finds_nothing(world: World) -> None:
    for q in ["", "%20", "%22%22"]:
        assert world.api.get_json(f"/tweets/search?q={q}")["tweets"] == []


def test_search_results_page_newest_first(api: Client, alice: User) -> None:
    posted = [post_tweet(api, alice, f"match number {n}")["id"] for n in range(5)]
    post_tweet(api, alice, "something else")
    pages = page_through(api, "/tweets/search?q=match", "tweets", limit=2)
    assert [t["id"] for page in pages for t in page] == posted[::-1]


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


# --- hashtags ----------------------------------------------------------------------------------

def tag_counts(api: Client, q: str = "") -> list[tuple[str, int]]:
    tags = api.get_json(f"/hashtags?q={quote(q)}")["hashtags"]
    return [(tag["tag"], tag["tweets"]) for tag in tags]


def test_hashtags_are_listed_most_used_first(api: Client, alice: User) -> None:
    post_tweet(api, alice, "#python #pytest")
    post_tweet(api, alice, "#Python #rust")
    post_tweet(api, alice, "#PYTHON #pytest #python")
    post_tweet(api, alice, "#Ünïcode")
    assert tag_counts(api) == [("python", 3), ("pytest", 2), ("rust", 1), ("ünïcode", 1)]
    assert tag_counts(api, "py") == [("python", 3), ("pytest", 2)]
    assert tag_counts(api, "#PyTe") == [("pytest", 2)]
    assert tag_counts(api, "ÜN") == [("ünïcode", 1)]
    assert tag_counts(api, "java") == []
    assert [tag["tag"] for tag in api.get_json("/hashtags?limit=1")["hashtags"]] == ["python"]


def test_tag_counts_follow_edits_and_deletes(api: Client, alice: User) -> None:
    first = post_tweet(api, alice, "#a #b")
    second = post_tweet(api, alice, "#a #c")
    assert tag_counts(api) == [("a", 2), ("b", 1), ("c", 1)]
    edit_tweet(api, alice, first["id"], "#a #d")  # keeps a, drops b, adds d
    assert tag_counts(api) == [("a", 2), ("c", 1), ("d", 1)]
    edit_tweet(api, alice, first["id"], "no tags now")
    assert tag_counts(api) == [("a", 1), ("c", 1)]
    delete_tweet(api, alice, second["id"])
    assert tag_counts(api) == []
    assert api.get_json("/hashtags/a/tweets")["tweets"] == []


def test_an_overlong_tag_prefix_is_a_400(api: Client) -> None:
    assert api.get(f"/hashtags?q={'a' * 100}").status == 200
    answer = api.get(f"/hashtags?q={'a' * 101}")
    assert answer.status == 400 and error_code(answer) == "invalid_query"
    assert api.get("/hashtags?limit=0").status == 400


def test_a_tags_tweets_are_found_ignoring_case(api: Client, alice: User, bob: User) -> None:
    one = post_tweet(api, alice, "#Python is nice")
    post_tweet(api, bob, "no tag here, python")
    two = post_tweet(api, bob, "me too #PYTHON")
    cafe = post_tweet(api, bob, "un #Café")
    for tag in ["python", "Python", "PYTHON", "%23python"]:
        page = api.get_json(f"/hashtags/{tag}/tweets")
        assert [t["id"] for t in page["tweets"]] == [two["id"], one["id"]], tag
    for tag in ["caf%C3%A9", "CAF%C3%89"]:
        assert [t["id"] for t in api.get_json(f"/hashtags/{tag}/tweets")["tweets"]] == \
            [cafe["id"]]
    assert api.get_json("/hashtags/nothing/tweets") == {"tweets": [], "next": None, "prev": None,
                                                        "authors": {}}
    pages = page_through(api, "/hashtags/python/tweets", "tweets", limit=1)
    assert [t["id"] for page in pages for t in page] == [two["id"], one["id"]]


@pytest.mark.parametrize("tag", ["%23", "%23%23", "a" * 101])
def test_a_tag_that_cannot_exist_is_a_404(world: World, tag: str) -> None:
    answer = world.api.get(f"/hashtags/{tag}/tweets")
    assert answer.status == 404 and error_code(answer) == "not_found"


# --- the protocol: 404, 405, 413, HEAD ----------------------------------------------------------

@pytest.mark.parametrize("method, path, allow", [
    ("PATCH", "/tweets/1", "DELETE, GET, HEAD, PUT"),
    ("POST", "/tweets/1", "DELETE, GET, HEAD, PUT"),
    ("DELETE", "/tweets", "GET, HEAD, POST"),
    ("PUT", "/accounts", "GET, HEAD, POST"),
    ("PUT", "/sessions", "DELETE, GET, HEAD, POST"),
    ("GET", "/accounts/alice/password", "PUT"),
    ("GET", "/tweets/1/like", "POST"),
    ("DELETE", "/accounts/alice", "GET, HEAD"),
    ("POST", "/logs", "GET, HEAD"),
    ("POST", "/openapi.json", "GET, HEAD"),
])
def test_a_wrong_method_is_a_405_with_allow(world: World, method: str, path: str,
                                            allow: str) -> None:
    answer = world.api.request(method, path, b"{}" if method in ("POST", "PUT", "PATCH") else b"")
    assert answer.status == 405 and error_code(answer) == "method_not_allowed"
    assert answer.headers["allow"] == allow


@pytest.mark.parametrize("path", ["/", "/nope", "/tweets/1/likes", "/tweets/1/like/2",
                                  "/accounts/alice/followers", "/tweets/", "/accounts/",
                                  "/TWEETS", "/hashtags/a/tweets/1", "/logs/1"])
def test_an_unknown_route_is_a_404(world: World, path: str) -> None:
    answer = world.api.get(path)
    assert answer.status == 404 and error_code(answer) == "not_found"


def test_a_body_over_64_kib_is_a_413(api: Client, alice: User) -> None:
    big = json.dumps({"text": "x" * (64 * 1024)}).encode()
    answer = api.request("POST", "/tweets", big, {**alice.auth, "content-type": "application/json"})
    assert answer.status == 413 and error_code(answer) == "body_too_large"
    exact = b'{"text": "' + b" " * (64 * 1024 - 14) + b'hi"}'
    assert len(exact) == 64 * 1024
    assert api.request("POST", "/tweets", exact, alice.auth).status == 201
    assert texts(api.get_json("/tweets")) == ["hi"]


def test_head_answers_like_get_without_a_body(api: Client, alice: User) -> None:
    post_tweet(api, alice, "hello")
    answer = api.request("HEAD", "/tweets")
    assert answer.status == 200 and answer.body == b""
    assert int(answer.headers["content-length"]) == len(api.get("/tweets").body)


def test_health_and_openapi_answer(world: World) -> None:
    assert world.api.get_json("/healthz") == {"status": "ok"}
    assert world.api.get_json("/openapi.json")["openapi"].startswith("3.1.")


# --- secrets and caching headers ---------------------------------------------------------------

def test_no_answer_in_a_whole_story_shows_a_password_or_its_hash(api: Client,
                                                                 store_client: Client) -> None:
    alice = join(api, "alice", "Alice")
    bob = join(api, "bob")
    tweet = post_tweet(api, alice, "hello #world")
    for target in ["/accounts", "/accounts/alice", "/accounts/search?q=a", "/accounts/alice/tweets",
                   "/tweets", f"/tweets/{tweet['id']}", "/tweets/search?q=hello", "/hashtags",
                   "/hashtags/world/tweets", "/logs", "/stats", "/openapi.json"]:
        api.get_json(target)
    like(api, tweet["id"])
    edit_tweet(api, alice, tweet["id"], "bye #world")
    api.fetch("PUT", f"/tweets/{tweet['id']}", {"text": "x"}, bob.auth)
    api.fetch("POST", "/sessions", {"username": "alice", "password": "wrong password"})
    api.fetch("POST", "/accounts", {"username": "ALICE", "password": PASSWORD})
    delete_tweet(api, alice, tweet["id"])
    hashes = [store_client.get_json(f"/accounts/{name}/credentials")["password_hash"]
              for name in ["alice", "bob"]]
    assert all(h.startswith("scrypt$") for h in hashes)
    assert len(api.answers) >= 23
    for method, target, answer in api.answers:
        body = answer.body.decode()
        for secret in [*hashes, PASSWORD, "scrypt$", "password_hash"]:
            assert secret not in body, (method, target, secret)
        for value in answer.headers.values():
            assert PASSWORD not in value and "scrypt$" not in value


@pytest.mark.parametrize("method, path", [("GET", "/logs"), ("GET", "/stats"),
                                          ("GET", "/logs?after=1"), ("POST", "/sessions")])
def test_answers_that_must_not_be_cached_say_no_store(world: World, method: str,
                                                      path: str) -> None:
    payload = {"username": "alice", "password": PASSWORD} if method == "POST" else None
    answer = world.api.fetch(method, path, payload)
    assert answer.status in (200, 201)
    assert answer.headers["cache-control"] == "no-store"


def test_public_reads_may_be_cached(api: Client, alice: User) -> None:
    tweet = post_tweet(api, alice, "public")
    for path in ["/tweets", f"/tweets/{tweet['id']}", "/accounts/alice", "/hashtags"]:
        assert "no-store" not in api.get(path).headers.get("cache-control", "")


# --- /logs and /stats --------------------------------------------------------------------------

def logged(api: Client, after: int = 0) -> list[list[str]]:
    calls: list[list[str]] = api.get_json(f"/logs?after={after}")["calls"]
    return calls


def test_the_log_shows_every_call_in_order_failures_included(api: Client) -> None:
    api.get("/healthz")  # a probe, not an API call
    api.get("/tweets?limit=5")
    api.get("/nope")
    api.fetch("POST", "/accounts", {"username": "x"})
    api.request("PATCH", "/tweets/1")
    api.get("/tweets/42")
    api.request("DELETE", "/tweets/abc")
    api.get("/accounts/%C3%A9lise?x=1")
    api.request("BREW", "/coffee")
    assert logged(api) == [
        ["GET", "/tweets"], ["GET", "/nope"], ["POST", "/accounts"], ["PATCH", "/tweets/1"],
        ["GET", "/tweets/42"], ["DELETE", "/tweets/abc"], ["GET", "/accounts/élise"],
        ["BREW", "/coffee"], ["GET", "/logs"],
    ]


def test_the_log_pages_with_after(api: Client) -> None:
    for n in range(10):
        api.get(f"/tweets/{n + 1}")
    everything = api.get_json("/logs")
    assert everything["total"] == 11 and everything["next"] is None
    page = api.get_json("/logs?after=4&limit=3")
    assert page["calls"] == [["GET", "/tweets/5"], ["GET", "/tweets/6"], ["GET", "/tweets/7"]]
    assert page["total"] == 12 and page["after"] == 4 and page["next"] == 7
    rest = api.get_json(f"/logs?after={page['next']}")
    assert rest["calls"][0] == ["GET", "/tweets/8"] and rest["next"] is None
    assert rest["calls"][-1] == ["GET", "/logs"]
    assert api.get_json("/logs?after=1000")["calls"] == []
    for query in ["after=abc", "after=-1", "limit=0", "limit=100001", "limit=x"]:
        answer = api.get(f"/logs?{query}")
        assert answer.status == 400 and error_code(answer) == "invalid_query", query


def test_db_accesses_count_the_requests_sent_towards_the_database(api: Client,
                                                                  store_client: Client) -> None:
    def accesses() -> int:
        count: int = api.get_json("/logs")["db_accesses"]
        return count
    start = accesses()
    api.get("/tweets/1")  # a miss still asks the database
    assert accesses() == start + 1
    api.get("/nope")
    api.get("/tweets/abc")
    api.get("/accounts/a-b")
    api.get("/stats")
    assert accesses() == start + 1  # answered without the database
    for _ in range(3):
        api.get("/tweets")
    assert accesses() == start + 4
    assert api.get_json("/stats")["db_accesses"] == start + 4


def test_the_log_keeps_every_call_of_8_concurrent_clients_once_in_order(lab: Lab,
                                                                        api: Client) -> None:
    per_client = 40
    clients = [Client(api.url) for _ in range(8)]
    lab.stops.extend(client.close for client in clients)
    failures: list[str] = []

    def run(number: int, client: Client) -> None:
        for n in range(per_client):
            status = client.get(f"/tweets/{number}{n:04d}").status
            if status != 404:
                failures.append(f"{number}: {status}")
    threads = [threading.Thread(target=run, args=(number + 1, client))
               for number, client in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    calls = logged(api)
    assert len(calls) == 8 * per_client + 1
    paths = [path for method, path in calls if method == "GET" and path != "/logs"]
    assert len(paths) == len(set(paths)) == 8 * per_client
    for number in range(1, 9):
        mine = [p for p in paths if p.startswith(f"/tweets/{number}") and len(p) == 13]
        assert mine == [f"/tweets/{number}{n:04d}" for n in range(per_client)]


def test_stats_count_calls_db_accesses_and_likes(api: Client, alice: User) -> None:
    tweet = post_tweet(api, alice, "like me")
    like(api, tweet["id"])
    like(api, tweet["id"])
    stats = api.get_json("/stats")
    assert stats["calls"] == 6  # sign up, log in, post, two likes, this
    assert stats["db_accesses"] >= 4
    assert stats["likes_received"] == 2
    for name in ["likes_written", "batches", "pending"]:
        assert isinstance(stats[name], int)
    assert stats["likes_written"] + stats["pending"] == 2


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


# --- bugs ----------------------------------------------------------------------------------------

def test_a_token_with_a_non_ascii_byte_is_a_401(world: World) -> None:
    answer = world.api.fetch("POST", "/tweets", {"text": "hi"},
                             {"authorization": "Bearer 1.2.\xe9"})
    assert answer.status == 401


@pytest.mark.parametrize("route, payload", [
    ("/accounts", {"username": "bobby", "password": "\ud800" * 8}),
    ("/accounts", {"username": "bobby", "password": PASSWORD, "display_name": "\ud800"}),
    ("/sessions", {"username": "nobody", "password": "\ud800"}),
    ("/tweets", {"text": "\ud800"}),
], ids=["sign-up password", "display name", "log-in password", "tweet text"])
def test_a_lone_surrogate_in_a_field_is_a_400(api: Client, alice: User, route: str,
                                              payload: dict[str, Any]) -> None:
    answer = api.fetch("POST", route, payload, alice.auth)
    assert answer.status in (400, 401)


@pytest.mark.parametrize("target", ["/tweets?limit=%C2%B2", "/tweets?cursor=%C2%B2",
                                    "/accounts/search?q=a&limit=%C2%B2",
                                    "/logs?after=%C2%B2", "/logs?limit=%C2%B2"])
def test_a_superscript_digit_as_a_number_is_a_400(world: World, target: str) -> None:
    assert world.api.get(target).status == 400


def test_a_refused_oversized_call_is_in_the_log(api: Client) -> None:
    assert api.request("POST", "/tweets", b"x" * (64 * 1024 + 1)).status == 413
    assert logged(api) == [["POST", "/tweets"], ["GET", "/logs"]]


def test_a_deleted_tweets_id_is_never_given_to_a_new_tweet(api: Client, alice: User) -> None:
    gone = post_tweet(api, alice, "deleted soon")
    delete_tweet(api, alice, gone["id"])
    assert post_tweet(api, alice, "new")["id"] != gone["id"]


def test_a_new_tweet_starts_with_no_likes(api: Client, alice: User) -> None:
    gone = post_tweet(api, alice, "liked, then deleted")
    like(api, gone["id"])
    like(api, gone["id"])
    delete_tweet(api, alice, gone["id"])
    fresh = post_tweet(api, alice, "brand new")
    assert read_tweet(api, fresh["id"])["likes"] == 0
    assert like(api, fresh["id"]) == 1
