"""End-to-end: the whole chain lb -> cache x2 -> api -> dbcache -> store started as `make run`
starts it (stack.launcher's plan and Stack: real processes, each waited for until healthy) on
free loopback ports, then the same story with the caches removed (api straight on store).

A user signs up, logs in, posts, reads it back, likes, edits, searches and deletes. Between
the two runs the stack is stopped as Ctrl-C stops it, and the second run, on the same data
directory, finds the likes the first left pending: they were flushed on the way down."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from stack.launcher import Service, Stack, default_ports, plan
from tests.api.helpers import (Client, User, delete_tweet, edit_tweet, join, like, log_in,
                               post_tweet, read_tweet, texts)
from tests.harness import free_ports

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
CACHES = 2


def environment(data_dir: Path) -> dict[str, str]:
    wired = ("HOST", "PORT", "STORE_URL", "UPSTREAM_URL", "LB_UPSTREAMS", "API_URL")
    env = {k: v for k, v in os.environ.items() if k not in wired}
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # SCRYPT_N only makes sign-up and log-in cheap; everything else keeps its defaults.
    return {**env, "DATA_DIR": str(data_dir), "PYTHONPATH": pythonpath, "SCRYPT_N": "16"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def running() -> Iterator[list[Stack]]:
    """Stacks a test starts; any still running when it ends are stopped."""
    stacks: list[Stack] = []
    yield stacks
    for stack in stacks:
        stack.stop()


def start(running: list[Stack], services: list[Service], data_dir: Path) -> Stack:
    stack = Stack(services, HOST, environment(data_dir))
    running.append(stack)
    stack.start()
    return stack


def stop(stack: Stack) -> list[subprocess.Popen[bytes]]:
    """Stop as Ctrl-C does; return the processes, all exited."""
    procs = list(stack.procs.values())
    stack.stop()
    assert all(proc.poll() is not None for proc in procs)
    return procs


def open_client(stack: ExitStack, url: str) -> Client:
    client = Client(url)
    stack.callback(client.close)
    return client


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
    assert client.call("DELETE", f"/tweets/{tweet['id']}", headers=other.auth).status == 403
    delete_tweet(client, user, tweet["id"])
    assert client.get(f"/tweets/{tweet['id']}", {"cache-control": "no-cache"}).status == 404
    assert client.get_json(f"/tweets/search?q=goodbye+{username}", fresh=True)["tweets"] == []
    return kept


def test_the_whole_chain_then_the_api_alone(running: list[Stack], data_dir: Path) -> None:
    ports = free_ports(list(default_ports()), {"cache": CACHES})
    services = plan(HOST, ports, CACHES)
    names = [s.name for s in services]
    assert names[:6] == ["store", "dbcache", "api", "cache1", "cache2", "lb"]

    chain = start(running, services, data_dir)
    with ExitStack() as clients:
        lb = open_client(clients, f"http://{HOST}:{ports['lb']}")
        kept = story(lb, "alice")
        answer = lb.get("/tweets")
        assert answer.headers["x-cache"] in ("HIT", "MISS")  # a cache answered
        calls = lb.get_json("/logs")["calls"]
        writes = [call for call in calls if call[0] != "GET"]
        assert writes[:4] == [["POST", "/accounts"], ["POST", "/sessions"], ["POST", "/sessions"],
                              ["POST", "/tweets"]]
        assert ["POST", f"/tweets/{kept['id']}/like"] in calls
        assert calls.index(["PUT", f"/tweets/{kept['id'] - 1}"]) < \
            calls.index(["DELETE", f"/tweets/{kept['id'] - 1}"])
        balanced = lb.get_json("/_lb/stats")["upstreams"]
        assert len(balanced) == CACHES and all(u["requests"] > 0 for u in balanced)
        store = open_client(clients, f"http://{HOST}:{ports['store']}")
        pending = store.get_json(f"/tweets/{kept['id']}")["likes"]
        assert pending < 3  # under the batch size and age: still in the API's batcher
    assert all(proc.returncode == 0 for proc in stop(chain))

    # The caches removed: the api on store directly, on the same data directory.
    alone = [Service("store", "store", ports["store"]),
             Service("api", "api", ports["api"], {"STORE_URL": f"http://{HOST}:{ports['store']}"})]
    bare = start(running, alone, data_dir)
    with ExitStack() as clients:
        api = open_client(clients, f"http://{HOST}:{ports['api']}")
        assert read_tweet(api, kept["id"])["likes"] == 3  # flushed when the chain stopped
        assert api.get_json("/accounts/alice")["tweet_count"] == 1
        story(api, "bob")
        assert "x-cache" not in api.get("/tweets").headers
        logged = api.get_json("/logs")
        assert logged["calls"][0] == ["GET", f"/tweets/{kept['id']}"]
        assert logged["db_accesses"] > 0
    assert all(proc.returncode == 0 for proc in stop(bare))
