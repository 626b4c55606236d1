"""End-to-end: the whole chain lb -> cache x3 -> api -> dbcache -> store started as `make run`
starts it (stack.launcher's plan and Stack: real processes, each waited for until healthy) on
free loopback ports, then the API alone on the same data directory (no caches).

The story every configuration must pass is `load_test.py functional`, run as a user runs it:
its checks are the one copy of that story (sign up, log in, post, read back, like, edit,
search, delete, the refusals, and behind the lb a read of every page from every replica).
Around it, what only a whole stack shows: the chain's order, every cache used, and likes the
API's batcher still held when the stack was stopped as Ctrl-C stops it, found flushed by the
next start on the same data."""
from __future__ import annotations

import subprocess
from contextlib import ExitStack
from pathlib import Path

import pytest

from stack.launcher import Service, Stack
from tests.api.helpers import join, like, open_client, post_tweet, read_tweet
from tests.harness import run_load_test, running_stack

CACHES = 3  # the functional checks read each page through each replica


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def stop(stack: Stack) -> list[subprocess.Popen[bytes]]:
    """Stop as Ctrl-C does; return the processes, all exited."""
    procs = list(stack.procs.values())
    stack.stop()
    assert all(proc.poll() is not None for proc in procs)
    return procs


def functional(url: str) -> str:
    """Run `load_test.py functional` against ``url``; it must pass."""
    checks = run_load_test("functional", "--url", url)
    assert checks.returncode == 0, checks.stdout + checks.stderr
    summary = checks.stdout.strip().splitlines()[-1]
    assert "FAIL" not in checks.stdout and " passed, 0 failed" in summary, checks.stdout
    return checks.stdout


def test_the_whole_chain_then_the_api_alone(data_dir: Path) -> None:
    with running_stack(data_dir, CACHES) as chain:
        names = [s.name for s in chain.stack.services]
        assert names[:7] == ["store", "dbcache", "api", "cache1", "cache2", "cache3", "lb"]
        checks = functional(chain.url("lb"))
        assert "SKIP" not in checks and checks.count("PASS ") >= 42
        for name in ("post_tweet_same_key_once", "post_tweet_key_with_other_text_422",
                     "like_same_key_once"):
            assert f"PASS {name}\n" in checks
        for name in ("follows_change_feed", "sees_new_account", "sees_post", "sees_edit",
                     "sees_likes", "sees_delete"):
            assert f"PASS every_replica_{name}\n" in checks
        with ExitStack() as clients:
            lb = open_client(clients, chain.url("lb"))
            alice = join(lb, "alice")
            kept = post_tweet(lb, alice, "alice keeps this one")
            assert [like(lb, kept["id"]) for _ in range(3)] == [1, 2, 3]
            assert lb.get("/tweets").headers["x-cache"] in ("HIT", "MISS")  # a cache answered
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
            checks = functional(bare.url("api"))
            assert "SKIP every_replica_sees_post" in checks  # no lb: no replicas to read
            assert "x-cache" not in api.get("/tweets").headers
            logged = api.get_json("/logs")
            assert logged["calls"][0] == ["GET", f"/tweets/{kept['id']}"]
            assert logged["db_accesses"] > 0
        assert all(proc.returncode == 0 for proc in stop(bare.stack))
