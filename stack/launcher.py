"""Start every service as a local process, wait for each health check, print the URLs, and on
Ctrl-C (or SIGTERM) stop them front to back so that pending work is flushed downstream.

A service that exits while the stack runs (killed, say, to watch the lb route around a dead
cache) is reported with the command that starts it again; the others keep running, as
under `docker compose up`. The launcher is not a supervisor: it restarts nothing by itself,
so it never fights an operator who restarts a service by hand.

Environment: CACHES (2), DATA_DIR (./data), HOST (127.0.0.1), and <SERVICE>_PORT to move a
service off its default port (STORE_PORT=8400, ...; CACHE_PORT is the first cache's port).
Every other variable (CACHE_TTL_S, LOG_REQUESTS, ...) is passed on to the services.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO

from httpkit.config import ConfigError, env_int, env_str

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    port: int
    env: dict[str, str] = field(default_factory=dict)

    def url(self, host: str) -> str:
        return f"http://{host}:{self.port}"


def plan(host: str, ports: dict[str, int], caches: int) -> list[Service]:
    """Return the services in start order, each wired to the one behind it."""
    def url(name: str) -> str:
        return f"http://{host}:{ports[name]}"
    cache_ports = [ports["cache"] + n for n in range(caches)]
    return [
        Service("store", "store", ports["store"]),
        Service("dbcache", "dbcache", ports["dbcache"], {"UPSTREAM_URL": url("store")}),
        Service("api", "api", ports["api"], {"STORE_URL": url("dbcache")}),
        *[Service(f"cache{n + 1}", "cache", port, {"UPSTREAM_URL": url("api")})
          for n, port in enumerate(cache_ports)],
        Service("lb", "lb", ports["lb"],
                {"LB_UPSTREAMS": ",".join(f"{host}:{port}" for port in cache_ports)}),
        Service("web", "web", ports["web"], {"API_URL": url("lb")}),
    ]


def default_ports() -> dict[str, int]:
    """Return DESIGN.md's default ports, moved by <SERVICE>_PORT variables."""
    defaults = {"web": 8080, "lb": 8000, "cache": 8101, "api": 8200, "dbcache": 8300,
                "store": 8400}
    return {name: env_int(f"{name.upper()}_PORT", port, 1) for name, port in defaults.items()}


class Stack:
    """A set of running service processes."""

    def __init__(self, services: list[Service], host: str, env: dict[str, str]) -> None:
        self.services = services
        self.host = host
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.gone: set[str] = set()  # services whose exit has been reported

    def start(self) -> None:
        """Start each service in order and wait for its health check."""
        for service in self.services:
            check_port_free(self.host, service)
            env = self.environment(service)
            # A process group of its own: Ctrl-C reaches only the launcher, which then stops
            # the services in order (the front first, so the API can flush likes to the store).
            proc = subprocess.Popen([sys.executable, "-m", service.module], env=env,
                                    stderr=subprocess.PIPE, process_group=0)
            self.procs[service.name] = proc
            assert proc.stderr is not None
            threading.Thread(target=relay, args=(service.name, proc.stderr), daemon=True).start()
            wait_healthy(service.url(self.host), proc, service.name)

    def environment(self, service: Service) -> dict[str, str]:
        """Return the environment the launcher gives ``service``."""
        return {**self.env, **service.env, "HOST": self.host, "PORT": str(service.port)}

    def exited(self) -> list[tuple[Service, int]]:
        """Return the services that exited since the last call, with their exit status."""
        gone = []
        for service in self.services:
            proc = self.procs.get(service.name)
            if proc is not None and proc.poll() is not None and service.name not in self.gone:
                self.gone.add(service.name)
                gone.append((service, proc.returncode))
        return gone

    def running(self) -> bool:
        """Whether any service is still running."""
        return any(proc.poll() is None for proc in self.procs.values())

    def restart_command(self, service: Service) -> str:
        """Return a shell command that starts ``service`` again as the launcher started it."""
        env = self.environment(service)
        names = ["HOST", "PORT", *service.env, "DATA_DIR"]
        settings = " ".join(f"{name}={shlex.quote(env[name])}" for name in names if name in env)
        return f"{settings} {shlex.quote(sys.executable)} -m {service.module}"

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


def relay(name: str, stream: IO[bytes]) -> None:
    """Copy a service's log lines to our stderr, each prefixed with its name."""
    for line in stream:
        sys.stderr.write(f"[{name}] {line.decode(errors='replace')}")
    stream.close()


def free_ports(names: list[str], consecutive: dict[str, int] | None = None,
               host: str = "127.0.0.1") -> dict[str, int]:
    """Pick a free port for each name (a run of free ones where ``consecutive`` asks, as for
    the caches), all held until every one is chosen so that no two names share a port."""
    runs = consecutive or {}
    ports: dict[str, int] = {}
    with ExitStack() as held:
        def grab(port: int) -> int:
            sock = held.enter_context(socket.socket())
            sock.bind((host, port))
            return int(sock.getsockname()[1])
        for name in names:
            for _ in range(50):
                first = grab(0)
                try:
                    for n in range(1, runs.get(name, 1)):
                        grab(first + n)
                except OSError:
                    continue
                ports[name] = first
                break
            else:
                raise StackError(f"no run of free ports for {name}")
    return ports


def free_port() -> int:
    """Return one loopback port nothing listens on (bound, then released)."""
    return free_ports(["port"])["port"]


def check_port_free(host: str, service: Service) -> None:
    """Fail clearly when a port is taken, instead of letting the service die obscurely."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, service.port))
        except OSError:
            variable = f"{service.module.upper()}_PORT"
            raise StackError(f"port {service.port} for {service.name} is in use (another "
                             f"`make run`?); stop it, or set {variable} to another port") from None


def wait_healthy(url: str, proc: subprocess.Popen[bytes], name: str) -> None:
    """Poll ``url``/healthz until it answers ok, the process exits, or time runs out."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{name} exited with status {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as answer:
                if json.load(answer).get("status") == "ok":
                    return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise StackError(f"{name} did not become healthy within {START_TIMEOUT_S:.0f} s")


class StackError(Exception):
    """The stack could not be started."""


def main() -> None:
    """Run the stack until Ctrl-C or SIGTERM."""
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
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
    """Report each service that exits, until ``stopping`` is set or none is left running."""
    while not stopping.wait(0.5):
        for service, status in stack.exited():
            print(f"make run: {service.name} exited ({describe(status)}); the other services "
                  f"keep running. To start it again, from the project folder:\n"
                  f"  {stack.restart_command(service)}",
                  file=sys.stderr, flush=True)
        if not stack.running():
            raise StackError("every service has exited")


def describe(status: int) -> str:
    """Say how a process ended, from its Popen return code."""
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"status {status}"
