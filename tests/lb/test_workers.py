"""`LB_WORKERS=2`: the lb as two processes sharing one port, started and stopped for real."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from stack.launcher import free_port
from tests.fakes import Lab

ROOT = Path(__file__).resolve().parents[2]


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return answer.status, answer.read()


def wait_for(url: str, deadline_s: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            get(url)
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} never answered")


def test_two_workers_share_the_port_and_stop_together(lab: Lab) -> None:
    upstream = lab.upstream()
    port = free_port()
    env = {**os.environ, "PORT": str(port), "LB_WORKERS": "2", "LB_UPSTREAMS": upstream.address,
           "PYTHONPATH": str(ROOT)}
    lb = subprocess.Popen([sys.executable, "-m", "lb"], cwd=ROOT, env=env,
                          stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/healthz")
        workers = set()
        for n in range(40):  # a new connection each time: the kernel picks a worker
            status, body = get(f"{url}/tweets/{n}")
            assert status == 200 and json.loads(body)["target"] == f"/tweets/{n}"
            workers.add(json.loads(get(f"{url}/_lb/stats")[1])["worker"])
        assert len(upstream.requests("GET")) == 40
        assert len(workers) == 2 and lb.pid in workers
        lb.send_signal(signal.SIGTERM)
        assert lb.wait(timeout=10) == 0
        for pid in workers - {lb.pid}:  # the other worker is gone too, not orphaned
            assert not Path(f"/proc/{pid}").exists()
    finally:
        if lb.poll() is None:
            lb.kill()
            lb.wait()
