"""Fixtures: the real store, the real API in front of it and the web in front of that, all on
127.0.0.1 port 0 in this process, and browsers to visit them. Everything a test started is
stopped when it ends. scrypt runs at a tiny cost so sign-ups are fast."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import pytest

from api import app as api_app
from cache import app as cache_app
from httpkit import Server, Upstream
from lb import app as lb_app
from tests.fakes import FakeClock, Lab
from tests.web.helpers import Browser
from web import app as web_app

FAST_SCRYPT_N = 2 ** 4

StartWeb = Callable[..., Server]
NewBrowser = Callable[[], Browser]


@pytest.fixture
def store_client(lab: Lab, store: Server) -> Upstream:
    """Talks to the store's data API directly (to make many accounts fast)."""
    return lab.client(store.url)


@pytest.fixture
def api(lab: Lab, tmp_path: Path, store: Server, clock: FakeClock) -> Server:
    """The real public API in front of the store (no dbcache)."""
    config = api_app.Config(port=0, store_url=store.url, data_dir=str(tmp_path / "api"),
                            scrypt_n=FAST_SCRYPT_N)
    return lab.serve(api_app.make_server(config, clock))


@pytest.fixture
def start_web(lab: Lab, tmp_path: Path) -> StartWeb:
    """Start a web front end talking to ``api_url`` (with ``clock`` for "5m ago")."""
    def start(api_url: str, clock: Callable[[], float] = time.time) -> Server:
        config = web_app.Config(port=0, api_url=api_url, data_dir=str(tmp_path / "web"),
                                secret_key="test")
        return lab.serve(web_app.make_server(config, clock))
    return start


@pytest.fixture
def web(start_web: StartWeb, api: Server) -> Server:
    """The web pointed straight at the API."""
    return start_web(api.url)


@pytest.fixture
def new_browser(web: Server) -> NewBrowser:
    """Open a new browser (its own cookie jar) on the web."""
    return lambda: Browser(web.url)


@pytest.fixture
def browser(new_browser: NewBrowser) -> Browser:
    return new_browser()


@pytest.fixture
def lb(lab: Lab, api: Server) -> Server:
    """Two real front caches in front of the API and a round-robin load balancer in front of
    them: the deployed shape of the stack."""
    caches = [lab.serve(cache_app.make_server(cache_app.Config(
        name=f"cache{n}", port=0, upstream_url=api.url))) for n in (1, 2)]
    upstreams = tuple(f"127.0.0.1:{cache.server_port}" for cache in caches)
    return lab.serve(lb_app.make_server(lb_app.Config(port=0, upstreams=upstreams)))
