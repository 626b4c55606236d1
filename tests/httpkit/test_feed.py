"""Unit tests of the change feed (``httpkit.feed``): no sockets. The long poll's waits are
network waits (how long a follower's request is held), so the few that must run out are tiny;
a wake-up is asserted by watching the waiter, never by sleeping for the wait."""
from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from httpkit import HTTPError, Request
from httpkit.feed import (MOST_KEYS, ChangeFeed, account_key, changes_handler, key_header,
                          tag_key, tweet_key)
from tests.fakes import FakeClock


class WatchedCondition(threading.Condition):
    """A Condition that tells when someone starts waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waiting.set()
        return super().wait(timeout)


def watched(feed: ChangeFeed) -> WatchedCondition:
    """Swap the feed's condition for one that shows when a long poll is waiting."""
    condition = WatchedCondition()
    feed._changed = condition
    return condition


Reading = tuple[threading.Thread, list[dict[str, Any]]]


def read_in_thread(feed: ChangeFeed, after: int, wait: float) -> Reading:
    """Start a follower's long poll in a thread; its answer lands in the list."""
    answers: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: answers.append(feed.read(feed.epoch, after, wait)),
                              daemon=True)
    reader.start()
    return reader, answers


# --- publishing and reading ------------------------------------------------------------------

def test_each_publish_gets_the_next_seq_and_a_read_returns_what_came_after() -> None:
    clock = FakeClock(500.0)
    feed = ChangeFeed(clock=clock)
    assert feed.publish(["tweet/1", "timeline"]) == 1
    clock.advance(5)
    assert feed.publish(["tweet/2"]) == 2
    everything = feed.read(feed.epoch, 0)
    assert everything == {"epoch": feed.epoch, "seq": 2,
                          "keys": ["tweet/1", "timeline", "tweet/2"], "soft": [],
                          "time": 505.0}  # when the newest of them was published
    assert feed.read(feed.epoch, 1) == {"epoch": feed.epoch, "seq": 2, "keys": ["tweet/2"],
                                        "soft": [], "time": 505.0}
    assert feed.read(feed.epoch, 2) == {"epoch": feed.epoch, "seq": 2, "keys": [], "soft": []}


def test_keys_are_deduplicated_in_order_within_and_across_changes() -> None:
    feed = ChangeFeed()
    feed.publish(["tweet/1", "timeline", "tweet/1", "", "tag/a"])
    assert feed.read(feed.epoch, 0)["keys"] == ["tweet/1", "timeline", "tag/a"]
    feed.publish(["timeline", "tweet/2"])
    assert feed.read(feed.epoch, 0)["keys"] == ["tweet/1", "timeline", "tag/a", "tweet/2"]


def test_an_empty_key_list_publishes_nothing() -> None:
    feed = ChangeFeed()
    assert feed.publish([]) == 0
    assert feed.publish(["", ""]) == 0
    assert feed.publish(iter([])) == 0
    assert feed.seq == 0
    assert feed.read(feed.epoch, 0) == {"epoch": feed.epoch, "seq": 0, "keys": [], "soft": []}


def test_soft_changes_are_named_apart_and_a_hard_change_of_a_key_wins() -> None:
    feed = ChangeFeed()
    feed.publish(["tweet/1", "tweet/2"], soft=True)  # like counts moved
    assert feed.read(feed.epoch, 0)["keys"] == []
    assert feed.read(feed.epoch, 0)["soft"] == ["tweet/1", "tweet/2"]
    feed.publish(["tweet/2", "timeline"])  # an edit: tweet/2 must be dropped, not revalidated
    feed.publish(["tweet/3", "tweet/1", "tweet/2"], soft=True)
    both = feed.read(feed.epoch, 0)
    assert (both["keys"], both["soft"]) == (["tweet/2", "timeline"], ["tweet/1", "tweet/3"])
    later = feed.read(feed.epoch, 2)  # only the last soft change is after 2
    assert (later["keys"], later["soft"]) == ([], ["tweet/3", "tweet/1", "tweet/2"])


def test_every_feed_has_its_own_epoch() -> None:
    first, second = ChangeFeed(), ChangeFeed()
    assert first.epoch and second.epoch and first.epoch != second.epoch


# --- resets ----------------------------------------------------------------------------------

@pytest.mark.parametrize("epoch", ["", "0123456789abcdef", "another-process"])
def test_a_follower_from_another_epoch_is_told_to_reset_with_the_current_seq(
        epoch: str) -> None:
    feed = ChangeFeed()
    feed.publish(["tweet/1"])
    feed.publish(["tweet/2"])
    for after in (0, 1, 2):
        assert feed.read(epoch, after) == {"epoch": feed.epoch, "seq": 2, "keys": [],
                                           "soft": [], "reset": True}


def test_a_follower_ahead_of_the_feed_is_told_to_reset() -> None:
    feed = ChangeFeed()
    feed.publish(["tweet/1"])
    answer = feed.read(feed.epoch, 2)
    assert answer == {"epoch": feed.epoch, "seq": 1, "keys": [], "soft": [], "reset": True}


def test_a_follower_further_behind_than_the_feed_keeps_is_told_to_reset() -> None:
    feed = ChangeFeed(keep=3)
    for number in range(1, 6):
        feed.publish([tweet_key(number)])  # changes 3, 4 and 5 are kept
    assert feed.read(feed.epoch, 0).get("reset") is True
    assert feed.read(feed.epoch, 1).get("reset") is True  # change 2 is lost
    caught_up = feed.read(feed.epoch, 2)  # missed 3, 4, 5: all still kept
    assert caught_up["keys"] == ["tweet/3", "tweet/4", "tweet/5"]
    assert "reset" not in caught_up


def test_more_keys_than_one_answer_may_carry_is_a_reset() -> None:
    feed = ChangeFeed()
    feed.publish([tweet_key(number) for number in range(MOST_KEYS)])
    whole = feed.read(feed.epoch, 0)
    assert len(whole["keys"]) == MOST_KEYS and "reset" not in whole
    feed.publish(["timeline"])
    assert feed.read(feed.epoch, 0) == {"epoch": feed.epoch, "seq": 2, "keys": [], "soft": [],
                                        "reset": True}
    assert feed.read(feed.epoch, 1)["keys"] == ["timeline"]  # a follower nearer is not


def test_soft_keys_count_towards_the_most_one_answer_may_carry() -> None:
    feed = ChangeFeed()
    feed.publish([tweet_key(number) for number in range(MOST_KEYS - 1)])
    feed.publish(["tweet/likes-a"], soft=True)
    assert "reset" not in feed.read(feed.epoch, 0)
    feed.publish(["tweet/likes-b"], soft=True)
    assert feed.read(feed.epoch, 0).get("reset") is True


# --- the long poll ---------------------------------------------------------------------------

def test_a_long_poll_answers_at_once_when_something_changed() -> None:
    feed = ChangeFeed()
    feed.publish(["tweet/1"])
    started = time.monotonic()
    assert feed.read(feed.epoch, 0, wait=5.0)["keys"] == ["tweet/1"]
    assert time.monotonic() - started < 1.0


def test_a_long_poll_with_nothing_new_answers_empty_when_its_wait_runs_out() -> None:
    feed = ChangeFeed()
    feed.publish(["tweet/1"])
    nothing = {"epoch": feed.epoch, "seq": 1, "keys": [], "soft": []}
    assert feed.read(feed.epoch, 1, wait=0) == nothing
    started = time.monotonic()
    assert feed.read(feed.epoch, 1, wait=0.05) == nothing
    assert time.monotonic() - started >= 0.04


def test_a_waiting_long_poll_is_woken_by_a_publish_from_another_thread() -> None:
    feed = ChangeFeed()
    condition = watched(feed)
    feed.publish(["tweet/1"])
    reader, answers = read_in_thread(feed, 1, wait=5.0)
    assert condition.waiting.wait(2), "the long poll never waited"
    published = time.monotonic()
    feed.publish(["tweet/2", "timeline"])
    reader.join(2)
    assert not reader.is_alive(), "the publish did not wake the long poll"
    assert time.monotonic() - published < 2
    assert answers == [{"epoch": feed.epoch, "seq": 2, "keys": ["tweet/2", "timeline"],
                        "soft": [], "time": answers[0]["time"]}]


def test_close_answers_every_waiting_long_poll_at_once() -> None:
    feed = ChangeFeed()
    condition = watched(feed)
    readers = [read_in_thread(feed, 0, wait=5.0) for _ in range(3)]
    assert condition.waiting.wait(2)
    feed.close()
    for reader, answers in readers:
        reader.join(2)
        assert not reader.is_alive(), "close did not wake a long poll"
        assert answers == [{"epoch": feed.epoch, "seq": 0, "keys": [], "soft": []}]
    started = time.monotonic()
    assert feed.read(feed.epoch, 0, wait=5.0)["keys"] == []  # closed: no more waiting
    assert time.monotonic() - started < 1.0


# --- GET /_changes -----------------------------------------------------------------------------

def changes_request(query: str) -> Request:
    return Request("GET", f"/_changes?{query}", "/_changes", query, {})


def test_the_handler_answers_the_feed_as_json_never_to_be_stored() -> None:
    feed = ChangeFeed()
    feed.publish(["tweet/1"])
    handler = changes_handler(feed)
    answer = handler(changes_request(f"epoch={feed.epoch}&after=0&wait=0"))
    assert answer.status == 200
    assert ("Cache-Control", "no-store") in answer.headers
    assert json.loads(answer.body)["keys"] == ["tweet/1"]
    first_contact = json.loads(handler(changes_request("")).body)  # no epoch, no after
    assert first_contact == {"epoch": feed.epoch, "seq": 1, "keys": [], "soft": [],
                             "reset": True}
    blank = json.loads(handler(changes_request(f"epoch={feed.epoch}&after=&wait=")).body)
    assert blank["keys"] == ["tweet/1"]  # blank after and wait mean 0


@pytest.mark.parametrize("query", [
    "after=abc", "after=-1", "after=1.5", "after=%C2%B2", "after=" + "9" * 20,
    "wait=abc", "wait=-1", "wait=1000", "wait=1.2345", "wait=1e3", "wait=inf", "wait=nan",
])
def test_the_handler_refuses_a_bad_after_or_wait_with_400(query: str) -> None:
    feed = ChangeFeed()
    with pytest.raises(HTTPError) as refused:
        changes_handler(feed)(changes_request(f"epoch={feed.epoch}&{query}"))
    assert (refused.value.status, refused.value.code) == (400, "invalid_query")


def test_the_handler_accepts_the_largest_after_and_wait_it_allows() -> None:
    feed = ChangeFeed()
    answer = changes_handler(feed)(changes_request(f"epoch={feed.epoch}&after={'9' * 19}"
                                                   "&wait=0.001"))
    assert json.loads(answer.body).get("reset") is True  # far ahead of seq 0


# --- key helpers -------------------------------------------------------------------------------

def test_keys_are_readable_and_ignore_case_where_names_do() -> None:
    assert tweet_key(7) == "tweet/7"
    assert account_key("Alice") == "account/alice"
    assert tag_key("Søk") == "tag/søk"
    assert key_header(["tweet/7", "timeline", "tweet/7"]) == "tweet/7 timeline"


def test_the_feed_keeps_a_bounded_number_of_keys_and_resets_who_fell_behind_them() -> None:
    feed = ChangeFeed(keep=100, keep_keys=10)
    for n in range(6):
        feed.publish([f"tweet/{n}a", f"tweet/{n}b"])  # 12 keys: the oldest change goes
    assert feed.read(feed.epoch, 0).get("reset") is True  # its keys are no longer known
    assert feed.read(feed.epoch, 1)["keys"] == [f"tweet/{n}{s}" for n in range(1, 6)
                                                for s in "ab"]
    big = feed.publish([f"k/{n}" for n in range(25)])  # one change larger than the budget
    assert feed.read(feed.epoch, big - 1)["keys"][:2] == ["k/0", "k/1"]  # kept whole
    assert feed.read(feed.epoch, big - 2).get("reset") is True
