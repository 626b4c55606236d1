"""Every form that creates something carries a fresh key, and the web sends it on to the API
as ``Idempotency-Key``, so the same form sent twice acts once: the keys on the pages (real
stack), and what the web sends to a fake API that replays a keyed POST's first answer."""
from __future__ import annotations

import base64
import json
import re

import pytest

from httpkit import Request, Response, json_response
from httpkit.messages import error_body
from tests.fakes import FakeUpstream, Lab
from tests.web.conftest import StartWeb
from tests.web.helpers import (PASSWORD, Browser, assert_error_page, log_out, post, sent_back,
                               sign_up)

KEY_SHAPE = re.compile(r"[A-Za-z0-9_-]{22}")  # secrets.token_urlsafe(16)
TWEET = {"id": 1, "author": "alice", "text": "hello", "likes": 0,
         "created_at": "2024-01-01T00:00:00Z", "edited_at": None}
LOG_IN = {"username": "alice", "password": PASSWORD}
SIGN_UP = {**LOG_IN, "display_name": "Alice"}
# Each form: the page it is on, where it posts, what is typed in, what the API is sent.
FORMS = {
    "sign up": ("/signup", "/signup", SIGN_UP, "/accounts"),
    "log in": ("/login", "/login", LOG_IN, "/sessions"),
    "post": ("/", "/tweets", {"text": "hello"}, "/tweets"),
    "like": ("/", "/tweets/1/like", {"next": "/"}, "/tweets/1/like"),
}
NOT_OURS = ["", "short", "x" * 256, "has spaces in it, 22 chars", 'quoted"quoted"quoted"',
            "é" * 22, "base64+with/slashes=="]


class FakeAPI:
    """Answers the web's calls as the API does, replaying a keyed POST's first success (with
    ``Idempotent-Replayed: true``) and refusing the key with another body (422)."""

    def __init__(self) -> None:
        self.first: dict[tuple[str, str], tuple[bytes, Response]] = {}
        self.logins = 0

    def __call__(self, request: Request) -> Response:
        key = request.headers.get("idempotency-key")
        if request.method != "POST" or key is None:
            return self.answer(request)
        if (request.path, key) in self.first:
            body, response = self.first[request.path, key]
            if body != request.body:
                return json_response(error_body("idempotency_key_reused", "reused"), 422)
            return Response(response.status, response.body,
                            [*response.headers, ("Idempotent-Replayed", "true")])
        response = self.answer(request)
        if response.status < 300:
            self.first[request.path, key] = (request.body, response)
        return response

    def answer(self, request: Request) -> Response:
        route = (request.method, request.path)
        if route == ("POST", "/sessions"):
            self.logins += 1
            return json_response({"token": f"token{self.logins}",
                                  "account": {"username": "alice"}}, 201)
        if route == ("POST", "/accounts"):
            return json_response({"username": "alice"}, 201)
        if route == ("POST", "/tweets"):
            return json_response(TWEET, 201)
        if route == ("POST", "/tweets/1/like"):
            return json_response({"likes": 1})
        if route == ("GET", "/tweets"):
            return json_response({"tweets": [TWEET], "next": None})
        return json_response(error_body("not_found", "no such thing"), 404)


@pytest.fixture
def fake_api(lab: Lab) -> FakeUpstream:
    return lab.upstream(FakeAPI())


@pytest.fixture
def visitor(start_web: StartWeb, fake_api: FakeUpstream) -> Browser:
    """A browser on a web in front of the fake API."""
    return Browser(start_web(fake_api.url).url)


def sent_keys(api: FakeUpstream, path: str) -> list[str | None]:
    """Return the Idempotency-Key of each POST the API was sent to ``path`` (None: none)."""
    return [seen.headers.get("idempotency-key") for seen in api.requests("POST")
            if seen.target == path]


def open_form(visitor: Browser, form: str) -> None:
    """Load the page a form is on, logged in first where the form needs it."""
    page, action, _, _ = FORMS[form]
    if action in ("/tweets", "/tweets/1/like"):
        visitor.get("/login")
        assert visitor.submit("/login", LOG_IN).status == 303
    assert visitor.get(page).status == 200


def session_token(visitor: Browser) -> str:
    payload = visitor.cookies["fpt_session"].rpartition(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(payload))["token"])


# -- the keys on the pages -------------------------------------------------------------------

def test_sign_up_and_log_in_forms_carry_a_new_key_each_time_they_are_shown(
        browser: Browser) -> None:
    for form in ("/signup", "/login"):
        first, second = browser.get(form).idem(form), browser.get(form).idem(form)
        assert KEY_SHAPE.fullmatch(first) and KEY_SHAPE.fullmatch(second)
        assert first != second


@pytest.mark.parametrize("where", ["/", "/tweets/{id}", "/accounts/alice", "/tags/cats",
                                   "/search?q=cats&kind=tweets"])
def test_every_like_button_and_the_post_form_carry_their_own_fresh_key(
        browser: Browser, where: str) -> None:
    sign_up(browser, "alice")
    tweets = [post(browser, f"#cats number {n}") for n in (1, 2)]
    path = where.format(id=tweets[0])
    shown = [tweets[0]] if "{id}" in where else tweets
    renders = []
    for _ in range(2):
        keys = browser.get(path).idem_keys()
        forms = [f"/tweets/{tweet}/like" for tweet in shown] + (["/tweets"] if path == "/" else [])
        assert all(len(keys[form]) == 1 and KEY_SHAPE.fullmatch(keys[form][0]) for form in forms)
        assert keys["/logout"] == []  # only forms that create something carry one
        renders.append({keys[form][0] for form in forms})
        assert len(renders[-1]) == len(forms)  # no two forms share a key
    assert not renders[0] & renders[1]  # nor two renders


def test_a_form_shown_again_after_an_error_has_a_new_key(browser: Browser) -> None:
    sign_up(browser, "alice")
    key = browser.get("/").idem("/tweets")
    again = sent_back(browser, browser.submit("/tweets", {"text": "  "}), "/")
    assert KEY_SHAPE.fullmatch(again.idem("/tweets")) and again.idem("/tweets") != key
    log_out(browser)

    key = browser.get("/login").idem("/login")
    again = sent_back(browser, browser.submit("/login", {"username": "alice",
                                                         "password": "wrong password"}), "/login")
    assert again.idem("/login") not in ("", key)

    key = browser.get("/signup").idem("/signup")
    again = sent_back(browser, browser.submit("/signup", {"username": "alice",
                                                          "password": PASSWORD}), "/signup")
    assert again.idem("/signup") not in ("", key)


# -- what the API is sent --------------------------------------------------------------------

@pytest.mark.parametrize("form", FORMS)
def test_a_form_sends_its_key_to_the_api_as_the_idempotency_key(
        visitor: Browser, fake_api: FakeUpstream, form: str) -> None:
    open_form(visitor, form)
    _, action, fields, api_path = FORMS[form]
    assert visitor.last is not None
    key = visitor.last.idem(action)
    assert visitor.submit(action, fields).status == 303
    assert sent_keys(fake_api, api_path)[-1] == key
    if form == "sign up":  # and logs in with it too: a sign-up sent twice logs in once
        assert sent_keys(fake_api, "/sessions") == [key]


@pytest.mark.parametrize("value", NOT_OURS)
@pytest.mark.parametrize("form", FORMS)
def test_a_missing_or_foreign_key_sends_none_and_the_form_still_works(
        visitor: Browser, fake_api: FakeUpstream, form: str, value: str) -> None:
    open_form(visitor, form)
    _, action, fields, api_path = FORMS[form]
    answer = visitor.submit(action, fields, idem=value)
    assert answer.status == 303, answer.text
    assert sent_keys(fake_api, api_path)[-1] is None


@pytest.mark.parametrize("form", ["post", "like"])
def test_the_same_form_sent_twice_sends_the_same_key_and_both_answers_redirect(
        visitor: Browser, fake_api: FakeUpstream, form: str) -> None:
    open_form(visitor, form)
    _, action, fields, api_path = FORMS[form]
    first, second = visitor.submit(action, fields), visitor.submit(action, fields)
    back = "/#tweet-1" if form == "like" else "/"
    assert (first.status, first.location) == (second.status, second.location) == (303, back)
    keys = sent_keys(fake_api, api_path)
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0] is not None


@pytest.mark.parametrize("form", ["sign up", "log in"])
def test_a_log_in_sent_again_after_its_answer_was_lost_logs_in_with_the_first_token(
        visitor: Browser, fake_api: FakeUpstream, form: str) -> None:
    open_form(visitor, form)
    _, action, fields, api_path = FORMS[form]
    cookies = dict(visitor.cookies)  # the first answer never reached the browser
    assert visitor.submit(action, fields).status == 303
    visitor.cookies = cookies
    replayed = visitor.submit(action, fields)
    assert replayed.status == 303 and replayed.location == "/"
    assert visitor.follow(replayed).logged_in_as == "alice"
    assert session_token(visitor) == "token1"  # the replayed answer's, not a second log-in's
    keys = sent_keys(fake_api, api_path)
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0] is not None


def test_the_same_key_with_other_text_is_a_page_that_says_so_and_a_reload_fixes_it(
        visitor: Browser, fake_api: FakeUpstream) -> None:
    open_form(visitor, "post")
    assert visitor.submit("/tweets", {"text": "hello"}).status == 303
    refused = visitor.submit("/tweets", {"text": "something else"})  # the same, kept page
    assert_error_page(refused, 422)
    assert "already sent" in refused.text and "trouble" not in refused.text
    visitor.get("/")
    assert visitor.submit("/tweets", {"text": "something else"}).status == 303


def test_csrf_is_still_checked_on_a_form_with_a_key(visitor: Browser,
                                                    fake_api: FakeUpstream) -> None:
    open_form(visitor, "post")
    assert visitor.submit("/tweets", {"text": "hello"}, csrf="forged").status == 403
    assert sent_keys(fake_api, "/tweets") == []
