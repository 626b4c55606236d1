"""Fault tests of the like batcher with the API and the store as real processes.

``python -m api`` and ``python -m store`` run as subprocesses on free loopback ports, each
over its own DATA_DIR in ``tmp_path``; the tests kill them (SIGKILL), stop them (SIGTERM)
and start them again on the same DATA_DIR, then count what the store ends up holding.
Tweets are made directly through the store's data API, so no password is ever hashed.
Every process a test started is killed when it ends, whatever happened.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.harness import free_port


ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 10.0
ARRIVAL_TIMEOUT_S = 15.0
HOLD = {"LIKE_BATCH_SIZE": "1000", "LIKE_MAX_AGE_S": "3600"}  # nothing is sent by the rules


def call(url: str, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
    """Send one request on a fresh connection; return the status and the decoded JSON."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        body = json.dumps(payload).encode() if payload is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body, headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        conn.close()


@dataclass
class Service:
    """One service run as ``python -m <module>``; it can be started again the same way."""

    module: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, healthy: bool = True) -> Service:
        """Start the process and wait until it answers (with a 200 /healthz if ``healthy``)."""
        assert self.process is None or self.process.poll() is not None, "already running"
        env = {"PATH": os.environ.get("PATH", ""), "LOG_LEVEL": "INFO",
               "PORT": str(self.port), **self.env}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", self.module], cwd=ROOT,
                                            env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"{self.module} exited:\n{self.log()}"
            try:
                status, _ = call(self.url, "GET", "/healthz")
            except OSError:
                status = 0
            if status == 200 or (status and not healthy):
                return self
            time.sleep(0.02)
        raise AssertionError(f"{self.module} did not start in time:\n{self.log()}")

    def terminate(self) -> int:
        """SIGTERM the process and return its exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def kill(self) -> None:
        """SIGKILL the process, if it still runs, and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


@dataclass
class Services:
    """The services one test started; all are killed at the end."""

    tmp: Path
    started: list[Service] = field(default_factory=list)

    def store(self) -> Service:
        data_dir = self.tmp / "store-data"
        return self._add(Service("store", {"DATA_DIR": str(data_dir)}, self.tmp / "store.log"))

    def api(self, store: Service, **env: str) -> Service:
        data_dir = self.tmp / "api-data"
        return self._add(Service("api", {"DATA_DIR": str(data_dir), "STORE_URL": store.url,
                                         "SCRYPT_N": "16", **env}, self.tmp / "api.log"))

    def _add(self, service: Service) -> Service:
        self.started.append(service)
        return service

    def kill_all(self) -> None:
        for service in reversed(self.started):
            service.kill()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    services = Services(tmp_path)
    try:
        yield services
    finally:
        services.kill_all()


def new_tweet(store: Service) -> int:
    """Make an account and a tweet through the store's data API; return the tweet's id."""
    status, account = call(store.url, "POST", "/accounts", {
        "username": "alice", "password_hash": "not-hashed", "display_name": "Alice"})
    assert status == 201, account
    status, tweet = call(store.url, "POST", "/tweets", {
        "author_id": account["id"], "text": "like me", "hashtags": []})
    assert status == 201, tweet
    return int(tweet["id"])


def stored_likes(store: Service, tweet: int) -> int:
    status, body = call(store.url, "GET", f"/tweets/{tweet}")
    assert status == 200, body
    return int(body["likes"])


def like(api: Service, tweet: int, times: int) -> list[int]:
    """Like a tweet through the API ``times`` times; every answer must be a 202."""
    counts = []
    for _ in range(times):
        status, body = call(api.url, "POST", f"/tweets/{tweet}/like")
        assert status == 202, body
        counts.append(int(body["likes"]))
    return counts


def api_stats(api: Service) -> dict[str, Any]:
    status, body = call(api.url, "GET", "/stats")
    assert status == 200, body
    stats: dict[str, Any] = body
    return stats


def wait_for_likes(store: Service, tweet: int, expected: int) -> int:
    """Poll the store until the tweet has ``expected`` likes or time is up; return the last."""
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    while (likes := stored_likes(store, tweet)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return likes


def test_a_killed_api_replays_its_journal_and_the_store_ends_with_exactly_37(
        services: Services) -> None:
    store = services.store().start()
    tweet = new_tweet(store)
    api = services.api(store, **HOLD).start()
    assert like(api, tweet, 37) == list(range(1, 38))
    assert stored_likes(store, tweet) == 0  # nothing was due
    api.kill()
    assert stored_likes(store, tweet) == 0
    api.start()
    status, body = call(api.url, "GET", f"/tweets/{tweet}")
    assert (status, body["likes"]) == (200, 37)  # the replayed likes count for reads
    assert api_stats(api)["pending"] == 37
    assert api.terminate() == 0
    assert stored_likes(store, tweet) == 37
    api.start()  # and the journal is empty now: nothing is sent twice
    assert api_stats(api)["pending"] == 0
    assert api.terminate() == 0
    assert stored_likes(store, tweet) == 37, api.log()


def test_likes_taken_while_the_store_is_down_all_arrive_once_it_is_back(
        services: Services) -> None:
    store = services.store().start()
    tweet = new_tweet(store)
    api = services.api(store, LIKE_BATCH_SIZE="10", LIKE_MAX_AGE_S="1").start()
    assert store.terminate() == 0
    assert like(api, tweet, 50) == list(range(1, 51))  # each answered at once, with a count
    store.start()  # same port, same DATA_DIR
    assert wait_for_likes(store, tweet, 50) == 50, api.log()
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    while api_stats(api)["pending"] and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = api_stats(api)
    assert (stats["pending"], stats["likes_received"], stats["likes_written"]) == (0, 50, 50)
    assert stats["retries"] >= 1
    assert stored_likes(store, tweet) == 50  # and no more than 50
    assert api.terminate() == 0
    assert stored_likes(store, tweet) == 50


def test_sigterm_writes_the_pending_likes_before_the_api_exits(services: Services) -> None:
    store = services.store().start()
    tweet = new_tweet(store)
    api = services.api(store, **HOLD).start()
    like(api, tweet, 25)
    assert stored_likes(store, tweet) == 0
    assert api.terminate() == 0
    assert stored_likes(store, tweet) == 25, api.log()


def test_sigterm_with_the_store_down_keeps_the_likes_for_the_next_start(
        services: Services) -> None:
    store = services.store().start()
    tweet = new_tweet(store)
    api = services.api(store, **HOLD).start()
    like(api, tweet, 25)
    assert store.terminate() == 0
    started = time.monotonic()
    assert api.terminate() == 0
    assert time.monotonic() - started < 5  # a refused store does not hold up the exit
    store.start()
    assert stored_likes(store, tweet) == 0
    api.start()  # the batch made at shutdown is resent at once, whatever the age rule says
    assert wait_for_likes(store, tweet, 25) == 25, api.log()
    assert api.terminate() == 0
    assert stored_likes(store, tweet) == 25
