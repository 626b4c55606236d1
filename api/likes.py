"""How the API takes likes: the interface, the unbatched baseline (``LIKE_BATCHING=off``),
and the publisher that tells the caches a count moved.

``DirectLikes`` writes every like straight to the store, one request per like: the baseline
the like batcher (``api.batcher.LikeBatcher``) is measured against. Both are ``Likes``.
``LikePublisher`` puts a liked tweet's key in the api's change feed, coalesced per tweet.
"""
from __future__ import annotations

import threading
import time
import uuid
from http import HTTPStatus
from typing import Any, Callable, Protocol

from httpkit import HTTPError
from httpkit.feed import ChangeFeed, tweet_key

from api.storeclient import LikeStore


class Likes(Protocol):
    def like(self, tweet_id: int) -> int:
        """Record one like and return the tweet's running count, or raise 404."""

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

    def like(self, tweet_id: int) -> int:
        """Record one like and return the tweet's like count, or raise 404."""
        with self._lock:
            self.received += 1
            self.store_requests += 1
        answer = self.store.apply_batch(uuid.uuid4().hex, {tweet_id: 1})
        if tweet_id in answer.missing:
            raise HTTPError(HTTPStatus.NOT_FOUND, "no such tweet")
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


class LikePublisher:
    """Tell the change feed that a tweet's like count moved, at most once per ``interval``.

    A hot tweet takes thousands of likes a second; publishing each would drop every cached
    page showing it thousands of times a second. The first like after a quiet ``interval``
    is published at once; later ones mark the tweet, and ``tick`` publishes the marked tweets
    whose interval has run out, all in one change. A count on a cached page is then at most
    about ``interval`` old.
    """

    def __init__(self, feed: ChangeFeed, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.feed = feed
        self.interval = interval
        self.clock = clock
        self._published: dict[int, float] = {}  # tweet -> when its key was last published
        self._marked: set[int] = set()  # liked since then
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def liked(self, tweet_id: int) -> bool:
        """Note a like; return True if the tweet's key was published for it right now."""
        now = self.clock()
        with self._lock:
            last = self._published.get(tweet_id)
            if last is not None and now - last < self.interval:
                self._marked.add(tweet_id)
                return False
            self._published[tweet_id] = now
            self.feed.publish([tweet_key(tweet_id)])
            return True

    def tick(self) -> int:
        """Publish the marked tweets whose interval has run out; return how many."""
        now = self.clock()
        with self._lock:
            due = [t for t in self._marked if now - self._published[t] >= self.interval]
            for tweet_id in due:
                self._marked.discard(tweet_id)
                self._published[tweet_id] = now
            # Forget quiet tweets, so the map holds about one interval's worth of likes.
            for tweet_id in [t for t, at in self._published.items()
                             if now - at >= self.interval and t not in self._marked]:
                del self._published[tweet_id]
            if due:
                self.feed.publish(map(tweet_key, due))
            return len(due)

    def start(self) -> None:
        """Tick in the background, several times per interval."""
        threading.Thread(target=self._run, name="like-publisher", daemon=True).start()

    def _run(self) -> None:
        while not self._stopped.wait(min(0.1, self.interval / 4)):
            self.tick()

    def stop(self) -> None:
        """Stop ticking, after publishing what is marked."""
        self._stopped.set()
        with self._lock:
            marked, self._marked = self._marked, set()
        self.feed.publish(map(tweet_key, marked))
