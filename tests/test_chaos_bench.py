"""bench/chaos.py's arithmetic, without a stack: what counts as failed, recovered, lost or
doubled."""
from __future__ import annotations

import signal

import pytest

from bench.chaos import (Attempt, Fault, Window, Write, like_verdict, request_recovery,
                         service_ports, stop_figures, table, totals, tweet_verdict)


def answered(kind: str, start: float, status: int, latency: float = 0.01,
             cache: str = "") -> Attempt:
    return Attempt(kind, 1, start, latency, status, cache=cache)


def test_recovery_is_when_every_kind_that_failed_succeeded_after_its_last_failure() -> None:
    attempts = [answered("read", 10.0, 502), answered("read", 10.5, 200),
                answered("post", 11.0, 0), answered("post", 12.0, 201, latency=0.5),
                answered("like", 10.2, 202)]
    assert request_recovery(attempts, since=10.0) == pytest.approx(2.5)
    assert request_recovery([answered("like", 10.0, 202)], since=10.0) == 0.0
    assert request_recovery([answered("post", 11.0, 503)], since=10.0) is None


def test_likes_are_lost_below_the_202s_and_doubled_above_them_plus_the_unanswered() -> None:
    likes = [Write("like", 1, "a", tweet_id=7, acked=True, statuses=[202]),
             Write("like", 1, "b", tweet_id=7, acked=True, statuses=[0, 202]),
             Write("like", 1, "c", tweet_id=7, statuses=[0, 0, 0, 0]),  # may have landed
             Write("like", 1, "d", tweet_id=8, acked=True, statuses=[202]),
             Write("like", 1, "e", tweet_id=8, statuses=[503, 503, 503, 503])]  # must not
    verdict = like_verdict(likes, {7: 3, 8: 2})
    assert (verdict["lost"], verdict["doubled"]) == (0, 1)  # tweet 8 counted a refused like
    assert like_verdict(likes, {7: 1, 8: 1})["lost"] == 1


def test_tweets_are_lost_when_missing_doubled_when_stored_twice() -> None:
    posts = [Write("post", 1, "a", text="t a", tweet_id=1, acked=True, statuses=[201]),
             Write("post", 1, "b", text="t b", tweet_id=2, acked=True, statuses=[0, 201]),
             Write("post", 1, "c", text="t c", statuses=[500, 500, 500, 500]),
             Write("post", 1, "d", text="t d", tweet_id=9, acked=True, statuses=[201])]
    verdict = tweet_verdict(posts, {1: "t a", 2: "t b", 3: "t b", 4: "t c"})
    assert (verdict["lost"], verdict["doubled"], verdict["landed_after_error"]) == (1, 1, 1)


def test_the_stop_compares_hits_with_the_windows_own_baseline() -> None:
    window = Window(7, Fault("SIGSTOP store", "store", signal.SIGSTOP), 0.0, 2.0, 4.0, 6.0)
    attempts = [answered("read", t / 10, 200, cache="HIT") for t in range(0, 20)]  # 10/s
    attempts += [answered("read", 2 + t / 5, 200, cache="HIT") for t in range(10)]  # 5/s
    attempts += [answered("post", 2.5, 503, latency=0.02), answered("post", 3.0, 504, 2.0)]
    stop = stop_figures(attempts, window)
    assert stop["hit_share"] == pytest.approx(0.5)
    assert (stop["others_503"], stop["others_failed"], stop["p99_503_s"]) == (1, 2, 0.02)


def test_ports_stay_in_the_allowed_range_and_the_table_has_a_row_per_fault() -> None:
    assert service_ports(9200, 3)["cache3"] == 9203
    with pytest.raises(SystemExit):
        service_ports(9290, 3)
    row = {"fault": "kill -9 api", "failed": {"read": 0, "post": 2, "like": 0},
           "recovery_health_s": 1.0, "recovery_requests_s": None,
           "tweets": {"lost": 0, "doubled": 1}, "likes": {"lost": 0, "doubled": 0},
           "notes": ["PID 1 -> 2"]}
    assert table([row]).splitlines()[-1] == \
        "| kill -9 api | 2 (2 posts) | 1.0 / - | 0 / 1 | 0 / 0 | PID 1 -> 2 |"


def test_the_stop_goal_takes_a_few_honest_504s_but_not_slow_failures() -> None:
    def judged(others_503: int, others_failed: int, p99_failed_s: float) -> bool:
        row = {"fault": "SIGSTOP store 20 s", "failed": {"read": 0},
               "window": {"fault": {"victim": "store"}},
               "recovery_health_s": 0.1, "recovery_requests_s": 0.1,
               "tweets": {"lost": 0, "doubled": 0, "landed_after_error": 0},
               "likes": {"lost": 0, "doubled": 0, "acked": 0},
               "stop": {"hit_share": 0.9, "others_503": others_503,
                        "others_failed": others_failed, "p99_failed_s": p99_failed_s}}
        goal: bool = totals([row], 0)["goals"]["stop_rest_503_p99_1s"]
        return goal
    assert judged(998, 1000, 0.8)  # two writes given up on: 504, as they may yet be done
    assert not judged(980, 1000, 0.8)
    assert not judged(1000, 1000, 1.2)
