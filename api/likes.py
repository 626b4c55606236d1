"""Likes written straight to the store, one request per like (``LIKE_BATCHING=off``).

This is the baseline the like batcher is measured against; both offer the same interface.
"""
from __future__ import annotations

import threading
import uuid
from http import HTTPStatus
from typing import Any

from httpkit import HTTPError

from api.storeclient import StoreClient


class DirectLikes:
    """Send every like to the store as a batch of one."""

    def __init__(self, store: StoreClient) -> None:
        self.store = store
        self.received = 0
        self.written = 0
        self.store_requests = 0
        self._lock = threading.Lock()

    def like(self, tweet_id: int) -> int:
        """Record one like and return the tweet's like count, or raise 404."""
        with self._lock:
            self.received += 1
            self.store_requests += 1
        result = self.store.json("POST", "/like-batches",
                                 {"batch_id": uuid.uuid4().hex, "likes": {str(tweet_id): 1}})
        if tweet_id in result["missing"]:
            raise HTTPError(HTTPStatus.NOT_FOUND, "no such tweet")
        with self._lock:
            self.written += 1
        return int(result["likes"][str(tweet_id)])

    def pending(self, tweet_id: int) -> int:
        """Return the likes not yet written for a tweet: none, here."""
        return 0

    def stats(self) -> dict[str, Any]:
        """Return the like counters."""
        return {"batching": False, "likes_received": self.received,
                "likes_written": self.written, "batches": 0,
                "store_requests": self.store_requests, "pending": 0}

    def start(self) -> None:
        """Nothing runs in the background."""

    def stop(self) -> None:
        """Nothing is pending."""
