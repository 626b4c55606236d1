"""Unit tests of ``api.publisher.Coalescer``: what goes into the change feed, and when, on a
fake clock (never a sleep for the intervals; the one test of the background thread waits for
its 50 ms interval with a deadline)."""
from __future__ import annotations

from typing import Any

from api.publisher import Coalescer
from httpkit.feed import ChangeFeed
from tests.fakes import FakeClock, Lab, wait_until


def changes(feed: ChangeFeed, after: int) -> dict[str, Any]:
    """Return what a follower at ``after`` would be told (without waiting)."""
    return feed.read(feed.epoch, after)


def writes_on_a_fake_clock() -> tuple[ChangeFeed, FakeClock, Coalescer]:
    """A feed, a fake clock, and the coalescer of writes (0.5 s, leading edge) on them."""
    feed, clock = ChangeFeed(), FakeClock()
    return feed, clock, Coalescer(feed, 0.5, leading=True, clock=clock)


def test_a_lone_write_is_published_at_once_and_hard() -> None:
    feed, clock, writes = writes_on_a_fake_clock()
    assert writes.publish(["tweet/7", "timeline"]) == ["tweet/7", "timeline"]
    told = changes(feed, 0)
    assert (told["keys"], told["soft"]) == (["tweet/7", "timeline"], [])


def test_a_key_written_again_within_the_interval_waits_for_its_end_then_goes_soft() -> None:
    feed, clock, writes = writes_on_a_fake_clock()
    writes.publish(["timeline", "account/alice"])
    clock.advance(0.1)
    # timeline is marked; account/bob was quiet, so it goes out at once
    assert writes.publish(["timeline", "account/bob"]) == ["account/bob"]
    seq = feed.seq
    clock.advance(0.3)  # 0.4 s after timeline went out: not yet
    assert writes.tick() == 0 and feed.seq == seq
    clock.advance(0.1)
    assert writes.tick() == 1
    told = changes(feed, seq)
    assert (told["keys"], told["soft"]) == ([], ["timeline"])
    assert writes.tick() == 0  # published once, not again


def test_under_a_stream_of_writes_a_key_goes_out_once_per_interval() -> None:
    feed, clock, writes = writes_on_a_fake_clock()
    published = 0
    for _ in range(100):  # a post every 10 ms for a second
        published += len(writes.publish(["timeline"]))
        published += writes.tick()
        clock.advance(0.01)
    assert published == 2  # the leading edge, then one at the end of the first interval
    clock.advance(0.5)
    assert writes.tick() == 1  # the writes of the second interval
    clock.advance(0.6)
    assert writes.tick() == 0
    assert writes.publish(["timeline"]) == ["timeline"]  # quiet again: at once


def test_likes_go_out_together_once_per_interval_all_soft() -> None:
    feed, clock = ChangeFeed(), FakeClock()
    liked = Coalescer(feed, 1.0, leading=False, clock=clock)
    assert liked.publish(["tweet/1"]) == []
    clock.advance(0.4)
    liked.publish(["tweet/2"])
    liked.publish(["tweet/1"])
    assert liked.tick() == 0 and feed.seq == 0
    clock.advance(0.6)
    assert liked.tick() == 2
    assert feed.seq == 1  # one change for both tweets
    told = changes(feed, 0)
    assert (told["keys"], told["soft"]) == ([], ["tweet/1", "tweet/2"])
    clock.advance(0.5)
    liked.publish(["tweet/1"])
    assert liked.tick() == 0  # half an interval since the last round
    clock.advance(0.5)
    assert liked.tick() == 1


def test_an_interval_of_zero_publishes_every_change_at_once() -> None:
    feed, clock = ChangeFeed(), FakeClock()
    liked = Coalescer(feed, 0.0, leading=False, clock=clock)
    assert liked.publish(["tweet/1"]) == ["tweet/1"]
    assert changes(feed, 0)["keys"] == ["tweet/1"]


def test_stop_publishes_what_is_marked() -> None:
    feed, clock = ChangeFeed(), FakeClock()
    liked = Coalescer(feed, 1.0, leading=False, clock=clock)
    liked.publish(["tweet/3"])
    liked.stop()
    assert changes(feed, 0)["soft"] == ["tweet/3"]


def test_a_key_marked_hard_and_soft_is_told_hard() -> None:
    feed = ChangeFeed()
    feed.publish(["tweet/1"], soft=True)
    feed.publish(["tweet/1", "timeline"])
    feed.publish(["timeline", "tweet/2"], soft=True)
    told = changes(feed, 0)
    assert (told["keys"], told["soft"]) == (["tweet/1", "timeline"], ["tweet/2"])


def changes_after(feed: ChangeFeed, seq: int) -> list[tuple[list[str], bool]]:
    """Return each change published after ``seq`` as (keys, soft)."""
    return [(list(change.keys), change.soft) for change in feed._changes if change.seq > seq]


def test_each_key_keeps_its_own_interval() -> None:
    feed, clock, writes = writes_on_a_fake_clock()
    writes.publish(["account/alice"])
    clock.advance(0.3)
    writes.publish(["account/bob"])
    clock.advance(0.1)
    assert writes.publish(["account/alice", "account/bob"]) == []  # 0.4 s and 0.1 s old
    seq = feed.seq
    clock.advance(0.1)
    assert writes.tick() == 1
    assert changes_after(feed, seq) == [(["account/alice"], True)]
    clock.advance(0.3)
    assert writes.tick() == 1
    assert changes_after(feed, seq) == [(["account/alice"], True), (["account/bob"], True)]


def test_keys_due_together_go_out_in_one_change_in_order() -> None:
    feed, clock, writes = writes_on_a_fake_clock()
    writes.publish(["timeline", "search", "hashtags"])
    writes.publish(["search", "hashtags", "timeline"])
    seq = feed.seq
    clock.advance(0.5)
    assert writes.tick() == 3
    assert changes_after(feed, seq) == [(["hashtags", "search", "timeline"], True)]


def test_a_key_published_soft_is_not_published_again_within_an_interval() -> None:
    feed, clock, writes = writes_on_a_fake_clock()
    writes.publish(["timeline"])
    clock.advance(0.1)
    writes.publish(["timeline"])
    clock.advance(0.4)
    writes.tick()  # the soft one, at 0.5 s
    seq = feed.seq
    clock.advance(0.2)
    assert writes.publish(["timeline"]) == []  # 0.2 s after the soft one
    clock.advance(0.3)
    assert writes.tick() == 1
    assert changes_after(feed, seq) == [(["timeline"], True)]


def test_a_started_coalescer_ticks_by_itself(lab: Lab) -> None:
    feed = ChangeFeed()
    liked = Coalescer(feed, 0.05, leading=False)  # the real clock, an interval of 50 ms
    liked.start()
    lab.stops.append(liked.stop)
    liked.publish(["tweet/1"])
    assert wait_until(lambda: feed.seq >= 1)
    assert changes_after(feed, 0)[0] == (["tweet/1"], True)
