"""Passwords, tokens and sessions.

Passwords are stored only as a salted scrypt hash (per-account salt, constant-time check);
the store never sees a plain password. A token is
``<account id>.<generation>.<session>.<expiry>.<signature>`` with an HMAC-SHA256 signature
keyed by SECRET_KEY or, when that is unset, by a key generated once and kept in DATA_DIR, so
tokens survive a restart. The session is a random 48-bit number drawn at each log-in, so two
log-ins never share a token (before, two in the same second got the same one).

Sessions end, one at a time or all together. Logging out (``DELETE /sessions``) must end only
the session it is called from: logging out of one browser must not log you out of your phone
or of a client app using the same account. So the store keeps, per account, the sessions
that have ended, each until its token's own expiry (after that the token is refused anyway),
and a token is honoured only while its session is not among them. Changing the password must
end every session, including the ones an attacker may hold: the store also keeps a token
generation per account (0 at sign-up), every token names the generation it was issued under,
and the password change moves the generation on, ending every older token at once; the caller
gets a token of the new generation.

The list of ended sessions is bounded twice: by expiry (rows past their token's expiry are
dropped as they are met) and per account (more than 100 live ones and the store moves the
generation on and clears them instead). That fallback ends every session of the account, the
safe direction: someone who logs out a hundred times within a token lifetime logs in again,
and nobody keeps a session they asked to end.

Tokens issued before session numbers (``<id>.<generation>.<expiry>.<signature>``) and before
generations (``<id>.<expiry>.<signature>``, generation 0) are session 0: an upgrade logs
nobody out. Session 0 cannot be named alone, so their log-out moves the generation on, as
log-out did for everyone before: it ends them and every other session of the account.

Checking a token must not cost a store round trip per request, so ``Generations`` keeps each
account's generation and ended sessions for TOKEN_CHECK_S (5 s). Log-outs and password
changes made by this api update it at once, so a token it ended is refused at once, and both
live in the store, so an api that restarts knows them. Only an ending made elsewhere (a second
api sharing SECRET_KEY, an operator) can go unseen here, for at most TOKEN_CHECK_S; a token
newer than the remembered generation is always checked with the store.
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

# scrypt's cost (RFC 7914 §2): n = 2**14 with r = 8 is the interactive log-in setting
# (Percival's paper, and the ``hashlib.scrypt`` docs' example), costly to guess offline; its
# time per hash here is in docs/REPORT.md §14.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1


def hash_password(password: str, n: int = SCRYPT_N) -> str:
    """Return ``scrypt$n$r$p$salt$hash`` for a password (``n`` is the cost, a power of 2)."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, n, SCRYPT_R, SCRYPT_P)
    return "$".join(["scrypt", str(n), str(SCRYPT_R), str(SCRYPT_P), _b64(salt),
                     _b64(digest)])


def verify_password(password: str, stored: str) -> bool:
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


# A session number is drawn from 1 to 2**48 - 1: 0 is the session of tokens that carry none.
SESSION_BITS = 48


@dataclass(frozen=True)
class Claims:
    """What a well-signed, unexpired token says."""

    account_id: int
    generation: int  # the account's token generation when it was issued
    expiry: int  # Unix time
    session: int = 0  # drawn at log-in; 0: a token issued before sessions had numbers


@dataclass(frozen=True)
class Tokens:
    """Sign and check bearer tokens (whether their session has ended is ``Sessions``' part)."""

    key: bytes
    ttl: float
    clock: Callable[[], float]

    def issue(self, account_id: int, generation: int, session: int = 0) -> str:
        """Return a token of ``session`` in the account's ``generation``, valid for ``ttl``
        seconds (session 0 is written in the older form, which names none)."""
        expiry = int(self.clock() + self.ttl)
        named = f".{session}" if session else ""
        payload = f"{account_id}.{generation}{named}.{expiry}"
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
        if len(fields) not in (2, 3, 4) or len(numbers) != len(fields) \
                or not signature.isascii():
            raise unauthorized("the token is not valid")
        if not hmac.compare_digest(signature, self._sign(".".join(fields))):
            raise unauthorized("the token is not valid")
        if len(numbers) == 2:  # issued before generations, and signed without one
            numbers.insert(1, 0)
        if len(numbers) == 3:  # issued before session numbers: session 0
            numbers.insert(2, 0)
        account_id, generation, session, expiry = numbers
        if expiry <= self.clock():
            raise unauthorized("the token has expired; log in again")
        return Claims(account_id, generation, expiry, session)

    def _sign(self, payload: str) -> str:
        return hmac.new(self.key, payload.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Ended:
    """What has ended of an account's tokens: every one of a generation before
    ``generation``, and those of ``sessions`` in it."""

    generation: int
    sessions: frozenset[int] = frozenset()

    def __contains__(self, claims: Claims) -> bool:
        return claims.generation != self.generation or claims.session in self.sessions

    def merged(self, other: Ended) -> Ended:
        """Return what both say has ended: a generation never goes back, and a session
        ended in the newest generation stays ended in it."""
        if self.generation != other.generation:
            return max(self, other, key=lambda ended: ended.generation)
        return Ended(self.generation, self.sessions | other.sessions)


class Generations:
    """Each account's generation and ended sessions as the store keeps them, remembered for
    ``ttl`` seconds.

    At most ``most`` accounts are remembered (the ones read longest ago go first), so memory
    stays bounded: about 100 bytes an account, and some 60 more for each of its ended
    sessions (the store keeps at most 100 an account).
    """

    def __init__(self, fetch: Callable[[int], Ended | None], ttl: float,
                 clock: Callable[[], float] = time.time, most: int = 100_000) -> None:
        self.fetch = fetch  # reads the store; None: no such account
        self.ttl = ttl
        self.clock = clock
        self.most = most
        self.fetches = 0
        self._known: OrderedDict[int, tuple[Ended, float]] = OrderedDict()  # and when
        self._told = 0  # how many answers saw() has been told of: a read overlapping one merges
        self._lock = threading.Lock()

    def current(self, account_id: int, claimed: int) -> Ended | None:
        """Return what has ended of the account's tokens (None: no such account): from
        memory while it is fresh and no older than the token's generation, else from the
        store."""
        with self._lock:
            known = self._known.get(account_id)
            if known is not None and claimed <= known[0].generation \
                    and self.clock() - known[1] < self.ttl:
                return known[0]
            self.fetches += 1
            told = self._told
        ended = self.fetch(account_id)  # no lock held across network I/O
        with self._lock:
            if ended is None:
                self._known.pop(account_id, None)
                return None
            # The store's answer replaces what was known (so sessions whose tokens expired
            # leave memory too), unless a log-out here may have overtaken the read.
            return self._keep(account_id, ended, replace=told == self._told)

    def saw(self, account_id: int, ended: Ended) -> Ended:
        """Remember what the store answered a log-in, log-out or password change made here;
        return all that is known to have ended.

        Nothing known is forgotten: answers to two log-outs here may come back in either
        order, and a read that set off before one must not bring its session back."""
        with self._lock:
            self._told += 1
            return self._keep(account_id, ended, replace=False)

    def _keep(self, account_id: int, ended: Ended, replace: bool) -> Ended:
        known = self._known.pop(account_id, None)
        if known is not None:
            if not replace:
                ended = ended.merged(known[0])
            elif known[0].generation > ended.generation:  # a generation never goes back
                ended = known[0]
        self._known[account_id] = (ended, self.clock())
        while len(self._known) > self.most:
            self._known.popitem(last=False)
        return ended


ENDED = "this session has ended; log in again"


@dataclass(frozen=True)
class Sessions:
    """Bearer tokens that can be ended: signed claims, checked against what has ended."""

    tokens: Tokens
    generations: Generations

    def issue(self, account_id: int, generation: int) -> str:
        """Return a token of a new session in ``generation``, which the caller just read from
        the store."""
        self.generations.saw(account_id, Ended(generation))
        session = 1 + secrets.randbelow(2 ** SESSION_BITS - 1)
        return self.tokens.issue(account_id, generation, session)

    def check(self, authorization: str | None) -> Claims:
        """Return the claims of a valid token whose session is on, or raise 401."""
        claims = self.tokens.check(authorization)
        ended = self.generations.current(claims.account_id, claims.generation)
        if ended is None:  # a token of an account the store no longer has
            raise unauthorized("your account no longer exists")
        if claims in ended:
            raise unauthorized(ENDED)
        return claims

    def ended(self, account_id: int, ended: Ended) -> None:
        """Note what a log-out or password change just ended, as the store answered it."""
        self.generations.saw(account_id, ended)


def unauthorized(message: str, code: str = "unauthorized") -> HTTPError:
    """Return a 401 with the challenge RFC 9110 §11.6.1 asks for."""
    return HTTPError(HTTPStatus.UNAUTHORIZED, message, code,
                     {"WWW-Authenticate": 'Bearer realm="first-price-twitter"'})
