"""Forms: the request context every page and form works in, CSRF checks, idempotency keys and
safe redirects.

A form that changes something carries the browser's CSRF token (``web.session``), checked
against its cookie; one that creates something also carries a fresh key, sent on to the API
as ``Idempotency-Key``, so that the same form sent twice acts once.
"""
from __future__ import annotations

import re
import secrets
from http import HTTPStatus

from httpkit import HTTPError, Request, Response
from web import session
from web.session import Flash

# Each idem field is autocomplete="off": Firefox may otherwise put a used key back into a
# reloaded page (Mozilla bug 520561), and the next post from it would not be a new one.
IDEM_FIELD = "idem"
# The keys new_key() makes. Anything else in the field did not come from our page, and a key
# the API refuses would fail the form: it is dropped and the form sent without one.
OUR_KEY = re.compile(r"[A-Za-z0-9_-]{16,255}\Z")
# The one field of a refused form that outlives the page after the redirect: a tweet's text
# waits in the flash until a compose box shows it (after logging in again, say).
DRAFT = "text"
NOT_LOGGED_IN = ("You are not logged in (perhaps you logged out in another tab), so that was "
                 "not posted. Log in and your text will be waiting for you.")
NOT_CHECKED = ("We could not check that this form came from our page (perhaps this site's "
               "cookies were cleared since it was opened). Check it and send it again.")


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


class Shown(HTTPError):
    """A page that answers a request at once, raised from deep in a form's handling."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status, "shown")
        self.response = response


def new_key() -> str:
    """Make a fresh idempotency key for one rendered form."""
    return secrets.token_urlsafe(16)


def form_key(form: dict[str, str]) -> str | None:
    """Return the form's idempotency key, or None when it has none of ours (send no header)."""
    key = form.get(IDEM_FIELD, "")
    return key if OUR_KEY.match(key) else None


# A path on this site: one "/", then no second "/" or "\\" at once (that would name another
# host), and nothing but visible characters: no whitespace or control characters, which
# browsers strip (turning "/\t/evil" into "//evil") or which would break the header.
LOCAL_PATH = re.compile(r"/(?![/\\])[!-~\u00a0-\U0010ffff]*\Z")


def local_path(candidate: str, default: str) -> str:
    """Return ``candidate`` if it is a path on this site (no open redirects), else default."""
    return candidate if LOCAL_PATH.match(candidate) and "\\" not in candidate else default
