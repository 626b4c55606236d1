"""A tiny browser for the web tests, and the things a visitor does with it.

``Browser`` keeps a cookie jar (parses ``Set-Cookie``, honours ``Max-Age=0``, sends
``Cookie``), does not follow redirects by itself (a test asserts the 303 and its ``Location``
first), and remembers the last page it loaded so a form post can carry that page's hidden
``csrf_token`` and the form's own ``idem`` key as a real browser would. The story helpers
(``sign_up(browser, "alice")``, ``post(browser, text)``, ...) do what a visitor does and assert
what the visitor would see when it works; a test that expects a refusal calls
``browser.submit`` itself.
"""
from __future__ import annotations

import html
import http.client
import re
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

PASSWORD = "correct horse battery"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]*)"')
FORM = re.compile(r'<form [^>]*action="([^"]*)"[^>]*>(.*?)</form>', re.S)
IDEM_FIELD = re.compile(r'<input type="hidden" name="idem" value="([^"]*)" autocomplete="off">')
TWEET_ITEM = re.compile(r'<li class="tweet" id="tweet-([0-9]+)">')
ACCOUNT_ITEM = re.compile(r'<li><a href="/accounts/([A-Za-z0-9_]+)">')
LIKE_BUTTON = re.compile(r'action="/tweets/([0-9]+)/like">.*?<span class="count">([0-9,]+)</span>'
                         r'</button>', re.S)
# An attribute that would load or link something from another host.
EXTERNAL = re.compile(r"""\b(?:src|href|action)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//""", re.I)


@dataclass
class Page:
    """One answer as the browser received it."""

    status: int
    headers: list[tuple[str, str]]
    text: str

    def header(self, name: str) -> str | None:
        """Return the first value of a header, or None."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def all(self, name: str) -> list[str]:
        """Return every value of a header."""
        return [value for key, value in self.headers if key.lower() == name.lower()]

    @property
    def location(self) -> str:
        location = self.header("Location")
        assert location is not None, f"no Location in a {self.status} answer"
        return location

    @property
    def csrf(self) -> str:
        """Return the page's hidden csrf_token (the first form's; they are all the same)."""
        tokens = set(CSRF_FIELD.findall(self.text))
        assert len(tokens) == 1, f"expected one csrf token on the page, found {tokens}"
        return tokens.pop()

    def idem_keys(self) -> dict[str, list[str]]:
        """Return the idem keys of the page's forms, by the action they post to."""
        keys: dict[str, list[str]] = {}
        for action, inside in FORM.findall(self.text):
            keys.setdefault(action, []).extend(IDEM_FIELD.findall(inside))
        return keys

    def idem(self, action: str) -> str:
        """Return the idem key of the one form posting to ``action``, or "" if it has none."""
        keys = self.idem_keys().get(action, [])
        assert len(keys) <= 1, f"{len(keys)} forms post to {action} with a key"
        return keys[0] if keys else ""

    def likes(self, tweet_id: int) -> int:
        """Return the like count the page shows on a tweet's like button."""
        for found_id, count in LIKE_BUTTON.findall(self.text):
            if int(found_id) == tweet_id:
                return int(count.replace(",", ""))
        raise AssertionError(f"no like button for tweet {tweet_id} on the page")

    def tweet_ids(self) -> list[int]:
        """Return the ids of the tweets listed on the page, in order."""
        return [int(found) for found in TWEET_ITEM.findall(self.text)]

    @property
    def logged_in_as(self) -> str | None:
        """Return the username the navigation shows as logged in, or None."""
        nav = self.text.split("</nav>", 1)[0]
        found = re.search(r'<a href="/accounts/([A-Za-z0-9_]+)"(?: aria-current="page")?>@\1</a>',
                          nav)
        return found.group(1) if found and 'action="/logout"' in nav else None

    @property
    def main(self) -> str:
        """Return the page's main content, without the header's links."""
        return self.text.split('<main id="main" tabindex="-1">', 1)[1].split("</main>", 1)[0]

    @property
    def notice(self) -> str | None:
        """Return the one-line confirmation the page shows ("Posted."), or None."""
        found = re.search(r'<p class="notice" role="status">(.*?)</p>', self.text)
        return html.unescape(found.group(1)) if found else None

    @property
    def error(self) -> str | None:
        """Return the error summary the page shows, or None."""
        found = re.search(r'<div class="error" id="error-summary"[^>]*>\s*<h2>[^<]*</h2>\s*'
                          r'<p>(.*?)</p>', self.text, re.S)
        return html.unescape(found.group(1)) if found else None

    @property
    def has_post_form(self) -> bool:
        return 'action="/tweets"' in self.text


@dataclass
class Browser:
    """A browser without JavaScript: cookies yes, automatic redirects no."""

    url: str
    cookies: dict[str, str] = field(default_factory=dict)
    set_cookies: list[str] = field(default_factory=list)  # every Set-Cookie ever received
    last: Page | None = None

    def request(self, method: str, target: str, body: bytes = b"",
                headers: dict[str, str] | None = None) -> Page:
        """Send one request on a new connection and keep the cookies of the answer."""
        parts = urlsplit(self.url)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        all_headers = dict(headers or {})
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            connection.request(method, target, body=body, headers=all_headers)
            answer = connection.getresponse()
            page = Page(answer.status, answer.getheaders(),
                        answer.read().decode("utf-8", "replace"))
        finally:
            connection.close()
        for value in page.all("Set-Cookie"):
            self.keep_cookie(value)
        if method == "GET":
            self.last = page
        return page

    def keep_cookie(self, header: str) -> None:
        """Store (or, with Max-Age=0, drop) one Set-Cookie."""
        self.set_cookies.append(header)
        pair, *attributes = [part.strip() for part in header.split(";")]
        name, _, value = pair.partition("=")
        expired = any(a.lower().replace(" ", "") == "max-age=0" for a in attributes)
        if expired:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value

    def get(self, target: str) -> Page:
        return self.request("GET", target)

    def submit(self, action: str, fields: dict[str, str] | None = None,
               csrf: str | None = None, idem: str | None = None) -> Page:
        """Post a form as it was on the last page: with that page's csrf_token and the idem
        key of its form posting to ``action``, unless ``csrf`` or ``idem`` say otherwise (""
        sends none)."""
        form = dict(fields or {})
        token = csrf if csrf is not None else (self.last.csrf if self.last else "")
        if token:
            form["csrf_token"] = token
        key = idem if idem is not None else (self.last.idem(action) if self.last else "")
        if key:
            form["idem"] = key
        return self.request("POST", action, urlencode(form).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded"})

    def follow(self, page: Page) -> Page:
        """Follow a 303 See Other the way a browser does: GET its Location."""
        assert page.status == 303, f"expected 303 See Other, got {page.status}: {page.text}"
        location = page.location
        assert location.startswith("/") and not location.startswith("//"), location
        return self.get(location.split("#", 1)[0])  # a fragment stays in the browser


# -- what a visitor does -------------------------------------------------------------------

def sign_up(browser: Browser, username: str, display_name: str = "",
            password: str = PASSWORD) -> Page:
    """Sign up through the form; return the page landed on, logged in."""
    browser.get("/signup")
    answer = browser.submit("/signup", {"username": username, "display_name": display_name,
                                        "password": password})
    assert answer.status == 303 and answer.location == "/", (answer.status, answer.text)
    page = browser.follow(answer)
    assert page.logged_in_as is not None and page.logged_in_as.lower() == username.lower()
    return page


def log_in(browser: Browser, username: str, password: str = PASSWORD) -> Page:
    """Log in through the form; return the page landed on, logged in."""
    browser.get("/login")
    answer = browser.submit("/login", {"username": username, "password": password})
    page = browser.follow(answer)
    assert page.logged_in_as is not None and page.logged_in_as.lower() == username.lower()
    return page


def log_out(browser: Browser) -> Page:
    """Press "Log out" in the navigation; return the page landed on."""
    answer = browser.submit("/logout")
    assert answer.location == "/"
    page = browser.follow(answer)
    assert page.logged_in_as is None
    return page


def post(browser: Browser, text: str) -> int:
    """Post a tweet from the timeline's form; return its id (the newest on the timeline)."""
    browser.get("/")
    answer = browser.submit("/tweets", {"text": text})
    assert answer.status == 303 and answer.location == "/", (answer.status, answer.text)
    page = browser.follow(answer)
    assert page.status == 200 and page.tweet_ids(), "the new tweet is not on the timeline"
    assert page.notice == "Posted."
    return page.tweet_ids()[0]


def like(browser: Browser, tweet_id: int, come_back_to: str) -> Page:
    """Press ♥ on a tweet shown on the last page; return the page landed on (at the tweet)."""
    answer = browser.submit(f"/tweets/{tweet_id}/like", {"next": come_back_to})
    assert answer.status == 303, (answer.status, answer.text)
    assert answer.location == f"{come_back_to}#tweet-{tweet_id}", answer.location
    return browser.follow(answer)


def sent_back(browser: Browser, answer: Page, location: str) -> Page:
    """A refused form redirects back to its page, which says why with the form filled in as
    it was sent (so a reload sends nothing): follow it and return that page."""
    assert answer.status == 303 and answer.location == location, (answer.status, answer.text)
    page = browser.follow(answer)
    assert page.status == 200 and page.error, page.text
    assert "<title>Error: " in page.text and 'autofocus' in page.text
    return page


def edit(browser: Browser, tweet_id: int, text: str) -> Page:
    """Edit a tweet from its page; return the page landed on."""
    browser.get(f"/tweets/{tweet_id}")
    answer = browser.submit(f"/tweets/{tweet_id}/edit", {"text": text})
    assert answer.status == 303 and answer.location == f"/tweets/{tweet_id}", answer.text
    return browser.follow(answer)


def delete(browser: Browser, tweet_id: int) -> Page:
    """Delete a tweet from its page: Delete, then yes on the page that asks; return the page
    landed on."""
    tweet_page = browser.get(f"/tweets/{tweet_id}")
    assert f'href="/tweets/{tweet_id}/delete"' in tweet_page.text
    asking = browser.get(f"/tweets/{tweet_id}/delete")
    assert asking.status == 200 and "Delete this tweet?" in asking.text, asking.text
    answer = browser.submit(f"/tweets/{tweet_id}/delete")
    assert answer.status == 303 and answer.location == "/", (answer.status, answer.text)
    page = browser.follow(answer)
    assert page.notice == "Deleted."
    return page


def search(browser: Browser, q: str, kind: str) -> Page:
    """Search in one tab."""
    page = browser.get("/search?" + urlencode({"q": q, "kind": kind}))
    assert page.status == 200, page.text
    return page


def has_author_tools(page: Page, tweet_id: int) -> bool:
    """Tell whether the page offers the edit or delete form of a tweet."""
    return (f'action="/tweets/{tweet_id}/edit"' in page.text
            or f'href="/tweets/{tweet_id}/delete"' in page.text)


def assert_error_page(page: Page, status: int) -> None:
    """An error is an HTML page with the right status, and never a traceback."""
    assert page.status == status, (page.status, page.text)
    assert (page.header("Content-Type") or "").startswith("text/html")
    assert "<!doctype html>" in page.text.lower()
    assert "Traceback" not in page.text and 'File "' not in page.text
