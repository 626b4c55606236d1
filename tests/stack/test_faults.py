"""Faults from the outside, with real processes: a hung store (SIGSTOP) under load, and a full
disk. What must hold (DESIGN.md "Faults, supervision and bad input"): requests that need the
hung store fail fast with 503 while those that do not keep their speed, and an error answer
means nothing happened (a full disk is a 507, and nothing answered 507 is counted)."""
from __future__ import annotations

import errno
import os
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.helpers import Client, join, post_tweet
from tests.api.test_batcher_faults import HOLD, Service
from tests.fakes import wait_until
from tests.stack.conftest import StartStack, pids, url_of

Outcome = tuple[str, int, float]  # kind, status (0: no answer), seconds


def hammer(lb: str, hot: str, seconds: float, workers: int = 12) -> list[Outcome]:
    """Send a mix of cache hits, misses that need the store, and likes, for ``seconds``."""
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def work(worker: int) -> None:
        client = Client(lb, timeout=20)
        n = 0
        while time.monotonic() < end:
            kind = ("hit", "miss", "like")[(worker + n) % 3]
            target = {"hit": hot, "miss": f"/tweets/search?q=w{uuid.uuid4().hex[:8]}",
                      "like": f"{hot}/like"}[kind]
            started = time.monotonic()
            try:
                answer = client.request("POST" if kind == "like" else "GET", target)
                status = answer.status
            except OSError:
                status = 0
            with lock:
                outcomes.append((kind, status, time.monotonic() - started))
            n += 1
        client.close()
    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 30)
    return outcomes


def of(outcomes: list[Outcome], kind: str) -> list[Outcome]:
    return [outcome for outcome in outcomes if outcome[0] == kind]


def test_with_the_store_stopped_what_needs_it_fails_fast_and_the_rest_keeps_its_speed(
        start_stack: StartStack) -> None:
    launcher = start_stack()  # the read timeout stays 10 s: nobody may wait for it
    workers = 12
    store = pids(launcher)["store"]
    lb = url_of(launcher, "lb")
    api = Client(lb)
    tweet = post_tweet(api, join(api, "alice"), "read me while the store sleeps")
    hot = f"/tweets/{tweet['id']}"
    for _ in range(4):
        assert api.get(hot).status == 200  # in both caches now
    os.kill(store, signal.SIGSTOP)
    try:
        outcomes = hammer(lb, hot, seconds=3.0, workers=workers)
    finally:
        os.kill(store, signal.SIGCONT)
    hits, misses, likes = of(outcomes, "hit"), of(outcomes, "miss"), of(outcomes, "like")
    assert hits and {status for _, status, _ in hits} == {200}
    assert max(seconds for _, _, seconds in hits) < 1.0
    assert likes and {status for _, status, _ in likes} == {202}  # the api knows the tweet
    assert {status for _, status, _ in misses} <= {503, 504}, misses
    # Those sent before the store looked hung were given up on after about a second (504);
    # every later one was answered 503 at once.
    assert max(seconds for _, _, seconds in misses) < 3.0, sorted(misses, key=lambda o: o[2])
    slow = [outcome for outcome in misses if outcome[2] > 0.5]
    assert len(slow) <= 2 * workers and len(misses) > 3 * len(slow), slow
    answer = api.get(f"/tweets/search?q=again{uuid.uuid4().hex[:6]}")
    if answer.status == 503:
        assert answer.headers.get("retry-after") == "1"
    # Once the store runs again, requests that need it succeed within moments.
    assert wait_until(lambda: api.get(f"/tweets/search?q=x{uuid.uuid4().hex[:6]}").status
                      == 200, timeout=5.0)
    api.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs (mounting needs root: skipped with a clear message otherwise)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk has no room left; return it."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC
    return filler


def test_a_full_disk_is_a_507_nothing_answered_507_is_counted_and_writes_resume_by_themselves(
        small_disk: Path, tmp_path: Path) -> None:
    store = Service("store", {"DATA_DIR": str(small_disk / "store")}, tmp_path / "store.log")
    api = Service("api", {"DATA_DIR": str(small_disk / "api"), "STORE_URL": "", "SCRYPT_N": "16",
                          **HOLD}, tmp_path / "api.log")
    try:
        store.start()
        api.env["STORE_URL"] = store.url
        api.start()
        client = Client(api.url)
        alice = join(client, "alice")
        tweets = [post_tweet(client, alice, f"tweet {n}")["id"] for n in range(40)]
        filler = fill(small_disk)
        posts: list[int] = []
        likes: dict[int, int] = {}  # tweet id -> status of each like
        liked = 0
        for n in range(600):
            answer = client.fetch("POST", "/tweets", {"text": "x" * 270}, alice.auth)
            posts.append(answer.status)
            tweet = tweets[n % len(tweets)]
            answer = client.fetch("POST", f"/tweets/{tweet}/like")
            likes[n] = answer.status
            liked += answer.status == 202
            if answer.status == 507:
                assert answer.json()["error"]["code"] == "storage_full"
            if 507 in posts and 507 in likes.values():
                break
        assert set(posts) <= {201, 507} and 507 in posts, set(posts)
        assert set(likes.values()) <= {202, 507} and 507 in likes.values()
        stats = client.get_json("/stats")
        assert stats["likes_received"] == liked and stats["likes_written"] <= liked
        filler.unlink()  # space comes back: nobody restarts anything
        assert wait_until(lambda: client.fetch("POST", "/tweets", {"text": "room again"},
                                               alice.auth).status == 201, timeout=5.0)
        assert client.fetch("POST", f"/tweets/{tweets[0]}/like").status == 202
        client.close()
        assert api.terminate() == 0  # flushes every like it took
        with sqlite3.connect(small_disk / "store" / "twitter.sqlite3") as db:
            [(stored,)] = db.execute("select coalesce(sum(likes), 0) from tweets")
        assert stored == liked + 1  # every like answered 202 once, none answered 507
    finally:
        api.kill()
        store.kill()


def test_a_keyed_tweet_and_like_sent_again_after_the_api_was_killed_land_once(
        start_stack: StartStack) -> None:
    launcher = start_stack(LIKE_MAX_AGE_S="3600")  # the like stays in the api's journal
    lb = Client(url_of(launcher, "lb"))
    try:
        ada = join(lb, "ada")
        post = {**ada.auth, "idempotency-key": "post-1"}
        tweet = lb.fetch("POST", "/tweets", {"text": "once"}, post).json()
        assert lb.fetch("POST", f"/tweets/{tweet['id']}/like",
                        headers={"idempotency-key": "like-1"}).json()["likes"] == 1
        os.kill(pids(launcher)["api"], signal.SIGKILL)  # as if its answers had been lost
        launcher.wait_for(launcher.err, r"api is back")
        again = lb.fetch("POST", "/tweets", {"text": "once"}, post)
        assert again.json() == tweet and again.headers["idempotent-replayed"] == "true"
        liked = lb.fetch("POST", f"/tweets/{tweet['id']}/like",
                         headers={"idempotency-key": "like-1"})
        assert liked.json()["likes"] == 1 and liked.headers["idempotent-replayed"] == "true"
        assert [t["id"] for t in lb.get_json("/tweets", fresh=True)["tweets"]] == [tweet["id"]]
        assert lb.get_json(f"/tweets/{tweet['id']}", fresh=True)["likes"] == 1
    finally:
        lb.close()
