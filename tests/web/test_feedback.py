"""Story tests of what a visitor is told and keeps: confirmations after every action, a like
that comes back to the same place, drafts that survive a refused form, forms that keep working
after logging in or out in another tab, and pages that say what to do next."""
from __future__ import annotations

import json
import re

import pytest

from httpkit import Server
from tests.fakes import FakeClock, closed_port_address
from tests.web.conftest import NewBrowser, StartWeb
from tests.web.helpers import (PASSWORD, Browser, assert_error_page, delete, like, log_in,
                               log_out, post, sent_back, sign_up)
from web import forms, pages, words

NEXT_FIELD = re.compile(r'name="next" value="([^"]*)"')


# -- a like keeps your place -----------------------------------------------------------------

def test_a_like_on_an_older_page_comes_back_to_that_page_at_that_tweet(browser: Browser) -> None:
    sign_up(browser, "alice")
    ids = [post(browser, f"tweet {n}") for n in range(25)]
    older = browser.get(f"/?cursor={ids[-20]}")
    tweet = older.tweet_ids()[2]
    assert set(NEXT_FIELD.findall(older.text)) == {f"/?cursor={ids[-20]}"}
    back = like(browser, tweet, f"/?cursor={ids[-20]}")
    assert back.tweet_ids() == older.tweet_ids() and back.likes(tweet) == 1
    assert f'<li class="tweet" id="tweet-{tweet}">' in back.text


def test_a_like_from_page_two_of_a_search_comes_back_to_page_two(browser: Browser) -> None:
    sign_up(browser, "alice")
    ids = [post(browser, f"coffee {n}") for n in range(22)]
    here = f"/search?q=coffee&kind=tweets&cursor={ids[2]}"
    second = browser.get(here)
    assert second.tweet_ids() == [ids[1], ids[0]]
    assert NEXT_FIELD.findall(second.text) == [here.replace("&", "&amp;")] * 2
    assert like(browser, ids[0], here).tweet_ids() == [ids[1], ids[0]]


def test_a_like_asked_for_as_json_answers_the_new_count_and_a_fresh_key(
        browser: Browser) -> None:
    """What /static/app.js does: like without leaving the page."""
    sign_up(browser, "alice")
    tweet = post(browser, "like me")
    page = browser.get("/")
    answer = browser.request("POST", f"/tweets/{tweet}/like", (
        f"csrf_token={page.csrf}&idem={page.idem(f'/tweets/{tweet}/like')}&next=/").encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
    assert answer.status == 200 and answer.header("Cache-Control") == "no-store"
    data = json.loads(answer.text)
    assert data["likes"] == 1 and data["label"] == "Like, 1 like" and data["id"] == tweet
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,}", data["idem"])
    assert data["idem"] != page.idem(f"/tweets/{tweet}/like")
    assert "fpt_fresh=1; Max-Age=30" in " ".join(answer.all("Set-Cookie"))  # a reload is new
    assert browser.get(f"/tweets/{tweet}").likes(tweet) == 1


def test_a_like_buttons_name_says_the_count(browser: Browser) -> None:
    sign_up(browser, "alice")
    tweet = post(browser, "like me")
    like(browser, tweet, "/")
    assert 'aria-label="Like, 1 like"><span aria-hidden="true">♥</span> <span class="count">1' \
        in browser.get("/").text
    like(browser, tweet, "/")
    assert 'aria-label="Like, 2 likes"' in browser.get("/").text


# -- confirmations ---------------------------------------------------------------------------

def test_every_action_is_confirmed_once_on_the_page_after_it(browser: Browser) -> None:
    landing = sign_up(browser, "alice", "Alice")
    assert landing.notice == "Welcome, @alice! Your account is ready."
    assert browser.get("/").notice is None  # said once: a reload says nothing more
    tweet = post(browser, "hello")  # asserts "Posted."
    browser.get(f"/tweets/{tweet}")
    saved = browser.follow(browser.submit(f"/tweets/{tweet}/edit", {"text": "hello again"}))
    assert saved.notice == "Saved." and "hello again" in saved.text
    delete(browser, tweet)  # asserts the question, then "Deleted."
    logged_out = log_out(browser)
    assert logged_out.notice == "Logged out."
    assert log_in(browser, "alice").notice == "Logged in as @alice."


def test_delete_asks_first_and_cancel_goes_back(browser: Browser) -> None:
    sign_up(browser, "alice")
    tweet = post(browser, "think twice")
    asking = browser.get(f"/tweets/{tweet}/delete")
    assert asking.status == 200 and "<title>Delete this tweet? · " in asking.text
    assert "think twice" in asking.main and f'action="/tweets/{tweet}/delete"' in asking.text
    assert f'<a class="button secondary" href="/tweets/{tweet}">Cancel</a>' in asking.text
    assert browser.get(f"/tweets/{tweet}").status == 200  # asking deleted nothing


def test_only_the_author_is_asked_whether_to_delete(new_browser: NewBrowser) -> None:
    alice, bob = new_browser(), new_browser()
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    tweet = post(alice, "mine")
    assert_error_page(bob.get(f"/tweets/{tweet}/delete"), 403)
    assert_error_page(bob.get("/tweets/999/delete"), 404)


def test_the_log_out_address_asks_to_log_out_instead_of_an_error(browser: Browser) -> None:
    sign_up(browser, "alice")
    asking = browser.get("/logout")
    assert asking.status == 200 and 'action="/logout"' in asking.main
    assert browser.get("/").logged_in_as == "alice"
    log_out(browser)
    answer = browser.get("/logout")
    assert answer.status == 303 and browser.follow(answer).notice == "You are not logged in."


def test_log_in_and_sign_up_are_not_offered_to_someone_logged_in(browser: Browser) -> None:
    landing = sign_up(browser, "alice")
    nav = landing.text.split("</nav>", 1)[0]
    assert 'href="/login"' not in nav and 'href="/signup"' not in nav
    for path in ("/login", "/signup"):
        answer = browser.get(path)
        assert answer.status == 303 and answer.location == "/"
        assert browser.follow(answer).notice == (
            "You are logged in as @alice. To use another account, log out first.")


# -- drafts and refused forms ----------------------------------------------------------------

def test_a_refused_post_comes_back_to_the_timeline_with_the_text_and_reloads_safely(
        browser: Browser) -> None:
    sign_up(browser, "alice")
    text = "😀" * 281  # 281 code points: too long, though only 562 UTF-16 units
    page = sent_back(browser, browser.submit("/tweets", {"text": text}), "/")
    assert f">{text}</textarea>" in page.text and "281/280" in page.text
    assert page.error is not None and page.error.startswith("That is 281 characters")
    reloaded = browser.get("/")
    assert reloaded.error is None and text not in reloaded.text
    assert reloaded.tweet_ids() == []


def test_280_emoji_are_one_tweet_of_280_characters(browser: Browser) -> None:
    sign_up(browser, "alice")
    tweet = post(browser, "😀" * 280)
    assert "😀" * 280 + "</p>" in browser.get(f"/tweets/{tweet}").text


def test_a_draft_too_big_for_a_cookie_is_shown_again_at_once(browser: Browser) -> None:
    sign_up(browser, "alice")
    text = "x" * 5000
    page = browser.submit("/tweets", {"text": text})
    assert page.status == 400 and f">{text}</textarea>" in page.text and page.error


def test_a_form_opened_before_logging_out_and_in_again_in_another_tab_still_posts(
        browser: Browser) -> None:
    sign_up(browser, "alice")
    old_tab = browser.get("/")
    log_out(browser)  # in another tab: same browser, same cookies
    log_in(browser, "alice")
    answer = browser.submit("/tweets", {"text": "from the old tab"}, csrf=old_tab.csrf,
                            idem=old_tab.idem("/tweets"))
    assert answer.status == 303 and answer.location == "/"
    page = browser.follow(answer)
    assert page.notice == "Posted." and "from the old tab" in page.text


def test_a_post_after_logging_out_in_another_tab_waits_for_the_next_log_in(
        browser: Browser) -> None:
    sign_up(browser, "alice")
    old_tab = browser.get("/")
    log_out(browser)
    answer = browser.submit("/tweets", {"text": "do not lose me"}, csrf=old_tab.csrf,
                            idem=old_tab.idem("/tweets"))
    assert answer.status == 303 and answer.location == "/login"
    asked = browser.follow(answer)
    assert asked.notice == forms.NOT_LOGGED_IN and "do not lose me" not in asked.main
    back = log_in(browser, "alice")
    assert ">do not lose me</textarea>" in back.text and back.tweet_ids() == []
    assert ">do not lose me</textarea>" not in browser.get("/").text  # shown once


def test_a_form_with_a_token_that_does_not_match_shows_the_post_form_again_with_the_text(
        browser: Browser) -> None:
    sign_up(browser, "alice")
    page = browser.submit("/tweets", {"text": "kept"}, csrf="not-the-token")
    assert_error_page(page, 403)
    assert page.error == forms.NOT_CHECKED and ">kept</textarea>" in page.text
    assert browser.get("/").tweet_ids() == []


def test_a_visitor_without_cookies_is_told_that_cookies_are_needed(
        new_browser: NewBrowser) -> None:
    alice = new_browser()
    sign_up(alice, "alice")
    tweet = post(alice, "like me")
    page = alice.get("/")
    no_cookies = new_browser()  # sends no cookie at all, whatever it is given
    answer = no_cookies.submit(f"/tweets/{tweet}/like", {"next": "/"}, csrf=page.csrf)
    assert_error_page(answer, 403)
    assert "<h1>Cookies are needed for that</h1>" in answer.text
    assert alice.get("/").likes(tweet) == 0


def test_a_post_the_api_could_not_take_keeps_the_text(start_web: StartWeb, api: Server) -> None:
    up = Browser(start_web(api.url).url)
    sign_up(up, "alice")
    form = up.get("/")
    down = Browser(start_web(f"http://{closed_port_address()}").url, cookies=dict(up.cookies))
    answer = down.submit("/tweets", {"text": "wait for me"}, csrf=form.csrf,
                         idem=form.idem("/tweets"))
    assert_error_page(answer, 503)
    assert ">wait for me</textarea>" in answer.text and "trouble" in (answer.error or "")


# -- the pages say where you are -------------------------------------------------------------

def test_the_navigation_marks_the_current_page_and_offers_a_skip_link(browser: Browser) -> None:
    sign_up(browser, "alice")
    for path, current in [("/", "Timeline"), ("/search", "Search"), ("/accounts", "Accounts"),
                          ("/dashboard", "Dashboard"), ("/accounts/alice", "@alice")]:
        page = browser.get(path)
        nav = page.text.split("</nav>", 1)[0]
        assert re.findall(r'aria-current="page">([^<]+)</a>', nav) == [current], path
        assert '<a class="skip" href="#main">Skip to content</a>' in page.text


def test_tweets_show_display_names_and_relative_times(start_web: StartWeb, api: Server) -> None:
    clock = FakeClock(0)
    web = start_web(api.url, clock)
    browser = Browser(web.url)
    sign_up(browser, "alice", "Alice Liddell")
    tweet = post(browser, "hello")
    page = browser.get(f"/tweets/{tweet}")
    byline = '<span class="name">Alice Liddell</span> <span class="handle">@alice</span>'
    assert byline in page.text
    created = re.search(r'<time datetime="([^"]+)" title="([^"]+ UTC)">([^<]+)</time>', page.text)
    assert created is not None
    clock.now = words.moment(created[1]).timestamp() + 300  # type: ignore[union-attr]
    assert f'title="{created[2]}">5m ago</time>' in browser.get(f"/tweets/{tweet}").text


def test_an_empty_search_says_what_each_tab_finds(browser: Browser) -> None:
    for kind, hint in pages.SEARCH_HINTS.items():
        page = browser.get(f"/search?kind={kind}")
        assert page.status == 200 and hint in page.text


@pytest.mark.parametrize("path, kind", [("/favicon.ico", "image/svg+xml"),
                                        ("/static/favicon.svg", "image/svg+xml"),
                                        ("/static/app.js", "text/javascript")])
def test_the_icon_and_the_script_are_served(browser: Browser, path: str, kind: str) -> None:
    answer = browser.get(path)
    assert answer.status == 200 and (answer.header("Content-Type") or "").startswith(kind)


def test_an_unknown_static_file_is_a_404_page(browser: Browser) -> None:
    assert_error_page(browser.get("/static/nothing.css"), 404)


def test_old_form_addresses_lead_somewhere_useful(browser: Browser) -> None:
    """/tweets was the address bar after a refused post; reloading it must not be a 405."""
    for path, location in [("/tweets", "/"), ("/tweets/5/like", "/tweets/5"),
                           ("/tweets/5/edit", "/tweets/5")]:
        answer = browser.get(path)
        assert answer.status == 303 and answer.location == location


def test_the_page_title_says_there_was_an_error(browser: Browser) -> None:
    browser.get("/login")
    page = sent_back(browser, browser.submit("/login", {"username": "nobody",
                                                        "password": PASSWORD}), "/login")
    assert "<title>Error: Log in · First Price Twitter</title>" in page.text
    assert 'id="error-summary" role="alert" tabindex="-1" autofocus' in page.text
