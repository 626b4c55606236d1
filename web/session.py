"""The web's cookies: who is logged in, the browser's CSRF token, and a one-page message.

Each cookie holds base64 JSON plus an HMAC-SHA256 signature keyed by SECRET_KEY and by the
cookie's purpose, so one cannot stand in for another; a cookie that fails the check is
ignored.

- ``fpt_session`` — ``{"token", "user"}``: the API token of whoever is logged in.
- ``fpt_browser`` — the CSRF token. It belongs to the browser, not to the session: logging in
  or out in one tab leaves it as it was, so the forms open in every other tab still work
  (OWASP's "signed double-submit cookie"). A cross-site page can neither read it nor, since
  it is signed, plant one of its own.
- ``fpt_flash`` — what the page after a redirect says ("Posted.", or why a form was refused)
  and what the refused form held, so a reload of that page never sends the form again.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

COOKIE = "fpt_session"
BROWSER_COOKIE = "fpt_browser"
FLASH_COOKIE = "fpt_flash"
FRESH_COOKIE = "fpt_fresh"  # set by a redirect after a write: the next page reads afresh
MAX_AGE_S = 7 * 24 * 3600
BROWSER_MAX_AGE_S = 400 * 24 * 3600  # the most browsers keep a cookie (RFC 6265bis)
FLASH_MAX_AGE_S = 3600
# Browsers keep cookies up to 4,096 bytes; a flash that would not fit is not set (the form
# is shown again at once instead, so nothing typed is lost).
MOST_FLASH_BYTES = 3500
ATTRIBUTES = "Path=/; HttpOnly; SameSite=Lax"


@dataclass
class Session:
    token: str | None = None
    user: str | None = None

    @property
    def logged_in(self) -> bool:
        return self.token is not None and self.user is not None


@dataclass
class Flash:
    """A message for the next page, and the fields of a form it shows again."""

    notice: str = ""
    error: str = ""
    fields: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.notice or self.error or self.fields)


def read_cookies(header: str) -> dict[str, str]:
    """Parse a Cookie header leniently (RFC 6265 §5.4): one odd cookie set by another app on
    this host must not hide ours, as ``http.cookies.SimpleCookie`` would."""
    cookies: dict[str, str] = {}
    for pair in header.split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name:
            cookies.setdefault(name.strip(), value.strip().strip('"'))
    return cookies


def sign(key: bytes, payload: str, purpose: str = "") -> str:
    message = f"{purpose}.{payload}" if purpose else payload
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def seal(key: bytes, data: Any, purpose: str = "") -> str:
    """Return ``data`` as a signed cookie value."""
    # UTF-8 rather than \u escapes: a draft of 280 emoji is 1.5 KB in a cookie, not 4.5 KB.
    payload = base64.urlsafe_b64encode(json.dumps(data, ensure_ascii=False).encode()).decode()
    return f"{payload}.{sign(key, payload, purpose)}"


def unseal(key: bytes, value: str, purpose: str = "") -> dict[str, Any] | None:
    """Return the JSON object a signed cookie value holds, or None if it is not one of ours."""
    payload, _, signature = value.rpartition(".")
    if not payload or not hmac.compare_digest(signature, sign(key, payload, purpose)):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def load(key: bytes, cookies: dict[str, str]) -> Session:
    """Return the session a valid cookie holds, or an anonymous one."""
    data = unseal(key, cookies.get(COOKIE, "")) or {}
    token, user = data.get("token"), data.get("user")
    if isinstance(token, str) and isinstance(user, str):
        return Session(token, user)
    return Session()


def cookie(key: bytes, session: Session) -> str:
    """Return the Set-Cookie value that stores the session."""
    value = seal(key, {"token": session.token, "user": session.user})
    return f"{COOKIE}={value}; Max-Age={MAX_AGE_S}; {ATTRIBUTES}"


def load_csrf(key: bytes, cookies: dict[str, str]) -> str | None:
    """Return the browser's CSRF token, or None when it sent none of ours."""
    data = unseal(key, cookies.get(BROWSER_COOKIE, ""), "csrf") or {}
    token = data.get("csrf")
    return token if isinstance(token, str) and token else None


def legacy_csrf(key: bytes, cookies: dict[str, str]) -> str | None:
    """Return the CSRF token a session cookie held before browsers had their own, so that
    pages opened then still work once."""
    token = (unseal(key, cookies.get(COOKIE, "")) or {}).get("csrf")
    return token if isinstance(token, str) and token else None


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def csrf_cookie(key: bytes, token: str) -> str:
    """Return the Set-Cookie value that gives this browser its CSRF token."""
    value = seal(key, {"csrf": token}, "csrf")
    return f"{BROWSER_COOKIE}={value}; Max-Age={BROWSER_MAX_AGE_S}; {ATTRIBUTES}"


def load_flash(key: bytes, cookies: dict[str, str]) -> Flash | None:
    """Return the flash a valid cookie holds, or None."""
    data = unseal(key, cookies.get(FLASH_COOKIE, ""), "flash")
    if data is None:
        return None
    fields = data.get("fields")
    fields = {str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {}
    return Flash(str(data.get("notice") or ""), str(data.get("error") or ""), fields)


def flash_cookie(key: bytes, flash: Flash | None) -> str | None:
    """Return the Set-Cookie value that stores the flash (or clears it, for None), or None
    when it is too big for a browser to keep."""
    if not flash:
        return f"{FLASH_COOKIE}=; Max-Age=0; {ATTRIBUTES}"
    value = seal(key, {"notice": flash.notice, "error": flash.error, "fields": flash.fields},
                 "flash")
    if len(value) > MOST_FLASH_BYTES:
        return None
    return f"{FLASH_COOKIE}={value}; Max-Age={FLASH_MAX_AGE_S}; {ATTRIBUTES}"


def fresh_cookie(on: bool) -> str:
    """Return the Set-Cookie value that asks the next page to skip the caches (or clears it)."""
    return f"{FRESH_COOKIE}=1; Max-Age={30 if on else 0}; {ATTRIBUTES}"


def same(given: str, expected: str) -> bool:
    """Compare CSRF tokens in constant time."""
    return hmac.compare_digest(given.encode(), expected.encode())
