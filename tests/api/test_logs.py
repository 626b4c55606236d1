"""Service tests of the public API, /logs and /stats: every call logged once and in order
(failures, concurrent clients and refused oversized calls included), paged with ``after``,
and the calls, database accesses and likes counted."""
from __future__ import annotations

import threading

from tests.api.helpers import Client, User, error_code, like, logged, post_tweet
from tests.fakes import Lab


# --- /logs and /stats --------------------------------------------------------------------------

def test_the_log_shows_every_call_in_order_failures_included(api: Client) -> None:
    api.get("/healthz")  # a probe, not an API call
    api.get("/tweets?limit=5")
    api.get("/nope")
    api.fetch("POST", "/accounts", {"username": "x"})
    api.request("PATCH", "/tweets/1")
    api.get("/tweets/42")
    api.request("DELETE", "/tweets/abc")
    api.get("/accounts/%C3%A9lise?x=1")
    api.request("BREW", "/coffee")
    assert logged(api) == [
        ["GET", "/tweets"], ["GET", "/nope"], ["POST", "/accounts"], ["PATCH", "/tweets/1"],
        ["GET", "/tweets/42"], ["DELETE", "/tweets/abc"], ["GET", "/accounts/élise"],
        ["BREW", "/coffee"], ["GET", "/logs"],
    ]


def test_the_log_pages_with_after(api: Client) -> None:
    for n in range(10):
        api.get(f"/tweets/{n + 1}")
    everything = api.get_json("/logs")
    assert everything["total"] == 11 and everything["next"] is None
    page = api.get_json("/logs?after=4&limit=3")
    assert page["calls"] == [["GET", "/tweets/5"], ["GET", "/tweets/6"], ["GET", "/tweets/7"]]
    assert page["total"] == 12 and page["after"] == 4 and page["next"] == 7
    rest = api.get_json(f"/logs?after={page['next']}")
    assert rest["calls"][0] == ["GET", "/tweets/8"] and rest["next"] is None
    assert rest["calls"][-1] == ["GET", "/logs"]
    assert api.get_json("/logs?after=1000")["calls"] == []
    for query in ["after=abc", "after=-1", "limit=0", "limit=100001", "limit=x"]:
        answer = api.get(f"/logs?{query}")
        assert answer.status == 400 and error_code(answer) == "invalid_query", query


def test_db_accesses_count_the_requests_sent_towards_the_database(api: Client,
                                                                  store_client: Client) -> None:
    def accesses() -> int:
        count: int = api.get_json("/logs")["db_accesses"]
        return count
    start = accesses()
    api.get("/tweets/1")  # a miss still asks the database
    assert accesses() == start + 1
    api.get("/nope")
    api.get("/tweets/abc")
    api.get("/accounts/a-b")
    api.get("/stats")
    assert accesses() == start + 1  # answered without the database
    for _ in range(3):
        api.get("/tweets")
    assert accesses() == start + 4
    assert api.get_json("/stats")["db_accesses"] == start + 4


def test_the_log_keeps_every_call_of_8_concurrent_clients_once_in_order(lab: Lab,
                                                                        api: Client) -> None:
    per_client = 40
    clients = [Client(api.url) for _ in range(8)]
    lab.stops.extend(client.close for client in clients)
    failures: list[str] = []

    def run(number: int, client: Client) -> None:
        for n in range(per_client):
            status = client.get(f"/tweets/{number}{n:04d}").status
            if status != 404:
                failures.append(f"{number}: {status}")
    threads = [threading.Thread(target=run, args=(number + 1, client))
               for number, client in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    calls = logged(api)
    assert len(calls) == 8 * per_client + 1
    paths = [path for method, path in calls if method == "GET" and path != "/logs"]
    assert len(paths) == len(set(paths)) == 8 * per_client
    for number in range(1, 9):
        mine = [p for p in paths if p.startswith(f"/tweets/{number}") and len(p) == 13]
        assert mine == [f"/tweets/{number}{n:04d}" for n in range(per_client)]


def test_stats_count_calls_db_accesses_and_likes(api: Client, alice: User) -> None:
    tweet = post_tweet(api, alice, "like me")
    like(api, tweet["id"])
    like(api, tweet["id"])
    stats = api.get_json("/stats")
    assert stats["calls"] == 6  # sign up, log in, post, two likes, this
    assert stats["db_accesses"] >= 4
    assert stats["likes_received"] == 2
    for name in ["likes_written", "batches", "pending"]:
        assert isinstance(stats[name], int)
    assert stats["likes_written"] + stats["pending"] == 2


# --- bugs --------------------------------------------------------------------------------------

def test_a_refused_oversized_call_is_in_the_log(api: Client) -> None:
    assert api.request("POST", "/tweets", b"x" * (64 * 1024 + 1)).status == 413
    assert logged(api) == [["POST", "/tweets"], ["GET", "/logs"]]
