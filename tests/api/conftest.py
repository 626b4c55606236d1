"""Fixtures: a real store on port 0 (its file in tmp_path), the API in front of it, and a real
dbcache or front cache where a test needs one. Everything a test started is stopped when it
ends. Token expiry runs on a fake clock; scrypt runs at a tiny cost so sign-ups are fast."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from api.app import Config, make_server
from cache import app as cache_app
from httpkit import Server
from store import app as store_app
from tests.api.helpers import Client, User, join, post_tweet
from tests.fakes import FakeClock, Lab
from tests.harness import start_in_thread, stop_thread

FAST_SCRYPT_N = 2 ** 4

StartApi = Callable[..., Client]
StartCache = Callable[..., Server]


def client(lab: Lab, url: str) -> Client:
    """A recording client, closed when the test ends."""
    new = Client(url)
    lab.stops.append(new.close)
    return new


@contextmanager
def api_until_stopped(store_url: str, data_dir: str, clock: FakeClock) -> Iterator[Client]:
    """An API over ``data_dir``, stopped (likes flushed) when the block ends, so that a test
    can start another on the same directory: a restart."""
    server = make_server(Config(port=0, store_url=store_url, data_dir=data_dir,
                                scrypt_n=FAST_SCRYPT_N), clock)
    thread = start_in_thread(server)
    api = Client(server.url)
    try:
        yield api
    finally:
        api.close()
        stop_thread(server, thread)


@pytest.fixture
def store_client(lab: Lab, store: Server) -> Client:
    """Talks to the store directly (its /stats, a password hash to look for)."""
    return client(lab, store.url)


@pytest.fixture
def start_api(lab: Lab, tmp_path: Path, clock: FakeClock) -> StartApi:
    """Start an API in front of ``store_url``; return a recording client of it."""
    def start(store_url: str, **options: Any) -> Client:
        options.setdefault("data_dir", str(tmp_path / "api"))
        options.setdefault("scrypt_n", FAST_SCRYPT_N)
        server = lab.serve(make_server(Config(port=0, store_url=store_url, **options), clock))
        return client(lab, server.url)
    return start


@pytest.fixture
def api(start_api: StartApi, store: Server) -> Client:
    """A client of an API that talks to the store directly (no dbcache)."""
    return start_api(store.url)


@pytest.fixture
def alice(api: Client) -> User:
    return join(api, "alice", "Alice Liddell")


@pytest.fixture
def bob(api: Client) -> User:
    return join(api, "bob")


@pytest.fixture
def start_cache(lab: Lab) -> StartCache:
    """Start a real cache (a front cache, or dbcache) in front of ``upstream_url``."""
    def start(upstream_url: str, name: str = "cache") -> Server:
        config = cache_app.Config(name=name, port=0, upstream_url=upstream_url)
        return lab.serve(cache_app.make_server(config, FakeClock()))
    return start


@dataclass
class World:
    """One store and API shared by a module's tests that change nothing: error answers and
    reads of a fixed set of accounts and tweets. A test here must leave the data as it was."""

    api: Client
    store: Client
    alice: User
    bob: User
    tweets: list[dict[str, Any]]


WORLD_TWEETS = ["The quick brown fox", "the lazy dog sleeps", "Quick thinking saves the DAY",
                "école d'été", "NEAR( is FTS syntax * and \" quotes AND OR"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    lab = Lab()
    try:
        data = tmp_path_factory.mktemp("world")
        store = lab.serve(store_app.make_server(store_app.Config(port=0,
                                                                 data_dir=str(data / "store"))))
        config = Config(port=0, store_url=store.url, data_dir=str(data / "api"),
                        scrypt_n=FAST_SCRYPT_N)
        api = client(lab, lab.serve(make_server(config, FakeClock(1_700_000_000.0))).url)
        alice, bob = join(api, "alice", "Alice Liddell"), join(api, "bob")
        tweets = [post_tweet(api, alice, text) for text in WORLD_TWEETS]
        yield World(api, client(lab, store.url), alice, bob, tweets)
    finally:
        lab.close()
