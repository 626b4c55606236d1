"""Unit tests of the store's storage layer: store/db.py on a real sqlite3 file, no sockets."""

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from store import db as store_db
from store.db import Database, NotAuthor, Page, UnknownAccount, UsernameTaken


class FakeClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, now: float = 1_795_996_800.0) -> None:  # 2026-11-30T00:00:00Z
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def database(tmp_path: Path, clock: FakeClock) -> Iterator[Database]:
    database = Database(str(tmp_path / "store.db"), clock=clock)
    yield database
    database.close()


def sign_up(database: Database, username: str, display_name: str = "") -> int:
    return database.create_account(username, "hash-of-" + username, display_name or username)["id"]


def post(database: Database, author_id: int, text: str, *tags: str) -> int:
    return database.create_tweet(author_id, text, list(tags))["id"]


def walk(fetch: Callable[[int | None], Page[Any] | None]) -> list[list[int]]:
    """Follow the cursors from the first page to the last; return the ids page by page."""
    pages: list[list[int]] = []
    before: int | None = None
    while True:
        page = fetch(before)
        assert page is not None
        pages.append([item["id"] for item in page["items"]])
        if page["next"] is None:
            return pages
        assert page["next"] == str(pages[-1][-1])
        before = int(page["next"])


def likes_of(database: Database, tweet_id: int) -> int:
    tweet = database.get_tweet(tweet_id)
    assert tweet is not None
    return tweet["likes"]


def ids(page: Page[Any] | None) -> list[int]:
    assert page is not None
    return [item["id"] for item in page["items"]]


# -- accounts ------------------------------------------------------------------------------

def test_usernames_are_unique_ignoring_case(database: Database) -> None:
    sign_up(database, "Alice")
    with pytest.raises(UsernameTaken):
        database.create_account("aLICE", "h", "Another Alice")
    account = database.get_account("ALICE")
    assert account is not None
    assert account["username"] == "Alice"
    assert database.stats()["accounts"] == 1


def test_account_record_and_credentials(database: Database, clock: FakeClock) -> None:
    clock.now = 1_795_996_800.1239
    alice = database.create_account("alice", "pbkdf2$x", "Alice Liddell")
    assert alice == {"id": alice["id"], "username": "alice", "display_name": "Alice Liddell",
                     "created_at": "2026-11-30T00:00:00.124Z", "tweet_count": 0}
    assert database.get_account("alice") == alice
    assert database.get_credentials("ALICE") == {
        "id": alice["id"], "username": "alice", "password_hash": "pbkdf2$x", "generation": 0}
    assert database.get_account("nobody") is None
    assert database.get_credentials("nobody") is None


def generation(account_id: int, generation: int, *ended: int,
               username: str = "alice") -> dict[str, Any]:
    """What the store says of an account's tokens."""
    return {"account_id": account_id, "username": username, "generation": generation,
            "ended": list(ended)}


def test_ending_tokens_moves_the_generation_past_them_and_never_back(
        database: Database) -> None:
    alice, bob = sign_up(database, "alice"), sign_up(database, "bob")
    assert database.token_generation(alice) == generation(alice, 0)
    for through, now in [(0, 1), (0, 1), (4, 5), (2, 5)]:  # a retry or a late one: no change
        assert database.end_tokens(alice, through) == generation(alice, now)
    assert database.token_generation(alice) == generation(alice, 5)
    credentials = database.get_credentials("alice")
    assert credentials is not None and credentials["generation"] == 5
    assert database.token_generation(bob) == generation(bob, 0, username="bob")
    assert database.token_generation(bob + 100) is None
    assert database.end_tokens(bob + 100, 0) is None


def test_a_new_password_ends_every_token_issued_so_far(database: Database) -> None:
    alice = sign_up(database, "alice")
    database.end_tokens(alice, 1)
    assert database.set_password("ALICE", "scrypt$new") == {
        "id": alice, "username": "alice", "password_hash": "scrypt$new", "generation": 3}
    assert database.get_credentials("alice") == {
        "id": alice, "username": "alice", "password_hash": "scrypt$new", "generation": 3}
    assert database.set_password("nobody", "scrypt$new") is None
    assert database.stats()["accounts"] == 1


def ended_rows(database: Database) -> list[tuple[int, int, int]]:
    """Every row of ended_sessions, as the file holds them."""
    with sqlite3.connect(database.path) as conn:
        return conn.execute("select account_id, session, until from ended_sessions"
                            " order by account_id, session").fetchall()


def test_ending_a_session_ends_it_alone_until_its_token_expires(
        database: Database, clock: FakeClock) -> None:
    alice, bob = sign_up(database, "alice"), sign_up(database, "bob")
    soon, later = int(clock.now) + 60, int(clock.now) + 3600
    assert database.end_session(alice, 7, later) == generation(alice, 0, 7)
    assert database.end_session(alice, 3, soon) == generation(alice, 0, 3, 7)
    assert database.end_session(alice, 7, later) == generation(alice, 0, 3, 7)  # a retry
    assert database.token_generation(alice) == generation(alice, 0, 3, 7)
    assert database.token_generation(bob) == generation(bob, 0, username="bob")
    assert database.get_credentials("alice") == {  # logging in again is not refused
        "id": alice, "username": "alice", "password_hash": "hash-of-alice", "generation": 0}
    assert database.end_session(bob + 100, 1, later) is None

    clock.advance(60)  # session 3's token has expired: the read leaves it out and deletes it
    assert database.token_generation(alice) == generation(alice, 0, 7)
    assert ended_rows(database) == [(alice, 7, later)]
    assert database.end_session(alice, 5, soon) == generation(alice, 0, 7)  # expired: nothing
    clock.advance(3600)
    assert database.end_session(bob, 9, later + 3600) == generation(bob, 0, 9, username="bob")
    assert database.token_generation(alice) == generation(alice, 0)
    assert ended_rows(database) == [(bob, 9, later + 3600)]


def test_past_100_ended_sessions_the_generation_moves_on_instead(
        database: Database, clock: FakeClock) -> None:
    alice, bob = sign_up(database, "alice"), sign_up(database, "bob")
    until = int(clock.now) + 3600
    database.end_session(bob, 1, until)
    for session in range(1, store_db.MOST_ENDED + 1):
        ended = database.end_session(alice, session, until)
    assert ended == generation(alice, 0, *range(1, 101))  # 100 are kept one by one
    assert database.end_session(alice, 1, until) == ended  # a retry adds none
    assert database.end_session(alice, 101, until) == generation(alice, 1)  # all of them end
    assert ended_rows(database) == [(bob, 1, until)]
    assert database.end_session(alice, 102, until) == generation(alice, 1, 102)


def test_moving_the_generation_on_forgets_the_sessions_ended_in_the_old_one(
        database: Database, clock: FakeClock) -> None:
    alice = sign_up(database, "alice")
    until = int(clock.now) + 3600
    database.end_session(alice, 4, until)
    assert database.end_tokens(alice, 1) == generation(alice, 2)  # moved: every token ended
    database.end_session(alice, 5, until)
    assert database.end_tokens(alice, 0) == generation(alice, 2, 5)  # late: session 5 stays
    database.set_password("alice", "scrypt$new")
    assert database.token_generation(alice) == generation(alice, 3)
    assert ended_rows(database) == []


def test_a_file_from_before_token_generations_gains_them_at_0(tmp_path: Path,
                                                              clock: FakeClock) -> None:
    path = str(tmp_path / "old.db")
    old = Database(path, clock=clock)
    alice = sign_up(old, "alice")
    old.close()
    with sqlite3.connect(path) as conn:  # the file as the schema before these tables left it
        conn.execute("drop table token_generations")
        conn.execute("drop table ended_sessions")
    database = Database(path, clock=clock)
    try:
        credentials = database.get_credentials("alice")
        assert credentials is not None and credentials["generation"] == 0
        assert database.end_tokens(alice, 0) == generation(alice, 1)
        assert database.end_session(alice, 1, int(clock.now) + 1) == generation(alice, 1, 1)
    finally:
        database.close()


def test_account_list_pages_newest_first(database: Database) -> None:
    made = [sign_up(database, f"user{n}") for n in range(23)]
    pages = walk(lambda before: database.list_accounts(10, before))
    assert pages == [made[::-1][:10], made[::-1][10:20], made[::-1][20:]]


def test_account_search_puts_prefix_matches_first(database: Database) -> None:
    sign_up(database, "abob")  # contains "bob"
    sign_up(database, "zed", "Bobcat Fan")  # display name starts with "bob"
    sign_up(database, "Bobby")
    sign_up(database, "bob")
    sign_up(database, "carol", "Carol Bobson")  # display name contains "bob"
    sign_up(database, "dave")
    found = [a["username"] for a in database.search_accounts("BOB", 10)]
    assert found == ["bob", "Bobby", "zed", "abob", "carol"]
    assert [a["username"] for a in database.search_accounts("bob", 2)] == ["bob", "Bobby"]
    # "bob" and "Bobby" match by display name too, and must not crowd out "zed".
    assert [a["username"] for a in database.search_accounts("bob", 3)] == ["bob", "Bobby", "zed"]
    assert [a["username"] for a in database.search_accounts("bob", 4)][-1] == "abob"
    assert database.search_accounts("", 10) == []


def test_account_search_takes_wildcards_as_text(database: Database) -> None:
    for name in ("x_y", "xay", "x%y", "xbby"):
        sign_up(database, name, "Someone")
    assert [a["username"] for a in database.search_accounts("x_", 10)] == ["x_y"]
    assert [a["username"] for a in database.search_accounts("%", 10)] == ["x%y"]
    assert [a["username"] for a in database.search_accounts("_y", 10)] == ["x_y"]


def test_account_search_ignores_unicode_case_in_display_names(database: Database) -> None:
    sign_up(database, "ecole", "École Normale")
    sign_up(database, "other", "Notre ÉCOLE")
    found = [a["username"] for a in database.search_accounts("éCOLE", 10)]
    assert found == ["ecole", "other"]


# -- tweets --------------------------------------------------------------------------------

def test_tweet_record_create_edit_and_times(database: Database, clock: FakeClock) -> None:
    alice = sign_up(database, "alice")
    tweet = database.create_tweet(alice, "Hello #Zeta #alpha", ["zeta", "alpha"])
    assert tweet == {"id": tweet["id"], "author": "alice", "text": "Hello #Zeta #alpha",
                     "hashtags": ["zeta", "alpha"], "likes": 0,
                     "created_at": "2026-11-30T00:00:00.000Z", "edited_at": None}
    assert database.get_tweet(tweet["id"]) == tweet
    clock.advance(61.5)
    result = database.edit_tweet(tweet["id"], "Bye #omega", ["omega"], alice)
    assert result is not None
    edited, old_tags = result
    assert edited == dict(tweet, text="Bye #omega", hashtags=["omega"],
                          edited_at="2026-11-30T00:01:01.500Z")
    assert old_tags == ["zeta", "alpha"]  # what the change feed must name as changed
    assert database.get_tweet(tweet["id"]) == edited
    account = database.get_account("alice")
    assert account is not None and account["tweet_count"] == 1


def test_missing_tweets_and_accounts(database: Database) -> None:
    alice = sign_up(database, "alice")
    assert database.get_tweet(404) is None
    assert database.edit_tweet(404, "x", [], alice) is None
    assert database.delete_tweet(404, alice) is None
    assert database.author_tweets("nobody", 10, None) is None
    with pytest.raises(UnknownAccount):
        database.create_tweet(alice + 100, "orphan", [])
    assert database.stats()["tweets"] == 0


def test_only_the_author_edits_or_deletes(database: Database) -> None:
    alice, mallory = sign_up(database, "alice"), sign_up(database, "mallory")
    tweet_id = post(database, alice, "mine #mine", "mine")
    before = database.get_tweet(tweet_id)
    with pytest.raises(NotAuthor):
        database.edit_tweet(tweet_id, "pwned #pwned", ["pwned"], mallory)
    with pytest.raises(NotAuthor):
        database.delete_tweet(tweet_id, mallory)
    assert database.get_tweet(tweet_id) == before
    assert ids(database.search_tweets("mine", 10, None)) == [tweet_id]
    assert ids(database.search_tweets("pwned", 10, None)) == []
    assert database.hashtags("", 10) == [{"tag": "mine", "tweets": 1}]
    # Without an author id the caller acts as an operator.
    assert database.delete_tweet(tweet_id, None) is not None
    assert database.get_tweet(tweet_id) is None


def test_delete_removes_tweet_from_every_list(database: Database) -> None:
    alice = sign_up(database, "alice")
    kept = post(database, alice, "kept words #tag", "tag")
    gone = post(database, alice, "gone words #tag", "tag")
    assert database.delete_tweet(gone, alice) is not None
    assert ids(database.timeline(10, None)) == [kept]
    assert ids(database.author_tweets("alice", 10, None)) == [kept]
    assert ids(database.tag_tweets("tag", 10, None)) == [kept]
    assert ids(database.search_tweets("words", 10, None)) == [kept]
    assert ids(database.search_tweets("gone", 10, None)) == []
    account = database.get_account("alice")
    assert account is not None and account["tweet_count"] == 1
    assert database.stats()["tweets"] == 1


# -- paging --------------------------------------------------------------------------------

@pytest.fixture
def fifty_seven(database: Database) -> list[int]:
    """Post 57 tweets by three authors; return their ids, oldest first."""
    authors = [sign_up(database, name) for name in ("ann", "ben", "cy")]
    made = []
    for n in range(57):
        tags = ["all"] + (["third"] if n % 3 == 0 else [])
        words = "common " + ("even " if n % 2 == 0 else "odd ") + f"w{n}"
        made.append(post(database, authors[n % 3], words, *tags))
    return made


def expect_pages(newest_first: list[int], limit: int = 10) -> list[list[int]]:
    pages = [newest_first[i:i + limit] for i in range(0, len(newest_first), limit)]
    return pages or [[]]


def test_timeline_pages(database: Database, fifty_seven: list[int]) -> None:
    pages = walk(lambda before: database.timeline(10, before))
    assert pages == expect_pages(fifty_seven[::-1])
    assert [len(page) for page in pages] == [10, 10, 10, 10, 10, 7]


def walk_back(read: Callable[[int | None, int | None], Any], start: int) -> list[list[int]]:
    """From the page older than ``start``, follow each page's prev back to the newest."""
    pages: list[list[int]] = []
    page = read(start, None)
    while page["prev"] is not None:
        page = read(None, int(page["prev"]))
        pages.append(ids(page))
    return pages


@pytest.mark.parametrize("read", [
    lambda db, before, after: db.timeline(10, before, after),
    lambda db, before, after: db.tag_tweets("all", 10, before, after),
    lambda db, before, after: db.search_tweets("common", 10, before, after),
])
def test_prev_goes_back_page_by_page_to_the_newest(database: Database, fifty_seven: list[int],
                                                   read: Callable[..., Any]) -> None:
    newest_first = fifty_seven[::-1]
    assert read(database, None, None)["prev"] is None  # the newest page has nothing newer
    back = walk_back(lambda before, after: read(database, before, after), newest_first[29])
    assert back == [newest_first[20:30], newest_first[10:20], newest_first[0:10]]
    older = read(database, None, newest_first[9])  # an after page still links older
    assert ids(older) == newest_first[:9]
    assert older["next"] == str(newest_first[8]) and older["prev"] is None


def test_cursor_and_after_together_read_between_them(database: Database,
                                                     fifty_seven: list[int]) -> None:
    newest_first = fifty_seven[::-1]
    page = database.timeline(3, newest_first[10], newest_first[20])
    assert ids(page) == newest_first[11:14]
    assert page["next"] == str(newest_first[13]) and page["prev"] == str(newest_first[11])
    assert ids(database.timeline(10, newest_first[10], newest_first[20])) == newest_first[11:20]
    assert ids(database.timeline(10, newest_first[10], newest_first[11])) == []


def test_a_tweet_page_names_its_authors(database: Database) -> None:
    post(database, sign_up(database, "ann", "Ann Example"), "hello")
    post(database, sign_up(database, "ben"), "hi")
    assert database.timeline(10, None)["authors"] == {"ann": "Ann Example", "ben": "ben"}


def test_last_full_page_has_no_next(database: Database) -> None:
    alice = sign_up(database, "alice")
    made = [post(database, alice, f"t{n}") for n in range(20)]
    assert walk(lambda before: database.timeline(10, before)) == [made[:9:-1], made[9::-1]]


def test_author_pages(database: Database, fifty_seven: list[int]) -> None:
    bens = fifty_seven[1::3][::-1]
    assert len(bens) == 19
    assert walk(lambda before: database.author_tweets("BEN", 10, before)) == expect_pages(bens)


def test_tag_pages(database: Database, fifty_seven: list[int]) -> None:
    assert walk(lambda before: database.tag_tweets("ALL", 10, before)) == expect_pages(
        fifty_seven[::-1])
    assert walk(lambda before: database.tag_tweets("third", 10, before)) == expect_pages(
        fifty_seven[::3][::-1])
    assert walk(lambda before: database.tag_tweets("none", 10, before)) == [[]]


def test_search_pages(database: Database, fifty_seven: list[int]) -> None:
    assert walk(lambda before: database.search_tweets("COMMON", 10, before)) == expect_pages(
        fifty_seven[::-1])
    # Every word must match.
    assert walk(lambda before: database.search_tweets("even common", 10, before)) == (
        expect_pages(fifty_seven[::2][::-1]))
    assert ids(database.search_tweets("w7 common", 10, None)) == [fifty_seven[7]]
    assert ids(database.search_tweets("w7 even", 10, None)) == []


def query_plan(database: Database, sql: str) -> list[str]:
    conn = sqlite3.connect(database.path)
    try:
        params = ["x"] * sql.count("?")
        return [row[3] for row in conn.execute("explain query plan " + sql, params)]
    finally:
        conn.close()


@pytest.mark.parametrize("sql", [
    store_db.TIMELINE_SQL, store_db.AUTHOR_SQL, store_db.TAG_SQL, store_db.ACCOUNTS_SQL,
    store_db.ACCOUNTS_BY_USERNAME_PREFIX_SQL, store_db.ACCOUNTS_BY_DISPLAY_PREFIX_SQL,
    *map(store_db.newer, [store_db.TIMELINE_SQL, store_db.AUTHOR_SQL, store_db.TAG_SQL,
                          store_db.ACCOUNTS_SQL]),
])
def test_page_queries_read_index_ranges(database: Database, sql: str) -> None:
    plan = query_plan(database, sql)
    assert all(step.startswith("SEARCH") for step in plan), plan


@pytest.mark.parametrize("sql", [store_db.SEARCH_SQL,
                                 store_db.newer(store_db.SEARCH_SQL)])
def test_search_lets_fts_order_the_matches(database: Database, sql: str) -> None:
    plan = query_plan(database, sql)
    # FTS5 hands over matches in rowid order, so only the (limit + 1)-row result is sorted.
    assert plan[0] == "CO-ROUTINE m" and plan[1].startswith("SCAN tweets_fts VIRTUAL TABLE")
    assert [step for step in plan if "TEMP B-TREE" in step] == [plan[-1]], plan
    assert [step for step in plan[2:] if not step.startswith("SEARCH")] == ["SCAN m", plan[-1]]


def test_contains_search_stops_early_in_index_order(database: Database) -> None:
    plan = query_plan(database, store_db.ACCOUNTS_CONTAINING_SQL)
    assert plan == ["SCAN accounts USING INDEX sqlite_autoindex_accounts_1"], plan


# -- full-text search ----------------------------------------------------------------------

@pytest.mark.parametrize("q", ['"', "*", "NEAR(", "AND", "OR", "NOT", "' OR 1=1 --",
                               'a" OR "b', "text:hostile", "^start", "-minus", "(", ")",
                               "' ; drop table tweets; --", "\\", "\x00"])
def test_search_treats_query_syntax_as_text(database: Database, q: str) -> None:
    alice = sign_up(database, "alice")
    post(database, alice, "nothing here")
    database.search_tweets(q, 10, None)  # must not raise
    assert database.stats()["tweets"] == 1


def test_search_finds_operator_words_as_words(database: Database) -> None:
    alice = sign_up(database, "alice")
    cats = post(database, alice, "cats AND dogs")
    near = post(database, alice, "stay near me")
    quote = post(database, alice, 'he said "or 1=1" loudly')
    post(database, alice, "unrelated")
    assert ids(database.search_tweets("and", 10, None)) == [cats]
    assert ids(database.search_tweets("NEAR(", 10, None)) == [near]
    assert ids(database.search_tweets("' OR 1=1 --", 10, None)) == [quote]
    assert ids(database.search_tweets('"', 10, None)) == []
    assert ids(database.search_tweets("* ", 10, None)) == []
    assert ids(database.search_tweets("dog*", 10, None)) == []  # no prefix magic


def test_search_ignores_unicode_case(database: Database) -> None:
    alice = sign_up(database, "alice")
    norwegian = post(database, alice, "Søk etter noe")
    french = post(database, alice, "Une école à Paris")
    greek = post(database, alice, "ΑΘΗΝΑ tonight")
    assert ids(database.search_tweets("søk", 10, None)) == [norwegian]
    assert ids(database.search_tweets("SØK", 10, None)) == [norwegian]
    assert ids(database.search_tweets("ÉCOLE", 10, None)) == [french]
    assert ids(database.search_tweets("αθηνα", 10, None)) == [greek]
    assert ids(database.search_tweets("paris école", 10, None)) == [french]
    # Accents are folded too, as a search box user expects.
    assert ids(database.search_tweets("ecole", 10, None)) == [french]


def test_search_follows_edits(database: Database) -> None:
    alice = sign_up(database, "alice")
    tweet_id = post(database, alice, "before edit")
    database.edit_tweet(tweet_id, "after change", [], alice)
    assert ids(database.search_tweets("before", 10, None)) == []
    assert ids(database.search_tweets("after", 10, None)) == [tweet_id]


# -- hashtags ------------------------------------------------------------------------------

def test_hashtag_counts_follow_edits_and_deletes(database: Database) -> None:
    alice = sign_up(database, "alice")
    first = post(database, alice, "#a #b", "a", "b")
    second = post(database, alice, "#b", "b")
    assert database.hashtags("", 10) == [{"tag": "b", "tweets": 2}, {"tag": "a", "tweets": 1}]
    database.edit_tweet(first, "#b #c", ["b", "c"], alice)
    assert database.hashtags("", 10) == [{"tag": "b", "tweets": 2}, {"tag": "c", "tweets": 1}]
    assert ids(database.tag_tweets("a", 10, None)) == []
    assert ids(database.tag_tweets("C", 10, None)) == [first]
    assert ids(database.tag_tweets("b", 10, None)) == [second, first]
    database.delete_tweet(first, alice)
    assert database.hashtags("", 10) == [{"tag": "b", "tweets": 1}]
    assert ids(database.tag_tweets("b", 10, None)) == [second]
    database.delete_tweet(second, alice)
    assert database.hashtags("", 10) == []


def test_hashtags_by_prefix_most_used_first(database: Database) -> None:
    alice = sign_up(database, "alice")
    for tags in (["pyx"], ["python", "py"], ["python", "pyx"], ["python"], ["rust"]):
        post(database, alice, "#" + " #".join(tags), *tags)
    assert database.hashtags("PY", 10) == [
        {"tag": "python", "tweets": 3}, {"tag": "pyx", "tweets": 2}, {"tag": "py", "tweets": 1}]
    assert database.hashtags("pyt", 10) == [{"tag": "python", "tweets": 3}]
    assert [t["tag"] for t in database.hashtags("", 2)] == ["python", "pyx"]
    assert database.hashtags("%", 10) == []


def test_hashtags_keep_order_and_unicode(database: Database) -> None:
    alice = sign_up(database, "alice")
    tweet = database.create_tweet(alice, "#Zürich #café #Zürich", ["zürich", "café", "Zürich"])
    assert tweet["hashtags"] == ["zürich", "café"]
    assert ids(database.tag_tweets("ZÜRICH", 10, None)) == [tweet["id"]]
    assert database.get_tweet(tweet["id"]) == tweet


# -- likes ---------------------------------------------------------------------------------

def test_like_batch_applies_once_and_reports_missing(database: Database) -> None:
    alice = sign_up(database, "alice")
    one, two = post(database, alice, "one"), post(database, alice, "two")
    deleted = post(database, alice, "deleted")
    database.delete_tweet(deleted, alice)
    result = database.apply_like_batch("batch-1", {one: 3, two: 2, deleted: 1, 999: 4})
    assert result == {"batch_id": "batch-1", "duplicate": False, "applied": {one: 3, two: 2},
                      "likes": {one: 3, two: 2}, "missing": [deleted, 999]}
    again = database.apply_like_batch("batch-1", {one: 3, two: 2})
    assert again["duplicate"] is True and again["applied"] == {}
    database.apply_like_batch("batch-2", {one: 1})
    assert [likes_of(database, t) for t in (one, two)] == [4, 2]
    assert database.stats()["likes"] == 6
    assert database.stats()["batches"] == 2


def test_failed_like_batch_changes_nothing(database: Database) -> None:
    alice = sign_up(database, "alice")
    one = post(database, alice, "one")
    bad: dict[int, int] = {one: 5, 2: object()}  # type: ignore[dict-item]
    with pytest.raises(sqlite3.Error):
        database.apply_like_batch("batch-1", bad)
    assert likes_of(database, one) == 0
    # The batch id was rolled back with the likes, so the retry counts.
    assert database.apply_like_batch("batch-1", {one: 5})["duplicate"] is False
    assert likes_of(database, one) == 5
    assert post(database, alice, "writes still work") > one


def test_like_batches_from_many_threads_all_count(database: Database) -> None:
    alice = sign_up(database, "alice")
    tweets = [post(database, alice, f"t{n}") for n in range(3)]
    errors: list[BaseException] = []

    def like(worker: int) -> None:
        try:
            for n in range(500):
                database.apply_like_batch(f"w{worker}-{n}", {tweets[n % 3]: 1})
        except BaseException as exc:  # reported below: a thread's exception is lost
            errors.append(exc)

    threads = [threading.Thread(target=like, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    likes = [likes_of(database, t) for t in tweets]
    assert likes == [8 * 167, 8 * 167, 8 * 166]
    assert database.stats()["batches"] == 4000


def test_concurrent_read_then_write_transactions_never_lock(database: Database) -> None:
    # An edit reads before it writes: without the write lock and BEGIN IMMEDIATE, a
    # writer that committed meanwhile makes sqlite refuse the upgrade ("database is locked").
    authors = [sign_up(database, f"user{n}") for n in range(6)]
    tweets = [post(database, author, "v0") for author in authors]
    errors: list[BaseException] = []

    def edit(worker: int) -> None:
        try:
            for n in range(1, 151):
                database.edit_tweet(tweets[worker], f"v{n}", [f"v{n % 4}"], authors[worker])
                database.apply_like_batch(f"w{worker}-{n}", {tweets[(worker + n) % 6]: 1})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=edit, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [t["text"] for t in database.timeline(10, None)["items"]] == ["v150"] * 6
    assert database.hashtags("", 10) == [{"tag": "v2", "tweets": 6}]
    assert database.stats()["likes"] == 6 * 150


def test_reads_from_other_threads_see_writes(database: Database) -> None:
    alice = sign_up(database, "alice")
    seen: list[int] = []
    for n in range(3):
        post(database, alice, f"t{n}")
        reader = threading.Thread(target=lambda: seen.append(len(ids(
            database.timeline(10, None)))))
        reader.start()
        reader.join()
    assert seen == [1, 2, 3]


# -- counters and lifecycle ----------------------------------------------------------------

def test_queries_counts_statements(database: Database) -> None:
    alice = sign_up(database, "alice")
    tweet_id = post(database, alice, "hello")
    start = database.queries
    database.get_tweet(tweet_id)
    assert database.queries == start + 1
    database.timeline(10, None)
    assert database.queries == start + 2
    assert database.stats()["queries"] == start + 3


def test_data_survives_reopening(tmp_path: Path, clock: FakeClock) -> None:
    path = str(tmp_path / "store.db")
    first = Database(path, clock=clock)
    alice = sign_up(first, "alice")
    tweet_id = post(first, alice, "persist #me", "me")
    first.close()
    second = Database(path, clock=clock)
    assert ids(second.search_tweets("persist", 10, None)) == [tweet_id]
    assert second.hashtags("", 10) == [{"tag": "me", "tweets": 1}]
    assert second.stats()["tweets"] == 1
    conn = sqlite3.connect(path)
    assert conn.execute("pragma journal_mode").fetchone() == ("wal",)
    conn.close()
    second.close()


def test_close_then_use_opens_a_new_connection(database: Database) -> None:
    alice = sign_up(database, "alice")
    database.close()
    assert database.get_account("alice") is not None
    assert post(database, alice, "still works") > 0


# -- request keys (the api's Idempotency-Key) ----------------------------------------------

def keyed(key: str, fingerprint: str = "f1", scope: str = "tweets:1") -> store_db.RequestKey:
    return store_db.RequestKey(scope, key, fingerprint, window=86_400.0)


def tweet_count(database: Database) -> int:
    return len(database.timeline(100, None)["items"])


def test_a_keyed_tweet_posted_again_replays_its_first_answer_and_adds_nothing(
        database: Database, clock: FakeClock) -> None:
    author = sign_up(database, "ada")
    first = database.create_tweet(author, "hello", [], keyed("k1"))
    clock.advance(3600)
    with pytest.raises(store_db.Replayed) as replay:
        database.create_tweet(author, "hello", [], keyed("k1"))
    assert (replay.value.status, replay.value.answer) == (201, first)
    assert tweet_count(database) == 1


def test_a_key_reused_for_another_request_is_refused_and_other_scopes_are_apart(
        database: Database) -> None:
    author = sign_up(database, "ada")
    database.create_tweet(author, "hello", [], keyed("k1"))
    with pytest.raises(store_db.KeyReused):
        database.create_tweet(author, "other text", [], keyed("k1", fingerprint="f2"))
    database.create_tweet(author, "hello", [], keyed("k1", scope="tweets:2"))  # not the same
    assert tweet_count(database) == 2


def test_a_key_counts_only_within_its_window(database: Database, clock: FakeClock) -> None:
    author = sign_up(database, "ada")
    database.create_tweet(author, "hello", [], keyed("k1"))
    clock.advance(86_401)
    database.create_tweet(author, "hello", [], keyed("k1"))  # a new request, a new tweet
    assert tweet_count(database) == 2


def test_a_keyed_sign_up_replays_and_a_failed_one_records_nothing(database: Database) -> None:
    once = keyed("s1", scope="accounts")
    first = database.create_account("ada", "h1", "Ada", once)
    with pytest.raises(store_db.Replayed) as replay:
        database.create_account("ada", "h2", "Ada", once)  # a retry hashes the password again
    assert replay.value.answer == first
    taken = keyed("s2", scope="accounts")
    with pytest.raises(UsernameTaken):
        database.create_account("ADA", "h3", "", taken)
    with pytest.raises(UsernameTaken):  # not a replay: the refusal was not recorded
        database.create_account("ADA", "h3", "", taken)


def test_the_database_and_its_wal_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.touch(mode=0o644)  # as an earlier version left it
    database = Database(str(path))
    try:
        sign_up(database, "ada")  # makes the -wal file
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert name.stat().st_mode & 0o777 == 0o600, name
    finally:
        database.close()
