"""Passwords and tokens.

Passwords are stored only as a salted scrypt hash (per-account salt, constant-time check);
the store never sees a plain password. A token is ``<account id>.<expiry>.<signature>`` with
an HMAC-SHA256 signature keyed by SECRET_KEY or, when that is unset, by a key generated once
and kept in DATA_DIR, so tokens survive a restart.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from http import HTTPStatus
from typing import Callable

from httpkit import HTTPError
from httpkit.messages import whole_number

# scrypt cost: ~65 ms per hash on the 2-core development machine (median of 5); enough to
# make offline guessing expensive.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1


def hash_password(password: str, n: int = SCRYPT_N) -> str:
    """Return ``scrypt$n$r$p$salt$hash`` for a password (``n`` is the cost, a power of 2)."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, n, SCRYPT_R, SCRYPT_P)
    return "$".join(["scrypt", str(n), str(SCRYPT_R), str(SCRYPT_P), _b64(salt),
                     _b64(digest)])


def check_password(password: str, stored: str) -> bool:
    """Tell whether ``password`` matches a hash from ``hash_password``."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(digest)
        actual = _scrypt(password, base64.urlsafe_b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def waste_time_like_a_check(password: str, n: int = SCRYPT_N) -> None:
    """Spend what a password check costs, so unknown usernames cannot be told by timing."""
    _scrypt(password, b"0" * 16, n, SCRYPT_R, SCRYPT_P)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


@dataclass(frozen=True)
class Tokens:
    """Sign and check bearer tokens."""

    key: bytes
    ttl: float
    clock: Callable[[], float]

    def issue(self, account_id: int) -> str:
        """Return a token for the account, valid for ``ttl`` seconds."""
        payload = f"{account_id}.{int(self.clock() + self.ttl)}"
        return f"{payload}.{self._sign(payload)}"

    def account_id(self, authorization: str | None) -> int:
        """Return the account id of a valid ``Bearer`` header, or raise 401."""
        if not authorization:
            raise unauthorized("log in first: send Authorization: Bearer <token>")
        scheme, _, token = authorization.partition(" ")
        parts = token.strip().split(".")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("the Authorization header must be 'Bearer <token>'")
        if len(parts) != 3:
            raise unauthorized("the token is not valid")
        account, expiry, signature = parts
        account_id, expires = whole_number(account), whole_number(expiry)
        if account_id is None or expires is None or not signature.isascii():
            raise unauthorized("the token is not valid")
        if not hmac.compare_digest(signature, self._sign(f"{account}.{expiry}")):
            raise unauthorized("the token is not valid")
        if expires <= self.clock():
            raise unauthorized("the token has expired; log in again")
        return account_id

    def _sign(self, payload: str) -> str:
        return hmac.new(self.key, payload.encode(), hashlib.sha256).hexdigest()


def unauthorized(message: str) -> HTTPError:
    """Return a 401 with the challenge RFC 9110 §11.6.1 asks for."""
    return HTTPError(HTTPStatus.UNAUTHORIZED, message, "unauthorized",
                     {"WWW-Authenticate": 'Bearer realm="first-price-twitter"'})
