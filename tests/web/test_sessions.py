"""Story tests of ending sessions through the web: log-out ends the token at the API, so a
copy of the old cookie is logged out too while the user's other browsers stay logged in, and
/password changes the password, logging out every other browser."""
from __future__ import annotations

from httpkit import Request, Response, json_response
from tests.fakes import Lab
from tests.web.conftest import NewBrowser, StartWeb
from tests.web.helpers import (PASSWORD, Browser, Page, assert_error_page, log_in, log_out,
                               post, sent_back, sign_up)
from web import session

NEW_PASSWORD = "staple battery horse"


def replay(browser: Browser, cookies: dict[str, str]) -> None:
    """Put back cookies saved earlier, as someone holding a copy of them would."""
    browser.cookies = dict(cookies)


def test_a_cookie_saved_before_logging_out_is_logged_out_when_replayed(
        browser: Browser) -> None:
    sign_up(browser, "alice")
    post(browser, "before logging out")
    saved, page = dict(browser.cookies), browser.get("/")
    log_out(browser)

    replay(browser, saved)
    again = browser.get("/")
    assert again.status == 200  # the page, as a logged-out visitor sees it: no error
    assert again.logged_in_as is None and not again.has_post_form
    assert 'href="/login"' in again.text.split("</nav>")[0]
    assert browser.cookies["fpt_session"] != saved["fpt_session"]  # replaced

    replay(browser, saved)  # and posting with the old cookie and its form's token
    answer = browser.submit("/tweets", {"text": "posted after logging out"}, csrf=page.csrf,
                            idem=page.idem("/tweets"))
    assert answer.status == 303 and answer.location == "/login"
    assert browser.follow(answer).logged_in_as is None
    assert "posted after logging out" not in browser.get("/").text


def test_logging_out_in_one_browser_leaves_the_others_logged_in(
        new_browser: NewBrowser) -> None:
    laptop, phone, bob = new_browser(), new_browser(), new_browser()
    sign_up(laptop, "alice")
    log_in(phone, "alice")
    sign_up(bob, "bob")
    saved = dict(laptop.cookies)
    log_out(laptop)
    assert laptop.get("/").logged_in_as is None
    assert phone.get("/").logged_in_as == "alice"
    post(phone, "still logged in on the phone")
    assert bob.get("/").logged_in_as == "bob"
    replay(laptop, saved)  # a copy of the laptop's cookie stays logged out
    assert laptop.get("/").logged_in_as is None
    log_out(phone)
    assert phone.get("/").logged_in_as is None


def test_log_out_asks_the_api_to_end_the_token_and_clears_the_cookie_if_it_fails(
        lab: Lab, start_web: StartWeb) -> None:
    def failing(request: Request) -> Response:
        if request.path == "/sessions" and request.method == "GET":
            return json_response({"account_id": 1, "expires_at": "2030-01-01T00:00:00Z"})
        return json_response({"error": {"code": "internal_error", "message": "boom"}}, 500)
    api = lab.upstream(failing)
    browser = Browser(start_web(api.url).url)
    browser.cookies["fpt_session"] = session.cookie(
        b"test", session.Session(token="the.token", user="alice")
    ).split(";")[0].partition("=")[2]
    assert browser.get("/logout").logged_in_as == "alice"  # the page that asks to log out
    answer = browser.submit("/logout")
    assert answer.status == 303 and answer.location == "/"
    ended = [seen for seen in api.seen if seen.method == "DELETE"]
    assert [(seen.target, seen.headers["authorization"]) for seen in ended] == \
        [("/sessions", "Bearer the.token")]
    page = browser.get("/login")
    assert page.logged_in_as is None and page.notice == "Logged out."


# -- changing the password ---------------------------------------------------------------------

def change_password(browser: Browser, current: str, new: str, again: str | None = None) -> Page:
    """Fill in the password page's form and send it; return the answer."""
    browser.get("/password")
    return browser.submit("/password", {"password": current, "new_password": new,
                                        "new_password_again": new if again is None else again})


def test_the_password_page_changes_the_password_and_logs_out_other_sessions(
        new_browser: NewBrowser) -> None:
    browser, other = new_browser(), new_browser()
    landing = sign_up(browser, "alice")
    assert 'href="/password"' in landing.text.split("</nav>")[0]
    log_in(other, "alice")
    saved = dict(browser.cookies)

    answer = change_password(browser, PASSWORD, NEW_PASSWORD)
    assert answer.status == 303 and answer.location == "/password"
    done = browser.follow(answer)
    assert done.status == 200 and (done.notice or "").startswith("Your password is changed")
    assert done.logged_in_as == "alice"
    post(browser, "still logged in here")

    assert other.get("/").logged_in_as is None
    replay(other, saved)
    assert other.get("/").logged_in_as is None  # the cookie from before the change, too

    log_out(browser)
    browser.get("/login")
    refused = sent_back(browser, browser.submit("/login", {"username": "alice",
                                                           "password": PASSWORD}), "/login")
    assert refused.error == "Wrong username or password."
    log_in(browser, "alice", NEW_PASSWORD)


def test_a_wrong_current_password_is_refused_and_changes_nothing(browser: Browser) -> None:
    sign_up(browser, "alice")
    page = sent_back(browser, change_password(browser, "not my password", NEW_PASSWORD),
                     "/password")
    assert_error_page_with(page, "That is not your current password.")
    assert page.logged_in_as == "alice"
    post(browser, "still logged in")
    log_out(browser)
    log_in(browser, "alice", PASSWORD)


def test_a_bad_new_password_reshows_the_form_in_our_words(browser: Browser) -> None:
    sign_up(browser, "alice")
    for new, again, message in [
            ("short", None, "The new password must be at least 8 characters long"),
            (NEW_PASSWORD, "something else", "The two new passwords are not the same.")]:
        answer = change_password(browser, PASSWORD, new, again)
        assert_error_page_with(sent_back(browser, answer, "/password"), message)
    log_out(browser)
    log_in(browser, "alice", PASSWORD)


def assert_error_page_with(page: Page, message: str) -> None:
    assert message in (page.error or ""), (page.status, page.text)
    assert 'action="/password"' in page.text  # the form again, ready to retry
    assert NEW_PASSWORD not in page.text and PASSWORD not in page.text  # never echoed


def test_the_password_page_needs_a_login_and_the_forms_token(browser: Browser) -> None:
    first = browser.get("/password")
    assert first.status == 303 and first.location == "/login"
    sign_up(browser, "alice")
    browser.get("/password")
    answer = browser.submit("/password", {"password": PASSWORD, "new_password": NEW_PASSWORD,
                                          "new_password_again": NEW_PASSWORD}, csrf="wrong")
    assert_error_page(answer, 403)
    log_out(browser)
    log_in(browser, "alice", PASSWORD)
