"""load_test.py's `load` mode against a whole stack (stack.launcher's plan and Stack: real
processes on free loopback ports), run as a user runs it, so that the tool cannot rot: a short
run must finish with no errors and every like counted. Against a fake API that records what it
is sent, every POST of a run must carry an Idempotency-Key of its own. (Its `functional` mode
is the story of tests/test_stack.py.)"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest

from httpkit import Request, Response, json_response
from tests.fakes import Lab, Responder
from tests.harness import run_load_test, running_stack

CACHES = 2  # the load is spread over the replicas, and each saves its share


@pytest.fixture
def lb_url(tmp_path: Path) -> Iterator[str]:
    """Start the stack, with cheap password hashing and likes flushed after a second."""
    with running_stack(tmp_path / "data", CACHES, front=("web",),
                       env={"LIKE_MAX_AGE_S": "1"}) as running:
        yield running.url("lb")


def test_a_load_run_against_the_whole_stack_counts_every_like(lb_url: str,
                                                              tmp_path: Path) -> None:
    results = tmp_path / "load.json"
    load = run_load_test("load", "--url", lb_url, "--concurrency", "4", "--duration", "3",
                         "--verify-likes", "--flush-wait", "15", "--json", str(results))
    assert load.returncode == 0, load.stdout + load.stderr
    report = json.loads(results.read_text())
    assert report["requests"] > 0 and report["error_count"] == 0 and report["errors"] == {}
    assert set(report["latency_ms"]) >= {"p50", "p95", "p99", "max"}
    assert 0 < report["latency_ms"]["p50"] <= report["latency_ms"]["max"]
    saved = report["savings"]
    assert saved["front_cache"]["caches"] == CACHES and saved["front_cache"]["hits"] > 0
    assert saved["api"]["calls"] > 0 and saved["api"]["db_accesses"] > 0
    assert saved["store"]["requests"] > 0 and saved["dbcache"]["hits"] is not None
    assert saved["likes"]["received"] == report["likes_accepted"] > 0
    verified = report["verify_likes"]
    assert verified["ok"] and verified["flushed"] and verified["mismatches"] == []
    assert verified["written_after_flush"] == verified["likes_sent"]
    assert "p99" in load.stdout and "verify likes  OK" in load.stdout


UUID4_HEX = re.compile(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}")


def fake_api() -> Responder:
    """Answer as the API does, just enough for a load run: every account, log-in, tweet and
    like succeeds, and every read is an empty 200."""
    ids = count(1)

    def answer(request: Request) -> Response:
        if request.method != "POST":
            return json_response({})
        if request.path == "/sessions":
            return json_response({"token": "fake-token"}, 201)
        if request.path == "/tweets":
            return json_response({"id": next(ids), "likes": 0}, 201)
        if request.path.endswith("/like"):
            return json_response({"id": int(request.path.split("/")[2]), "likes": 1}, 202)
        return json_response({}, 201)
    return answer


def test_every_post_of_a_load_run_carries_its_own_idempotency_key(lab: Lab,
                                                                  tmp_path: Path) -> None:
    api = lab.upstream(fake_api())
    results = tmp_path / "load.json"
    load = run_load_test("load", "--url", api.url, "--concurrency", "4", "--requests", "300",
                         "--mix", "reads=20,posts=40,likes=40", "--accounts", "3", "--tweets", "20",
                         "--json", str(results))
    assert load.returncode == 0, load.stdout + load.stderr
    by_op = json.loads(results.read_text())["by_op"]
    posts = api.requests("POST")
    paths = [seen.target.rpartition("/")[2] for seen in posts]
    assert (paths.count("accounts"), paths.count("sessions")) == (3, 3)
    assert paths.count("tweets") == 20 + by_op["posts"] and paths.count("like") == by_op["likes"]
    keys = [seen.headers.get("idempotency-key", "") for seen in posts]
    assert all(UUID4_HEX.fullmatch(key) for key in keys), keys
    assert len(set(keys)) == len(keys), "a key was sent twice"
    assert not any("idempotency-key" in seen.headers for seen in api.requests("GET"))
