"""The bound and the breaker in front of an upstream (httpkit.breaker), on an injected clock,
and an Upstream in front of a listener that accepts connections but never answers."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from httpkit.breaker import Breaker, FailFast, Refused
from httpkit.client import Upstream, UpstreamTimeout, UpstreamUnavailable
from tests.fakes import FakeClock, wait_until

SETTINGS = FailFast(max_waiting=2, stall_s=1.0, cooldown_s=1.0, threshold=3)


@pytest.fixture
def breaker(clock: FakeClock) -> Breaker:
    return Breaker(SETTINGS, clock)


def test_requests_over_the_bound_are_refused_at_once_and_admitted_again_once_one_ends(
        breaker: Breaker) -> None:
    first, _ = breaker.admit(), breaker.admit()
    with pytest.raises(Refused, match="2 requests waiting"):
        breaker.admit()
    breaker.answered(first)
    breaker.admit()
    assert breaker.refused == 1 and not breaker.is_open


def test_consecutive_timeouts_open_the_breaker_and_an_answer_between_them_resets_the_count(
        breaker: Breaker) -> None:
    for _ in range(2):
        breaker.timed_out(breaker.admit())
    breaker.answered(breaker.admit())
    for _ in range(2):
        breaker.timed_out(breaker.admit())
    assert not breaker.is_open
    breaker.timed_out(breaker.admit())
    assert breaker.is_open and breaker.opened == 1
    with pytest.raises(Refused, match="not answering"):
        breaker.admit()


def test_requests_waiting_with_no_answer_for_the_stall_time_open_it_without_any_timeout(
        breaker: Breaker, clock: FakeClock) -> None:
    breaker.admit()
    clock.advance(0.9)
    breaker.admit()  # waited 0.9 s: not yet a stall
    clock.advance(0.2)
    with pytest.raises(Refused, match="not answering"):
        breaker.admit()
    assert breaker.is_open


def test_a_slow_request_is_no_stall_while_other_answers_keep_coming(
        breaker: Breaker, clock: FakeClock) -> None:
    breaker.admit()  # slow, still waiting
    for _ in range(5):
        clock.advance(0.5)
        breaker.answered(breaker.admit())
    assert not breaker.is_open


def test_an_open_breaker_lets_one_probe_through_after_the_cooldown_and_its_answer_closes_it(
        breaker: Breaker, clock: FakeClock) -> None:
    for _ in range(3):
        breaker.timed_out(breaker.admit())
    clock.advance(0.5)
    with pytest.raises(Refused):
        breaker.admit()
    clock.advance(0.6)
    probe = breaker.admit()
    with pytest.raises(Refused):  # only one probe at a time
        breaker.admit()
    breaker.answered(probe)
    assert not breaker.is_open
    breaker.admit()


def test_a_probe_that_times_out_opens_it_for_another_cooldown(
        breaker: Breaker, clock: FakeClock) -> None:
    for _ in range(3):
        breaker.timed_out(breaker.admit())
    clock.advance(1.1)
    breaker.timed_out(breaker.admit())
    clock.advance(0.5)
    with pytest.raises(Refused):
        breaker.admit()
    clock.advance(0.6)
    breaker.admit()


def test_a_late_answer_to_a_request_sent_before_it_opened_closes_it(
        breaker: Breaker, clock: FakeClock) -> None:
    waiting = breaker.admit()
    for _ in range(3):
        breaker.timed_out(breaker.admit())
    assert breaker.is_open
    breaker.answered(waiting)
    assert not breaker.is_open


def test_once_open_it_gives_up_on_requests_waiting_longer_than_the_stall_time(
        breaker: Breaker, clock: FakeClock) -> None:
    given_up: list[str] = []
    old = breaker.admit()
    breaker.watch(old, lambda: given_up.append("old"))
    clock.advance(0.8)
    young = breaker.admit()
    breaker.watch(young, lambda: given_up.append("young"))
    breaker.check()
    assert given_up == [] and not breaker.is_open  # nothing has waited 1 s yet
    clock.advance(0.3)
    breaker.check()  # the old one has waited 1.1 s with no answer: a stall
    assert breaker.is_open and given_up == ["old"]
    clock.advance(0.8)
    breaker.check()
    assert given_up == ["old", "young"]
    breaker.check()
    assert given_up == ["old", "young"]  # each is given up on once


def test_a_refused_connection_is_no_hang(breaker: Breaker) -> None:
    for _ in range(10):
        breaker.failed(breaker.admit())
    assert not breaker.is_open


class HungListener:
    """A port whose kernel completes every handshake but whose process never reads: what a
    SIGSTOPped service looks like from outside."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def hung() -> Iterator[HungListener]:
    listener = HungListener()
    yield listener
    listener.close()


def test_an_upstream_in_front_of_a_hung_service_keeps_only_the_bound_waiting_then_fails_fast(
        hung: HungListener, clock: FakeClock) -> None:
    upstream = Upstream(hung.url, read_timeout=5.0, fail_fast=SETTINGS)
    assert upstream.breaker is not None
    upstream.breaker = breaker = Breaker(SETTINGS, clock)
    outcomes: list[BaseException] = []

    def wait_for_it(method: str) -> None:
        try:
            upstream.request(method, "/slow")
        except Exception as err:
            outcomes.append(err)
    threads = [threading.Thread(target=wait_for_it, args=(method,)) for method in ("GET", "POST")]
    for thread in threads:
        thread.start()
    assert wait_until(lambda: len(breaker._waiting) == 2)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable, match="2 requests waiting") as busy:
        upstream.request("GET", "/third")
    assert busy.value.status == 503 and not busy.value.sent
    clock.advance(1.5)  # the two have waited past the stall time, nothing answered
    with pytest.raises(UpstreamUnavailable, match="not answering"):
        upstream.request("GET", "/fourth")
    assert time.monotonic() - started < 0.5  # neither waited for the hung service
    breaker.check()  # what the watchdog does: the two waiting are given up on at once
    for thread in threads:
        thread.join(timeout=10)
    assert len(outcomes) == 2 and all(isinstance(err, UpstreamTimeout) for err in outcomes)
    assert "gave up waiting" in str(outcomes[0]) and time.monotonic() - started < 0.8
    # A given-up GET asked for nothing the service could still do: it is unavailable (503);
    # a POST may yet be done: it timed out (504).
    assert sorted(err.status for err in outcomes if isinstance(err, UpstreamTimeout)) == [503, 504]
    upstream.close()


def test_an_upstream_without_fail_fast_has_no_breaker(hung: HungListener) -> None:
    assert Upstream(hung.url).breaker is None
