"""OAuth 2 for Mastodon clients (RFC 6749), kept thin: the access token is the public API's
own bearer token, so log-out, password changes and expiry hold exactly as on the web.

Registered apps are not stored: the client id carries the app's name, redirect URIs and
scopes, and the client secret is an HMAC of the client id under the gateway's key, so a
registration survives restarts and needs no database. Authorization codes are the one thing
kept, in memory, for ten minutes and for one use (a restart loses codes not yet exchanged;
the user authorizes again).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Callable

from httpkit import HTTPError

OOB = "urn:ietf:wg:oauth:2.0:oob"  # "show me the code": the user copies it into the client
SCOPE = re.compile(r"(read|write|follow|push|profile|admin:read|admin:write)(:[a-z_]{1,40})?\Z")
CODE_TTL_S = 600.0
MOST_CODES = 10_000
MOST_REDIRECTS = 5
MAX_NAME, MAX_URL = 100, 500


def oauth_error(code: str, description: str,
                status: HTTPStatus = HTTPStatus.BAD_REQUEST) -> HTTPError:
    """An RFC 6749 §5.2 error (``{"error": code, "error_description": ...}`` on the wire)."""
    return HTTPError(status, description, code)


def scopes(raw: Any, default: str = "read") -> list[str]:
    """Return the scopes of a space-separated string (or a list), or raise invalid_scope."""
    if raw is None or raw == "" or raw == []:
        raw = default
    words = raw.split() if isinstance(raw, str) else raw
    if not isinstance(words, list) or not words or len(words) > 50 \
            or not all(isinstance(word, str) and SCOPE.match(word) for word in words):
        raise oauth_error("invalid_scope", "The requested scope is not one this server knows: "
                                           "use read, write, follow, push or their parts.")
    return list(dict.fromkeys(words))


def covered(asked: list[str], granted: list[str]) -> bool:
    """Tell whether every scope asked is granted ("read" covers "read:statuses")."""
    return all(scope in granted or scope.split(":")[0] in granted for scope in asked)


@dataclass(frozen=True)
class App:
    client_id: str
    name: str
    website: str | None
    redirect_uris: list[str]
    scopes: list[str]

    def entity(self, secret: str | None = None) -> dict[str, Any]:
        """Return the Application entity (with its credentials when just registered)."""
        number = str(int.from_bytes(hashlib.sha256(self.client_id.encode()).digest()[:6], "big"))
        answer: dict[str, Any] = {
            "id": number, "name": self.name, "website": self.website,
            "scopes": self.scopes, "redirect_uri": "\n".join(self.redirect_uris),
            "redirect_uris": self.redirect_uris, "vapid_key": "", "client_id": self.client_id}
        if secret is not None:
            answer.update(client_secret=secret, client_secret_expires_at=0)
        return answer


class Apps:
    """Register apps and recognise them by their signed client id."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def register(self, fields: dict[str, Any]) -> dict[str, Any]:
        name = text_field(fields, "client_name", MAX_NAME, required=True)
        website = text_field(fields, "website", MAX_URL) or None
        raw_uris = fields.get("redirect_uris")
        uris = raw_uris if isinstance(raw_uris, list) else str(raw_uris or "").split()
        if not uris or len(uris) > MOST_REDIRECTS or not all(
                isinstance(uri, str) and valid_redirect(uri) for uri in uris):
            raise HTTPError(HTTPStatus.UNPROCESSABLE_ENTITY,
                            f"redirect_uris must be 1 to {MOST_REDIRECTS} absolute URIs "
                            f"(or {OOB}), separated by spaces.")
        try:
            granted = scopes(fields.get("scopes"))
        except HTTPError as err:
            raise HTTPError(HTTPStatus.UNPROCESSABLE_ENTITY, err.message) from None
        record = {"n": name, "w": website, "r": uris, "s": granted,
                  "x": secrets.token_hex(4)}  # two registrations never share an id
        packed = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
        client_id = base64.urlsafe_b64encode(packed).decode().rstrip("=")
        app = App(client_id, name, website, uris, granted)
        return app.entity(self.secret(client_id))

    def secret(self, client_id: str) -> str:
        return hmac.new(self.key, f"client:{client_id}".encode(), hashlib.sha256).hexdigest()

    def find(self, client_id: Any) -> App:
        """Return the app a client id names, or raise invalid_client."""
        unknown = oauth_error("invalid_client", "This app is not registered here: register "
                                                "it again (POST /api/v1/apps).",
                              HTTPStatus.UNAUTHORIZED)
        if not isinstance(client_id, str) or not 0 < len(client_id) <= 4096:
            raise unknown
        try:
            record = json.loads(base64.urlsafe_b64decode(client_id + "=" * (-len(client_id) % 4)))
            app = App(client_id, str(record["n"]), record["w"], list(record["r"]),
                      list(record["s"]))
        except (ValueError, binascii.Error, KeyError, TypeError):
            raise unknown from None
        # Only an id we made reads as an app: a hand-made one (any can be decoded) has to be
        # well formed too, or a later step would trip on it.
        if not app.redirect_uris or not all(isinstance(uri, str) and valid_redirect(uri)
                                            for uri in app.redirect_uris) \
                or not all(isinstance(scope, str) for scope in app.scopes):
            raise unknown
        return app

    def check(self, client_id: Any, client_secret: Any) -> App:
        """Return the app if the secret is its own, else raise invalid_client."""
        app = self.find(client_id)
        if not isinstance(client_secret, str) or not hmac.compare_digest(
                client_secret.encode(), self.secret(app.client_id).encode()):
            raise oauth_error("invalid_client", "The client secret is not this app's.",
                              HTTPStatus.UNAUTHORIZED)
        return app


def valid_redirect(uri: str) -> bool:
    if uri == OOB:
        return True
    scheme, sep, rest = uri.partition(":")
    return bool(sep and rest and len(uri) <= MAX_URL and re.fullmatch(r"[A-Za-z][\w+.-]*", scheme)
                and uri.isprintable() and " " not in uri)


def text_field(fields: dict[str, Any], name: str, most: int, required: bool = False) -> str:
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise HTTPError(HTTPStatus.UNPROCESSABLE_ENTITY, f"{name} is required.")
        return ""
    if not isinstance(value, str) or len(value) > most or not value.isprintable():
        raise HTTPError(HTTPStatus.UNPROCESSABLE_ENTITY,
                        f"{name} must be text of at most {most} characters.")
    return value


@dataclass(frozen=True)
class Grant:
    """What an authorization code stands for until it is exchanged."""

    token: str
    client_id: str
    redirect_uri: str
    scope: str
    expires: float


class Codes:
    """Authorization codes: made when the user logs in at /oauth/authorize, used once."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()

    def issue(self, token: str, client_id: str, redirect_uri: str, scope: str) -> str:
        code = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            for old in [code for code, grant in self._grants.items() if grant.expires <= now]:
                del self._grants[old]
            if len(self._grants) >= MOST_CODES:
                del self._grants[next(iter(self._grants))]
            self._grants[code] = Grant(token, client_id, redirect_uri, scope, now + CODE_TTL_S)
        return code

    def redeem(self, code: Any, client_id: str, redirect_uri: Any) -> Grant:
        """Return the grant of a code, once; raise invalid_grant if it is unknown, used,
        expired, or was given to another app or redirect URI."""
        with self._lock:
            grant = self._grants.pop(code, None) if isinstance(code, str) else None
        if grant is None or grant.expires <= self.clock() or grant.client_id != client_id \
                or (redirect_uri not in (None, "") and redirect_uri != grant.redirect_uri):
            raise oauth_error("invalid_grant", "The authorization code is not valid: it may "
                                               "have been used already or have expired.")
        return grant
