"""Service tests of the public API, what every request meets: a 405 with Allow, a 404 for
an unknown route, a 413 for a body over 64 KiB, HEAD, no password or hash in any answer,
which answers may be cached, and bad bytes in a field or a number (400s, not 500s)."""
from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conftest import World
from tests.api.helpers import (PASSWORD, Client, User, delete_tweet, edit_tweet, error_code, join,
                               like, post_tweet, texts)


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


# --- bugs --------------------------------------------------------------------------------------

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
