"""`make run` itself (``python -m stack``) as a user runs it: the URLs and PIDs it prints, a
service killed while the stack runs (started again by the launcher, the rest left running),
the launcher itself killed (its services stop by themselves, the api flushing), a port in
use, and Ctrl-C."""
from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from stack.launcher import describe
from tests.api.helpers import Client, join, like, post_tweet
from tests.fakes import answers_ok, http_get, wait_until
from tests.stack.conftest import Launcher, alive, pids
from tests.harness import ROOT, stack_env, stack_ports


def test_a_killed_cache_is_started_again_by_the_launcher_and_the_rest_keep_serving(
        launcher: Launcher) -> None:
    before = pids(launcher)
    lb = launcher.wait_for(launcher.out, r"^  lb +(http://\S+) +PID \d+")[1]
    cache = launcher.wait_for(launcher.out, r"^  cache1 +(http://\S+) +PID \d+")[1]
    os.kill(before["cache1"], signal.SIGKILL)
    launcher.wait_for(launcher.err, r"cache1 exited \(killed by SIGKILL\); starting it again")
    for _ in range(10):
        assert http_get(f"{lb}/tweets")[0] == 200  # the lb skips the dead cache meanwhile
    back = launcher.wait_for(launcher.err, r"cache1 is back \(PID (\d+)")  # nobody typed a thing
    restarted = int(back[1])
    assert restarted != before["cache1"] and answers_ok(f"{cache}/healthz")
    assert launcher.stop() == 0
    assert "Stopped." in "".join(launcher.out)
    assert not any(alive(pid) for pid in [restarted, *before.values()])  # the new one too


def test_a_killed_launchers_services_stop_by_themselves_the_api_flushing_its_likes(
        launcher: Launcher, tmp_path: Path) -> None:
    before = pids(launcher)
    lb = launcher.wait_for(launcher.out, r"^  lb +(http://\S+) +PID \d+")[1]
    api = Client(lb)
    alice = join(api, "alice")
    tweet = post_tweet(api, alice, "like me before the launcher dies")
    for _ in range(3):
        like(api, tweet["id"])  # pending: LIKE_MAX_AGE_S is 60 s
    api.close()
    launcher.proc.kill()  # no Ctrl-C, no chance to stop anything
    again = Launcher(launcher.env)  # `make run` at once, while the old services still stop
    try:
        assert wait_until(lambda: not any(alive(pid) for pid in before.values()), timeout=10), \
            [name for name, pid in before.items() if alive(pid)]
        with sqlite3.connect(tmp_path / "data" / "twitter.sqlite3") as db:
            [(likes,)] = db.execute("select likes from tweets where id = ?", (tweet["id"],))
        assert likes == 3  # the api flushed them to the store before the store stopped
        again.wait_for(again.out, r"All services are up")
        assert http_get(f"{lb}/tweets/{tweet['id']}")[0] == 200
    finally:
        assert again.stop() == 0


def test_a_port_in_use_is_named_with_the_process_holding_it(tmp_path: Path) -> None:
    ports = stack_ports(2)
    with socket.create_server(("127.0.0.1", ports["store"])):
        env = stack_env(tmp_path / "data",
                        **{f"{name.upper()}_PORT": str(port) for name, port in ports.items()})
        run = subprocess.run([sys.executable, "-m", "stack"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert f"port {ports['store']} for store is in use by PID {os.getpid()} (" in run.stderr
    assert "set STORE_PORT to another port" in run.stderr


@pytest.mark.parametrize(("status", "said"), [
    (0, "status 0"), (1, "status 1"), (-9, "killed by SIGKILL"), (-15, "killed by SIGTERM")])
def test_an_exit_is_described_as_a_person_would(status: int, said: str) -> None:
    assert describe(status) == said
