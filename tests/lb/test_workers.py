"""`LB_WORKERS=2`: the lb as two worker processes sharing one port under a master that only
watches them, started, stopped and killed for real."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


from tests.fakes import Lab, answers_ok, http_get, wait_until
from tests.harness import free_port

ROOT = Path(__file__).resolve().parents[2]


def start_two_workers(upstream_address: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "LB_WORKERS": "2", "LB_UPSTREAMS": upstream_address,
           "PYTHONPATH": str(ROOT)}
    lb = subprocess.Popen([sys.executable, "-m", "lb"], cwd=ROOT, env=env,
                          stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    if not wait_until(lambda: answers_ok(f"{url}/healthz"), timeout=10):
        lb.kill()
        lb.wait()
        raise AssertionError(f"{url}/healthz never answered")
    return lb, url


def workers_seen(url: str) -> set[int]:
    """Ask /_lb/stats on new connections until both workers have answered."""
    workers: set[int] = set()
    deadline = time.monotonic() + 10
    while len(workers) < 2 and time.monotonic() < deadline:
        workers.add(json.loads(http_get(f"{url}/_lb/stats")[1])["worker"])
    return workers


def test_two_workers_share_the_port_and_stop_together(lab: Lab) -> None:
    upstream = lab.upstream()
    lb, url = start_two_workers(upstream.address)
    try:
        workers = set()
        counted = []
        for n in range(40):  # a new connection each time: the kernel picks a worker
            status, body = http_get(f"{url}/tweets/{n}")
            assert status == 200 and json.loads(body)["target"] == f"/tweets/{n}"
            stats = json.loads(http_get(f"{url}/_lb/stats")[1])
            workers.add(stats["worker"])
            counted.append(stats["upstreams"][0]["requests"])
        assert len(upstream.requests("GET")) == 40
        assert len(workers) == 2 and lb.pid not in workers  # the master serves nothing
        # Whichever worker answers counts what both forwarded (before: only its own).
        assert counted == list(range(1, 41))
        lb.send_signal(signal.SIGTERM)
        assert lb.wait(timeout=10) == 0
        for pid in workers:  # the workers are gone too, not orphaned
            assert not running(pid)
    finally:
        if lb.poll() is None:
            lb.kill()
            lb.wait()


def test_two_workers_keep_one_round_robin_between_them(lab: Lab) -> None:
    first, second = lab.upstream(), lab.upstream()
    lb, url = start_two_workers(f"{first.address},{second.address}")
    try:
        assert len(workers_seen(url)) == 2
        for n in range(20):  # new connections: both workers take turns, in one round
            assert http_get(f"{url}/tweets/{n}")[0] == 200
        got = [sorted(int(seen.target.rsplit("/", 1)[1]) for seen in upstream.requests("GET"))
               for upstream in (first, second)]
        assert sorted(got) == [list(range(0, 20, 2)), list(range(1, 20, 2))]  # alternating
    finally:
        lb.terminate()
        lb.wait(timeout=10)


def test_workers_whose_master_is_killed_stop_and_free_the_port(lab: Lab) -> None:
    upstream = lab.upstream()
    lb, url = start_two_workers(upstream.address)
    workers: set[int] = set()
    try:
        workers = workers_seen(url)
        assert len(workers) == 2
        lb.kill()  # SIGKILL: the master cannot pass the stop on
        lb.wait()
        deadline = time.monotonic() + 10
        while any(map(running, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(map(running, workers))  # no orphan keeps serving the port
        with pytest.raises(OSError):
            http_get(f"{url}/healthz")
    finally:
        if lb.poll() is None:
            lb.kill()
            lb.wait()
        for pid in workers:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_killed_worker_is_replaced_and_the_counts_go_on(lab: Lab) -> None:
    upstream = lab.upstream()
    lb, url = start_two_workers(upstream.address)
    try:
        workers = workers_seen(url)
        for n in range(10):
            assert http_get(f"{url}/tweets/{n}")[0] == 200
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        assert wait_until(lambda: not running(victim))
        replaced: set[int] = set()
        deadline = time.monotonic() + 10
        while len(replaced) < 2 and time.monotonic() < deadline:  # both serve again
            replaced.add(json.loads(http_get(f"{url}/_lb/stats")[1])["worker"])
        assert len(replaced) == 2 and victim not in replaced
        assert http_get(f"{url}/tweets/10")[0] == 200
        stats = json.loads(http_get(f"{url}/_lb/stats")[1])
        assert stats["workers"] == 2
        assert stats["upstreams"][0]["requests"] == 11  # the dead worker's counts kept
    finally:
        lb.terminate()
        assert lb.wait(timeout=10) == 0


def running(pid: int) -> bool:
    """Whether a process is alive (a zombie waiting for its reaper is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
