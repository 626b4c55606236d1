"""The front end's client of the public API: reads that become error pages when they fail,
writes sent with the visitor's token, and the display names seen so far."""
from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from httpkit import HTTPError, Upstream, UpstreamError, UpstreamResponse
from httpkit.lru import LRU
from web.context import RequestContext
from web.render import path_part

MOST_NAMES = 10_000  # display names kept (Api.names)


class Api:
    """Send the front end's requests to the API (through the load balancer)."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        # Display names never change (no route renames an account), so the ones seen are
        # kept: a tweet's own page then needs no account look-up.
        self.names: LRU[str, str] = LRU(MOST_NAMES)

    def session_ended(self, context: RequestContext) -> bool:
        """Ask the API whether the session's token was refused (not when it cannot say)."""
        try:
            answer = self.upstream.request("GET", "/sessions", headers={
                "authorization": f"Bearer {context.session.token}"})
        except UpstreamError:
            return False  # the page's own reads show the trouble
        return answer.status == HTTPStatus.UNAUTHORIZED

    def read(self, context: RequestContext, path: str, query: dict[str, Any] | None = None,
             missing: str = "") -> Any:
        """Read JSON from the API; 404 and upstream failures become error pages."""
        target = path + ("?" + urlencode(query) if query else "")
        headers = {"cache-control": "no-cache"} if context.fresh else {}
        answer = self.fetch("GET", target, None, headers)
        check(answer, missing)
        return answer.json()

    def submit(self, context: RequestContext, method: str, path: str, payload: Any,
               key: str | None = None) -> UpstreamResponse:
        """Send a write to the API with the visitor's token and the form's Idempotency-Key.

        A replayed answer (Idempotent-Replayed: true) is the first answer again, so it is
        handled as that answer was: a log-in still sets the cookie, a post still redirects."""
        token = context.session.token
        headers = {"authorization": f"Bearer {token}"} if token else {}
        if key is not None:
            headers["idempotency-key"] = key
        return self.fetch(method, path, payload, headers)

    def fetch(self, method: str, target: str, payload: Any,
              headers: dict[str, str]) -> UpstreamResponse:
        try:
            return self.upstream.fetch(method, target, payload, headers)
        except UpstreamError:
            raise unavailable() from None

    def display_name(self, username: str) -> str:
        """Return an account's display name (its username if it cannot be read now)."""
        known = self.names.get(username)
        if known is not None:
            return known
        try:
            answer = self.upstream.request("GET", f"/accounts/{path_part(username)}")
            if answer.status == HTTPStatus.OK:
                name = str(answer.json()["display_name"] or username)
                self.remember({username: name})
                return name
        except (UpstreamError, ValueError, KeyError):
            pass
        return username

    def remember(self, names: dict[str, str]) -> None:
        for username, name in names.items():
            self.names.put(username, name)


def api_message(answer: UpstreamResponse, default: str = "Something was wrong with that.") -> str:
    """Return the human sentence of an API error."""
    try:
        return str(answer.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return default


def api_code(answer: UpstreamResponse) -> str:
    """Return the code of an API error ("" if it has none)."""
    try:
        return str(answer.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


def problem_of(answer: UpstreamResponse, missing: str = "") -> HTTPError | None:
    """Return the error page for an API failure, or None when the API did it."""
    if answer.status < 400:
        return None
    if answer.status == HTTPStatus.BAD_REQUEST:
        return HTTPError(HTTPStatus.BAD_REQUEST, api_message(answer))
    if answer.status == HTTPStatus.NOT_FOUND:
        return HTTPError(HTTPStatus.NOT_FOUND, missing or "We could not find that. It may have "
                         "been deleted, or the link may be mistyped.", "missing")
    if answer.status == HTTPStatus.FORBIDDEN:
        return HTTPError(HTTPStatus.FORBIDDEN, "That is not yours to change.")
    if answer.status == HTTPStatus.UNPROCESSABLE_ENTITY:  # the API's idempotency_key_reused
        # A page kept with its old key (no reload) and sent again with other contents.
        return HTTPError(answer.status, "That form was already sent with something else in it."
                         " Reload the page and try again.", "idempotency_key_reused")
    if answer.status == HTTPStatus.INSUFFICIENT_STORAGE:
        return HTTPError(answer.status, "Our disk is full, so that was not saved. "
                         "Please try again later.", "storage_full")
    return unavailable()


def check(answer: UpstreamResponse, missing: str = "") -> None:
    """Turn an API failure into an error page (forms handle their own 400s first)."""
    failure = problem_of(answer, missing)
    if failure is not None:
        raise failure


def unavailable() -> HTTPError:
    return HTTPError(HTTPStatus.SERVICE_UNAVAILABLE, "The service is having trouble right now. "
                     "Please try again in a moment.", "unavailable")
