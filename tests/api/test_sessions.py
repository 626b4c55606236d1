"""Sessions end: log-out (DELETE /sessions) ends its own session, a password change every one.

Unit tests of the check (no sockets, a fake clock), then service tests through a real api and
store (and dbcache where the story needs one)."""
from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any, Callable

import pytest

from api import auth
from api.auth import Ended
from api.app import Config
from httpkit import HTTPError, Server
from store.db import MOST_ENDED
from tests.api.conftest import StartApi, StartCache, api_until_stopped
from tests.api.helpers import (PASSWORD, Client, User, bearer, error_code, join, log_in,
                               post_tweet)
from tests.fakes import FakeClock, FeedReader, Lab

NEW_PASSWORD = "staple battery horse"
ENDED = "this session has ended; log in again"
KEY = b"k" * 32


# --- the check, without sockets ---------------------------------------------------------------

class FakeStore:
    """What has ended of each account's tokens, as the store keeps it; counts the reads."""

    def __init__(self) -> None:
        self.ended: dict[int, Ended] = {7: Ended(0)}
        self.reads = 0
        self.during_read: Callable[[], object] = lambda: None

    def __call__(self, account_id: int) -> Ended | None:
        self.reads += 1
        answer = self.ended.get(account_id)
        self.during_read()  # what happens here while the answer is on its way back
        return answer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def fake_store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def generations(fake_store: FakeStore, clock: FakeClock) -> auth.Generations:
    return auth.Generations(fake_store, 5.0, clock)


@pytest.fixture
def sessions(generations: auth.Generations, clock: FakeClock) -> auth.Sessions:
    return auth.Sessions(auth.Tokens(KEY, 3600.0, clock), generations)


def refusal(sessions: auth.Sessions, token: str) -> HTTPError:
    with pytest.raises(HTTPError) as caught:
        sessions.check(f"Bearer {token}")
    assert caught.value.status == 401 and caught.value.code == "unauthorized"
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")
    return caught.value


def session_of(token: str) -> int:
    return int(token.split(".")[2])


def signed(payload: str) -> str:
    """A token of the given fields, signed with the test key, as an older api issued them."""
    return f"{payload}.{hmac.new(KEY, payload.encode(), hashlib.sha256).hexdigest()}"


def test_every_log_in_gets_a_session_of_its_own(sessions: auth.Sessions) -> None:
    tokens = [sessions.issue(7, 0) for _ in range(50)]  # all in the same second
    assert len(set(tokens)) == 50
    for token in tokens:
        account, generation, session, expiry, _ = token.split(".")
        assert (account, generation, expiry) == ("7", "0", "1700003600")
        assert 0 < int(session) < 2 ** 48
        assert sessions.check(f"Bearer {token}") == auth.Claims(7, 0, 1_700_003_600,
                                                                int(session))


def test_a_changed_session_number_is_refused(sessions: auth.Sessions) -> None:
    account, generation, session, expiry, signature = sessions.issue(7, 0).split(".")
    for changed in [f"{account}.{generation}.{int(session) + 1}.{expiry}.{signature}",
                    f"{account}.{generation}.0{session}.{expiry}.{signature}",
                    f"{account}.{generation}.{expiry}.{signature}"]:
        assert refusal(sessions, changed).message == "the token is not valid"


def test_a_token_of_the_current_generation_is_checked_from_memory(
        sessions: auth.Sessions, fake_store: FakeStore, clock: FakeClock) -> None:
    token = sessions.issue(7, 0)  # log-in has just read generation 0 from the store
    for _ in range(100):
        assert sessions.check(f"Bearer {token}").account_id == 7
    assert fake_store.reads == 0
    clock.advance(5)  # TOKEN_CHECK_S later the store is asked again, once
    for _ in range(100):
        assert sessions.check(f"Bearer {token}").account_id == 7
    assert fake_store.reads == 1


def test_a_session_ended_here_is_refused_at_once_and_the_others_go_on(
        sessions: auth.Sessions, fake_store: FakeStore) -> None:
    laptop, phone = sessions.issue(7, 0), sessions.issue(7, 0)
    fake_store.ended[7] = Ended(0, frozenset({session_of(laptop)}))
    sessions.ended(7, fake_store.ended[7])  # what a log-out through this api does
    assert refusal(sessions, laptop).message == ENDED
    assert sessions.check(f"Bearer {phone}").account_id == 7
    assert fake_store.reads == 0


def test_a_token_of_an_older_generation_has_ended(sessions: auth.Sessions,
                                                  fake_store: FakeStore) -> None:
    old, other = sessions.issue(7, 0), sessions.issue(7, 0)
    fake_store.ended[7] = Ended(1)
    sessions.ended(7, Ended(1))  # a password change through this api: no waiting for a TTL
    assert refusal(sessions, old).message == ENDED
    assert refusal(sessions, other).message == ENDED
    assert fake_store.reads == 0


def test_an_ending_elsewhere_is_seen_within_the_check_interval(
        sessions: auth.Sessions, fake_store: FakeStore, clock: FakeClock) -> None:
    one, two, three = (sessions.issue(7, 0) for _ in range(3))
    fake_store.ended[7] = Ended(0, frozenset({session_of(one)}))  # another api logged it out
    assert sessions.check(f"Bearer {one}").account_id == 7  # not yet known here
    clock.advance(5)
    assert refusal(sessions, one).message == ENDED
    assert sessions.check(f"Bearer {two}").account_id == 7
    fake_store.ended[7] = Ended(1)  # and then the password changed there
    clock.advance(5)
    assert refusal(sessions, two).message == ENDED
    assert refusal(sessions, three).message == ENDED


def test_a_token_newer_than_remembered_is_checked_with_the_store(
        sessions: auth.Sessions, fake_store: FakeStore, clock: FakeClock) -> None:
    sessions.issue(7, 0)
    fake_store.ended[7] = Ended(1)  # a password change through another api process
    newer = auth.Tokens(KEY, 3600.0, clock).issue(7, 1, 5)
    assert sessions.check(f"Bearer {newer}").generation == 1
    assert fake_store.reads == 1
    assert refusal(sessions, auth.Tokens(KEY, 3600.0, clock).issue(7, 2, 5)).message == ENDED


def test_a_read_that_comes_back_after_an_ending_here_does_not_undo_it(
        generations: auth.Generations, fake_store: FakeStore, clock: FakeClock) -> None:
    generations.saw(7, Ended(0, frozenset({1})))
    clock.advance(5)
    # The read sets off before a log-out here ends session 2, and comes back after it.
    fake_store.during_read = lambda: generations.saw(7, Ended(0, frozenset({1, 2})))
    assert generations.current(7, 0) == Ended(0, frozenset({1, 2}))
    generations.saw(7, Ended(3))  # a password change here while a read of 2 was under way
    assert generations.saw(7, Ended(2, frozenset({9}))) == Ended(3)
    assert generations.current(7, 3) == Ended(3) and fake_store.reads == 1


def test_answers_to_two_log_outs_may_come_back_in_either_order(
        generations: auth.Generations, fake_store: FakeStore) -> None:
    generations.saw(7, Ended(0, frozenset({1, 2})))  # the second log-out's answer
    assert generations.saw(7, Ended(0, frozenset({1}))) == Ended(0, frozenset({1, 2}))
    assert generations.current(7, 0) == Ended(0, frozenset({1, 2})) and fake_store.reads == 0


def test_a_read_of_the_store_lets_sessions_whose_tokens_expired_go(
        generations: auth.Generations, fake_store: FakeStore, clock: FakeClock) -> None:
    generations.saw(7, Ended(0, frozenset({1, 2})))
    fake_store.ended[7] = Ended(0, frozenset({2}))  # session 1's token has expired
    clock.advance(5)
    assert generations.current(7, 0) == Ended(0, frozenset({2}))


def test_an_unknown_account_ends_its_tokens(sessions: auth.Sessions, clock: FakeClock) -> None:
    token = auth.Tokens(KEY, 3600.0, clock).issue(99, 0, 1)
    assert "no longer exists" in refusal(sessions, token).message


def test_memory_holds_a_bounded_number_of_accounts(fake_store: FakeStore,
                                                   clock: FakeClock) -> None:
    generations = auth.Generations(fake_store, 5.0, clock, most=3)
    for account in range(10):
        generations.saw(account, Ended(0))
    assert len(generations._known) == 3
    assert generations.current(9, 0) == Ended(0) and fake_store.reads == 0
    fake_store.ended[0] = Ended(0)
    assert generations.current(0, 0) == Ended(0) and fake_store.reads == 1  # asked again


@pytest.mark.parametrize("payload, claims", [
    ("7.1700003600", auth.Claims(7, 0, 1_700_003_600)),  # <id>.<expiry>, before generations
    ("7.0.1700003600", auth.Claims(7, 0, 1_700_003_600)),  # <id>.<generation>.<expiry>
])
def test_a_token_from_before_session_numbers_is_session_0(
        sessions: auth.Sessions, fake_store: FakeStore, payload: str,
        claims: auth.Claims) -> None:
    legacy = signed(payload)
    assert sessions.check(f"Bearer {legacy}") == claims and claims.session == 0
    sessions.ended(7, Ended(0, frozenset({1, 2})))  # other sessions ending leave it on
    assert sessions.check(f"Bearer {legacy}") == claims
    fake_store.ended[7] = Ended(1)
    sessions.ended(7, Ended(1))  # what its log-out does: it cannot be named alone
    assert refusal(sessions, legacy).message == ENDED


# --- log-out through the api ------------------------------------------------------------------

def log_out(api: Client, user: User) -> None:
    answer = api.fetch("DELETE", "/sessions", headers=user.auth)
    assert answer.status == 204, answer.body
    assert answer.body == b"" and answer.headers["cache-control"] == "no-store"


def assert_ended(api: Client, token: str) -> None:
    """The token is refused for every authenticated call, and nothing is posted."""
    before = api.get_json("/tweets?limit=100", fresh=True)
    answer = api.fetch("POST", "/tweets", {"text": "after the end"}, bearer(token))
    assert answer.status == 401 and error_code(answer) == "unauthorized", answer.body
    assert answer.json()["error"]["message"] == ENDED
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert api.get("/sessions", bearer(token)).status == 401
    assert api.fetch("DELETE", "/sessions", headers=bearer(token)).status == 401
    assert api.get_json("/tweets?limit=100", fresh=True) == before


def test_a_token_used_after_logging_out_is_a_401(api: Client) -> None:
    alice = join(api, "alice")
    tweet = post_tweet(api, alice, "before")
    log_out(api, alice)
    assert_ended(api, alice.token)
    for method, payload in [("PUT", {"text": "edited after"}), ("DELETE", None)]:
        answer = api.fetch(method, f"/tweets/{tweet['id']}", payload, alice.auth)
        assert answer.status == 401 and answer.json()["error"]["message"] == ENDED
    assert api.get_json(f"/tweets/{tweet['id']}")["text"] == "before"
    post_tweet(api, log_in(api, "alice"), "logged in again")


def test_logging_out_ends_this_session_alone(api: Client) -> None:
    laptop = join(api, "alice")
    phone, cli, bob = log_in(api, "alice"), log_in(api, "alice"), join(api, "bob")
    log_out(api, laptop)
    assert_ended(api, laptop.token)  # at once
    for other in (phone, cli, bob):
        assert api.get("/sessions", other.auth).status == 200
    post_tweet(api, phone, "still logged in on the phone")
    log_out(api, phone)
    assert_ended(api, phone.token)
    post_tweet(api, cli, "and in the command line client")


def test_two_log_ins_in_the_same_second_get_different_tokens(api: Client) -> None:
    first = join(api, "alice")
    second = log_in(api, "alice")  # the fake clock has not moved
    assert first.token != second.token
    log_out(api, first)
    post_tweet(api, second, "the other one goes on")


def test_past_100_ended_sessions_logging_out_ends_every_session_of_the_account(
        api: Client) -> None:
    kept = join(api, "alice")
    ended = [log_in(api, "alice") for _ in range(MOST_ENDED + 1)]
    for user in ended[:MOST_ENDED]:
        log_out(api, user)
    post_tweet(api, kept, "a hundred sessions ended, not mine")
    log_out(api, ended[-1])  # one more: the store ends them all instead (the safe direction)
    for user in (kept, ended[0], ended[-1]):
        assert_ended(api, user.token)
    again = log_in(api, "alice")
    log_out(api, log_in(api, "alice"))  # a fresh start: one by one again
    post_tweet(api, again, "logged in again")


@pytest.mark.parametrize("headers", [{}, bearer("garbage"), {"authorization": "Basic eDp5"}])
def test_logging_out_without_a_valid_token_is_a_401(api: Client,
                                                    headers: dict[str, str]) -> None:
    answer = api.fetch("DELETE", "/sessions", headers=headers)
    assert answer.status == 401 and error_code(answer) == "unauthorized"


def test_get_sessions_tells_whose_session_is_on(api: Client, clock: FakeClock) -> None:
    alice = join(api, "alice")
    answer = api.get("/sessions", alice.auth)
    assert answer.status == 200 and answer.headers["cache-control"] == "no-store"
    assert answer.json() == {"account_id": alice.account["id"], "username": "alice",
                             "expires_at": "2023-11-21T22:13:20Z"}  # the fake clock + 7 days
    assert api.get("/sessions").status == 401


def test_checking_the_session_adds_no_database_access_to_a_post(api: Client,
                                                                clock: FakeClock) -> None:
    alice = join(api, "alice")
    start = api.get_json("/logs")["db_accesses"]
    for n in range(5):
        post_tweet(api, alice, f"tweet {n}")
    assert api.get_json("/logs")["db_accesses"] == start + 5  # the posts themselves only
    clock.advance(Config().token_check)
    post_tweet(api, alice, "a while later")
    assert api.get_json("/logs")["db_accesses"] == start + 7  # the generation, read again


# --- changing the password ----------------------------------------------------------------------

def change_password(api: Client, user: User, old: str = PASSWORD,
                    new: str = NEW_PASSWORD) -> User:
    answer = api.fetch("PUT", f"/accounts/{user.username}/password",
                       {"password": old, "new_password": new}, user.auth)
    assert answer.status == 200, answer.body
    assert answer.headers["cache-control"] == "no-store"
    data = answer.json()
    assert set(data) == {"token", "account"} and data["account"]["id"] == user.account["id"]
    return User(user.username, data["token"], data["account"])


def test_a_password_change_ends_older_tokens_and_gives_a_working_one(
        api: Client, store_client: Client) -> None:
    alice = join(api, "alice")
    elsewhere = log_in(api, "alice")
    old_hash = store_client.get_json("/accounts/alice/credentials")["password_hash"]
    fresh = change_password(api, alice)
    assert_ended(api, alice.token)
    assert_ended(api, elsewhere.token)
    post_tweet(api, fresh, "new password, still logged in")
    answer = api.fetch("POST", "/sessions", {"username": "alice", "password": PASSWORD})
    assert answer.status == 401
    post_tweet(api, log_in(api, "alice", NEW_PASSWORD), "and logged in with it")
    new_hash = store_client.get_json("/accounts/alice/credentials")["password_hash"]
    assert new_hash != old_hash and new_hash.startswith("scrypt$")
    assert NEW_PASSWORD not in new_hash


def test_a_wrong_current_password_changes_nothing(api: Client) -> None:
    alice = join(api, "alice")
    answer = api.fetch("PUT", "/accounts/alice/password",
                       {"password": "not my password", "new_password": NEW_PASSWORD}, alice.auth)
    assert answer.status == 401 and error_code(answer) == "wrong_password"
    post_tweet(api, alice, "still logged in")
    log_in(api, "alice")  # with the old password


@pytest.mark.parametrize("payload, code", [
    ({"password": PASSWORD, "new_password": "short"}, "invalid_password"),
    ({"password": PASSWORD, "new_password": "x" * 1025}, "invalid_password"),
    ({"password": PASSWORD}, "invalid_field"),
    ({"new_password": NEW_PASSWORD}, "invalid_field"),
    ({"password": PASSWORD, "new_password": 12345678}, "invalid_field"),
])
def test_a_bad_password_change_is_a_400_and_changes_nothing(api: Client, payload: Any,
                                                            code: str) -> None:
    alice = join(api, "alice")
    answer = api.fetch("PUT", "/accounts/alice/password", payload, alice.auth)
    assert answer.status == 400 and error_code(answer) == code
    post_tweet(api, alice, "still logged in")


def test_only_the_owner_may_change_a_password(api: Client) -> None:
    alice, bob = join(api, "alice"), join(api, "bob")
    payload = {"password": PASSWORD, "new_password": NEW_PASSWORD}
    answer = api.fetch("PUT", "/accounts/alice/password", payload, bob.auth)
    assert answer.status == 403 and error_code(answer) == "not_owner"
    answer = api.fetch("PUT", "/accounts/nobody/password", payload, bob.auth)
    assert answer.status == 404
    assert api.fetch("PUT", "/accounts/alice/password", payload).status == 401
    log_in(api, "alice")
    post_tweet(api, alice, "untouched")


def test_an_ended_token_cannot_change_the_password(api: Client) -> None:
    alice = join(api, "alice")
    log_out(api, alice)
    answer = api.fetch("PUT", "/accounts/alice/password",
                       {"password": PASSWORD, "new_password": NEW_PASSWORD}, alice.auth)
    assert answer.status == 401 and answer.json()["error"]["message"] == ENDED
    log_in(api, "alice")


# --- the generation lives in the store --------------------------------------------------------

def test_an_ended_session_stays_ended_after_the_api_restarts(start_api: StartApi,
                                                             store: Server, tmp_path: Path,
                                                             clock: FakeClock) -> None:
    with api_until_stopped(store.url, str(tmp_path / "api"), clock) as client:
        alice, bob = join(client, "alice"), join(client, "bob")
        alice_elsewhere, bob_elsewhere = log_in(client, "alice"), log_in(client, "bob")
        log_out(client, alice)
        fresh = change_password(client, bob)
    again = start_api(store.url)  # the same DATA_DIR and key, nothing remembered
    assert_ended(again, alice.token)
    post_tweet(again, alice_elsewhere, "the session not logged out goes on")
    assert_ended(again, bob.token)
    assert_ended(again, bob_elsewhere.token)
    post_tweet(again, fresh, "the new token survives too")


@pytest.fixture
def two_apis(start_api: StartApi, start_cache: StartCache, store: Server,
             tmp_path: Path) -> tuple[Client, Client]:
    """Two apis sharing a key: one on the store, the other behind dbcache."""
    here = start_api(store.url, secret_key="shared", data_dir=str(tmp_path / "one"))
    dbcache = start_cache(store.url, name="dbcache")
    return here, start_api(dbcache.url, secret_key="shared", data_dir=str(tmp_path / "two"))


def test_another_api_sees_a_revocation_within_the_check_interval_past_dbcache(
        two_apis: tuple[Client, Client], clock: FakeClock) -> None:
    here, there = two_apis
    alice = join(here, "alice")
    post_tweet(there, alice, "known there")
    fresh = change_password(here, alice)
    post_tweet(there, fresh, "a newer token is checked with the store at once")
    clock.advance(Config().token_check)  # dbcache's clock does not move: it must not keep it
    assert_ended(there, alice.token)


def test_another_api_sees_a_log_out_within_the_check_interval_past_dbcache(
        two_apis: tuple[Client, Client], clock: FakeClock) -> None:
    here, there = two_apis
    alice = join(here, "alice")
    phone = log_in(here, "alice")
    post_tweet(there, alice, "known there")
    log_out(here, alice)
    clock.advance(Config().token_check)
    assert_ended(there, alice.token)
    post_tweet(there, phone, "the other session goes on there too")


# --- tokens from before session numbers ---------------------------------------------------------

def older_tokens(user: User, key: bytes, clock: FakeClock) -> list[str]:
    """The user's tokens as an api before session numbers, and before generations, signed
    them: ``<id>.<generation>.<expiry>`` and ``<id>.<expiry>``."""
    account_id = user.account["id"]
    four_parts = auth.Tokens(key, 3600.0, clock).issue(account_id, 0)
    payload = f"{account_id}.{int(clock() + 3600)}"
    three_parts = f"{payload}.{hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()}"
    assert (four_parts.count("."), three_parts.count(".")) == (3, 2)
    return [four_parts, three_parts]


@pytest.mark.parametrize("which", [0, 1])
def test_a_token_from_before_session_numbers_works_and_its_log_out_ends_it(
        start_api: StartApi, store: Server, clock: FakeClock, which: int) -> None:
    api = start_api(store.url, secret_key="shared")
    alice = join(api, "alice")
    older = User("alice", older_tokens(alice, b"shared", clock)[which], alice.account)
    post_tweet(api, older, "from an older client")
    log_out(api, log_in(api, "alice"))  # another session ending leaves it on
    post_tweet(api, older, "still on")
    log_out(api, older)  # it cannot be named alone: its generation ends, every session with it
    assert_ended(api, older.token)
    assert_ended(api, alice.token)
    post_tweet(api, log_in(api, "alice"), "logged in again")


def test_ending_sessions_publishes_nothing_to_the_caches(lab: Lab, api: Client,
                                                         store: Server) -> None:
    alice = join(api, "alice")
    store_feed, api_feed = FeedReader(lab.client(store.url)), FeedReader(lab.client(api.url))
    fresh = change_password(api, alice)
    answer = api.fetch("DELETE", "/sessions", headers=fresh.auth)
    assert answer.status == 204 and "changed-keys" not in answer.headers
    assert store_feed.keys() == [] and api_feed.keys() == []
