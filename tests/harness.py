"""The test harness: free loopback ports and servers run in a thread, for tests and benchmarks.

Not part of any service: the services never pick their own ports or serve in a thread.
"""
from __future__ import annotations

import socket
import threading
from contextlib import ExitStack

from httpkit import Server


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
