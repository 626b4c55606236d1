"""Fixtures for every test: a lab whose fakes, servers and clients all stop when the test
ends, and a clock that moves only when the test moves it."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from httpkit import Server
from store import app as store_app
from tests.fakes import FakeClock, Lab


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab = Lab()
    yield lab
    lab.close()


@pytest.fixture
def clock() -> FakeClock:
    """A real-looking time (token expiry, TTLs, the age of pending likes)."""
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def store(lab: Lab, tmp_path: Path, clock: FakeClock) -> Server:
    """A real store serving a fresh sqlite file, on the clock the api's tokens run on (an
    ended session is kept until its token's expiry)."""
    config = store_app.Config(port=0, data_dir=str(tmp_path / "store"))
    return lab.serve(store_app.make_server(config, clock))
