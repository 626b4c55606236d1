"""Story helpers for the API tests: a client that keeps every answer it got, and the things a
user does (``sign_up(api, "alice")``, ``log_in``, ``post_tweet``, ...), each asserting what
the user would see when it works. Tests that expect a failure call ``api.fetch`` directly."""
from __future__ import annotations

import json
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from httpkit import Upstream, UpstreamResponse

PASSWORD = "correct horse battery"


class Client:
    """An HTTP client of one service that records every answer, to be scanned afterwards."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.upstream = Upstream(url, read_timeout=timeout)
        self.answers: list[tuple[str, str, UpstreamResponse]] = []
        self._lock = threading.Lock()

    def request(self, method: str, target: str, body: bytes = b"",
                headers: dict[str, str] | None = None) -> UpstreamResponse:
        """Send raw bytes (for malformed bodies); remember the answer."""
        answer = self.upstream.request(method, target, body, headers)
        with self._lock:
            self.answers.append((method, target, answer))
        return answer

    def fetch(self, method: str, target: str, payload: Any = None,
              headers: dict[str, str] | None = None) -> UpstreamResponse:
        """Send a JSON request (no body when ``payload`` is None); remember the answer."""
        body = b""
        all_headers = dict(headers or {})
        if payload is not None:
            body = json.dumps(payload).encode()
            all_headers["content-type"] = "application/json"
        return self.request(method, target, body, all_headers)

    def get(self, target: str, headers: dict[str, str] | None = None) -> UpstreamResponse:
        return self.request("GET", target, headers=headers)

    def get_json(self, target: str, fresh: bool = False) -> Any:
        """GET a resource that must exist and return its JSON."""
        answer = self.get(target, {"cache-control": "no-cache"} if fresh else None)
        assert answer.status == 200, (target, answer.status, answer.body)
        return answer.json()

    def close(self) -> None:
        self.upstream.close()


@dataclass(frozen=True)
class User:
    """A logged-in user: the account as the API showed it, and a bearer token."""

    username: str
    token: str
    account: dict[str, Any]

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.token)


def open_client(clients: ExitStack, url: str) -> Client:
    """A recording client of ``url``, closed when ``clients`` closes."""
    client = Client(url)
    clients.callback(client.close)
    return client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# --- stories ---------------------------------------------------------------------------------

def sign_up(api: Client, username: str, password: str = PASSWORD,
            display_name: str | None = None) -> dict[str, Any]:
    """Make an account; return it as the API answered."""
    payload = {"username": username, "password": password}
    if display_name is not None:
        payload["display_name"] = display_name
    answer = api.fetch("POST", "/accounts", payload)
    assert answer.status == 201, answer.body
    account: dict[str, Any] = answer.json()
    assert answer.headers["location"] == f"/accounts/{account['username']}"
    return account


def log_in(api: Client, username: str, password: str = PASSWORD) -> User:
    """Log in; return the user with their token."""
    answer = api.fetch("POST", "/sessions", {"username": username, "password": password})
    assert answer.status == 201, answer.body
    data = answer.json()
    return User(data["account"]["username"], data["token"], data["account"])


def join(api: Client, username: str, display_name: str | None = None) -> User:
    """Sign up and log in."""
    sign_up(api, username, display_name=display_name)
    return log_in(api, username)


def post_tweet(api: Client, user: User, text: str) -> dict[str, Any]:
    answer = api.fetch("POST", "/tweets", {"text": text}, user.auth)
    assert answer.status == 201, answer.body
    tweet: dict[str, Any] = answer.json()
    assert answer.headers["location"] == f"/tweets/{tweet['id']}"
    return tweet


def edit_tweet(api: Client, user: User, tweet_id: int, text: str) -> dict[str, Any]:
    answer = api.fetch("PUT", f"/tweets/{tweet_id}", {"text": text}, user.auth)
    assert answer.status == 200, answer.body
    tweet: dict[str, Any] = answer.json()
    return tweet


def delete_tweet(api: Client, user: User, tweet_id: int) -> None:
    answer = api.fetch("DELETE", f"/tweets/{tweet_id}", headers=user.auth)
    assert answer.status == 204, answer.body
    assert answer.body == b""


def like(api: Client, tweet_id: int) -> int:
    """Like a tweet (no account needed); return the running count."""
    answer = api.fetch("POST", f"/tweets/{tweet_id}/like")
    assert answer.status == 202, answer.body
    data = answer.json()
    assert data["id"] == tweet_id
    return int(data["likes"])


def read_tweet(api: Client, tweet_id: int, fresh: bool = False) -> dict[str, Any]:
    tweet: dict[str, Any] = api.get_json(f"/tweets/{tweet_id}", fresh)
    return tweet


def texts(page: dict[str, Any]) -> list[str]:
    return [tweet["text"] for tweet in page["tweets"]]


def page_through(api: Client, target: str, key: str, limit: int) -> list[list[dict[str, Any]]]:
    """Follow ``next`` cursors from the first page to the last; return every page."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        joiner = "&" if "?" in target else "?"
        page = api.get_json(f"{target}{joiner}limit={limit}"
                            + (f"&cursor={cursor}" if cursor else ""))
        pages.append(page[key])
        cursor = page["next"]
        if cursor is None:
            return pages
        assert len(pages) < 1000, "paging does not end"


def error_code(answer: UpstreamResponse) -> str:
    """Return the code of a DESIGN.md error body, checking its shape on the way."""
    assert answer.headers.get("content-type") == "application/json", answer.headers
    error = answer.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    code: str = error["code"]
    return code


def timeline(api: Client) -> list[dict[str, Any]]:
    """Return the newest 100 tweets."""
    found: list[dict[str, Any]] = api.get_json("/tweets?limit=100")["tweets"]
    return found


def logged(api: Client, after: int = 0) -> list[list[str]]:
    """Return the calls /logs shows after the ``after``-th."""
    calls: list[list[str]] = api.get_json(f"/logs?after={after}")["calls"]
    return calls
