"""Fixtures: a lab whose fakes, servers and clients are all stopped when the test ends."""
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
    return FakeClock()
