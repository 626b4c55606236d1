"""Failing fast in front of an upstream that stopped answering: a bound and a breaker.

A stopped process (SIGSTOP, a hung disk) still accepts connections, so every request sent to
it waits the whole read timeout, and under load every thread of the caller ends up waiting.
Two guards keep the caller's other work going:

- a bound on the requests waiting for the upstream at once (``max_waiting``): one over it is
  answered 503 at once instead of joining the queue;
- a breaker (the circuit breaker of Nygard's *Release It!*) that opens when the upstream looks
  hung: after ``threshold`` timeouts in a row, or when requests have waited ``stall_s`` while
  no answer at all came back in that time. While open, requests fail at once; after
  ``cooldown_s`` one request is let through as a probe, and any answer closes the breaker.
- once open, requests still waiting longer than ``stall_s`` are given up on (their
  connections shut), so that no caller waits the whole read timeout: with a fixed number of
  clients each waiting on its answer, those waits would otherwise starve every other request.
  Giving up is a timeout (a 504: the upstream may still act on what it was sent), or for a
  GET or HEAD, which ask for no change, a 503.

A watchdog thread (one per process, started with the first breaker) checks every breaker a
few times a second, since a hung upstream may leave nobody calling ``admit``.

Each hop in the chain waits a little longer before calling a stall than the one behind it
(``STALL_S``): when the store hangs, dbcache gives up first and its answers reach the api and
the caches before they would call their own upstreams hung, so only the hop in front of the
hung process opens, and cache hits further up go on.

A refused connection is not a hang (it fails fast by itself), so it neither opens nor keeps
the breaker open.
"""
from __future__ import annotations

import itertools
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Callable

from httpkit.config import env_float, env_int


@dataclass(frozen=True)
class FailFast:
    """How quickly callers give up on an upstream that does not answer."""

    max_waiting: int = 128
    stall_s: float = 1.0
    cooldown_s: float = 1.0
    threshold: int = 3

    @classmethod
    def from_env(cls, service: str) -> FailFast:
        """Read UPSTREAM_MAX_WAITING, UPSTREAM_STALL_S (default: the service's place in the
        chain, STALL_S) and UPSTREAM_COOLDOWN_S."""
        return cls(env_int("UPSTREAM_MAX_WAITING", cls.max_waiting, 1),
                   env_float("UPSTREAM_STALL_S", STALL_S.get(service, cls.stall_s), 0.05),
                   env_float("UPSTREAM_COOLDOWN_S", cls.cooldown_s, 0.05))


# The stall time of each service's upstream: the nearer the store, the shorter.
STALL_S = {"dbcache": 0.75, "api": 1.5, "cache": 2.0, "lb": 2.5, "web": 3.0, "mastodon": 3.0}


class Refused(Exception):
    """The breaker is open, or too many requests already wait: do not send this one."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Breaker:
    """Admit requests to one upstream, and open when it stops answering (thread-safe)."""

    def __init__(self, settings: FailFast = FailFast(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.opened = 0  # how many times it opened (for stats and tests)
        self.refused = 0  # requests answered at once
        self._lock = threading.Lock()
        self._waiting: dict[int, float] = {}  # ticket -> when the request was sent
        self._tickets = itertools.count()
        self._last_answer = clock()
        self._timeouts = 0
        self._open_until: float | None = None  # None: closed
        self._probe: int | None = None  # the ticket of the request probing an open breaker
        self._aborts: dict[int, Callable[[], None]] = {}  # ticket -> give up on that request
        watch(self)

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self._open_until is not None

    def admit(self) -> int:
        """Return a ticket for a request that may be sent; raise Refused otherwise."""
        now = self.clock()
        with self._lock:
            if self._open_until is None and self._stalled(now):
                self._open(now)
            if self._open_until is not None:
                if now < self._open_until or self._probe is not None:
                    self.refused += 1
                    raise Refused("is not answering")
                ticket = self._probe = next(self._tickets)
            elif len(self._waiting) >= self.settings.max_waiting:
                self.refused += 1
                raise Refused(f"already has {len(self._waiting)} requests waiting")
            else:
                ticket = next(self._tickets)
            self._waiting[ticket] = now
            return ticket

    def watch(self, ticket: int, abort: Callable[[], None]) -> None:
        """Say how to give up on a request under way (shut its connection)."""
        with self._lock:
            if ticket in self._waiting:
                self._aborts[ticket] = abort

    def check(self) -> None:
        """Open on a stall; once open, give up on the requests waiting longer than stall_s."""
        now = self.clock()
        with self._lock:
            if self._open_until is None and self._stalled(now):
                self._open(now)
            if self._open_until is None:
                return
            limit = now - self.settings.stall_s
            aborts = [self._aborts.pop(ticket) for ticket, sent in self._waiting.items()
                      if sent < limit and ticket in self._aborts]
        for abort in aborts:
            abort()

    def answered(self, ticket: int) -> None:
        """Note an answer (of any status): the upstream is alive."""
        with self._lock:
            self._done(ticket)
            self._last_answer = self.clock()
            self._timeouts = 0
            self._open_until = None

    def timed_out(self, ticket: int) -> None:
        """Note a request that got no answer in time."""
        now = self.clock()
        with self._lock:
            probing = self._done(ticket)
            self._timeouts += 1
            if probing or self._timeouts >= self.settings.threshold:
                self._open(now)

    def failed(self, ticket: int) -> None:
        """Note a failure that is not a hang (refused, reset): it says nothing either way."""
        with self._lock:
            if self._done(ticket):
                self._open_until = None  # the probe failed fast: callers fail fast anyway

    def _done(self, ticket: int) -> bool:
        """Forget a ticket; tell whether it was the probe."""
        self._waiting.pop(ticket, None)
        self._aborts.pop(ticket, None)
        if ticket == self._probe:
            self._probe = None
            return True
        return False

    def _stalled(self, now: float) -> bool:
        """Tell whether requests have waited stall_s while nothing answered for as long."""
        if not self._waiting:
            return False
        limit = now - self.settings.stall_s
        return min(self._waiting.values()) < limit and self._last_answer < limit

    def _open(self, now: float) -> None:
        if self._open_until is None:
            self.opened += 1
        self._open_until = now + self.settings.cooldown_s


WATCH_S = 0.1
_watched: weakref.WeakSet[Breaker] = weakref.WeakSet()
_watched_lock = threading.Lock()
_watchdog: threading.Thread | None = None


def watch(breaker: Breaker) -> None:
    """Have the process's watchdog check ``breaker`` from now on."""
    global _watchdog
    with _watched_lock:
        _watched.add(breaker)
        if _watchdog is None or not _watchdog.is_alive():  # not inherited across a fork
            _watchdog = threading.Thread(target=_watch, name="breaker-watchdog", daemon=True)
            _watchdog.start()


def _watch() -> None:
    while True:
        time.sleep(WATCH_S)
        with _watched_lock:
            breakers = list(_watched)
        for breaker in breakers:
            breaker.check()
