"""Unit tests of the signed cookies (session, the browser's CSRF token, the flash): round
trips, tampering, flags, CSRF comparison."""
from __future__ import annotations

import base64
import json

import pytest

from web import session
from web.session import COOKIE, Session

KEY = b"test key"


def cookie_value(set_cookie: str) -> str:
    """Return the value part of a Set-Cookie header for the session cookie."""
    pair = set_cookie.split(";", 1)[0]
    name, _, value = pair.partition("=")
    assert name == COOKIE
    return value


def as_received(set_cookie: str) -> dict[str, str]:
    """Return the cookies a browser would send back after this Set-Cookie."""
    return session.read_cookies(set_cookie.split(";", 1)[0])


def test_a_signed_cookie_round_trips() -> None:
    loaded = session.load(KEY, as_received(session.cookie(KEY, Session(token="t0ken",
                                                                       user="alice"))))
    assert (loaded.token, loaded.user) == ("t0ken", "alice") and loaded.logged_in


def test_an_anonymous_session_round_trips() -> None:
    loaded = session.load(KEY, as_received(session.cookie(KEY, Session())))
    assert not loaded.logged_in and loaded.token is None


def test_no_cookie_gives_an_anonymous_session() -> None:
    assert not session.load(KEY, {}).logged_in


def test_the_browser_cookie_round_trips_its_csrf_token() -> None:
    token = session.new_csrf()
    received = session.read_cookies(session.csrf_cookie(KEY, token).split(";", 1)[0])
    assert session.load_csrf(KEY, received) == token and len(token) >= 16
    assert session.new_csrf() != token


@pytest.mark.parametrize("value", ["", "garbage", "e30=.00"])
def test_a_browser_cookie_that_is_not_ours_gives_no_csrf_token(value: str) -> None:
    assert session.load_csrf(KEY, {session.BROWSER_COOKIE: value}) is None


def test_one_kind_of_signed_cookie_cannot_stand_in_for_another() -> None:
    session_value = cookie_value(session.cookie(KEY, Session(token="t", user="alice")))
    csrf_value = session.csrf_cookie(KEY, "token").split(";", 1)[0].split("=", 1)[1]
    assert session.load_csrf(KEY, {session.BROWSER_COOKIE: session_value}) is None
    assert session.load_flash(KEY, {session.FLASH_COOKIE: csrf_value}) is None
    assert not session.load(KEY, {COOKIE: csrf_value}).logged_in


def test_a_session_cookie_from_before_browser_tokens_still_gives_its_csrf_token() -> None:
    old = session.seal(KEY, {"csrf": "old-token", "token": "t", "user": "alice"})
    assert session.legacy_csrf(KEY, {COOKIE: old}) == "old-token"
    assert session.load(KEY, {COOKIE: old}).user == "alice"


def test_a_flash_round_trips_and_an_empty_one_clears_the_cookie() -> None:
    flash = session.Flash(notice="Posted.", error="", fields={"text": "héllo 😀"})
    header = session.flash_cookie(KEY, flash)
    assert header is not None and "Max-Age=3600" in header
    assert session.load_flash(KEY, session.read_cookies(header.split(";", 1)[0])) == flash
    cleared = session.flash_cookie(KEY, session.Flash())
    assert cleared is not None and "Max-Age=0" in cleared


def test_a_flash_too_big_for_a_cookie_is_not_made() -> None:
    assert session.flash_cookie(KEY, session.Flash(fields={"text": "😀" * 1000})) is None
    assert session.flash_cookie(KEY, session.Flash(fields={"text": "😀" * 280})) is not None


def forged(set_cookie: str, **changes: str) -> str:
    """Rewrite the payload of a signed cookie and keep the old signature."""
    payload, _, signature = cookie_value(set_cookie).rpartition(".")
    data = json.loads(base64.urlsafe_b64decode(payload))
    data.update(changes)
    new_payload = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
    return f"{new_payload}.{signature}"


def tampered_values() -> list[str]:
    signed = session.cookie(KEY, Session(token="t0ken", user="alice"))
    value = cookie_value(signed)
    flipped = value[:-1] + ("0" if value[-1] != "0" else "1")
    other_key = cookie_value(session.cookie(b"another key", Session(token="t", user="alice")))
    return [forged(signed, user="mallory"), flipped, value.rpartition(".")[0], other_key,
            "garbage", "", ".", "not base64!.abc", value + "x"]


@pytest.mark.parametrize("value", tampered_values())
def test_a_tampered_or_garbage_cookie_gives_an_anonymous_session(value: str) -> None:
    loaded = session.load(KEY, {COOKIE: value})
    assert not loaded.logged_in and loaded.user is None


def test_a_validly_signed_payload_that_is_not_a_session_is_ignored() -> None:
    payload = base64.urlsafe_b64encode(b'["not", "a", "dict"]').decode()
    loaded = session.load(KEY, {COOKIE: f"{payload}.{session.sign(KEY, payload)}"})
    assert not loaded.logged_in


def test_cookie_flags() -> None:
    attributes = [part.strip() for part in session.cookie(KEY, Session()).split(";")[1:]]
    assert "HttpOnly" in attributes
    assert "SameSite=Lax" in attributes
    assert "Path=/" in attributes
    assert any(a.startswith("Max-Age=") and int(a.split("=")[1]) > 0 for a in attributes)


@pytest.mark.parametrize("on", [True, False])
def test_fresh_cookie_flags(on: bool) -> None:
    value = session.fresh_cookie(on)
    attributes = [part.strip() for part in value.split(";")[1:]]
    assert {"HttpOnly", "SameSite=Lax", "Path=/"} <= set(attributes)
    assert ("Max-Age=0" in attributes) is not on


def test_csrf_tokens_compare_exactly() -> None:
    token = session.new_csrf()
    assert session.same(token, token)
    assert not session.same(token, token[:-1])
    assert not session.same("", token)
    assert not session.same(token + "x", token)


def test_read_cookies_parses_several() -> None:
    cookies = session.read_cookies("a=1; fpt_session=abc.def")
    assert cookies == {"a": "1", COOKIE: "abc.def"}


@pytest.mark.parametrize("foreign", ['prefs={"theme":"dark"}', "greeting=hello world",
                                     "name=Zoë"])
def test_an_unrelated_odd_cookie_does_not_hide_the_session_cookie(foreign: str) -> None:
    value = cookie_value(session.cookie(KEY, Session(token="t0ken", user="alice")))
    cookies = session.read_cookies(f"{foreign}; {COOKIE}={value}")
    assert cookies.get(COOKIE) == value
