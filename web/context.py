"""The request context every page and form handler works in: what the visitor's cookies say
(session, CSRF token, the flash a redirect left) and what the answer will set."""
from __future__ import annotations

from http import HTTPStatus

from httpkit import Request
from web import session
from web.session import Flash

# The one field of a refused form that outlives the page after the redirect: a tweet's text
# waits in the flash until a compose box shows it (after logging in again, say).
DRAFT = "text"


class RequestContext:
    """One visit to a page: the visitor's session, the browser's CSRF token, the flash the
    last redirect left (its message and the fields of a refused form) and what to answer."""

    def __init__(self, request: Request, key: bytes) -> None:
        self.request = request
        self.cookies = session.read_cookies(request.headers.get("cookie", ""))
        self.session = session.load(key, self.cookies)
        browser = session.load_csrf(key, self.cookies)
        known = browser or session.legacy_csrf(key, self.cookies)
        self.csrf = known or session.new_csrf()
        self.checkable = known is not None  # a form's token can be checked against it
        self.new_browser = browser is None  # it sent no CSRF cookie of ours: give it one
        # No cookie of ours came at all: the browser refuses them (or this is its first visit).
        self.cookieless = not {session.COOKIE, session.BROWSER_COOKIE} & self.cookies.keys()
        self.flash = session.load_flash(key, self.cookies)
        self.taken: set[str] = set()  # the flash fields this page put back in its form
        self.next_flash: Flash | None = None  # for the page after a redirect
        self.status: int = HTTPStatus.OK
        self.fresh = session.FRESH_COOKIE in self.cookies

    def field(self, name: str) -> str:
        """Take a field of the refused form from the flash ("" if there is none)."""
        if self.flash is None or name not in self.flash.fields:
            return ""
        self.taken.add(name)
        return self.flash.fields[name]

    def here(self) -> str:
        """The address of this page, query included, to come back to after a form."""
        target = self.request.target
        return target if target.startswith("/") else self.request.path
