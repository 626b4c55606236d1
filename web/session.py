"""Signed session cookies and the CSRF token they carry.

The cookie holds ``{"csrf", "token", "user"}`` as base64 JSON plus an HMAC-SHA256 signature
keyed by SECRET_KEY; a cookie that fails the check is ignored (the visitor is logged out).
Every visitor gets a session, so that anonymous forms (likes) carry a CSRF token too.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field

COOKIE = "fpt_session"
FRESH_COOKIE = "fpt_fresh"  # set by a redirect after a write: the next page reads afresh
MAX_AGE_S = 7 * 24 * 3600


@dataclass
class Session:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    token: str | None = None
    user: str | None = None
    is_new: bool = False

    @property
    def logged_in(self) -> bool:
        return self.token is not None and self.user is not None


def read_cookies(header: str) -> dict[str, str]:
    """Parse a Cookie header leniently (RFC 6265 §5.4): one odd cookie set by another app on
    this host must not hide ours, as ``http.cookies.SimpleCookie`` would."""
    cookies: dict[str, str] = {}
    for pair in header.split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name:
            cookies.setdefault(name.strip(), value.strip().strip('"'))
    return cookies


def sign(key: bytes, payload: str) -> str:
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def load(key: bytes, cookies: dict[str, str]) -> Session:
    """Return the session a valid cookie holds, or a new anonymous one."""
    value = cookies.get(COOKIE, "")
    payload, _, signature = value.rpartition(".")
    if payload and hmac.compare_digest(signature, sign(key, payload)):
        try:
            data = json.loads(base64.urlsafe_b64decode(payload.encode()))
            return Session(str(data["csrf"]), data.get("token"), data.get("user"))
        except (ValueError, KeyError, TypeError):
            pass
    return Session(is_new=True)


def cookie(key: bytes, session: Session) -> str:
    """Return the Set-Cookie value that stores the session."""
    data = {"csrf": session.csrf, "token": session.token, "user": session.user}
    payload = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
    return (f"{COOKIE}={payload}.{sign(key, payload)}; Path=/; Max-Age={MAX_AGE_S}; HttpOnly; "
            "SameSite=Lax")


def fresh_cookie(on: bool) -> str:
    """Return the Set-Cookie value that asks the next page to skip the caches (or clears it)."""
    return f"{FRESH_COOKIE}=1; Path=/; Max-Age={30 if on else 0}; HttpOnly; SameSite=Lax"


def same(given: str, expected: str) -> bool:
    """Compare CSRF tokens in constant time."""
    return hmac.compare_digest(given.encode(), expected.encode())
