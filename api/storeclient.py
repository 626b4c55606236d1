"""The API's way to the database: the store's data API, through dbcache when there is one.

Every request made here counts as one database access (``db_accesses`` in /logs and /stats).
The store's answers are mapped to the public API's errors; a store that cannot be reached is a
502 (or 504 when it does not answer in time).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol

from httpkit import HTTPError, Upstream, UpstreamError, UpstreamResponse
from httpkit.feed import CHANGED_KEYS, SURROGATE_KEY
from httpkit.proxy import failure

CHANGED, SURROGATE = CHANGED_KEYS.lower(), SURROGATE_KEY.lower()
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class StoreUnavailable(HTTPError):
    """The database could not be had; ``sent`` tells whether the request may have reached it."""

    def __init__(self, error: HTTPError, sent: bool) -> None:
        super().__init__(error.status, error.message, error.code, error.headers)
        self.sent = sent


PASSED_ON = frozenset({HTTPStatus.BAD_REQUEST, HTTPStatus.FORBIDDEN, HTTPStatus.NOT_FOUND,
                       HTTPStatus.CONFLICT, HTTPStatus.UNPROCESSABLE_ENTITY})
REPLAYED = "idempotent-replayed"


class StoreClient:
    """Call the store's data API and count each call."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.accesses = 0
        self._lock = threading.Lock()

    def fetch(self, method: str, target: str, payload: Any = None,
              fresh: bool = False) -> UpstreamResponse:
        """Send one request; ``fresh`` asks every cache on the way to skip its copy."""
        with self._lock:
            self.accesses += 1
        headers = {"cache-control": "no-cache"} if fresh else None
        try:
            answer = self.upstream.fetch(method, target, payload, headers)
        except UpstreamError as err:
            raise StoreUnavailable(failure(err, "the database"), err.sent) from None
        if answer.status == HTTPStatus.INSUFFICIENT_STORAGE:  # nothing was written
            raise HTTPError(answer.status, message(answer), "storage_full")
        if answer.status == HTTPStatus.SERVICE_UNAVAILABLE:  # dbcache failing fast: not sent
            raise StoreUnavailable(HTTPError(answer.status, "the database is unavailable",
                                             "store_unavailable", {"Retry-After": "1"}), False)
        if answer.status == HTTPStatus.GATEWAY_TIMEOUT:  # sent: it may yet be done
            raise StoreUnavailable(HTTPError(answer.status, "the database did not answer in "
                                             "time", "store_timeout"), True)
        if answer.status >= 500:
            raise HTTPError(HTTPStatus.BAD_GATEWAY, "the database failed to answer",
                            "upstream_error")
        return answer

    def answer(self, method: str, target: str, payload: Any = None, fresh: bool = False,
               missing: str = "not found") -> Any:
        """Send one request and return its JSON; store errors become API errors."""
        return self.tagged(method, target, payload, fresh, missing)[0]

    def tagged(self, method: str, target: str, payload: Any = None, fresh: bool = False,
               missing: str = "not found") -> tuple[Any, list[str]]:
        """Send one request; return its JSON and the surrogate keys the answer names: what
        a read shows (Surrogate-Key), or what a write made untrue (Changed-Keys)."""
        data, keys, _ = self.written(method, target, payload, fresh, missing)
        return data, keys

    def written(self, method: str, target: str, payload: Any = None, fresh: bool = False,
                missing: str = "not found") -> tuple[Any, list[str], bool]:
        """As ``tagged``, and tell whether the store answered a keyed write it had done
        before with its first answer (Idempotent-Replayed: nothing changed)."""
        answer = self.fetch(method, target, payload, fresh)
        if answer.status in PASSED_ON:
            raise HTTPError(answer.status, missing if answer.status == 404 else message(answer),
                            code(answer))
        header = CHANGED if method in WRITES else SURROGATE
        keys = answer.headers.get(header, "").split()
        replayed = answer.headers.get(REPLAYED, "").lower() == "true"
        if answer.status == HTTPStatus.NO_CONTENT:
            return None, keys, replayed
        return answer.json(), keys, replayed


def message(answer: UpstreamResponse) -> str:
    """Return the human sentence of a store error."""
    try:
        return str(answer.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return "the database refused the request"


def code(answer: UpstreamResponse) -> str | None:
    """Return the code of a store error (None lets HTTPError pick the default)."""
    try:
        value = answer.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return str(value) if answer.status != 404 else None


@dataclass
class BatchAnswer:
    """The store's answer to a like batch: exact totals, tweets that no longer exist, and
    whether the store had applied this batch id before (so it added nothing now)."""

    totals: dict[int, int]
    missing: set[int]
    duplicate: bool = False


class LikeStore(Protocol):
    """What the like batcher needs of the store (a fake stands in for it in unit tests)."""

    def stored_likes(self, tweet_id: int) -> int | None:
        """Return the tweet's stored like total, or None if there is no such tweet; raise
        an HTTPError when the store cannot say (StoreUnavailable when it cannot be reached)."""

    def apply_batch(self, batch_id: str, likes: dict[int, int]) -> BatchAnswer:
        """Add the likes unless this batch id was applied before; raise StoreUnavailable
        (telling whether it may have reached the store) or another HTTPError on failure."""


class StoreLikes:
    """The like batcher's store over HTTP: ``GET /tweets/{id}`` and ``POST /like-batches``."""

    def __init__(self, client: StoreClient) -> None:
        self.client = client

    def stored_likes(self, tweet_id: int) -> int | None:
        answer = self.client.fetch("GET", f"/tweets/{tweet_id}")
        if answer.status == HTTPStatus.NOT_FOUND:
            return None
        if answer.status != HTTPStatus.OK:
            raise StoreUnavailable(HTTPError(HTTPStatus.BAD_GATEWAY,
                                             "the database did not answer the read"), False)
        return int(answer.json()["likes"])

    def apply_batch(self, batch_id: str, likes: dict[int, int]) -> BatchAnswer:
        result = self.client.answer("POST", "/like-batches", {
            "batch_id": batch_id, "likes": {str(tweet): count for tweet, count in likes.items()}})
        return BatchAnswer({int(t): int(n) for t, n in result.get("likes", {}).items()},
                           {int(t) for t in result.get("missing", [])},
                           bool(result.get("duplicate", False)))
