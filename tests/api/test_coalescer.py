"""More of ``api.publisher.Coalescer`` (test_publisher.py has the main rules): keys keep their
own intervals, keys due together go out as one change, and a started coalescer ticks by itself.
Intervals pass on a fake clock, except in the one test of the background thread."""
from __future__ import annotations

from api.publisher import Coalescer
from httpkit.feed import ChangeFeed
from tests.fakes import FakeClock, Lab, wait_until


def changes_after(feed: ChangeFeed, seq: int) -> list[tuple[list[str], bool]]:
    """Return each change published after ``seq`` as (keys, soft)."""
    return [(list(change.keys), change.soft) for change in feed._changes if change.seq > seq]


def test_each_key_keeps_its_own_interval() -> None:
    feed, clock = ChangeFeed(), FakeClock()
    writes = Coalescer(feed, 0.5, leading=True, clock=clock)
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
    feed, clock = ChangeFeed(), FakeClock()
    writes = Coalescer(feed, 0.5, leading=True, clock=clock)
    writes.publish(["timeline", "search", "hashtags"])
    writes.publish(["search", "hashtags", "timeline"])
    seq = feed.seq
    clock.advance(0.5)
    assert writes.tick() == 3
    assert changes_after(feed, seq) == [(["hashtags", "search", "timeline"], True)]


def test_a_key_published_soft_is_not_published_again_within_an_interval() -> None:
    feed, clock = ChangeFeed(), FakeClock()
    writes = Coalescer(feed, 0.5, leading=True, clock=clock)
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
