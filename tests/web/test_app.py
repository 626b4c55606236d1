"""Story tests over HTTP: a browser against the web, in front of the real API and store (and,
in one story, in front of a real load balancer and two front caches), all on 127.0.0.1."""
from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import quote, unquote

import pytest

from httpkit import Server, Upstream
from tests.fakes import FakeClock, closed_port_address
from tests.web.conftest import NewBrowser, StartWeb
from web import forms
from tests.web.helpers import (EXTERNAL, PASSWORD, Browser, Page, assert_error_page, delete,
                               edit, has_author_tools, like, log_in, log_out, post, search,
                               sent_back, sign_up)

KINDS = ("tweets", "hashtags", "accounts")
TWEET_URL = re.compile(r'<a href="(https?://[^"]*)" rel="nofollow noopener">')
SCRIPT = '<script>alert("x")</script>'
SCRIPT_ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"


def assert_no_raw_script(page: Page) -> None:
    """The page's one script element is ours, from our own file."""
    assert page.text.lower().count("<script") == 1
    assert '<script src="/static/app.js" defer></script>' in page.text


# -- the story -------------------------------------------------------------------------------

def story(browser: Browser) -> None:
    """Sign up, post, like, edit, delete: every step seen at once on the page landed on."""
    landing = sign_up(browser, "alice", "Alice Liddell")
    assert landing.logged_in_as == "alice" and landing.has_post_form

    tweet = post(browser, "Hello #World from @alice")
    timeline = browser.last
    assert timeline is not None
    assert ('Hello <a href="/tags/world">#World</a> from '
            '<a href="/accounts/alice">@alice</a>') in timeline.text
    assert timeline.likes(tweet) == 0

    after_like = like(browser, tweet, "/")
    assert after_like.status == 200 and after_like.likes(tweet) == 1
    browser.get(f"/tweets/{tweet}")
    after_second = like(browser, tweet, f"/tweets/{tweet}")
    assert after_second.likes(tweet) == 2

    edited = edit(browser, tweet, "Goodbye #Moon")
    assert 'Goodbye <a href="/tags/moon">#Moon</a>' in edited.text
    assert "Hello" not in edited.main.split("author-tools")[0]
    assert "edited" in edited.text and edited.likes(tweet) == 2
    assert '/tags/world"' not in edited.main.split("author-tools")[0]

    after_delete = delete(browser, tweet)
    assert tweet not in after_delete.tweet_ids() and "Goodbye" not in after_delete.text
    assert_error_page(browser.get(f"/tweets/{tweet}"), 404)


def test_story_against_the_api(browser: Browser) -> None:
    story(browser)


def test_story_works_unchanged_through_the_load_balancer_and_caches(
        start_web: StartWeb, lb: Server) -> None:
    story(Browser(start_web(lb.url).url))


def test_through_the_caches_every_write_shows_at_once_while_readers_get_cached_pages(
        start_web: StartWeb, lb: Server) -> None:
    web = start_web(lb.url)
    alice, reader = Browser(web.url), Browser(web.url)
    sign_up(alice, "alice")
    tweet = post(alice, "first words")
    for _ in range(4):  # round robin: both caches now hold the timeline and the tweet's page
        assert tweet in reader.get("/").tweet_ids()
        assert reader.get(f"/tweets/{tweet}").likes(tweet) == 0

    for expected in (1, 2, 3, 4):  # each like's page is read past the stale stored copies
        alice.get(f"/tweets/{tweet}")
        assert like(alice, tweet, f"/tweets/{tweet}").likes(tweet) == expected
    alice.get("/")
    assert like(alice, tweet, "/").likes(tweet) == 5
    for text in ("second words", "third words"):
        assert edit(alice, tweet, text).text.count(text) >= 2  # shown, and in the edit box
    second = post(alice, "another one")
    assert alice.last is not None and second in alice.last.tweet_ids()

    dashboard = reader.get("/dashboard")  # its first view: totals only, no steps over time yet
    assert dashboard.text.count("<svg") == 4
    assert ">answered by a cache (hits)</text>" in dashboard.text
    dropped = re.search(r"The front caches dropped ([0-9,]+) copies", dashboard.text)
    assert dropped is not None and int(dropped.group(1).replace(",", "")) >= 1  # the edits
    assert "over 2 cache replicas (2 healthy now)" in dashboard.text
    hits = re.search(r"The caches answered ([0-9,]+) of them", dashboard.text)
    assert hits is not None and int(hits.group(1).replace(",", "")) >= 4


def test_sign_up_logs_in_with_the_username_and_a_log_out_form_in_the_nav(
        browser: Browser) -> None:
    landing = sign_up(browser, "alice")
    assert landing.logged_in_as == "alice"
    assert '<a href="/accounts/alice">@alice</a>' in landing.text
    assert 'action="/logout"' in landing.text and "Log out" in landing.text
    assert 'href="/login"' not in landing.text.split("</nav>")[0]
    assert landing.has_post_form


def test_log_in_again_after_logging_out(browser: Browser) -> None:
    sign_up(browser, "alice")
    log_out(browser)
    landing = log_in(browser, "ALICE")  # usernames ignore case; the nav shows the real one
    assert landing.logged_in_as == "alice" and landing.has_post_form


def test_log_out_hides_the_post_form_and_posting_then_asks_to_log_in(browser: Browser) -> None:
    sign_up(browser, "alice")
    landing = log_out(browser)
    assert not landing.has_post_form and 'href="/login"' in landing.text
    again = browser.get("/")
    assert again.logged_in_as is None and not again.has_post_form
    browser.get("/login")  # an empty timeline has no form: take the token from another page
    answer = browser.submit("/tweets", {"text": "posted while logged out"})
    assert answer.status == 303 and answer.location == "/login"
    assert "posted while logged out" not in browser.get("/").text


def test_search_finds_tweets_hashtags_and_accounts(new_browser: NewBrowser) -> None:
    alice, bob = new_browser(), new_browser()
    sign_up(alice, "alice", "Alice Liddell")
    learning = post(alice, "Learning #Python today")
    other = post(alice, "Nothing to see here")
    sign_up(bob, "pythonista", "Py Fan")

    tweets = search(alice, "learning", "tweets")
    assert tweets.tweet_ids() == [learning] and other not in tweets.tweet_ids()
    assert 'class="active" aria-current="page">Tweets</a>' in tweets.text

    tags = search(alice, "pyth", "hashtags")
    assert '<a href="/tags/python">#python</a> · 1 tweet</li>' in tags.text
    assert 'class="active" aria-current="page">Hashtags</a>' in tags.text

    accounts = search(alice, "pyth", "accounts")
    assert '<a href="/accounts/pythonista">Py Fan <small>@pythonista</small></a>' in accounts.text
    assert "@alice</small>" not in accounts.text
    by_display_name = search(alice, "liddell", "accounts")
    assert '<small>@alice</small>' in by_display_name.text

    for kind in KINDS:
        nothing = search(alice, "zebra", kind)
        assert "Nothing matches “zebra”." in nothing.text and nothing.tweet_ids() == []
        assert "/search?q=zebra&amp;kind=hashtags" in nothing.text  # the tabs keep the query


def test_tag_page_lists_the_tagged_tweets_whatever_the_case(browser: Browser) -> None:
    sign_up(browser, "alice")
    first = post(browser, "one #Cats")
    untagged = post(browser, "no tag at all, just cats")
    second = post(browser, "two #cats and #dogs")
    for path in ("/tags/cats", "/tags/CATS", "/tags/%23cats"):
        page = browser.get(path)
        assert page.status == 200 and "<h1>#cats</h1>" in page.text
        assert page.tweet_ids() == [second, first] and untagged not in page.tweet_ids()


def test_profile_shows_the_authors_tweets_only(new_browser: NewBrowser) -> None:
    alice, bob = new_browser(), new_browser()
    sign_up(alice, "alice", "Alice Liddell")
    sign_up(bob, "bob")
    mine = [post(alice, "alice one"), post(alice, "alice two")]
    theirs = post(bob, "bob one")
    profile = bob.get("/accounts/alice")
    assert profile.status == 200
    assert "<h1>Alice Liddell <small>@alice</small></h1>" in profile.text
    assert "2 tweets" in profile.text
    assert profile.tweet_ids() == mine[::-1] and theirs not in profile.tweet_ids()


def test_account_list_pages_with_an_older_link(browser: Browser, store_client: Upstream) -> None:
    names = {f"user{n:02d}" for n in range(25)}
    for name in sorted(names):
        answer = store_client.fetch("POST", "/accounts", {
            "username": name, "password_hash": "not-a-real-hash", "display_name": name.upper()})
        assert answer.status == 201
    first = browser.get("/accounts")
    first_names = re.findall(r'<li><a href="/accounts/([a-z0-9]+)">', first.text)
    assert len(first_names) == 20
    older = re.search(r'<a rel="next" href="(/accounts\?cursor=[0-9]+)">Older', first.text)
    assert older is not None
    second = browser.get(older.group(1))
    second_names = re.findall(r'<li><a href="/accounts/([a-z0-9]+)">', second.text)
    assert len(second_names) == 5 and "Older" not in second.text
    assert set(first_names) | set(second_names) == names


def test_timeline_pages_with_an_older_link(browser: Browser) -> None:
    sign_up(browser, "alice")
    ids = [post(browser, f"tweet number {n}") for n in range(22)]
    first = browser.get("/")
    assert first.tweet_ids() == ids[::-1][:20]
    older = re.search(r'<a rel="next" href="(/\?cursor=[0-9]+)">Older', first.text)
    assert older is not None and 'rel="prev"' not in first.text  # the newest page
    second = browser.get(older.group(1))
    assert second.tweet_ids() == ids[1::-1]
    newer = re.search(r'<a rel="prev" href="(/\?after=[0-9]+)">← Newer', second.text)
    assert newer is not None and 'rel="next"' not in second.text  # the oldest page
    assert browser.get(newer.group(1)).tweet_ids() == ids[::-1][:20]


def test_edit_and_delete_are_offered_to_the_author_only(new_browser: NewBrowser) -> None:
    alice, bob, visitor = new_browser(), new_browser(), new_browser()
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    tweet = post(alice, "mine alone")
    assert has_author_tools(alice.get(f"/tweets/{tweet}"), tweet)
    for other in (bob, visitor):
        assert not has_author_tools(other.get(f"/tweets/{tweet}"), tweet)
        assert not has_author_tools(other.get("/"), tweet)


def test_another_user_is_refused_edit_and_delete_and_nothing_changes(
        new_browser: NewBrowser) -> None:
    alice, bob = new_browser(), new_browser()
    sign_up(alice, "alice")
    sign_up(bob, "bob")
    tweet = post(alice, "mine alone")
    bob.get(f"/tweets/{tweet}")  # a page with bob's own, valid csrf token
    refused = bob.submit(f"/tweets/{tweet}/edit", {"text": "bob was here"})
    assert_error_page(refused, 403)
    assert_error_page(bob.submit(f"/tweets/{tweet}/delete"), 403)
    page = alice.get(f"/tweets/{tweet}")
    assert page.status == 200 and "mine alone" in page.text
    assert "bob was here" not in page.text and "edited" not in page.text


def test_a_visitor_who_is_not_logged_in_cannot_edit_or_delete(new_browser: NewBrowser) -> None:
    alice, visitor = new_browser(), new_browser()
    sign_up(alice, "alice")
    tweet = post(alice, "mine alone")
    for action in ("edit", "delete"):
        visitor.get(f"/tweets/{tweet}")
        answer = visitor.submit(f"/tweets/{tweet}/{action}", {"text": "visitor was here"})
        assert answer.status == 303 and answer.location == "/login"
    assert_error_page(visitor.get(f"/tweets/{tweet}/delete"), 403)  # not even the question
    page = alice.get(f"/tweets/{tweet}")
    assert page.status == 200 and "mine alone" in page.text and "visitor" not in page.text


# -- validation ------------------------------------------------------------------------------

def test_an_empty_tweet_reshows_the_form_with_the_message(browser: Browser) -> None:
    sign_up(browser, "alice")
    page = sent_back(browser, browser.submit("/tweets", {"text": "   "}), "/")
    assert page.error == "Write something first: a tweet cannot be empty."
    assert page.has_post_form and 'role="alert"' in page.text
    assert "No tweets here yet." in browser.get("/").text


def test_a_tweet_over_280_characters_reshows_what_was_typed_escaped(browser: Browser) -> None:
    sign_up(browser, "alice")
    typed = '<b>"bold"</b>' + "x" * (281 - 13)
    assert len(typed) == 281
    page = sent_back(browser, browser.submit("/tweets", {"text": typed}), "/")
    assert page.error == ("That is 281 characters; a tweet can have at most 280. "
                          "Shorten it by 1 and post again.")
    assert '>&lt;b&gt;&quot;bold&quot;&lt;/b&gt;' + "x" * 268 + "</textarea>" in page.text
    assert '<span id="text-count" class="count over">281/280</span>' in page.text
    assert "<b>" not in page.text
    again = browser.get("/")  # a reload: the message is gone, nothing was posted
    assert "No tweets here yet." in again.text and again.error is None
    assert "x" * 268 + "</textarea>" not in again.text


def test_an_empty_edit_reshows_the_edit_form_with_the_message(browser: Browser) -> None:
    sign_up(browser, "alice")
    tweet = post(browser, "keep me")
    browser.get(f"/tweets/{tweet}")
    page = sent_back(browser, browser.submit(f"/tweets/{tweet}/edit", {"text": " "}),
                     f"/tweets/{tweet}")
    assert page.error == "Write something first: a tweet cannot be empty."
    assert has_author_tools(page, tweet)
    assert "keep me" in browser.get(f"/tweets/{tweet}").text


@pytest.mark.parametrize("username, message", [
    ('<b>"bo', "Usernames are 3 to 30 letters, digits or underscores, with no spaces."),
    ("ab", "Usernames are 3 to 30 letters, digits or underscores, with no spaces."),
    ("search", "That username is a word this site uses for its own pages. Please choose "
               "another."),
])
def test_a_bad_username_reshows_the_sign_up_form(browser: Browser, username: str,
                                                 message: str) -> None:
    browser.get("/signup")
    page = sent_back(browser, browser.submit("/signup", {
        "username": username, "display_name": "Bo <Peep>", "password": PASSWORD}), "/signup")
    assert page.error == message
    assert f'name="username" value="{escaped(username)}"' in page.text
    assert 'name="display_name" value="Bo &lt;Peep&gt;"' in page.text
    assert page.logged_in_as is None


def escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace(
        '"', "&quot;")


def test_a_taken_username_reshows_the_sign_up_form(new_browser: NewBrowser) -> None:
    sign_up(new_browser(), "alice")
    browser = new_browser()
    browser.get("/signup")
    page = sent_back(browser, browser.submit("/signup", {"username": "ALICE",
                                                         "password": PASSWORD}), "/signup")
    assert page.error == "That username is taken. Please choose another."
    assert 'name="username" value="ALICE"' in page.text and page.logged_in_as is None


def test_a_short_password_reshows_the_sign_up_form(browser: Browser) -> None:
    browser.get("/signup")
    page = sent_back(browser, browser.submit("/signup", {
        "username": "alice", "display_name": "Alice", "password": "short"}), "/signup")
    assert page.error == "Passwords need at least 8 characters (and at most 1,024)."
    assert 'value="alice"' in page.text and 'value="Alice"' in page.text
    assert 'value="short"' not in page.text  # a password is never sent back
    assert page.logged_in_as is None


@pytest.mark.parametrize("username, password", [("alice", "wrong password"),
                                                ('<i>"nobody', PASSWORD)])
def test_a_wrong_login_reshows_the_form_with_the_username(new_browser: NewBrowser,
                                                          username: str, password: str) -> None:
    sign_up(new_browser(), "alice")
    browser = new_browser()
    browser.get("/login")
    page = sent_back(browser, browser.submit("/login", {"username": username,
                                                        "password": password}), "/login")
    assert page.error == "Wrong username or password."
    assert f'name="username" value="{escaped(username)}"' in page.text
    assert "<i>" not in page.text and page.logged_in_as is None
    assert password not in page.text


# -- escaping --------------------------------------------------------------------------------

def test_script_and_quotes_in_tweet_text_come_out_escaped(browser: Browser) -> None:
    sign_up(browser, "alice")
    tweet = post(browser, f"{SCRIPT} 'single' #tag")
    for path in ("/", f"/tweets/{tweet}", "/accounts/alice", "/tags/tag",
                 "/search?q=alert&kind=tweets"):
        page = browser.get(path)
        assert page.status == 200
        assert tweet in page.tweet_ids() or path == f"/tweets/{tweet}"
        assert_no_raw_script(page)
        assert f"{SCRIPT_ESCAPED} &#x27;single&#x27;" in page.text
    edit_box = browser.get(f"/tweets/{tweet}").text.split("<textarea")[1]
    assert edit_box.split("</textarea>")[0].endswith(f"{SCRIPT_ESCAPED} &#x27;single&#x27; #tag")


def test_script_and_quotes_in_a_display_name_come_out_escaped(new_browser: NewBrowser) -> None:
    evil = new_browser()
    sign_up(evil, "mallory", f"{SCRIPT} 'M'")
    post(evil, "hi")
    visitor = new_browser()
    for path in ("/accounts/mallory", "/accounts", "/search?q=mallory&kind=accounts"):
        page = visitor.get(path)
        assert page.status == 200
        assert_no_raw_script(page)
        assert f"{SCRIPT_ESCAPED} &#x27;M&#x27;" in page.text


@pytest.mark.parametrize("kind", ["tweets", "hashtags", "accounts"])
def test_a_search_query_is_echoed_back_escaped(browser: Browser, kind: str) -> None:
    q = f"{SCRIPT} 'q'"
    page = browser.get(f"/search?q={quote(q)}&kind={kind}")
    assert page.status == 200
    assert_no_raw_script(page)
    assert f'name="q" value="{SCRIPT_ESCAPED} &#x27;q&#x27;"' in page.text
    assert f"<title>Search: {SCRIPT_ESCAPED}" in page.text


# -- CSRF and the session cookie -------------------------------------------------------------

@pytest.mark.parametrize("token", ["", "wrong-token"])
def test_posting_without_the_right_csrf_token_is_refused(browser: Browser, token: str) -> None:
    sign_up(browser, "alice")
    assert_error_page(browser.submit("/tweets", {"text": "forged"}, csrf=token), 403)
    page = browser.get("/")
    assert "forged" not in page.text and page.logged_in_as == "alice"


def test_another_visitors_csrf_token_is_refused(new_browser: NewBrowser) -> None:
    alice, mallory = new_browser(), new_browser()
    sign_up(alice, "alice")
    sign_up(mallory, "mallory")
    assert mallory.last is not None
    answer = alice.submit("/tweets", {"text": "forged"}, csrf=mallory.last.csrf)
    assert_error_page(answer, 403)
    assert "forged" not in alice.get("/").text


@pytest.mark.parametrize("token", ["", "wrong-token"])
def test_liking_without_the_right_csrf_token_is_refused(new_browser: NewBrowser,
                                                        token: str) -> None:
    alice, visitor = new_browser(), new_browser()
    sign_up(alice, "alice")
    tweet = post(alice, "like me")
    visitor.get(f"/tweets/{tweet}")
    answer = visitor.submit(f"/tweets/{tweet}/like", {"next": "/"}, csrf=token)
    assert_error_page(answer, 403)
    assert alice.get(f"/tweets/{tweet}").likes(tweet) == 0


def test_liking_with_no_session_cookie_at_all_is_refused(new_browser: NewBrowser) -> None:
    alice = new_browser()
    sign_up(alice, "alice")
    tweet = post(alice, "like me")
    assert alice.last is not None
    stranger = new_browser()  # has never loaded a page: a cross-site form post
    answer = stranger.submit(f"/tweets/{tweet}/like", {"next": "/"}, csrf=alice.last.csrf)
    assert_error_page(answer, 403)
    assert alice.get(f"/tweets/{tweet}").likes(tweet) == 0


def test_an_anonymous_like_form_carries_a_token_and_works(new_browser: NewBrowser) -> None:
    alice, visitor = new_browser(), new_browser()
    sign_up(alice, "alice")
    tweet = post(alice, "like me")
    timeline = visitor.get("/")
    assert timeline.logged_in_as is None and timeline.csrf
    assert like(visitor, tweet, "/").likes(tweet) == 1
    visitor.get(f"/tweets/{tweet}")
    assert like(visitor, tweet, f"/tweets/{tweet}").likes(tweet) == 2


@pytest.mark.parametrize("token", ["", "wrong-token"])
def test_logging_out_without_the_right_csrf_token_is_refused(browser: Browser,
                                                             token: str) -> None:
    sign_up(browser, "alice")
    assert_error_page(browser.submit("/logout", csrf=token), 403)
    page = browser.get("/")
    assert page.logged_in_as == "alice" and page.has_post_form


def test_every_session_cookie_is_http_only_same_site_lax_and_site_wide(
        new_browser: NewBrowser) -> None:
    browser = new_browser()
    sign_up(browser, "alice")
    post(browser, "hello")
    log_out(browser)
    sessions = [c for c in browser.set_cookies if c.startswith("fpt_session=")]
    assert len(sessions) >= 5
    for value in browser.set_cookies:
        attributes = {part.strip() for part in value.split(";")[1:]}
        assert {"HttpOnly", "SameSite=Lax", "Path=/"} <= attributes, value


def tamper(value: str) -> str:
    """Change the payload's user to bob and keep the signature."""
    payload, _, signature = value.rpartition(".")
    data = json.loads(base64.urlsafe_b64decode(payload))
    data["user"] = "bob"
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode() + "." + signature


@pytest.mark.parametrize("change", ["forge", "flip", "garbage"])
def test_a_tampered_session_cookie_is_treated_as_logged_out(browser: Browser,
                                                            change: str) -> None:
    sign_up(browser, "alice")
    assert browser.last is not None
    old_csrf = browser.last.csrf
    value = browser.cookies["fpt_session"]
    browser.cookies["fpt_session"] = {
        "forge": tamper(value), "flip": value[:5] + ("A" if value[5] != "A" else "B") + value[6:],
        "garbage": "garbage"}[change]
    page = browser.get("/")
    assert page.status == 200
    assert page.logged_in_as is None and "@alice" not in page.text and "@bob" not in page.text
    assert not page.has_post_form
    # The CSRF token is the browser's, not the session's: the form is fine, but no one is
    # logged in to post it.
    answer = browser.submit("/tweets", {"text": "after tampering"}, csrf=old_csrf)
    assert answer.status == 303 and answer.location == "/login"
    assert "after tampering" not in browser.get("/").text


def test_an_expired_login_shows_as_logged_out_and_posts_nothing(browser: Browser,
                                                                clock: FakeClock) -> None:
    form = sign_up(browser, "alice")
    saved = dict(browser.cookies)
    clock.advance(8 * 24 * 3600)  # the API's tokens last 7 days
    page = browser.get("/")
    assert page.status == 200 and page.logged_in_as is None and not page.has_post_form
    browser.cookies = saved  # a form left open since before it expired
    answer = browser.submit("/tweets", {"text": "too late"}, csrf=form.csrf,
                            idem=form.idem("/tweets"))
    assert answer.status == 303 and answer.location == "/login"
    asked = browser.follow(answer)
    assert asked.logged_in_as is None and asked.notice == forms.NOT_LOGGED_IN
    assert "too late" not in browser.get("/").text


# -- the like form's way back ----------------------------------------------------------------

@pytest.mark.parametrize("come_back_to", ["/", "/accounts/alice", "/search?q=me&kind=tweets",
                                          "/tags/cats?cursor=5"])
def test_a_like_comes_back_to_the_page_it_was_made_on(browser: Browser,
                                                      come_back_to: str) -> None:
    sign_up(browser, "alice")
    tweet = post(browser, "like me #cats")
    answer = browser.submit(f"/tweets/{tweet}/like", {"next": come_back_to})
    assert answer.status == 303 and answer.location == f"{come_back_to}#tweet-{tweet}"


@pytest.mark.parametrize("come_back_to", ["//evil.example/", "https://evil.example/",
                                          "/\\evil.example", "javascript:alert(1)"])
def test_a_like_never_redirects_to_another_site(browser: Browser, come_back_to: str) -> None:
    sign_up(browser, "alice")
    tweet = post(browser, "like me")
    answer = browser.submit(f"/tweets/{tweet}/like", {"next": come_back_to})
    assert answer.status == 303 and answer.location == f"/tweets/{tweet}#tweet-{tweet}"


def test_a_like_never_redirects_to_another_site_even_with_a_tab(browser: Browser) -> None:
    sign_up(browser, "alice")
    tweet = post(browser, "like me")
    answer = browser.submit(f"/tweets/{tweet}/like", {"next": "/\t/evil.example"})
    assert answer.status == 303 and answer.location == f"/tweets/{tweet}#tweet-{tweet}"


def test_a_like_form_cannot_inject_response_headers(browser: Browser) -> None:
    sign_up(browser, "alice")
    tweet = post(browser, "like me")
    answer = browser.submit(f"/tweets/{tweet}/like",
                            {"next": "/\r\nSet-Cookie: planted=1; Path=/"})
    assert answer.status == 303
    assert not any(value.startswith("planted=") for value in answer.all("Set-Cookie"))
    assert "planted" not in browser.cookies


@pytest.mark.parametrize("tag", ["日本", "café"])
def test_a_like_on_a_unicode_tag_page_comes_back_to_that_page(
        browser: Browser, tag: str) -> None:
    sign_up(browser, "alice")
    tweet = post(browser, f"like me #{tag}")
    page = browser.get("/tags/" + quote(tag))
    come_back_to = re.search(r'name="next" value="([^"]*)"', page.text)
    assert come_back_to is not None
    answer = browser.submit(f"/tweets/{tweet}/like", {"next": html.unescape(come_back_to[1])})
    assert answer.status == 303
    assert answer.location.isascii()
    assert unquote(answer.location) == f"/tags/{tag}#tweet-{tweet}"
    assert browser.follow(answer).likes(tweet) == 1


def test_an_unrelated_cookie_for_the_host_does_not_break_the_site(browser: Browser) -> None:
    browser.cookies["greeting"] = "hello world"  # set by another app on 127.0.0.1
    landing = sign_up(browser, "alice")
    assert landing.logged_in_as == "alice"


# -- errors ----------------------------------------------------------------------------------

def test_api_down_shows_a_friendly_503_page(start_web: StartWeb) -> None:
    browser = Browser(start_web(f"http://{closed_port_address()}").url)
    for path in ("/", "/tweets/1", "/accounts", "/accounts/alice", "/search?q=x&kind=tweets",
                 "/tags/x", "/dashboard", "/healthz"):
        page = browser.get(path)
        assert_error_page(page, 503)
        assert "trouble" in page.text and "try again" in page.text
    form = browser.get("/signup")
    assert form.status == 200  # the form itself needs no API
    answer = browser.submit("/signup", {"username": "alice", "password": PASSWORD})
    assert_error_page(answer, 503)


@pytest.mark.parametrize("path", [
    "/tweets/999", "/tweets/99999999999999999999999", "/accounts/nobody",
    "/accounts/no%20such%20name", "/tags/" + "x" * 101, "/no/such/page", "/tweets/abc",
    "/tweets/" + "9" * 5000, "/tweets/01",
])
def test_unknown_things_show_a_404_page(browser: Browser, path: str) -> None:
    page = browser.get(path)
    assert_error_page(page, 404)
    assert "<h1>Page not found</h1>" in page.text and "<title>Error: " in page.text
    assert "no route" not in page.text  # our words, not the router's


def test_a_cursor_no_page_could_have_made_shows_the_first_page(browser: Browser) -> None:
    for cursor in ["9" * 5000, "0", "abc"]:
        assert browser.get(f"/?cursor={cursor}").status == 200


def test_an_error_page_still_shows_who_is_logged_in(browser: Browser) -> None:
    sign_up(browser, "alice")
    for page in [browser.get("/tweets/999"), browser.get("/no/such/page"),
                 browser.submit("/tweets/999/like", {"next": "/"})]:
        assert_error_page(page, 404)
        assert page.logged_in_as == "alice"  # actual before: the guest's log-in links
    assert browser.get("/login").status == 303  # still logged in: no log-in form
    assert browser.get("/").logged_in_as == "alice"


def test_liking_an_unknown_tweet_shows_a_404_page(browser: Browser) -> None:
    browser.get("/login")
    assert_error_page(browser.submit("/tweets/999/like", {"next": "/"}), 404)


def test_an_unknown_username_is_echoed_escaped_on_the_404_page(browser: Browser) -> None:
    page = browser.get("/accounts/" + quote(SCRIPT, safe=""))
    assert_error_page(page, 404)
    assert_no_raw_script(page)


# -- the pages themselves --------------------------------------------------------------------

def test_pages_are_phone_ready_and_load_only_local_resources(browser: Browser) -> None:
    sign_up(browser, "alice")
    tweet = post(browser, "see https://example.com/x and #tag @alice")
    for path in ("/", f"/tweets/{tweet}", "/accounts", "/accounts/alice", "/signup", "/login",
                 "/search?q=see&kind=tweets", "/search?q=t&kind=hashtags",
                 "/search?q=a&kind=accounts", "/tags/tag", "/dashboard", "/nope"):
        linked = ("/", f"/tweets/{tweet}", "/accounts/alice", "/search?q=see&kind=tweets",
                  "/tags/tag")
        visitor = Browser(browser.url) if path in ("/signup", "/login") else browser
        page = visitor.get(path)
        assert page.status in (200, 404), path
        assert '<meta name="viewport"' in page.text, path
        assert '<link rel="stylesheet" href="/static/style.css">' in page.text, path
        # The one kind of link elsewhere: an address in a tweet, which loads nothing.
        outside = TWEET_URL.findall(page.text)
        assert outside == (["https://example.com/x"] if path in linked else []), path
        assert EXTERNAL.search(TWEET_URL.sub("", page.text)) is None, path


def test_the_stylesheet_is_served_as_css(browser: Browser) -> None:
    page = browser.get("/static/style.css")
    assert page.status == 200
    assert (page.header("Content-Type") or "").startswith("text/css")
    assert "body" in page.text and "@import" not in page.text and "url(http" not in page.text


def test_the_dashboard_draws_four_charts_of_totals_and_shows_the_likes(
        browser: Browser) -> None:
    sign_up(browser, "alice")
    tweet = post(browser, "like me")
    for _ in range(3):
        browser.get(f"/tweets/{tweet}")
        like(browser, tweet, f"/tweets/{tweet}")
    page = browser.get("/dashboard")
    assert page.status == 200
    charts = page.text.split('<section class="chart">')[1:]
    assert len(charts) == 5
    over_time, front, feed, database, likes = charts
    assert "samples the counters every 5 s" in over_time and "<svg" not in over_time
    assert "talks to the API directly" in front  # no load balancer: nothing to draw
    assert "copies" in feed
    assert database.count("<svg") == 1 and "API calls" in database
    assert re.search(r"<title>API calls: [1-9][0-9,]*</title>", database)
    assert likes.count("<svg") == 1
    assert "Of 3 likes received" in likes and "0 were dropped" in likes
    assert "<title>likes received: 3</title>" in likes and ">likes received</text>" in likes
    assert 'href="/dashboard/logs"' in page.text and 'href="/dashboard?refresh=5"' in page.text


def test_healthz_answers_ok_when_the_api_is_up(browser: Browser) -> None:
    page = browser.get("/healthz")
    assert page.status == 200 and '"ok"' in page.text


@pytest.mark.parametrize("path", ["/", "/login", "/no/such/page", "/static/style.css"])
def test_every_answer_forbids_framing_inline_code_and_sniffing(
        browser: Browser, path: str) -> None:
    answer = browser.get(path)
    policy = answer.header("content-security-policy") or ""
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert answer.header("x-frame-options") == "DENY"
    assert answer.header("x-content-type-options") == "nosniff"
    assert answer.header("referrer-policy") == "same-origin"
