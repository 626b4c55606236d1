"""Running ``python -m stack`` (what `make run` does) from a test, as a user would."""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from tests.harness import ROOT, stack_env, stack_ports

DEADLINE_S = 30.0


class Launcher:
    """``python -m stack`` in a subprocess, its output gathered line by line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
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


StartStack = Callable[..., Launcher]


@pytest.fixture
def start_stack(tmp_path: Path) -> Iterator[StartStack]:
    """Start ``python -m stack`` on free ports with two caches (more settings as keywords);
    every launcher started is stopped at the end."""
    started: list[Launcher] = []

    def start(**settings: str) -> Launcher:
        ports = {f"{name.upper()}_PORT": str(port) for name, port in stack_ports(2).items()}
        env = stack_env(tmp_path / "data", **ports, CACHES="2", LB_HEALTH_S="0.2", **settings)
        started.append(Launcher(env))
        return started[-1]
    try:
        yield start
    finally:
        for launcher in started:
            if launcher.proc.poll() is None:
                launcher.stop()


@pytest.fixture
def launcher(start_stack: StartStack) -> Launcher:
    return start_stack()


def url_of(launcher: Launcher, service: str) -> str:
    """Return the URL the launcher printed for a service."""
    return launcher.wait_for(launcher.out, rf"^  {service} +(http://\S+) +PID \d+")[1]


def pids(launcher: Launcher) -> dict[str, int]:
    """Return every service's PID as the launcher printed it."""
    launcher.wait_for(launcher.out, r"All services are up")
    return {found[1]: int(found[2]) for line in launcher.out
            if (found := re.match(r"^  (\S+) +http://\S+ +PID (\d+)", line))}


def alive(pid: int) -> bool:
    """Tell whether a process runs (a zombie does not: it has exited)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
