"""Idempotency-Key on the public API's POSTs (draft-ietf-httpapi-idempotency-key-header).

A client that did not get its answer (a reset, a 5xx, a timeout) sends the same POST again
with the same key; within the window (IDEMPOTENCY_WINDOW_S, a day) it gets the first answer
again, marked ``Idempotent-Replayed: true``, and nothing changes twice. The same key with a
different request is a 422. Only successes are recorded, in the transaction of the write:
a refused request changed nothing and runs again, and a write that was done but whose
answer was lost is found by its key.

A key is scoped by operation and, where there is one, principal (sign-ups, one account's
tweets, one username's log-ins, likes), so one account's keys never meet another's. The
fingerprint that tells "the same request" is an HMAC of what the request means, keyed by the
API's secret: the sign-up and log-in fingerprints cover the password, and a plain hash of it
kept beside the scrypt hash would let anyone holding the database guess passwords at SHA-256
speed.

Where the record lives is decided by what it guards: tweets and accounts in the store, in the
transaction of the write; likes in the like journal, in the transaction of the like; log-ins,
which change nothing, in ``Recent`` here (memory, bounded).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Callable, NoReturn

from httpkit import HTTPError, Request

HEADER = "idempotency-key"
REPLAYED = ("Idempotent-Replayed", "true")
MAX_KEY = 255
TOKEN = re.compile(r"[!-~]{1,%d}\Z" % MAX_KEY)
# An sf-string is printable ASCII in quotes, with \" and \\ the only escapes.
SF_STRING = re.compile(r'"((?:[ !#-\[\]-~]|\\["\\])*)"\Z')
REMEMBERED = 10_000  # log-in answers kept in memory


def request_key(request: Request) -> str | None:
    """Return the request's Idempotency-Key, None without one; raise 400 if it is malformed."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    value = value.strip()
    if value.startswith('"'):  # the draft makes the field an sf-string (RFC 8941 §3.3.3)
        quoted = SF_STRING.match(value)
        value = re.sub(r'\\(["\\])', r"\1", quoted.group(1)) if quoted else ""
        valid = 0 < len(value) <= MAX_KEY
    else:  # a bare token is taken too
        valid = bool(TOKEN.match(value))
    if not valid:
        raise HTTPError(HTTPStatus.BAD_REQUEST, "Idempotency-Key must be a quoted string or a "
                        "bare token of 1-255 visible ASCII characters", "invalid_idempotency_key")
    return value


def reused() -> HTTPError:
    """Return the 422 for a key already used with a different request."""
    return HTTPError(HTTPStatus.UNPROCESSABLE_ENTITY, "this Idempotency-Key was already used "
                     "for a different request", "idempotency_key_reused")


class Replayed(Exception):
    """A keyed request was done before: nothing changed now, here is its first answer."""

    def __init__(self, answer: Any) -> None:
        super().__init__("replayed")
        self.answer = answer


@dataclass(frozen=True)
class Keyed:
    """A keyed request: the scope its key lives in, the key, what the request means, and
    how long its first answer counts."""

    scope: str
    key: str
    fingerprint: str
    window: float

    def replay(self, fingerprint: str, answer: Any) -> NoReturn:
        """Raise Replayed with the first answer of a request recorded under this key, or the
        422 if that request was a different one."""
        if not hmac.compare_digest(fingerprint, self.fingerprint):
            raise reused()
        raise Replayed(answer)

    def for_store(self) -> dict[str, Any]:
        """Return the ``idempotency`` field of a store write."""
        return {"scope": self.scope, "key": self.key, "fingerprint": self.fingerprint,
                "window_s": self.window}


class Fingerprints:
    """Make ``Keyed`` requests, fingerprinted with an HMAC under the API's secret."""

    def __init__(self, secret: bytes, window: float) -> None:
        self.secret = secret
        self.window = window

    def keyed(self, request: Request, scope: str, *meaning: Any) -> Keyed | None:
        """Return the request as keyed (None without a key) with ``meaning`` in ``scope``."""
        key = request_key(request)
        if key is None:
            return None
        text = json.dumps([scope, *meaning], ensure_ascii=False, separators=(",", ":"))
        digest = hmac.new(self.secret, text.encode(), hashlib.sha256).hexdigest()
        return Keyed(scope, key, digest, self.window)


class Recent:
    """First answers kept in memory for their window, the newest ``most`` of them."""

    def __init__(self, clock: Callable[[], float], most: int = REMEMBERED) -> None:
        self.clock = clock
        self.most = most
        # (scope, key) -> (fingerprint, until, answer), in the order they were answered
        self._answers: OrderedDict[tuple[str, str], tuple[str, float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def replay(self, keyed: Keyed | None) -> None:
        """Raise Replayed (or the 422) if this keyed request was answered before."""
        if keyed is None:
            return
        with self._lock:
            now = self.clock()
            while self._answers and next(iter(self._answers.values()))[1] < now:
                self._answers.popitem(last=False)
            found = self._answers.get((keyed.scope, keyed.key))
        if found is not None:
            keyed.replay(found[0], found[2])

    def keep(self, keyed: Keyed | None, answer: Any) -> None:
        """Remember the answer to a keyed request."""
        if keyed is None:
            return
        with self._lock:
            entry = (keyed.fingerprint, self.clock() + keyed.window, answer)
            self._answers[(keyed.scope, keyed.key)] = entry
            self._answers.move_to_end((keyed.scope, keyed.key))
            while len(self._answers) > self.most:
                self._answers.popitem(last=False)
