"""Start every service as a local process, wait for each health check, print the URLs, and on
Ctrl-C (or SIGTERM, or the SIGHUP of a closed terminal) stop them front to back so that
pending work is flushed downstream.

The launcher supervises what it starts: a service that exits while the stack runs (killed,
say, to watch the lb route around a dead cache) is started again with the same environment,
after a pause that doubles while it keeps dying young, and the console says so; the others
keep running meanwhile. Every service holds the read end of a pipe whose write end only the
launcher has (LAUNCHER_FD): if the launcher dies without stopping them (SIGKILL), they read
its end and stop by themselves within a couple of seconds, the store last
(LAUNCHER_STOP_DELAY_S), so that the api can still flush its likes to it.

Environment: CACHES (2), DATA_DIR (./data), HOST (127.0.0.1), and <SERVICE>_PORT to move a
service off its default port (STORE_PORT=8400, ...; CACHE_PORT is the first cache's port).
Every other variable (CACHE_TTL_S, LOG_REQUESTS, ...) is passed on to the services.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import IO

from httpkit.config import ConfigError, env_int, env_str

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0
PORT_WAIT_S = 5.0  # a port still held by the last run's services, stopping on their own
RESTART_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # pauses before restarting a service that keeps dying
YOUNG_S = 10.0  # an exit this soon after a start counts as dying young
# How long each service waits, once the launcher is gone, before it stops: the front first,
# the store last, so that the api's last like batch still finds the store up.
STOP_DELAY_S = {"store": 1.5, "dbcache": 1.0}


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    port: int
    env: dict[str, str] = field(default_factory=dict)

    def url(self, host: str) -> str:
        return f"http://{host}:{self.port}"


def plan(host: str, ports: dict[str, int], caches: int) -> list[Service]:
    """Return the services in start order, each wired to the one behind it (the front
    ends, web and mastodon, only when ``ports`` gives them a port)."""
    def url(name: str) -> str:
        return f"http://{host}:{ports[name]}"
    cache_ports = [ports["cache"] + n for n in range(caches)]
    services = [
        Service("store", "store", ports["store"]),
        Service("dbcache", "dbcache", ports["dbcache"], {"UPSTREAM_URL": url("store")}),
        Service("api", "api", ports["api"], {"STORE_URL": url("dbcache")}),
        *[Service(f"cache{n + 1}", "cache", port, {"UPSTREAM_URL": url("api")})
          for n, port in enumerate(cache_ports)],
        Service("lb", "lb", ports["lb"],
                {"LB_UPSTREAMS": ",".join(f"{host}:{port}" for port in cache_ports)}),
    ]
    if "web" in ports:
        services.append(Service("web", "web", ports["web"], {"API_URL": url("lb")}))
    if "mastodon" in ports:
        links = {"WEB_PUBLIC_URL": url("web")} if "web" in ports else {}
        services.append(Service("mastodon", "mastodon", ports["mastodon"],
                                {"API_URL": url("lb"), **links}))
    return services


def default_ports() -> dict[str, int]:
    """Return DESIGN.md's default ports, moved by <SERVICE>_PORT variables."""
    defaults = {"web": 8080, "lb": 8000, "cache": 8101, "api": 8200, "dbcache": 8300,
                "store": 8400, "mastodon": 8500}
    return {name: env_int(f"{name.upper()}_PORT", port, 1) for name, port in defaults.items()}


class Stack:
    """A set of running service processes, and the pipe that tells them the launcher lives."""

    def __init__(self, services: list[Service], host: str, env: dict[str, str]) -> None:
        self.services = services
        self.host = host
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.started: dict[str, float] = {}  # when each service's process was started
        self.failures: dict[str, int] = {}  # how many times in a row it died young
        # Nothing is ever written: the services only wait for the end-of-file that the
        # launcher's death (the last write end closing) makes them read. Made by the first
        # spawn, closed by stop.
        self.lifeline = self._lifeline_w = -1

    def start(self) -> None:
        """Start each service in order and wait for its health check."""
        for service in self.services:
            wait_port_free(self.host, service)
            wait_healthy(service.url(self.host), self.spawn(service), service.name)

    def spawn(self, service: Service) -> subprocess.Popen[bytes]:
        """Start one service's process (not waiting for it to be healthy)."""
        if self.lifeline < 0:
            self.lifeline, self._lifeline_w = os.pipe()
        # A process group of its own: Ctrl-C reaches only the launcher, which then stops
        # the services in order (the front first, so the API can flush likes to the store).
        proc = subprocess.Popen([sys.executable, "-m", service.module],
                                env=self.environment(service), stderr=subprocess.PIPE,
                                process_group=0, pass_fds=(self.lifeline,))
        self.procs[service.name] = proc
        self.started[service.name] = time.monotonic()
        assert proc.stderr is not None
        threading.Thread(target=relay, args=(service.name, proc.stderr), daemon=True).start()
        return proc

    def environment(self, service: Service) -> dict[str, str]:
        """Return the environment the launcher gives ``service``."""
        return {**self.env, **service.env, "HOST": self.host, "PORT": str(service.port),
                "LAUNCHER_FD": str(self.lifeline),
                "LAUNCHER_STOP_DELAY_S": str(STOP_DELAY_S.get(service.module, 0.0))}

    def exited(self) -> list[tuple[Service, int]]:
        """Return the services whose process has exited, with their exit status."""
        return [(service, proc.returncode) for service in self.services
                if (proc := self.procs.get(service.name)) is not None and proc.poll() is not None]

    def pause_before_restart(self, service: Service) -> float:
        """Return how long to wait before starting ``service`` again: longer each time it
        died young, from the first pause again once it had lived a while."""
        lived = time.monotonic() - self.started.get(service.name, 0.0)
        failures = self.failures.get(service.name, 0) + 1 if lived < YOUNG_S else 1
        self.failures[service.name] = failures
        return RESTART_S[min(failures, len(RESTART_S)) - 1]

    def stop(self) -> None:
        """Stop the services front to back: SIGTERM, then SIGKILL after a grace period."""
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    print(f"{name} did not stop in {STOP_TIMEOUT_S:.0f} s; killing it",
                          file=sys.stderr)
                    proc.kill()
                    proc.wait()
        self.procs.clear()
        if self.lifeline >= 0:  # closing the write end ends nothing now: all have stopped
            os.close(self._lifeline_w)
            os.close(self.lifeline)
            self.lifeline = self._lifeline_w = -1


def relay(name: str, stream: IO[bytes]) -> None:
    """Copy a service's log lines to our stderr, each prefixed with its name."""
    for line in stream:
        sys.stderr.write(f"[{name}] {line.decode(errors='replace')}")
    stream.close()


def wait_port_free(host: str, service: Service) -> None:
    """Wait a moment for a port that is taken (the services of a launcher that was killed
    stop by themselves within seconds), then fail clearly, naming who holds it."""
    deadline = time.monotonic() + PORT_WAIT_S
    while not port_free(host, service.port):
        if time.monotonic() > deadline:
            holder = port_holder(service.port)
            variable = f"{service.module.upper()}_PORT"
            raise StackError(f"port {service.port} for {service.name} is in use"
                             f"{f' by {holder}' if holder else ''} (another `make run`?); stop "
                             f"it, or set {variable} to another port")
        time.sleep(0.1)


def port_free(host: str, port: int) -> bool:
    """Tell whether ``port`` can be listened on."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def port_holder(port: int) -> str:
    """Name the process listening on ``port`` ("PID 123 (python3 -m lb)"), or "" if that
    cannot be told (not Linux, or another user's process)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                for row in list(rows)[1:]:
                    fields = row.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(fields[9])  # state 0A: LISTEN
        except (OSError, IndexError, ValueError):
            continue
    for pid in filter(str.isdigit, os.listdir("/proc") if inodes else []):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] in inodes for fd in fds):
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
                return f"PID {pid} ({command.strip()})"
        except OSError:
            continue
    return ""


def wait_healthy(url: str, proc: subprocess.Popen[bytes], name: str) -> None:
    """Poll ``url``/healthz until it answers ok, the process exits, or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{name} exited with status {proc.returncode} while starting")
        if answers_ok(url):
            return
        time.sleep(0.1)
    raise StackError(f"{name} did not become healthy within {START_TIMEOUT_S:.0f} s")


class StackError(Exception):
    """The stack could not be started."""


def main() -> None:
    """Run the stack until Ctrl-C, SIGTERM or SIGHUP."""
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        host = env_str("HOST", "127.0.0.1")
        env = {**os.environ, "DATA_DIR": os.path.abspath(env_str("DATA_DIR", "data"))}
        stack = Stack(plan(host, default_ports(), env_int("CACHES", 2, 1)), host, env)
    except ConfigError as err:
        sys.exit(f"configuration error: {err}")
    try:
        stack.start()
        for service in stack.services:
            pid = stack.procs[service.name].pid
            print(f"  {service.name:<8} {service.url(host):<24} PID {pid}", flush=True)
        print("All services are up. Press Ctrl-C to stop.", flush=True)
        watch(stack, stopping)
    except StackError as err:
        print(f"make run: {err}", file=sys.stderr)
        stack.stop()
        sys.exit(1)
    print("Stopping...", flush=True)
    stack.stop()
    print("Stopped.", flush=True)


def watch(stack: Stack, stopping: threading.Event) -> None:
    """Start again each service that exits, until ``stopping`` is set."""
    restart_at: dict[str, float] = {}  # services waiting out their pause
    back: dict[str, float] = {}  # restarted services not yet healthy, and since when
    while not stopping.wait(0.2):
        now = time.monotonic()
        for service, status in stack.exited():
            if service.name not in restart_at:
                pause = stack.pause_before_restart(service)
                restart_at[service.name] = now + pause
                back.pop(service.name, None)
                print(f"make run: {service.name} exited ({describe(status)}); starting it again"
                      f" in {pause:g} s (the other services keep running)",
                      file=sys.stderr, flush=True)
        for service in stack.services:
            due = restart_at.get(service.name, now + 1) <= now
            # A port someone else took (a service started again by hand) is not fought over.
            if due and port_free(stack.host, service.port):
                del restart_at[service.name]
                back[service.name] = now
                stack.spawn(service)
        for name, since in list(back.items()):
            service = next(s for s in stack.services if s.name == name)
            if answers_ok(service.url(stack.host)):
                del back[name]
                print(f"make run: {name} is back (PID {stack.procs[name].pid}, "
                      f"{now - since:.1f} s)", file=sys.stderr, flush=True)


def answers_ok(url: str) -> bool:
    """Tell whether ``url``/healthz answers ok right now."""
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as answer:
            return bool(json.load(answer).get("status") == "ok")
    except (OSError, ValueError):
        return False


def describe(status: int) -> str:
    """Say how a process ended, from its Popen return code."""
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"status {status}"
