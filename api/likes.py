"""How the API takes likes: the interface, and the unbatched baseline (``LIKE_BATCHING=off``).

``DirectLikes`` writes every like straight to the store, one request per like: the baseline
the like batcher (``api.batcher.LikeBatcher``) is measured against. Both are ``Likes``.
"""
from __future__ import annotations

import hashlib
import threading
import uuid
from http import HTTPStatus
from typing import Any, Protocol

from httpkit import HTTPError

from api.idempotency import Keyed, Replayed
from api.storeclient import LikeStore


class Likes(Protocol):
    def like(self, tweet_id: int, keyed: Keyed | None = None) -> int:
        """Record one like and return the tweet's running count, or raise 404; raise
        Replayed with the first answer if this keyed like was taken before."""

    def likes(self, tweet_id: int, stored_likes: int) -> int:
        """Return the running count of a tweet whose stored total a read returned."""

    def saw(self, tweet_id: int, stored_likes: int) -> None:
        """Note a tweet's stored total (e.g. 0 for a new tweet)."""

    def forget(self, tweet_id: int) -> None:
        """Forget a deleted tweet."""

    def stats(self) -> dict[str, Any]:
        """Return the like counters."""

    def start(self) -> None:
        """Start any background work."""

    def stop(self) -> None:
        """Finish: write or keep what is pending."""


class DirectLikes:
    """Send every like to the store as a batch of one."""

    def __init__(self, store: LikeStore) -> None:
        self.store = store
        self.received = 0
        self.written = 0
        self.store_requests = 0
        self._lock = threading.Lock()

    def like(self, tweet_id: int, keyed: Keyed | None = None) -> int:
        """Record one like and return the tweet's like count, or raise 404; a keyed like is
        the batch the store applies once. (The store keeps batch ids, not requests: here a key
        counts for good, and one reused for another tweet is a new like, not a 422.)"""
        with self._lock:
            self.received += 1
            self.store_requests += 1
        answer = self.store.apply_batch(batch_id(keyed), {tweet_id: 1})
        if tweet_id in answer.missing:
            raise HTTPError(HTTPStatus.NOT_FOUND, "no such tweet")
        if answer.duplicate:
            raise Replayed({"id": tweet_id, "likes": answer.totals[tweet_id]})
        with self._lock:
            self.written += 1
        return answer.totals[tweet_id]

    def likes(self, tweet_id: int, stored_likes: int) -> int:
        """Return the stored total: nothing is ever pending here."""
        return stored_likes

    def saw(self, tweet_id: int, stored_likes: int) -> None:
        """Nothing to remember."""

    def forget(self, tweet_id: int) -> None:
        """Nothing to forget."""

    def stats(self) -> dict[str, Any]:
        """Return the like counters."""
        return {"batching": False, "likes_received": self.received,
                "likes_written": self.written, "batches": 0,
                "store_requests": self.store_requests, "pending": 0}

    def start(self) -> None:
        """Nothing runs in the background."""

    def stop(self) -> None:
        """Nothing is pending."""


def batch_id(keyed: Keyed | None) -> str:
    """Return a fresh batch id, or one made from a keyed like's key and meaning."""
    if keyed is None:
        return uuid.uuid4().hex
    text = "\0".join((keyed.scope, keyed.key, keyed.fingerprint))
    return "keyed-" + hashlib.sha256(text.encode()).hexdigest()[:40]
