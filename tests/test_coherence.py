"""End-to-end: caches kept true by the change feed, with real processes started as `make run`
starts them (stack.launcher) on free loopback ports.

- The api is killed (SIGKILL) while a front cache follows its feed: the cache keeps answering
  its copies on the TTL alone; the data changes behind its back (straight in the store, which
  no front cache follows, so no feed it hears will ever name the change); the api starts
  again with a new epoch, and the cache resets and serves the new truth, long before its 60 s
  TTL could have.
- Read-after-write through lb and three replicas, for every kind of write: each replica, read
  directly, shows the new state within a bounded wait although it held the old page.

Every wait is bounded (``wait_until``); none waits out a TTL."""
from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

import pytest

from stack.launcher import Service, Stack
from tests.api.helpers import (Client, User, delete_tweet, edit_tweet, join, like, open_client,
                               post_tweet, sign_up)
from tests.fakes import wait_until
from tests.harness import HOST, free_ports, running_stack

PROPAGATION_S = 5.0  # a generous bound on "about a second" for a loaded test machine


@pytest.fixture
def stacks() -> Iterator[ExitStack]:
    """Stacks a test starts; every process still running when it ends is stopped, the newest
    stack first."""
    with ExitStack() as started:
        yield started


@pytest.fixture
def clients() -> Iterator[ExitStack]:
    with ExitStack() as opened:
        yield opened


def start(stacks: ExitStack, services: list[Service], data_dir: Path) -> Stack:
    return stacks.enter_context(running_stack(data_dir, services=services)).stack


def url(port: int) -> str:
    return f"http://{HOST}:{port}"


def feed_state(cache: Client) -> dict[str, Any]:
    [state] = cache.get_json("/_cache/stats")["feed"]["upstreams"]
    assert isinstance(state, dict)
    return state


def cached(client: Client, target: str) -> dict[str, Any]:
    """GET ``target`` until a cache answers it from its copy; return that copy."""
    for _ in range(3):
        answer = client.get(target)
        assert answer.status == 200, (target, answer.status, answer.body)
        if answer.headers.get("x-cache") == "HIT":
            data: dict[str, Any] = answer.json()
            return data
    raise AssertionError(f"{target} is never answered from the cache")


# --- the api dies and comes back ----------------------------------------------------------------

def test_a_cache_following_a_killed_api_resets_when_it_comes_back_and_serves_the_new_truth(
        stacks: ExitStack, clients: ExitStack, tmp_path: Path) -> None:
    ports = free_ports(["store", "dbcache", "api", "cache"])
    api_service = Service("api", "api", ports["api"], {"STORE_URL": url(ports["dbcache"])})
    services = [Service("store", "store", ports["store"]),
                Service("dbcache", "dbcache", ports["dbcache"],
                        {"UPSTREAM_URL": url(ports["store"])}),
                api_service,
                Service("cache", "cache", ports["cache"], {"UPSTREAM_URL": url(ports["api"])})]
    data_dir = tmp_path / "data"
    stack = start(stacks, services, data_dir)
    cache = open_client(clients, url(ports["cache"]))
    store = open_client(clients, url(ports["store"]))
    alice = join(cache, "alice")
    tweet = post_tweet(cache, alice, "the old truth #before")
    assert wait_until(lambda: feed_state(cache)["state"] == "following")
    first = feed_state(cache)
    assert first["resets"] == 1  # the first contact
    assert cached(cache, f"/tweets/{tweet['id']}")["text"] == "the old truth #before"
    assert [t["text"] for t in cached(cache, "/tweets")["tweets"]] == ["the old truth #before"]

    killed = stack.procs["api"]
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(5) == -signal.SIGKILL
    assert wait_until(lambda: feed_state(cache)["state"] == "unreachable", PROPAGATION_S)
    # The api is down: the cache still answers what it holds (the TTL alone).
    down = cache.get(f"/tweets/{tweet['id']}")
    assert (down.status, down.headers["x-cache"]) == (200, "HIT")
    assert down.json()["text"] == "the old truth #before"
    assert cache.get("/accounts/nobody").status == 502  # what it does not hold, it cannot

    # Behind every front cache's back: a write straight into the store.
    author = store.get_json("/accounts/alice")["id"]
    edited = store.fetch("PUT", f"/tweets/{tweet['id']}", {
        "text": "the new truth #after", "hashtags": ["after"], "author_id": author})
    assert edited.status == 200
    assert cache.get(f"/tweets/{tweet['id']}").headers["x-cache"] == "HIT"  # still the old copy

    start(stacks, [api_service], data_dir)  # the same api, a new process: a new epoch
    assert wait_until(lambda: feed_state(cache)["resets"] == 2, PROPAGATION_S), feed_state(cache)
    after = feed_state(cache)
    assert after["state"] == "following" and after["epoch"] != first["epoch"]
    fresh = cache.get(f"/tweets/{tweet['id']}")
    assert (fresh.headers["x-cache"], fresh.json()["text"]) == ("MISS", "the new truth #after")
    assert [t["text"] for t in cache.get_json("/tweets")["tweets"]] == ["the new truth #after"]
    assert cache.get_json("/_cache/stats")["feed"]["dropped_by_reset"] >= 2
    assert cache.get_json("/hashtags/after/tweets")["tweets"][0]["id"] == tweet["id"]


# --- read-after-write on every replica -----------------------------------------------------------

Check = Callable[[Client], bool]


def everywhere(replicas: list[Client], check: Check, what: str) -> None:
    """Wait until every replica, read directly, shows what ``check`` looks for."""
    for number, replica in enumerate(replicas, 1):
        assert wait_until(lambda: check(replica), PROPAGATION_S), \
            f"replica {number} still does not show {what}"


def warm(replicas: list[Client], *targets: str) -> None:
    """Make every replica hold a copy of each target (so a stale copy would be served)."""
    for replica in replicas:
        for target in targets:
            cached(replica, target)


def tweet_texts(replica: Client, target: str) -> list[str]:
    answer = replica.get(target)
    assert answer.status == 200, answer.body
    return [tweet["text"] for tweet in answer.json()["tweets"]]


def test_every_replica_shows_every_kind_of_write_within_a_bounded_wait(
        stacks: ExitStack, clients: ExitStack, tmp_path: Path) -> None:
    caches = 3
    chain = stacks.enter_context(running_stack(tmp_path / "data", caches, front=(),
                                               env={"LIKE_PUBLISH_S": "0.2"}))
    lb = open_client(clients, chain.url("lb"))
    replicas = [open_client(clients, chain.url(f"cache{n}")) for n in range(1, caches + 1)]
    alice: User = join(lb, "alice")
    for replica in replicas:
        assert wait_until(lambda: feed_state(replica)["state"] == "following")

    warm(replicas, "/accounts")
    sign_up(lb, "bob")
    everywhere(replicas, lambda r: "bob" in [a["username"] for a in
                                             r.get_json("/accounts")["accounts"]],
               "the new account")

    warm(replicas, "/tweets", "/accounts/alice", "/hashtags/e2e/tweets")
    tweet = post_tweet(lb, alice, "first draft #e2e")
    path = f"/tweets/{tweet['id']}"
    everywhere(replicas, lambda r: tweet_texts(r, "/tweets") == ["first draft #e2e"], "the post")
    everywhere(replicas, lambda r: r.get_json("/accounts/alice")["tweet_count"] == 1,
               "the author's new tweet count")
    everywhere(replicas, lambda r: tweet_texts(r, "/hashtags/e2e/tweets") == ["first draft #e2e"],
               "the post on its tag's page")

    warm(replicas, path, "/tweets", "/hashtags/e2e/tweets")
    edit_tweet(lb, alice, tweet["id"], "second draft #e2e #edited")
    everywhere(replicas, lambda r: r.get_json(path)["text"] == "second draft #e2e #edited",
               "the edit")
    everywhere(replicas, lambda r: tweet_texts(r, "/hashtags/e2e/tweets")
               == ["second draft #e2e #edited"], "the edit on its tag's page")

    warm(replicas, path, "/tweets")
    assert [like(lb, tweet["id"]) for _ in range(3)] == [1, 2, 3]
    everywhere(replicas, lambda r: r.get_json(path)["likes"] == 3, "the likes")
    everywhere(replicas, lambda r: r.get_json("/tweets")["tweets"][0]["likes"] == 3,
               "the likes on the timeline")

    warm(replicas, path, "/tweets", "/accounts/alice")
    delete_tweet(lb, alice, tweet["id"])
    everywhere(replicas, lambda r: r.get(path).status == 404, "the delete")
    everywhere(replicas, lambda r: tweet_texts(r, "/tweets") == [], "the delete on the timeline")
    everywhere(replicas, lambda r: r.get_json("/accounts/alice")["tweet_count"] == 0,
               "the author's tweet count after the delete")
