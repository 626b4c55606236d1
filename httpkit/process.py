"""Running a server as a process: until SIGINT or SIGTERM, in pre-forked workers if asked, and
stopping by itself when the launcher that started it is gone (``stack.launcher``)."""
from __future__ import annotations

import logging
import os
import select
import signal
import threading
import time
from typing import Callable

from httpkit.server import Server

log = logging.getLogger(__name__)


def serve(server: Server, workers: int = 1) -> None:
    """Serve until SIGINT or SIGTERM, then stop accepting, run close hooks and return.

    With ``workers`` > 1 the process forks that many copies sharing the listening socket
    (pre-fork, as nginx does) and only watches them (``serve_workers``): each is a whole
    server with its own threads and state, and the kernel hands each new connection to one
    of them. A stateless proxy (lb) gains from it; a service with state in memory (api,
    caches) must keep one worker.
    """
    if workers > 1:
        serve_workers(server, workers)
        return
    stop = stopper(server)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    lifeline = os.environ.get("LAUNCHER_FD", "")
    if lifeline.isdigit():
        threading.Thread(target=stop_when_launcher_gone, args=(int(lifeline), stop, server.name),
                         name="launcher-watch", daemon=True).start()
    log.info("%s: listening on %s (1 worker)", server.name, server.url)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        log.info("%s: stopped", server.name)


def stopper(server: Server) -> Callable[[int, object], None]:
    """Return a signal handler that stops ``server`` once (from any thread)."""
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        if not stopping.is_set():
            stopping.set()
            log.info("%s: stopping", server.name)
            threading.Thread(target=server.shutdown, daemon=True).start()
    return stop


def serve_workers(server: Server, workers: int) -> None:
    """Fork ``workers`` servers sharing this process's listening socket and watch them until
    they have all stopped (``Workers``)."""
    # Every worker wakes for each new connection; one wins the accept. Non-blocking, the
    # others return to their loop instead of blocking in accept() (and missing a stop).
    server.socket.setblocking(False)
    master = Workers(server)
    signal.signal(signal.SIGINT, master.stop)
    signal.signal(signal.SIGTERM, master.stop)
    for number in range(workers):
        master.fork(number)
    log.info("%s: listening on %s (%d workers)", server.name, server.url, workers)
    master.watch(int(os.environ.get("LAUNCHER_FD", "-1") or -1))
    server.server_close()
    log.info("%s: stopped", server.name)


class Workers:
    """The master of pre-forked workers: one that dies is replaced by a new one under its
    number, a stop is passed on to all, and all stop when the launcher is gone. The master
    serves nothing and starts no thread, so it can fork safely at any time."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.pid = os.getpid()
        self.children: dict[int, int] = {}  # pid -> worker number
        self.started: dict[int, float] = {}  # worker number -> when its process began
        self.stopping = False

    def fork(self, number: int) -> None:
        pid = os.fork()
        if pid == 0:
            run_worker(self.server, number, self.pid)  # never returns
        self.children[pid] = number
        self.started[number] = time.monotonic()

    def stop(self, signum: int, frame: object) -> None:
        """Pass a stop on to every worker, once."""
        if not self.stopping:
            self.stopping = True
            log.info("%s: stopping %d workers", self.server.name, len(self.children))
            for pid in self.children:
                os.kill(pid, signal.SIGTERM)

    def watch(self, lifeline: int) -> None:
        """Until every worker has ended: replace the ones that die, and stop all once the
        launcher's pipe (``lifeline``, -1 for none) says it is gone."""
        while self.children:
            if lifeline >= 0 and not self.stopping and launcher_gone(lifeline, 0.2):
                lifeline = -1
                wait_out_stop_delay(self.server.name)
                self.stop(signal.SIGTERM, None)
            elif lifeline < 0 or self.stopping:
                time.sleep(0.2)
            self.reap()

    def reap(self) -> None:
        """Collect the workers that ended; start another in the place of each, unless
        stopping (after a pause if its number keeps dying at once)."""
        while self.children and (ended := os.waitpid(-1, os.WNOHANG))[0]:
            pid, status = ended
            number = self.children.pop(pid)
            if self.stopping:
                continue
            log.warning("%s: worker %d (PID %d) ended with status %d; starting another",
                        self.server.name, number, pid, os.waitstatus_to_exitcode(status))
            if time.monotonic() - self.started[number] < 1.0:
                time.sleep(1.0)  # one dying at once again and again must not spin
            self.fork(number)


def run_worker(server: Server, number: int, master: int) -> None:
    """Serve as worker ``number`` until told to stop or orphaned; then end the process."""
    server.worker = number
    stop = stopper(server)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the master passes a stop on
    signal.signal(signal.SIGTERM, stop)
    threading.Thread(target=stop_when_orphaned, args=(master, stop), name="parent-watch",
                     daemon=True).start()
    status = 0
    try:
        server.serve_forever(poll_interval=0.2)
    except BaseException:
        log.exception("%s: worker %d failed", server.name, number)
        status = 1
    finally:
        server.server_close()
        os._exit(status)  # a worker never returns into its master's code


def launcher_gone(fd: int, timeout: float) -> bool:
    """Tell whether the launcher's pipe reads end-of-file within ``timeout`` seconds."""
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        return bool(readable) and not os.read(fd, 64)
    except (OSError, ValueError):  # no such pipe here (the variable copied by hand): never
        time.sleep(timeout)
        return False


def wait_out_stop_delay(name: str) -> None:
    """Wait LAUNCHER_STOP_DELAY_S, so that the services in front of this one stop first."""
    delay = float(os.environ.get("LAUNCHER_STOP_DELAY_S", "0") or 0)
    log.warning("%s: the launcher is gone; stopping in %g s", name, delay)
    time.sleep(delay)


def stop_when_orphaned(parent: int, stop: Callable[[int, object], None]) -> None:
    """Stop this worker once its parent is gone (killed with no chance to relay a stop), so
    that no orphan keeps the port."""
    while os.getppid() == parent:
        time.sleep(0.5)
    stop(signal.SIGTERM, None)


def stop_when_launcher_gone(fd: int, stop: Callable[[int, object], None], name: str) -> None:
    """Stop gracefully once the launcher that started this service has died: the pipe whose
    write end only it holds then reads end-of-file (``stack.launcher``). The wait set in
    LAUNCHER_STOP_DELAY_S lets the services in front stop first."""
    while not launcher_gone(fd, 1.0):
        pass
    wait_out_stop_delay(name)
    stop(signal.SIGTERM, None)
