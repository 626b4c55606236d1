"""The dashboard's history over time (an injected clock, never a sleep), its line charts,
its opt-in reloading and the call log as a paged table."""
from __future__ import annotations

import re

import pytest

from httpkit import Server
from tests.fakes import FakeClock
from tests.web.conftest import StartWeb
from tests.web.helpers import Browser, like, post, sign_up
from web import charts
from web.history import History, Sample, Step, counters


class Counting:
    """Counters that the test moves; counts how often the history read them."""

    def __init__(self) -> None:
        self.counts = {"likes_received": 0}
        self.reads = 0
        self.down = False

    def __call__(self) -> dict[str, int] | None:
        self.reads += 1
        return None if self.down else dict(self.counts)


def test_the_history_samples_only_while_someone_watches() -> None:
    clock, read = FakeClock(0), Counting()
    history = History(read, clock, every=5, keep=4, watched_s=600)
    assert not history.sample() and read.reads == 0  # nobody looked yet: no request at all
    history.viewed({"likes_received": 0})
    for _ in range(3):
        clock.advance(5)
        read.counts["likes_received"] += 10
        assert history.sample()
    assert [step.rate("likes_received") for step in history.steps()] == [2.0, 2.0, 2.0]
    clock.advance(600)
    assert not history.sample()  # ten minutes without a view: sampling stops
    assert read.reads == 3


def test_the_history_is_bounded_and_skips_a_down_api_and_double_views() -> None:
    clock, read = FakeClock(0), Counting()
    history = History(read, clock, every=5, keep=3)
    history.viewed({"likes_received": 0})
    history.viewed({"likes_received": 1})  # a reload at once: no step of no length
    assert len(history.samples) == 1 and not history.sample()
    read.down = True
    clock.advance(5)
    assert not history.sample() and len(history.samples) == 1  # a gap, not a fall to zero
    read.down = False
    for _ in range(5):
        clock.advance(5)
        history.sample()
    assert len(history.samples) == 3 and len(history.steps()) == 2


def test_a_counter_that_went_down_is_a_restart_counting_from_zero() -> None:
    step = Step.of(Sample(0, {"likes_received": 500}), Sample(10, {"likes_received": 30}))
    assert step.counts == {"likes_received": 30} and step.rate("likes_received") == 3.0


def test_counters_sum_every_front_cache_and_both_feeds() -> None:
    feed = {"dropped_by_key": 2}
    lb = {"upstreams": [{"cache": {"hits": 5, "upstream_requests": 1, "feed": feed}},
                        {"cache": {"hits": 7, "upstream_requests": 2, "feed": feed}},
                        {"cache": None}]}
    api = {"likes_received": 9, "likes_written": 6, "likes_dropped": 1,
           "database": {"dbcache": {"feed": {"dropped_by_key": 3}}}}
    assert counters(api, lb) == {"cache_hits": 12, "cache_passed": 3, "likes_received": 9,
                                 "likes_written": 6, "likes_dropped": 1, "feed_dropped": 7}
    assert counters(None, None)["cache_hits"] == 0


@pytest.mark.parametrize("value, top", [(0, 1), (0.3, 0.5), (1, 1), (1.2, 2), (7, 10),
                                        (335.7, 500), (1000, 1000), (1001, 2000)])
def test_the_y_axis_ends_at_a_round_number(value: float, top: float) -> None:
    assert charts.round_up(value) == pytest.approx(top)


def test_a_line_chart_breaks_at_gaps_and_draws_a_lone_point_as_a_dot() -> None:
    svg = charts.line_chart("t", [("a", [(50, 1.0), (40, 2.0), (30, None), (20, 3.0)])], 60)
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 1
    assert 'viewBox="0 0 360 ' in svg and 'font-size="13"' in svg  # 13 px on a phone
    assert ">5/s</text>" in svg and ">60 s ago</text>" in svg and ">now</text>" in svg


def test_the_dashboard_draws_the_last_minutes_from_its_samples(start_web: StartWeb,
                                                               api: Server) -> None:
    clock = FakeClock(0)
    web = start_web(api.url, clock)
    browser = Browser(web.url)
    sign_up(browser, "alice")
    tweet = post(browser, "like me")
    first = browser.get("/dashboard")
    # No lb, no feed: two charts of totals draw; nothing over time yet.
    assert "Reload in a few seconds" in first.text and first.text.count("<svg") == 2
    history = web.web.history  # type: ignore[attr-defined]
    for _ in range(2):
        clock.advance(5)
        for _ in range(5):
            browser.get(f"/tweets/{tweet}")
            like(browser, tweet, f"/tweets/{tweet}")
        assert history.sample()
    page = browser.get("/dashboard")
    charts_shown = page.text.split('<section class="chart">')[1:]
    assert len(charts_shown) == 8 and page.text.count("<svg") == 6
    likes = charts_shown[2]
    assert "In the last 5 s: 1.0 likes/s received" in likes
    assert likes.count("<polyline") == 3 and 'class="swatch s2"' in likes
    assert ">written to the store</li>" in likes


def test_the_dashboard_reloads_itself_only_when_asked(browser: Browser) -> None:
    plain = browser.get("/dashboard")
    assert plain.header("Refresh") is None and 'href="/dashboard?refresh=5"' in plain.text
    asked = browser.get("/dashboard?refresh=5")
    assert asked.header("Refresh") == "5" and "reloads itself every 5 s" in asked.text
    assert 'href="/dashboard">Stop reloading' in asked.text
    assert browser.get("/dashboard?refresh=1").header("Refresh") == "2"  # not faster than 2 s
    assert browser.get("/dashboard?refresh=soon").header("Refresh") is None


def test_the_call_log_is_a_paged_table(browser: Browser) -> None:
    sign_up(browser, "alice")
    for n in range(30):
        post(browser, f"tweet {n}")
    newest = browser.get("/dashboard/logs")
    assert newest.status == 200 and "<table" in newest.text
    numbers = [int(n.replace(",", "")) for n in
               re.findall(r'<td class="number">([0-9,]+)</td>', newest.text)]
    counted = re.search(r"in order: ([0-9,]+) calls", newest.text)
    assert counted is not None
    total = int(counted.group(1).replace(",", ""))
    # The newest page ends at the call before it read the log: total counts that read too.
    assert numbers == list(range(total - 50, total))
    assert "<td>POST</td><td class=\"path\">/tweets</td>" in newest.text
    earlier = re.search(r'<a rel="prev" href="(/dashboard/logs\?after=[0-9]+)">', newest.text)
    assert earlier is not None
    first = browser.get("/dashboard/logs?after=0")
    assert "Calls 1 to 50" in first.text and 'rel="prev"' not in first.text
    assert re.search(r'<a rel="next" href="/dashboard/logs\?after=50">Later calls', first.text)
    assert '<td class="number">1</td><td>POST</td><td class="path">/accounts</td>' in first.text
    assert browser.get("/dashboard/logs.json").header("Content-Type") == "application/json"
