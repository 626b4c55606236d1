"""The lb's shared counts (``lb/tally.py``): each worker writes its own section, totals sum
them. (That the sections are really shared across a fork is shown in ``test_workers.py``.)"""
from __future__ import annotations

import pytest

from lb.tally import ROWS, Tally


def test_counts_of_one_worker_by_address() -> None:
    tally = Tally()
    for address, failed in [("a:1", False), ("a:1", False), ("b:2", True), ("a:1", True)]:
        tally.add(address, failed)
    assert tally.totals() == {"a:1": (2, 1), "b:2": (0, 1)}


def test_totals_add_up_every_workers_section() -> None:
    tally = Tally(workers=3)
    tally.add("a:1", False)
    tally.attach(2)  # as the third worker would, after the fork
    for _ in range(5):
        tally.add("a:1", False)
    tally.add("c:3", False)
    tally.attach(1)
    tally.add("c:3", True)
    assert tally.totals() == {"a:1": (6, 0), "c:3": (1, 1)}


def test_a_worker_that_attaches_again_starts_a_fresh_section_table() -> None:
    tally = Tally(workers=2)
    tally.attach(1)
    tally.add("a:1", False)
    tally.attach(0)
    tally.add("b:2", False)  # written to section 0, not over worker 1's "a:1" row
    assert tally.totals() == {"a:1": (1, 0), "b:2": (1, 0)}


def test_addresses_beyond_the_table_go_uncounted_and_break_nothing() -> None:
    tally = Tally()
    for n in range(ROWS + 5):
        tally.add(f"10.0.0.1:{n}", False)
    totals = tally.totals()
    assert len(totals) == ROWS and totals["10.0.0.1:0"] == (1, 0)


def test_every_worker_advances_the_same_turn() -> None:
    tally = Tally(workers=2)
    turns = [tally.turn(), tally.turn()]
    tally.attach(1)
    turns += [tally.turn(), tally.turn()]
    tally.add("a:1", False)  # the counts do not write over the turn, nor it over them
    assert (turns, tally.turn(), tally.totals()) == ([0, 1, 2, 3], 4, {"a:1": (1, 0)})


def test_a_worker_number_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError):
        Tally(workers=2).attach(2)


def test_a_worker_started_in_place_of_a_dead_one_takes_over_its_rows() -> None:
    dead = Tally(workers=2)
    dead.attach(1)
    for address in ("a:1", "b:2", "a:1"):
        dead.add(address, False)
    replacement = Tally(workers=2)
    replacement.memory = dead.memory  # the same shared map, as after a fork
    replacement.attach(1)
    replacement.add("b:2", False)  # not written over "a:1", the dead worker's first row
    replacement.add("c:3", True)
    assert replacement.totals() == {"a:1": (2, 0), "b:2": (2, 0), "c:3": (0, 1)}
