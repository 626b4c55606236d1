"""`make run` itself (``python -m stack``) as a user runs it: the URLs and PIDs it prints, a
service killed while the stack runs (reported with the command that starts it again, the rest
left running), that command, and Ctrl-C."""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from stack.launcher import describe, free_ports
from tests.fakes import answers_ok, http_get, wait_until

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 30.0


class Launcher:
    """``python -m stack`` in a subprocess, its output gathered line by line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "stack"], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [threading.Thread(target=gather, args=(stream, lines), daemon=True)
                        for stream, lines in ((self.proc.stdout, self.out),
                                              (self.proc.stderr, self.err))]
        for reader in self.readers:
            reader.start()

    def wait_for(self, lines: list[str], pattern: str) -> re.Match[str]:
        """Wait until a line of ``lines`` matches ``pattern``; return the match."""
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            for line in list(lines):
                if found := re.search(pattern, line):
                    return found
            assert self.proc.poll() is None, "".join(self.out + self.err)[-3000:]
            time.sleep(0.05)
        raise AssertionError(f"no line matched {pattern!r}:\n" + "".join(lines)[-3000:])

    def stop(self) -> int:
        """Press Ctrl-C; return the exit status."""
        self.proc.send_signal(signal.SIGINT)
        status = self.proc.wait(timeout=60)
        for reader in self.readers:
            reader.join(timeout=5)
        return status


def gather(stream: IO[bytes] | None, lines: list[str]) -> None:
    assert stream is not None
    for line in stream:
        lines.append(line.decode(errors="replace"))


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    ports = free_ports(["store", "dbcache", "api", "cache", "lb", "web"], {"cache": 2})
    wired = ("HOST", "PORT", "STORE_URL", "UPSTREAM_URL", "LB_UPSTREAMS", "API_URL")
    env = {name: value for name, value in os.environ.items() if name not in wired}
    env.update({f"{name.upper()}_PORT": str(port) for name, port in ports.items()})
    env.update({"CACHES": "2", "DATA_DIR": str(tmp_path / "data"), "SCRYPT_N": "16",
                "LB_HEALTH_S": "0.2"})
    launcher = Launcher(env)
    try:
        yield launcher
    finally:
        if launcher.proc.poll() is None:
            launcher.stop()


def test_a_killed_cache_is_reported_the_rest_keep_serving_and_the_command_restarts_it(
        launcher: Launcher) -> None:
    launcher.wait_for(launcher.out, r"All services are up")
    lb = launcher.wait_for(launcher.out, r"^  lb +(http://\S+) +PID \d+")[1]
    cache = launcher.wait_for(launcher.out, r"^  cache1 +(http://\S+) +PID (\d+)")
    os.kill(int(cache[2]), signal.SIGKILL)
    launcher.wait_for(launcher.err, r"cache1 exited \(killed by SIGKILL\); the other services "
                                    r"keep running")  # before: the whole stack stopped
    command = launcher.wait_for(launcher.err, r"^  (HOST=.*-m cache)$")[1]
    assert launcher.proc.poll() is None
    assert not answers_ok(f"{cache[1]}/healthz")
    for _ in range(10):
        assert http_get(f"{lb}/tweets")[0] == 200  # the lb skips the dead cache
    words = shlex.split(command)  # VAR=value ... python -m cache, as a shell would run it
    settings = dict(word.split("=", 1) for word in words if re.match(r"[A-Z_]+=", word))
    argv = [word for word in words if not re.match(r"[A-Z_]+=", word)]
    restarted = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **settings},
                                 stderr=subprocess.DEVNULL)
    try:
        # The printed command brings it back on its port.
        assert wait_until(lambda: answers_ok(f"{cache[1]}/healthz"), timeout=DEADLINE_S)
        assert http_get(f"{lb}/tweets")[0] == 200
    finally:
        restarted.terminate()
        assert restarted.wait(timeout=15) == 0
    assert launcher.stop() == 0
    assert "Stopped." in "".join(launcher.out)


@pytest.mark.parametrize(("status", "said"), [
    (0, "status 0"), (1, "status 1"), (-9, "killed by SIGKILL"), (-15, "killed by SIGTERM")])
def test_an_exit_is_described_as_a_person_would(status: int, said: str) -> None:
    assert describe(status) == said
