"""Service tests of the public API, accounts: signing up (and every way a sign-up is
refused), logging in, tokens that outlive a restart or are shared between APIs, and the
accounts listed, searched and paged, each with its own tweets."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from httpkit import Server
from tests.api.conftest import StartApi, World, api_until_stopped
from tests.api.helpers import (PASSWORD, Client, User, error_code, join, log_in, page_through,
                               post_tweet, sign_up)
from tests.fakes import FakeClock


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
