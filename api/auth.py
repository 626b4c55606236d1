"""Passwords, tokens and sessions.

Passwords are stored only as a salted scrypt hash (per-account salt, constant-time check);
the store never sees a plain password. A token is
``<account id>.<generation>.<expiry>.<signature>`` with an HMAC-SHA256 signature keyed by
SECRET_KEY or, when that is unset, by a key generated once and kept in DATA_DIR, so tokens
survive a restart.

Sessions end. The store keeps a token generation per account (0 at sign-up); a token names
the generation it was issued under and is honoured only while that is still the account's
generation. Logging out (``DELETE /sessions``) moves the generation past the token's, so it
ends every session of the account opened up to then, on every device: the simple, honest
design (a deny list of single tokens would have to be kept, durably and bounded, until each
token expired). Changing the password moves it on too, and the caller gets a token of the new
generation. Tokens issued before generations existed (``<id>.<expiry>.<signature>``) count as
generation 0: an upgrade logs nobody out, and their first log-out ends them.

Checking the generation must not cost a store round trip per request, so ``Generations``
keeps each account's for TOKEN_CHECK_S (5 s). Revocations made by this api update it at once,
so a token it ended is refused at once, and the generation lives in the store, so an api that
restarts knows it. Only a revocation made elsewhere (a second api sharing SECRET_KEY, an
operator) can go unseen here, for at most TOKEN_CHECK_S; a token newer than the cached
generation is always checked with the store.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
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
class Claims:
    """What a well-signed, unexpired token says."""

    account_id: int
    generation: int  # the account's token generation when it was issued
    expiry: int  # Unix time


@dataclass(frozen=True)
class Tokens:
    """Sign and check bearer tokens (whether their session has ended is ``Sessions``' part)."""

    key: bytes
    ttl: float
    clock: Callable[[], float]

    def issue(self, account_id: int, generation: int) -> str:
        """Return a token for the account's ``generation``, valid for ``ttl`` seconds."""
        payload = f"{account_id}.{generation}.{int(self.clock() + self.ttl)}"
        return f"{payload}.{self._sign(payload)}"

    def check(self, authorization: str | None) -> Claims:
        """Return the claims of a valid ``Bearer`` header, or raise 401."""
        if not authorization:
            raise unauthorized("log in first: send Authorization: Bearer <token>")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("the Authorization header must be 'Bearer <token>'")
        *fields, signature = token.strip().split(".")
        numbers = [number for number in map(whole_number, fields) if number is not None]
        if len(fields) not in (2, 3) or len(numbers) != len(fields) or not signature.isascii():
            raise unauthorized("the token is not valid")
        if not hmac.compare_digest(signature, self._sign(".".join(fields))):
            raise unauthorized("the token is not valid")
        if len(numbers) == 2:  # issued before generations, and signed without one
            numbers.insert(1, 0)
        account_id, generation, expiry = numbers
        if expiry <= self.clock():
            raise unauthorized("the token has expired; log in again")
        return Claims(account_id, generation, expiry)

    def _sign(self, payload: str) -> str:
        return hmac.new(self.key, payload.encode(), hashlib.sha256).hexdigest()


class Generations:
    """Each account's token generation as the store keeps it, remembered for ``ttl`` seconds.

    At most ``most`` accounts are remembered (the ones read longest ago go first), so memory
    stays bounded: about 100 bytes an account.
    """

    def __init__(self, fetch: Callable[[int], int | None], ttl: float,
                 clock: Callable[[], float] = time.time, most: int = 100_000) -> None:
        self.fetch = fetch  # reads the store; None: no such account
        self.ttl = ttl
        self.clock = clock
        self.most = most
        self.fetches = 0
        self._known: OrderedDict[int, tuple[int, float]] = OrderedDict()  # generation, when
        self._lock = threading.Lock()

    def current(self, account_id: int, claimed: int) -> int | None:
        """Return the account's generation (None: no such account): from memory while it is
        fresh and no older than the token claims, else from the store."""
        with self._lock:
            known = self._known.get(account_id)
        if known is not None and claimed <= known[0] and self.clock() - known[1] < self.ttl:
            return known[0]
        with self._lock:
            self.fetches += 1
        generation = self.fetch(account_id)  # no lock held across network I/O
        if generation is None:
            with self._lock:
                self._known.pop(account_id, None)
            return None
        return self.saw(account_id, generation)

    def saw(self, account_id: int, generation: int) -> int:
        """Remember a generation read from or written to the store; return the newest known.

        A generation never goes back, so the higher one wins: a read that set off before a
        log-out here and comes back after it must not bring the ended tokens back."""
        with self._lock:
            known = self._known.pop(account_id, None)
            if known is not None:
                generation = max(generation, known[0])
            self._known[account_id] = (generation, self.clock())
            while len(self._known) > self.most:
                self._known.popitem(last=False)
        return generation


ENDED = "this session has ended; log in again"


@dataclass(frozen=True)
class Sessions:
    """Bearer tokens that can be ended: signed claims, checked against the generation."""

    tokens: Tokens
    generations: Generations

    def issue(self, account_id: int, generation: int) -> str:
        """Return a token of ``generation``, which the caller just read from the store."""
        self.generations.saw(account_id, generation)
        return self.tokens.issue(account_id, generation)

    def check(self, authorization: str | None) -> Claims:
        """Return the claims of a valid token whose session is on, or raise 401."""
        claims = self.tokens.check(authorization)
        current = self.generations.current(claims.account_id, claims.generation)
        if current is None:  # a token of an account the store no longer has
            raise unauthorized("your account no longer exists")
        if claims.generation != current:
            raise unauthorized(ENDED)
        return claims

    def ended(self, account_id: int, generation: int) -> None:
        """Note the generation a log-out or password change just moved the account to."""
        self.generations.saw(account_id, generation)


def unauthorized(message: str, code: str = "unauthorized") -> HTTPError:
    """Return a 401 with the challenge RFC 9110 §11.6.1 asks for."""
    return HTTPError(HTTPStatus.UNAUTHORIZED, message, code,
                     {"WWW-Authenticate": 'Bearer realm="first-price-twitter"'})
