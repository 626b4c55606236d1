"""End-to-end: the whole chain lb -> cache x2 -> api -> dbcache -> store started as `make run`
starts it (stack.launcher's plan and Stack: real processes, each waited for until healthy) on
free loopback ports, then the same story with the caches removed (api straight on store).

A user signs up, logs in, posts, reads it back, likes, edits, searches and deletes. Between
the two runs the stack is stopped as Ctrl-C stops it, and the second run, on the same data
directory, finds the likes the first left pending: they were flushed on the way down."""
from __future__ import annotations

import subprocess
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from stack.launcher import Service, Stack
from tests.api.helpers import (Client, User, delete_tweet, edit_tweet, join, like, log_in,
                               open_client, post_tweet, read_tweet, texts)
from tests.harness import running_stack

CACHES = 2


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def stop(stack: Stack) -> list[subprocess.Popen[bytes]]:
    """Stop as Ctrl-C does; return the processes, all exited."""
    procs = list(stack.procs.values())
    stack.stop()
    assert all(proc.poll() is not None for proc in procs)
    return procs


def story(client: Client, username: str) -> dict[str, Any]:
    """The user story every configuration must pass; returns a tweet left behind, liked."""
    user: User = join(client, username)
    assert log_in(client, username.upper()).token  # usernames ignore case
    tweet = post_tweet(client, user, f"hello from {username} #E2E")
    assert read_tweet(client, tweet["id"], fresh=True)["text"] == f"hello from {username} #E2E"
    assert tweet["id"] in [t["id"] for t in client.get_json("/tweets", fresh=True)["tweets"]]
    assert like(client, tweet["id"]) == 1
    assert like(client, tweet["id"]) == 2
    assert read_tweet(client, tweet["id"], fresh=True)["likes"] == 2
    edited = edit_tweet(client, user, tweet["id"], f"goodbye from {username} #e2e #edited")
    assert edited["hashtags"] == ["e2e", "edited"] and edited["edited_at"] is not None
    assert read_tweet(client, tweet["id"], fresh=True)["text"] == edited["text"]
    found = client.get_json(f"/tweets/search?q=GOODBYE+{username}", fresh=True)
    assert texts(found) == [edited["text"]]
    assert client.get_json("/hashtags/EDITED/tweets", fresh=True)["tweets"][0]["id"] == \
        tweet["id"]
    kept = post_tweet(client, user, f"{username} keeps this one")
    assert [like(client, kept["id"]) for _ in range(3)] == [1, 2, 3]
    other = join(client, f"{username}_2")
    assert client.fetch("DELETE", f"/tweets/{tweet['id']}", headers=other.auth).status == 403
    delete_tweet(client, user, tweet["id"])
    assert client.get(f"/tweets/{tweet['id']}", {"cache-control": "no-cache"}).status == 404
    assert client.get_json(f"/tweets/search?q=goodbye+{username}", fresh=True)["tweets"] == []
    return kept


def test_the_whole_chain_then_the_api_alone(data_dir: Path) -> None:
    with running_stack(data_dir, CACHES) as chain:
        names = [s.name for s in chain.stack.services]
        assert names[:6] == ["store", "dbcache", "api", "cache1", "cache2", "lb"]
        with ExitStack() as clients:
            lb = open_client(clients, chain.url("lb"))
            kept = story(lb, "alice")
            answer = lb.get("/tweets")
            assert answer.headers["x-cache"] in ("HIT", "MISS")  # a cache answered
            calls = lb.get_json("/logs")["calls"]
            writes = [call for call in calls if call[0] != "GET"]
            assert writes[:4] == [["POST", "/accounts"], ["POST", "/sessions"],
                                  ["POST", "/sessions"], ["POST", "/tweets"]]
            assert ["POST", f"/tweets/{kept['id']}/like"] in calls
            assert calls.index(["PUT", f"/tweets/{kept['id'] - 1}"]) < \
                calls.index(["DELETE", f"/tweets/{kept['id'] - 1}"])
            balanced = lb.get_json("/_lb/stats")["upstreams"]
            assert len(balanced) == CACHES and all(u["requests"] > 0 for u in balanced)
            store = open_client(clients, chain.url("store"))
            pending = store.get_json(f"/tweets/{kept['id']}")["likes"]
            assert pending < 3  # under the batch size and age: still in the API's batcher
        assert all(proc.returncode == 0 for proc in stop(chain.stack))

    # The caches removed: the api on store directly, on the same data directory.
    alone = [Service("store", "store", chain.ports["store"]),
             Service("api", "api", chain.ports["api"], {"STORE_URL": chain.url("store")})]
    with running_stack(data_dir, services=alone) as bare:
        with ExitStack() as clients:
            api = open_client(clients, bare.url("api"))
            assert read_tweet(api, kept["id"])["likes"] == 3  # flushed when the chain stopped
            assert api.get_json("/accounts/alice")["tweet_count"] == 1
            story(api, "bob")
            assert "x-cache" not in api.get("/tweets").headers
            logged = api.get_json("/logs")
            assert logged["calls"][0] == ["GET", f"/tweets/{kept['id']}"]
            assert logged["db_accesses"] > 0
        assert all(proc.returncode == 0 for proc in stop(bare.stack))
