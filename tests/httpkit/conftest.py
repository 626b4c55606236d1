"""Fixtures: real servers on 127.0.0.1 port 0 in a thread, and scripted fake upstreams, each
stopped when its test ends."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from httpkit import Router, Server
from tests.fakes import Lab
from tests.httpkit.helpers import StartServer, StartUpstream, demo_router
from tests.harness import start_in_thread, stop_thread


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Start servers (the demo service unless told otherwise); all are stopped afterwards."""
    started: list[tuple[Server, threading.Thread]] = []

    def start(router: Router | None = None, *, server_class: type[Server] = Server,
              **options: Any) -> Server:
        options.setdefault("idle_timeout", 2.0)
        server = server_class(("127.0.0.1", 0), router or demo_router(), name="demo", **options)
        started.append((server, start_in_thread(server)))
        return server

    yield start
    for server, thread in started:
        stop_thread(server, thread)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """The demo service, shared: it keeps no state, and each test uses its own connections.
    (Stopping a server waits for its serve loop's next poll, so one per test adds up.)"""
    server = Server(("127.0.0.1", 0), demo_router(), name="demo", idle_timeout=2.0)
    thread = start_in_thread(server)
    yield server
    stop_thread(server, thread)


@pytest.fixture
def start_upstream(lab: Lab) -> StartUpstream:
    """Start scripted fake upstreams (``start(*answers)``); all are stopped afterwards."""
    return lab.scripted_upstream
