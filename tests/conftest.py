"""Fixtures for every test: a lab whose fakes, servers and clients all stop when the test
ends, and a clock that moves only when the test moves it."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

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
