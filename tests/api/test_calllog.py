"""The call log in bounded memory (api/calllog.py): long paths cut with a marker, old calls
spilled to one file per start-up and paged through seamlessly, pages bounded in bytes, and a
data directory that cannot be written costing calls, not the api. Unit tests on a CallLog
first, then /logs through a real api on port 0."""
from __future__ import annotations

import errno
import json
import os
import threading
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import pytest

from api import calllog
from api.app import Config, make_server
from api.calllog import MAX_PATH_BYTES, PAGE_BYTES, CallLog, Page
from httpkit import Server
from tests.api.conftest import FAST_SCRYPT_N, StartApi
from tests.api.helpers import Client, error_code
from tests.fakes import FakeClock, Lab

LONG = 60_000  # about as long as a request line lets a path be (64 KiB)


def fill(log: CallLog, start: int, stop: int) -> None:
    """Log calls ``start`` to ``stop``, each naming its own number."""
    for n in range(start, stop):
        log.append("GET" if n % 3 else "POST", f"/tweets/{n}")


def numbers(calls: list[list[str]]) -> list[int]:
    """The numbers the calls of ``fill`` name, checking their methods on the way."""
    found = []
    for method, path in calls:
        n = int(path.removeprefix("/tweets/"))
        assert method == ("GET" if n % 3 else "POST"), (method, path)
        found.append(n)
    return found


def every_page(log: CallLog, limit: int, after: int = 0) -> list[Page]:
    """Follow ``next`` from ``after`` to the end."""
    pages = []
    at: int | None = after
    while at is not None:
        page = log.read(at, limit)
        assert page.next is None or page.next > at  # every page moves on
        pages.append(page)
        at = page.next
    return pages


def files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.glob("calls-*"))


def held(log: CallLog) -> int:
    """Bytes of records and offsets the log holds in memory (both chunks)."""
    chunks = [(log._data, log._ends)]
    if log._spilling is not None:
        chunks.append((log._spilling.data, log._spilling.ends))
    return sum(len(data) + len(ends) * ends.itemsize for data, ends in chunks)


# --- cutting long paths -------------------------------------------------------------------------

def test_a_long_path_is_cut_on_a_character_boundary_with_a_marker() -> None:
    log = CallLog()
    path = "/tag/" + "é" * 40_000  # two bytes a character: byte 512 is inside one
    log.append("GET", path)
    (method, kept), = log.page(0, 1)
    head, marker = kept.split("…", 1)
    assert method == "GET" and path.startswith(head)
    assert len(head.encode()) == MAX_PATH_BYTES - 1  # the cut character left whole
    assert marker == f"[cut {len(path.encode()) - len(head.encode()):,} bytes]"
    assert marker == "[cut 79,494 bytes]"


def test_a_path_of_exactly_the_limit_is_kept_whole_and_one_byte_more_is_cut() -> None:
    log = CallLog()
    log.append("GET", "/" + "a" * (MAX_PATH_BYTES - 1))
    log.append("GET", "/" + "a" * MAX_PATH_BYTES)
    whole, cut = log.page(0, 2)
    assert whole[1] == "/" + "a" * (MAX_PATH_BYTES - 1)
    assert cut[1] == "/" + "a" * (MAX_PATH_BYTES - 1) + "…[cut 1 bytes]"


def test_a_long_unusual_method_is_cut_too_and_kept_apart_from_its_path() -> None:
    log = CallLog()
    log.append("X" * 5000, "/a b")
    log.append("BREW", "/pot")
    (method, path), brew = log.page(0, 2)
    assert method == "X" * calllog.MAX_METHOD_BYTES + "…[cut 4,968 bytes]" and path == "/a b"
    assert brew == ["BREW", "/pot"]


def test_a_thousand_calls_with_60_kb_paths_cost_bounded_memory() -> None:
    paths = [f"/tweets/{n}" + "x" * LONG for n in range(1000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        log = CallLog()
        for path in paths:
            log.append("GET", path)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    print(f"\n1,000 calls with {LONG:,}-byte paths: {grown / 1000:.0f} bytes/call")
    assert len(log) == 1000
    assert grown < 1000 * 600  # ~540 a call; whole paths would be 60 MB
    assert log.page(999, 1)[0][1].startswith("/tweets/999xxx")


# --- the memory budget and the file -------------------------------------------------------------

def test_past_its_budget_the_log_spills_to_a_file_and_pages_across_the_boundary(
        tmp_path: Path) -> None:
    log = CallLog(str(tmp_path), memory_bytes=4096)
    fill(log, 0, 5000)
    assert len(log) == 5000
    assert held(log) <= 4096 + 64  # at most a record over each half
    assert log._stored > 4000 and log._stored < 5000  # most on file, the newest in memory
    boundary = log._stored
    across = log.read(boundary - 3, 6)
    assert numbers(across.calls) == list(range(boundary - 3, boundary + 3))
    assert across.next == boundary + 3 and across.total == 5000 and across.missing is None
    pages = every_page(log, 7)
    assert [n for page in pages for n in numbers(page.calls)] == list(range(5000))
    assert pages[-1].next is None and len(log.read(5000, 10).calls) == 0


def test_a_million_calls_stay_in_order_and_paged_with_a_tiny_budget(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 1_000_000
    log = CallLog(str(tmp_path), memory_bytes=64 * 1024)
    fill(log, 0, calls)
    assert len(log) == calls and held(log) <= 64 * 1024 + 64
    assert calls - log._stored < 3000  # nearly all of it on file
    pages = every_page(log, 100_000)
    assert all(len(json.dumps(page.calls, separators=(",", ":"))) <= PAGE_BYTES
               for page in pages)
    seen = [n for page in pages for n in numbers(page.calls)]
    assert seen == list(range(calls)) and pages[-1].total == calls

    # A page deep in the file reads about a page of it: O(page), not O(calls before it).
    read = []
    pread = os.pread

    def counted(fd: int, size: int, offset: int) -> bytes:
        read.append(size)
        return pread(fd, size, offset)
    monkeypatch.setattr(calllog.os, "pread", counted)
    page = log.read(900_000, 100)
    assert numbers(page.calls) == list(range(900_000, 900_100)) and page.next == 900_100
    assert sum(read) < 100 * (8 + 20)


def test_appends_from_many_threads_are_each_kept_once_in_order_while_spilling(
        tmp_path: Path) -> None:
    log = CallLog(str(tmp_path), memory_bytes=8192)

    def run(t: int) -> None:
        for n in range(3000):
            log.append("GET", f"/t{t}/{n}")
    threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    paths = [path for page in every_page(log, 1000) for _, path in page.calls]
    assert len(paths) == len(set(paths)) == 24_000 == len(log)
    for t in range(8):
        assert [p for p in paths if p.startswith(f"/t{t}/")] == [f"/t{t}/{n}" for n in range(3000)]


# --- bounded pages ------------------------------------------------------------------------------

def test_a_page_stops_once_it_passes_its_byte_bound_and_next_points_at_the_rest(
        tmp_path: Path) -> None:
    log = CallLog(str(tmp_path), memory_bytes=256 * 1024)
    for n in range(5000):  # each cut to ~530 bytes: 2.7 MB of calls, most on file
        log.append("GET", f"/{n}/" + "x" * LONG)
    first = log.read(0, 100_000)
    size = len(json.dumps(first.calls, ensure_ascii=False, separators=(",", ":")))
    assert PAGE_BYTES * 0.95 < size <= PAGE_BYTES
    assert first.next == len(first.calls) < 5000
    rest = every_page(log, 100_000, first.next)
    kept = [path.split("/")[1] for page in [first, *rest] for _, path in page.calls]
    assert kept == [str(n) for n in range(5000)]
    assert log.read(0, 1000, max_bytes=10).calls == log.page(0, 1)  # at least one a page


# --- one file per start-up ----------------------------------------------------------------------

def test_a_start_up_keeps_its_spilled_calls_in_one_file_with_its_index(tmp_path: Path) -> None:
    log = CallLog(str(tmp_path), memory_bytes=1024)
    assert files(tmp_path) == []  # nothing on disk until something spills
    fill(log, 0, 20_000)
    names = files(tmp_path)
    assert len(names) == 2 and names[0].endswith(".idx") and names[1].endswith(".log")
    assert names[0][:-4] == names[1][:-4]
    assert os.stat(tmp_path / names[1]).st_mode & 0o777 == 0o600
    assert os.path.getsize(tmp_path / names[0]) == 8 * log._stored


def test_a_new_start_up_removes_earlier_start_ups_files_but_not_a_live_ones(
        tmp_path: Path) -> None:
    live = CallLog(str(tmp_path), memory_bytes=1024)
    fill(live, 0, 1000)
    mine = set(files(tmp_path))
    assert len(mine) == 2
    for name in ["calls-20200101T000000Z-old.log", "calls-20200101T000000Z-old.idx",
                 "calls-20200102T000000Z-crashed.idx"]:  # an index whose log is gone
        (tmp_path / name).write_bytes(b"x" * 100)
    (tmp_path / "likes.sqlite3").write_bytes(b"not ours")
    CallLog(str(tmp_path))  # a new start-up beside a live one (as two apis on one volume)
    assert set(files(tmp_path)) == mine and (tmp_path / "likes.sqlite3").exists()
    assert numbers(live.page(0, 1000)) == list(range(1000))


def test_closing_the_log_removes_its_file(tmp_path: Path) -> None:
    log = CallLog(str(tmp_path), memory_bytes=1024)
    fill(log, 0, 1000)
    log.close()
    assert files(tmp_path) == []
    assert len(log) == 1000 and log.read(0, 10).missing is not None


# --- a data directory that cannot be written ----------------------------------------------------

def test_an_unwritable_directory_costs_old_calls_but_the_log_keeps_counting(
        tmp_path: Path) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("DATA_DIR cannot be made under a file, even by root")
    log = CallLog(str(blocker / "data"), memory_bytes=1024)
    fill(log, 0, 1000)
    assert len(log) == 1000 and held(log) <= 1024 + 64
    page = log.read(0, 10)
    assert page.calls == [] and page.missing is not None and page.total == 1000
    assert page.missing["after"] == 0 and page.next == page.missing["next"] > 900
    assert "could not be written" in page.missing["reason"]
    rest = every_page(log, 10, page.next or 0)
    assert numbers([c for p in rest for c in p.calls]) == list(range(page.missing["next"], 1000))


def test_a_disk_that_fills_up_leaves_a_gap_that_pages_step_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = CallLog(str(tmp_path), memory_bytes=1024)
    fill(log, 0, 500)
    stored = log._stored
    assert stored > 0

    def full(fd: int, data: Any, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(calllog.os, "pwrite", full)
    fill(log, 500, 2000)
    gap = log.read(0, 10).missing
    assert gap is not None and gap["after"] == stored and 500 < gap["next"] < 2000
    assert "No space left on device" in gap["reason"]
    before = log.read(stored - 2, 10)  # stops where the gap starts
    assert numbers(before.calls) == [stored - 2, stored - 1] and before.next == stored
    inside = log.read(stored + 5, 10)
    assert inside.calls == [] and inside.next == gap["next"]
    after = every_page(log, 50, gap["next"])
    assert numbers([c for p in after for c in p.calls]) == list(range(gap["next"], 2000))
    assert len(log) == 2000


def test_without_a_directory_old_calls_are_counted_and_said_to_be_missing() -> None:
    log = CallLog(memory_bytes=1024)
    fill(log, 0, 300)
    page = log.read(0, 10)
    assert len(log) == 300 and page.missing is not None and page.next == page.missing["next"]
    assert "no directory" in page.missing["reason"]


# --- /logs through a real api -------------------------------------------------------------------

StartLogged = Callable[[str | None, int], tuple[Client, CallLog]]


@pytest.fixture
def start_logged(lab: Lab, store: Server, tmp_path: Path, clock: FakeClock) -> StartLogged:
    """Start an api whose call log has the given directory and a budget small enough to
    spill within a test (the api's own is 8 MiB in its DATA_DIR)."""
    def start(directory: str | None, memory_bytes: int) -> tuple[Client, CallLog]:
        config = Config(port=0, store_url=store.url, data_dir=str(tmp_path / "api"),
                        scrypt_n=FAST_SCRYPT_N)
        server = make_server(config, clock)
        server.api.observed.calls = log = CallLog(directory, memory_bytes)
        lab.stops.append(log.close)
        lab.serve(server)
        client = Client(server.url)
        lab.stops.append(client.close)
        return client, log
    return start


def test_the_api_logs_a_long_path_cut_with_its_marker(api: Client) -> None:
    path = "/tweets/" + "9" * LONG
    assert api.get(path).status == 404
    logged = api.get_json("/logs")
    assert logged["calls"][0] == ["GET", path[:MAX_PATH_BYTES] + f"…[cut {LONG - 504:,} bytes]"]
    assert logged["missing"] is None and logged["total"] == 2


def test_logs_page_across_the_file_and_memory_through_the_api(start_logged: StartLogged,
                                                              tmp_path: Path) -> None:
    api, log = start_logged(str(tmp_path / "calls"), 2048)
    for n in range(300):
        api.get(f"/tweets/{n}")
    assert log._stored > 200  # most of it already on file
    seen: list[list[str]] = []
    at: int | None = 0
    while at is not None:
        page = api.get_json(f"/logs?after={at}&limit=7")
        assert page["after"] == at and page["missing"] is None
        seen += page["calls"]
        at = page["next"]
    assert seen[:300] == [["GET", f"/tweets/{n}"] for n in range(300)]
    assert seen[300:] == [["GET", "/logs"]] * (len(seen) - 300)
    assert len(files(tmp_path / "calls")) == 2


def test_a_logs_answer_is_bounded_in_bytes_and_next_has_the_rest(start_logged: StartLogged,
                                                                 tmp_path: Path) -> None:
    api, log = start_logged(str(tmp_path / "calls"), 512 * 1024)
    for n in range(4000):  # as 4,000 requests with 60 KB paths would leave it
        log.append("GET", f"/{n}/" + "x" * LONG)
    answer = api.get("/logs?limit=100000")
    assert answer.status == 200 and len(answer.body) <= PAGE_BYTES + 200
    page = answer.json()
    assert page["next"] == len(page["calls"]) < 4000 and page["total"] == 4001
    rest = api.get_json(f"/logs?after={page['next']}&limit=100000")
    assert rest["calls"][0][1].startswith(f"/{page['next']}/xxx")


def test_logs_say_what_is_missing_when_the_data_directory_cannot_be_written(
        start_logged: StartLogged, tmp_path: Path) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("")
    api, log = start_logged(str(blocker / "calls"), 1024)
    for n in range(200):
        assert api.get(f"/tweets/{n}").status == 404  # the api goes on answering
    first = api.get_json("/logs")
    missing = first["missing"]
    assert first["calls"] == [] and first["total"] == 201
    assert missing["after"] == 0 and first["next"] == missing["next"] > 100
    assert "could not be written" in missing["reason"]
    rest = api.get_json(f"/logs?after={first['next']}")
    everything = [["GET", f"/tweets/{n}"] for n in range(200)] + [["GET", "/logs"]] * 2
    assert rest["calls"] == everything[first["next"]:]
    assert api.get_json("/stats")["calls"] == 203


@pytest.mark.parametrize("query", ["after=" + "1" * 20, "limit=" + "1" * 20, "after=1e3",
                                   "limit=0", "after=-1", "after=" + "9" * 5000])
def test_logs_refuse_numbers_that_cannot_be_counts(api: Client, query: str) -> None:
    answer = api.get(f"/logs?{query}")
    assert answer.status == 400 and error_code(answer) == "invalid_query"


def test_logs_after_the_end_are_empty(api: Client) -> None:
    page = api.get_json("/logs?after=" + "9" * 19)
    assert page["calls"] == [] and page["next"] is None and page["total"] == 1


def test_an_api_start_up_removes_the_call_logs_of_earlier_start_ups(start_api: StartApi,
                                                                    store: Server,
                                                                    tmp_path: Path) -> None:
    data = tmp_path / "restarted"
    data.mkdir()
    (data / "calls-20200101T000000Z-old.log").write_bytes(b"x" * 1000)
    (data / "calls-20200101T000000Z-old.idx").write_bytes(b"x" * 64)
    api = start_api(store.url, data_dir=str(data))
    assert files(data) == []
    assert api.get_json("/logs")["total"] == 1
