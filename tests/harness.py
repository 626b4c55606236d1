"""The test harness, for tests and benchmarks: free loopback ports, servers run in a thread,
a scripted fake upstream on a bare socket (with the one hand-written request parser), and the
whole stack as real processes.

- ``free_ports``/``free_port``, ``start_in_thread``/``stop_thread``.
- ``Seen`` (one request as an upstream received it) and ``read_request``, which reads one off
  a socket by hand, independently of ``httpkit.wire``.
- ``ScriptedUpstream``: accepts connections on a bare socket and answers the n-th request with
  the n-th scripted ``Answer``, for misbehaviour no HTTP server would allow (odd framing,
  silence, hanging up after reading a request, dying).
- ``running_stack``: the stack started as `make run` starts it (stack.launcher's ``plan`` and
  ``Stack``: real processes, each waited for until healthy) on free loopback ports, and
  stopped on the way out; ``stack_ports`` and ``stack_env`` for a test that runs the
  launcher itself.

Not part of any service: the services never pick their own ports or serve in a thread.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from httpkit import Server
from stack.launcher import Service, Stack, default_ports, plan

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
FRONT_ENDS = ("web", "mastodon")  # what plan starts only when given a port
# What plan (or the launcher) wires into each service: never taken from our own environment.
WIRED = ("HOST", "PORT", "STORE_URL", "UPSTREAM_URL", "LB_UPSTREAMS", "API_URL",
         "MASTODON_PUBLIC_URL", "WEB_PUBLIC_URL")


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
                raise OSError(f"no run of free ports for {name}")
    return ports


def free_port() -> int:
    """Return one loopback port nothing listens on (bound, then released)."""
    return free_ports(["port"])["port"]


def start_in_thread(server: Server) -> threading.Thread:
    """Serve in a daemon thread (for tests and benchmarks); stop with ``stop_thread``."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"{server.name}-server", daemon=True)
    thread.start()
    return thread


def stop_thread(server: Server, thread: threading.Thread) -> None:
    """Stop a server started with ``start_in_thread`` and release its socket."""
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


# --- a scripted fake upstream on a bare socket ---------------------------------------------------

@dataclass(frozen=True)
class Seen:
    """One request as an upstream received it (header names in lower case; ``version`` only
    where the request line was read by hand)."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    version: str = ""

    @property
    def request_line(self) -> str:
        return f"{self.method} {self.target} {self.version}"


def read_fields(rfile: BinaryIO) -> dict[str, str]:
    """Read header fields up to the blank line (lower-case names; a repeated field keeps its
    last value)."""
    fields: dict[str, str] = {}
    while (line := rfile.readline().decode("latin-1")) not in ("\r\n", ""):
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return fields


def read_request(rfile: BinaryIO) -> Seen | None:
    """Read one request by hand (Content-Length framing only); None when the client left."""
    try:
        line = rfile.readline().decode("latin-1").rstrip("\r\n")
        if not line:
            return None
        method, target, version = line.split(" ", 2)
        headers = read_fields(rfile)
        body = rfile.read(int(headers.get("content-length", "0")))
    except OSError:
        return None
    return Seen(method, target, headers, body, version)


@dataclass(frozen=True)
class Answer:
    """What a scripted upstream sends after reading one request (bytes, or bytes made from
    the request), and whether it then hangs up."""

    reply: bytes | Callable[[Seen], bytes]
    hang_up: bool = False

    def render(self, request: Seen) -> bytes:
        return self.reply(request) if callable(self.reply) else self.reply


# What a scripted upstream does with the first request after its script: take it and never
# answer (until stopped), hang up without a word, or also stop listening first, as a process
# that crashed would (a reconnection is refused).
AfterScript = Literal["silent", "hang up", "crash"]


class ScriptedUpstream:
    """An upstream on a bare socket, a thread per connection: the n-th request it reads (on
    any connection) gets the n-th ``Answer``; the first one past the script, ``after``."""

    def __init__(self, script: list[Answer], after: AfterScript = "silent") -> None:
        self.script = list(script)
        self.after = after
        self.received: list[Seen] = []
        self.accepted = 0
        self.listener = socket.create_server((HOST, 0))
        self.listener.settimeout(0.05)  # so the accept loop notices a stop promptly
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.connections: list[socket.socket] = []
        self.accepting = threading.Thread(target=self.accept_loop, daemon=True)
        self.address = "%s:%d" % (HOST, self.listener.getsockname()[1])
        self.url = f"http://{self.address}"

    def start(self) -> ScriptedUpstream:
        self.accepting.start()
        return self

    def stop(self) -> None:
        """Stop listening and end every connection's thread; safe to call twice."""
        self.stopping.set()
        if self.accepting.is_alive():
            self.accepting.join(timeout=5)
        with self.lock:
            connections, threads = list(self.connections), list(self.threads)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes a thread waiting for a next request
            except OSError:
                pass  # already closed
        for thread in threads:
            thread.join(timeout=5)

    def accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self.serve, args=(conn,), daemon=True)
            with self.lock:
                self.accepted += 1
                self.connections.append(conn)
                self.threads.append(thread)
            thread.start()
        self.listener.close()  # here, not from another thread, so it closes at once

    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(5.0)
        with conn, conn.makefile("rb") as rfile:
            while (request := read_request(rfile)) is not None:
                with self.lock:
                    self.received.append(request)
                    n = len(self.received)
                if n > len(self.script):
                    self.past_the_script()
                    return
                answer = self.script[n - 1]
                conn.sendall(answer.render(request))
                if answer.hang_up:
                    return

    def past_the_script(self) -> None:
        if self.after == "silent":
            self.stopping.wait()  # took the request, never answers
        elif self.after == "crash":  # stop listening first: a reconnection is refused
            self.stopping.set()
            self.accepting.join(5)
        # and then hang up on a request it read, without a word

    def requests(self, method: str | None = None) -> list[Seen]:
        """Return what it was sent (only requests of ``method`` if given)."""
        with self.lock:
            return [seen for seen in self.received if method in (None, seen.method)]


# --- the whole stack as real processes ----------------------------------------------------------

def stack_ports(caches: int = 2, front: tuple[str, ...] = FRONT_ENDS) -> dict[str, int]:
    """Pick free ports for every service of ``default_ports`` (the front ends only as
    ``front`` names them), a run of ``caches`` for the caches."""
    names = [name for name in default_ports() if name not in FRONT_ENDS or name in front]
    return free_ports(names, {"cache": caches})


def stack_env(data_dir: Path, **env: str) -> dict[str, str]:
    """Return our environment for a stack's processes: without what the launcher wires, this
    checkout on PYTHONPATH, DATA_DIR, cheap password hashing, and ``env`` on top."""
    inherited = {name: value for name, value in os.environ.items() if name not in WIRED}
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), inherited.get("PYTHONPATH")]))
    # SCRYPT_N only makes sign-up and log-in cheap; everything else keeps its defaults.
    return {**inherited, "DATA_DIR": str(data_dir), "PYTHONPATH": pythonpath, "SCRYPT_N": "16",
            **env}


@dataclass(frozen=True)
class RunningStack:
    """A started stack: its processes (``stack``) and the port of each service."""

    stack: Stack
    ports: dict[str, int]

    def url(self, name: str) -> str:
        """Return the URL of the service called ``name`` ("lb", "cache2", ...)."""
        [service] = [service for service in self.stack.services if service.name == name]
        return service.url(self.stack.host)


@contextmanager
def running_stack(data_dir: Path, caches: int = 2, front: tuple[str, ...] = FRONT_ENDS,
                  env: dict[str, str] | None = None, ports: dict[str, int] | None = None,
                  services: list[Service] | None = None) -> Iterator[RunningStack]:
    """Start the stack as `make run` does: ``plan``'s services, with ``caches`` caches and the
    ``front`` ends, on ``ports`` (free ones from ``stack_ports`` if not given), or just
    ``services`` as they are; run it in ``stack_env(data_dir, **env)``; stop it on the way
    out."""
    if services is None:
        ports = ports if ports is not None else stack_ports(caches, front)
        services = plan(HOST, ports, caches)
    else:
        ports = {service.name: service.port for service in services}
    stack = Stack(services, HOST, stack_env(data_dir, **(env or {})))
    try:
        stack.start()
        yield RunningStack(stack, ports)
    finally:
        stack.stop()


def run_load_test(*args: str) -> subprocess.CompletedProcess[str]:
    """Run load_test.py as a user does: its own process, this interpreter, nothing imported."""
    return subprocess.run([sys.executable, str(ROOT / "load_test.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
