"""The store's storage layer: every SQL statement of First Price Twitter lives here.

`Database` wraps one sqlite3 file (WAL mode) laid out by schema.sql next to this module.
It knows nothing of HTTP; store/app.py turns its results into JSON. Input is validated by
the caller (lengths, usernames, hashtag parsing); this layer keeps the data consistent,
reads every page along an index range, newest first, and pages with "before" cursors.

Threads: each thread gets its own connection, opened on first use. Reads run without a
lock (WAL lets them proceed beside a writer); every write runs under one lock inside
"BEGIN IMMEDIATE", so writers queue in Python instead of failing with "database is locked".
"""

import json
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypedDict, TypeVar

from httpkit.keys import owner_only

SCHEMA_PATH = Path(__file__).with_name("schema.sql")

Row = tuple[Any, ...]

# Address space, not memory: the OS pages the file in as it is read.
MMAP_BYTES = 1 << 30

# An account may have this many live ended sessions; one more and its generation moves on
# instead, ending all its sessions (the safe direction), so the list a token check reads
# stays short.
MOST_ENDED = 100

# Stands in for "no cursor" so each page query is one SQL string: larger than any rowid.
_NO_CURSOR = 2**63 - 1

# Columns of a Tweet, joined with its author's username and display name.
_TWEET_COLUMNS = (
    "t.id, a.username, t.text, t.hashtags, t.likes, t.created_at, t.edited_at, t.author_id,"
    " a.display_name"
)
_ACCOUNT_COLUMNS = "id, username, display_name, created_at, tweet_count"


def newer(sql: str) -> str:
    """Turn a page query round: between the same bounds, what is just newer than the lower
    one, oldest first, along the same index (the tests EXPLAIN both)."""
    return sql.replace(" desc", " asc")


# The page queries are module constants so the tests can EXPLAIN them. Each reads at most
# limit + 1 rows along an index, newest first, with ids below the cursor and above ``after``
# (0 unless given); CROSS JOIN pins tweets as the outer loop.
TIMELINE_SQL = f"""
    select {_TWEET_COLUMNS} from tweets t cross join accounts a on a.id = t.author_id
    where t.id < ? and t.id > ? order by t.id desc limit ?"""
AUTHOR_SQL = f"""
    select {_TWEET_COLUMNS} from tweets t cross join accounts a on a.id = t.author_id
    where t.author_id = ? and t.id < ? and t.id > ? order by t.id desc limit ?"""
TAG_SQL = f"""
    select {_TWEET_COLUMNS} from tweet_tags g
        cross join tweets t on t.id = g.tweet_id
        cross join accounts a on a.id = t.author_id
    where g.tag = ? and g.tweet_id < ? and g.tweet_id > ? order by g.tweet_id desc limit ?"""
# FTS5 walks its index in rowid order, so "order by rowid desc limit" stops after the
# first page instead of sorting every match; "rowid < ?" lets it seek to the cursor.
SEARCH_SQL = f"""
    select {_TWEET_COLUMNS} from (
        select rowid as id from tweets_fts where tweets_fts match ? and rowid < ? and rowid > ?
        order by rowid desc limit ?) m
        cross join tweets t on t.id = m.id
        cross join accounts a on a.id = t.author_id
    order by t.id desc"""
# An account's token generation and the sessions ended in it, in one statement so that a
# generation moved on between two reads cannot pair the old generation with its list cleared.
GENERATION_SQL = """
    select coalesce(g.generation, 0), e.session, e.until, a.username from accounts a
        left join token_generations g on g.account_id = a.id
        left join ended_sessions e on e.account_id = a.id
    where a.id = ? order by e.session"""
ACCOUNTS_SQL = f"""
    select {_ACCOUNT_COLUMNS} from accounts where id < ? and id > ? order by id desc limit ?"""
# Prefixes are index ranges ("name >= q and name < end"), not LIKE, which would need
# escaping for % and _ and cannot use these indexes. The unique index on the NOCASE
# username column serves "username >= ?" and its order.
ACCOUNTS_BY_USERNAME_PREFIX_SQL = f"""
    select {_ACCOUNT_COLUMNS} from accounts where username >= ? and username < ?
    order by username limit ?"""
ACCOUNTS_BY_DISPLAY_PREFIX_SQL = f"""
    select {_ACCOUNT_COLUMNS} from accounts where display_lower >= ? and display_lower < ?
    order by display_lower limit ?"""
# A substring can sit anywhere, so no index narrows this one: it walks the username index
# in order and stops at limit matches. instr() takes q as plain text, wildcards included.
ACCOUNTS_CONTAINING_SQL = f"""
    select {_ACCOUNT_COLUMNS} from accounts
    where instr(lower(username), ?) > 0 or instr(display_lower, ?) > 0
    order by username limit ?"""


class UsernameTaken(Exception):
    """The username is already in use, ignoring case."""


class NotAuthor(Exception):
    """Someone other than its author tried to edit or delete a tweet."""


class UnknownAccount(LookupError):
    """A tweet was posted for an account id that does not exist."""


class KeyReused(Exception):
    """A request key was used before for a request with another fingerprint."""


class Replayed(Exception):
    """A keyed write was done before: nothing was written, here is the first answer."""

    def __init__(self, status: int, answer: Any) -> None:
        super().__init__(status)
        self.status = status
        self.answer = answer


@dataclass(frozen=True)
class RequestKey:
    """A write's Idempotency-Key as the api scoped and fingerprinted it, and how long the
    first answer counts."""

    scope: str
    key: str
    fingerprint: str
    window: float


class Account(TypedDict):
    id: int
    username: str
    display_name: str
    created_at: str
    tweet_count: int


class Credentials(TypedDict):
    id: int
    username: str
    password_hash: str
    generation: int  # the token generation: tokens of older ones have ended


class Generation(TypedDict):
    account_id: int
    username: str  # who the tokens speak for (the api's "who am I")
    generation: int  # tokens of older generations have ended
    ended: list[int]  # sessions of this one that have ended, their tokens not yet expired


class Tweet(TypedDict):
    id: int
    author: str
    text: str
    hashtags: list[str]
    likes: int
    created_at: str
    edited_at: str | None


T = TypeVar("T")


class Page(TypedDict, Generic[T]):
    items: list[T]
    next: str | None  # the cursor for the following (older) page, None on the last one
    prev: str | None  # the ``after`` for the page just newer, None on the newest one


class TweetPage(Page[Tweet]):
    # The display name of each author on the page: a Tweet names only its author's username,
    # as the API's contract says, and a page that shows names needs no lookup per author.
    authors: dict[str, str]


class TagCount(TypedDict):
    tag: str
    tweets: int


class BatchResult(TypedDict):
    batch_id: str
    duplicate: bool
    applied: dict[int, int]  # tweet id -> likes added by this batch
    likes: dict[int, int]  # tweet id -> its like total afterwards
    missing: list[int]


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced, so close() can reach every thread's."""


def iso_time(seconds: float) -> str:
    """Format a Unix time as ISO 8601 UTC with milliseconds, e.g. 2026-11-29T23:57:38.123Z."""
    whole, millis = divmod(int(round(seconds * 1000)), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def fts_query(q: str) -> str:
    """Turn user text into an FTS5 query that ANDs its words, each as a quoted string."""
    # Quoting every word makes FTS5 syntax ("AND", "*", "NEAR(", quotes) plain text.
    return " ".join('"' + word.replace('"', '""') + '"' for word in re.findall(r"\w+", q))


def prefix_end(prefix: str) -> str | None:
    """Return the smallest string above every string starting with prefix (None: no bound)."""
    # Code point order is UTF-8 byte order, which is how sqlite compares text.
    while prefix and ord(prefix[-1]) == 0x10FFFF:
        prefix = prefix[:-1]
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else None


def _page_query(sql: str, before: int | None, after: int | None) -> tuple[str, int, int]:
    """Choose a page's query and its bounds: with ``after`` alone the page is what is just
    newer than it (read oldest first), else what is just older than the cursor, down to
    ``after`` when both are given."""
    sql = newer(sql) if after is not None and before is None else sql
    return sql, _cursor(before), after or 0


def _page(rows: list[Row], limit: int, make: Callable[[Row], T], before: int | None,
          after: int | None) -> Page[T]:
    """Cut a limit + 1 fetch down to a page; the extra row only says that more follow.

    An ``after`` page was read oldest first (``newer``), so it is turned round here."""
    if after is not None and before is None:
        items = [make(row) for row in reversed(rows[:limit])]
        return {"items": items, "next": str(rows[0][0]) if rows else None,
                "prev": str(rows[limit - 1][0]) if len(rows) > limit else None}
    items = [make(row) for row in rows[:limit]]
    return {"items": items, "next": str(rows[limit - 1][0]) if len(rows) > limit else None,
            "prev": str(rows[0][0]) if _cursor(before) < _NO_CURSOR and rows else None}


def _tweet(row: Row) -> Tweet:
    return {
        "id": row[0], "author": row[1], "text": row[2], "hashtags": json.loads(row[3]),
        "likes": row[4], "created_at": row[5], "edited_at": row[6],
    }


def _tweet_page(rows: list[Row], limit: int, before: int | None,
                after: int | None) -> TweetPage:
    page = _page(rows, limit, _tweet, before, after)
    return {"items": page["items"], "next": page["next"], "prev": page["prev"],
            "authors": {row[1]: row[8] for row in rows[:limit]}}


def _generation(account_id: int, rows: list[Row], now: float) -> Generation:
    """Make a Generation of GENERATION_SQL's rows, leaving out sessions past ``until``."""
    return {"account_id": account_id, "username": rows[0][3], "generation": rows[0][0],
            "ended": [session for _, session, until, _ in rows
                      if session is not None and until > now]}


def _account(row: Row) -> Account:
    return {
        "id": row[0], "username": row[1], "display_name": row[2],
        "created_at": row[3], "tweet_count": row[4],
    }


def _tags_json(hashtags: Sequence[str]) -> str:
    # The caller normalises tags already; doing it again keeps the primary key of
    # tweet_tags from ever rejecting a tweet over a repeated tag.
    return json.dumps(list(dict.fromkeys(tag.lower() for tag in hashtags)), ensure_ascii=False)


class Database:
    """The store's data, in one sqlite3 file, safe to use from many threads."""

    def __init__(self, path: str, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._local = threading.local()
        self._open: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._open_lock = threading.Lock()
        # Bumped by close(), so threads drop connections it closed under them.
        self._generation = 0
        self._write_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._queries = 0
        owner_only(path)  # it holds password hashes
        conn = self._conn()
        # WAL is a property of the file: set once, it lets readers run beside the writer.
        conn.execute("pragma journal_mode = wal")
        conn.executescript(SCHEMA_PATH.read_text(encoding="utf-8"))
        # Merge the full-text index's segments once at start: every search reads each segment
        # (docs/REPORT.md §7 gives what it saves at 1 M tweets).
        conn.execute("insert into tweets_fts (tweets_fts) values ('optimize')")

    # -- connections and statements ------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.generation != self._generation:
            # check_same_thread=False only so close() may close other threads' connections;
            # each connection is otherwise used by the thread that opened it.
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, factory=_Connection,
            )
            # NORMAL is durable across application crashes in WAL mode; only an OS crash can
            # lose the last commits, and it saves an fsync per write.
            conn.execute("pragma synchronous = normal")
            conn.execute("pragma busy_timeout = 5000")
            conn.execute("pragma foreign_keys = on")
            # Checkpoint the WAL every ~1 MB and cut it back to 1 MB after: by default it
            # grows to ~4 MB before the first checkpoint and never shrinks, which on a small
            # disk takes the space the data needs.
            conn.execute("pragma wal_autocheckpoint = 256")
            conn.execute(f"pragma journal_size_limit = {1 << 20}")
            # Each connection's page cache is private, and threads come and go with HTTP
            # connections; reading through a shared mapping of the file lets every thread
            # use the OS page cache without a system call and a copy per page.
            conn.execute(f"pragma mmap_size = {MMAP_BYTES}")
            with self._open_lock:
                self._open.add(conn)
                self._local.conn, self._local.generation = conn, self._generation
        return conn

    def close(self) -> None:
        """Close every connection still open; a later call opens a fresh one."""
        with self._open_lock:
            conns = list(self._open)
            self._open.clear()
            self._generation += 1
        for conn in conns:
            conn.close()

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Execute one statement on this thread's connection and return all its rows."""
        rows = self._conn().execute(sql, params).fetchall()
        with self._count_lock:
            self._queries += 1
        return rows

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self._run(sql, params)
        return rows[0] if rows else None

    @contextmanager
    def _write(self) -> Iterator[None]:
        """Run the block as one write transaction, rolled back if it raises."""
        with self._write_lock:
            conn = self._conn()
            # IMMEDIATE takes the write lock up front: a deferred transaction that
            # upgrades from read to write can fail with SQLITE_BUSY despite busy_timeout.
            conn.execute("begin immediate")
            try:
                yield
                conn.execute("commit")
            except BaseException:
                # Also after a failed commit: an open transaction would break the next write.
                if conn.in_transaction:
                    conn.execute("rollback")
                raise

    @property
    def queries(self) -> int:
        """Count the SQL statements run so far (transaction control not included)."""
        with self._count_lock:
            return self._queries

    # -- accounts ------------------------------------------------------------------------

    def create_account(self, username: str, password_hash: str, display_name: str,
                       once: RequestKey | None = None) -> Account:
        """Create an account; raise UsernameTaken if the name is used in any case, Replayed
        if ``once`` was done before."""
        created_at = iso_time(self.clock())
        try:
            with self._write():
                self._replay(once)
                row = self._one(
                    "insert into accounts (username, display_name, display_lower,"
                    " password_hash, created_at) values (?, ?, ?, ?, ?) returning id",
                    (username, display_name, display_name.lower(), password_hash, created_at),
                )
                assert row is not None
                account: Account = {"id": row[0], "username": username,
                                    "display_name": display_name, "created_at": created_at,
                                    "tweet_count": 0}
                self._record(once, 201, account)
        except sqlite3.IntegrityError as exc:
            # The only unique column a new account can clash on is its username.
            if "unique" not in str(exc).lower():
                raise
            raise UsernameTaken(username) from exc
        return account

    def get_account(self, username: str) -> Account | None:
        """Return the account with this username, ignoring case."""
        row = self._one(f"select {_ACCOUNT_COLUMNS} from accounts where username = ?",
                        (username,))
        return _account(row) if row else None

    def get_credentials(self, username: str) -> Credentials | None:
        """Return what logging in checks: id, username, password hash, token generation."""
        row = self._one("select a.id, a.username, a.password_hash, coalesce(g.generation, 0)"
                        " from accounts a left join token_generations g on g.account_id = a.id"
                        " where a.username = ?", (username,))
        if row is None:
            return None
        return {"id": row[0], "username": row[1], "password_hash": row[2],
                "generation": row[3]}

    def token_generation(self, account_id: int) -> Generation | None:
        """Return the account's token generation and live ended sessions, or None if there
        is no such account; ended sessions whose tokens have expired are deleted."""
        rows = self._run(GENERATION_SQL, (account_id,))
        if not rows:
            return None
        now = self.clock()
        if any(until is not None and until <= now for _, _, until, _ in rows):
            with self._write():
                self._drop_expired(account_id, now)
        return _generation(account_id, rows, now)

    def end_tokens(self, account_id: int, through: int) -> Generation | None:
        """End the account's tokens of every generation up to ``through``; return the
        generation now, or None if there is no such account. The generation never goes
        back, so a retried or late request changes nothing."""
        with self._write():
            if self._one("select 1 from accounts where id = ?", (account_id,)) is None:
                return None
            self._move_generation(account_id, through)
            return self._current(account_id)

    def end_session(self, account_id: int, session: int, until: int) -> Generation | None:
        """End one session of the account, whose token expires at ``until``; return the
        generation and ended sessions now, or None if there is no such account.

        Past MOST_ENDED live ended sessions the generation moves on instead and the list is
        cleared: every session of the account ends, which is safe and keeps the list short.
        """
        with self._write():
            if self._one("select 1 from accounts where id = ?", (account_id,)) is None:
                return None
            now = self.clock()
            self._drop_expired(account_id, now)
            if until > now:  # else the token has expired: there is nothing left to end
                self._run("insert into ended_sessions (account_id, session, until)"
                          " values (?, ?, ?) on conflict (account_id, session) do update"
                          " set until = max(until, excluded.until)",
                          (account_id, session, until))
            ended = self._current(account_id)
            assert ended is not None
            if len(ended["ended"]) > MOST_ENDED:
                self._move_generation(account_id, ended["generation"])
                ended = self._current(account_id)
            return ended

    def set_password(self, username: str, password_hash: str) -> Credentials | None:
        """Replace the account's password hash and end every token issued so far, in one
        transaction; return the credentials now, or None if there is no such account."""
        with self._write():
            row = self._one("update accounts set password_hash = ? where username = ?"
                            " returning id, username", (password_hash, username))
            if row is None:
                return None
            now = self._current(row[0])
            assert now is not None
            generation = self._move_generation(row[0], now["generation"])
        return {"id": row[0], "username": row[1], "password_hash": password_hash,
                "generation": generation}

    def _current(self, account_id: int) -> Generation | None:
        """Return the account's generation and live ended sessions (inside a write)."""
        rows = self._run(GENERATION_SQL, (account_id,))
        return _generation(account_id, rows, self.clock()) if rows else None

    def _drop_expired(self, account_id: int, now: float) -> None:
        """Delete the ended sessions whose tokens have expired (inside a write)."""
        self._run("delete from ended_sessions where account_id = ? and until <= ?",
                  (account_id, now))

    def _move_generation(self, account_id: int, through: int) -> int:
        """Move the generation past ``through`` unless it is there already, and forget the
        sessions ended one by one, now ended with their generation (inside a write)."""
        row = self._one("select generation from token_generations where account_id = ?",
                        (account_id,))
        if row is not None and row[0] > through:
            generation: int = row[0]
            return generation  # a retry or a late request: the rows still count
        self._run("insert into token_generations (account_id, generation) values (?, ?)"
                  " on conflict (account_id) do update set generation = excluded.generation",
                  (account_id, through + 1))
        self._run("delete from ended_sessions where account_id = ?", (account_id,))
        return through + 1

    def list_accounts(self, limit: int, before: int | None,
                      after: int | None = None) -> Page[Account]:
        """Return a page of accounts, newest first, between before and after (_page_query)."""
        sql, upper, lower = _page_query(ACCOUNTS_SQL, before, after)
        return _page(self._run(sql, (upper, lower, limit + 1)), limit, _account, before, after)

    def search_accounts(self, q: str, limit: int) -> list[Account]:
        """Find accounts by username or display name, ignoring case: prefix matches first."""
        needle = q.strip().lower()
        end = prefix_end(needle)
        found: dict[int, Account] = {}
        # Ranked: username starts with q, display name starts with q, either contains q.
        # Each step returns at most limit rows; duplicates keep their first, better rank.
        steps = [(ACCOUNTS_BY_USERNAME_PREFIX_SQL, (needle, end)),
                 (ACCOUNTS_BY_DISPLAY_PREFIX_SQL, (needle, end)),
                 (ACCOUNTS_CONTAINING_SQL, (needle, needle))] if end else []
        for sql, params in steps:
            if len(found) >= limit:
                break
            for row in self._run(sql, (*params, limit)):
                found.setdefault(row[0], _account(row))
        return list(found.values())[:limit]

    # -- tweets --------------------------------------------------------------------------

    def create_tweet(self, author_id: int, text: str, hashtags: list[str],
                     once: RequestKey | None = None) -> Tweet:
        """Post a tweet; raise UnknownAccount if author_id names no account, Replayed if
        ``once`` was done before."""
        created_at = iso_time(self.clock())
        tags = _tags_json(hashtags)
        with self._write():
            self._replay(once)
            author = self._one("select username from accounts where id = ?", (author_id,))
            if author is None:
                raise UnknownAccount(author_id)
            row = self._one(
                "insert into tweets (author_id, text, hashtags, created_at)"
                " values (?, ?, ?, ?) returning id",
                (author_id, text, tags, created_at),
            )
            assert row is not None
            tweet: Tweet = {"id": row[0], "author": author[0], "text": text,
                            "hashtags": json.loads(tags), "likes": 0, "created_at": created_at,
                            "edited_at": None}
            self._record(once, 201, tweet)
        return tweet

    def get_tweet(self, tweet_id: int) -> Tweet | None:
        """Return one tweet, or None if there is none with this id."""
        row = self._tweet_row(tweet_id)
        return _tweet(row) if row else None

    def _tweet_row(self, tweet_id: int) -> Row | None:
        return self._one(
            f"select {_TWEET_COLUMNS} from tweets t cross join accounts a"
            " on a.id = t.author_id where t.id = ?", (tweet_id,))

    def edit_tweet(
        self, tweet_id: int, text: str, hashtags: list[str], author_id: int | None,
    ) -> tuple[Tweet, list[str]] | None:
        """Replace a tweet's text and tags; return it and the tags it had before.

        None if there is no such tweet; NotAuthor if it is not author_id's.
        """
        edited_at = iso_time(self.clock())
        tags = _tags_json(hashtags)
        with self._write():
            row = self._tweet_row(tweet_id)
            if row is None:
                return None
            _check_author(row, author_id)
            # Triggers move the full-text entry and the tag rows and counts along.
            self._run("update tweets set text = ?, hashtags = ?, edited_at = ? where id = ?",
                      (text, tags, edited_at, tweet_id))
        tweet = _tweet(row)
        old_tags = tweet["hashtags"]
        tweet["text"], tweet["hashtags"], tweet["edited_at"] = text, json.loads(tags), edited_at
        return tweet, old_tags

    def delete_tweet(self, tweet_id: int, author_id: int | None) -> Tweet | None:
        """Delete a tweet and return it as it was; None if absent, NotAuthor if not
        author_id's."""
        with self._write():
            row = self._tweet_row(tweet_id)
            if row is None:
                return None
            _check_author(row, author_id)
            self._run("delete from tweets where id = ?", (tweet_id,))
        return _tweet(row)

    # -- request keys --------------------------------------------------------------------

    def _replay(self, once: RequestKey | None) -> None:
        """Raise Replayed with the first answer if this keyed write was done within its
        window, KeyReused if its key was used for another request (inside the write)."""
        if once is None:
            return
        row = self._one("select fingerprint, status, answer from request_keys"
                        " where scope = ? and key = ? and created_at >= ?",
                        (once.scope, once.key, self.clock() - once.window))
        if row is None:
            return
        if row[0] != once.fingerprint:
            raise KeyReused(once.key)
        raise Replayed(row[1], json.loads(row[2]))

    def _record(self, once: RequestKey | None, status: int, answer: Any) -> None:
        """Keep a keyed write's answer, in its transaction; drop the records out of window."""
        if once is None:
            return
        now = self.clock()
        # Along the created_at index: a few rows at a time, and the expired record of this
        # very key, if any, is gone before the insert.
        self._run("delete from request_keys where created_at < ?", (now - once.window,))
        self._run("insert into request_keys (scope, key, fingerprint, status, answer,"
                  " created_at) values (?, ?, ?, ?, ?, ?)",
                  (once.scope, once.key, once.fingerprint, status,
                   json.dumps(answer, ensure_ascii=False), now))

    # -- tweet lists ---------------------------------------------------------------------

    def timeline(self, limit: int, before: int | None, after: int | None = None) -> TweetPage:
        """Return a page of all tweets, newest first, between before and after (_page_query)."""
        sql, upper, lower = _page_query(TIMELINE_SQL, before, after)
        return _tweet_page(self._run(sql, (upper, lower, limit + 1)), limit, before, after)

    def author_tweets(self, username: str, limit: int, before: int | None,
                      after: int | None = None) -> TweetPage | None:
        """Return a page of one account's tweets, or None if there is no such account."""
        author = self._one("select id from accounts where username = ?", (username,))
        if author is None:
            return None
        sql, upper, lower = _page_query(AUTHOR_SQL, before, after)
        rows = self._run(sql, (author[0], upper, lower, limit + 1))
        return _tweet_page(rows, limit, before, after)

    def tag_tweets(self, tag: str, limit: int, before: int | None,
                   after: int | None = None) -> TweetPage:
        """Return a page of the tweets carrying a hashtag, matched ignoring case."""
        sql, upper, lower = _page_query(TAG_SQL, before, after)
        rows = self._run(sql, (tag.lower(), upper, lower, limit + 1))
        return _tweet_page(rows, limit, before, after)

    def search_tweets(self, q: str, limit: int, before: int | None,
                      after: int | None = None) -> TweetPage:
        """Return a page of the tweets holding every word of q, ignoring case."""
        match = fts_query(q)
        if not match:
            return {"items": [], "next": None, "prev": None, "authors": {}}
        sql, upper, lower = _page_query(SEARCH_SQL, before, after)
        rows = self._run(sql, (match, upper, lower, limit + 1))
        return _tweet_page(rows, limit, before, after)

    def hashtags(self, prefix: str, limit: int) -> list[TagCount]:
        """Return the hashtags starting with prefix, most used first, then by name."""
        prefix = prefix.lower()
        end = prefix_end(prefix)
        if end is None:
            # Everything: walk the popularity index and stop after limit rows.
            rows = self._run("select tag, tweets from hashtag_counts"
                             " order by tweets desc, tag limit ?", (limit,))
        else:
            # A prefix: range scan on the tag, then sort only the tags that matched.
            rows = self._run("select tag, tweets from hashtag_counts where tag >= ? and tag < ?"
                             " order by tweets desc, tag limit ?", (prefix, end, limit))
        return [{"tag": row[0], "tweets": row[1]} for row in rows]

    # -- likes and stats -----------------------------------------------------------------

    def apply_like_batch(self, batch_id: str, likes: dict[int, int]) -> BatchResult:
        """Add a batch of likes in one transaction, unless this batch_id was applied before."""
        result: BatchResult = {"batch_id": batch_id, "duplicate": False, "applied": {},
                               "likes": {}, "missing": []}
        with self._write():
            # The batch id is recorded in the same transaction as the likes, so a batch
            # retried after a lost reply, or a crash at any point, never counts twice.
            if not self._run("insert into applied_batches (batch_id, applied_at) values (?, ?)"
                             " on conflict do nothing returning 1",
                             (batch_id, iso_time(self.clock()))):
                result["duplicate"] = True
                result["likes"] = self._like_totals(list(likes))
                # Tweets deleted since are named again, so a resender drops their likes.
                result["missing"] = [tweet for tweet in likes if tweet not in result["likes"]]
                return result
            for tweet_id, count in likes.items():
                row = self._one("update tweets set likes = likes + ? where id = ?"
                                " returning likes", (count, tweet_id))
                if row is None:
                    result["missing"].append(tweet_id)
                else:
                    result["applied"][tweet_id] = count
                    result["likes"][tweet_id] = row[0]
        return result

    def _like_totals(self, tweet_ids: list[int]) -> dict[int, int]:
        """Return the current like totals of these tweets (for a duplicate batch's answer)."""
        marks = ",".join("?" * len(tweet_ids))
        rows = self._run(f"select id, likes from tweets where id in ({marks})", tweet_ids)
        return {row[0]: row[1] for row in rows}

    def stats(self) -> dict[str, int]:
        """Return running totals: queries run, accounts, tweets, likes written, batches."""
        rows = self._run("select name, value from counters")
        totals = {name: value for name, value in rows}
        totals["queries"] = self.queries
        return totals


def _cursor(before: int | None) -> int:
    return _NO_CURSOR if before is None else before


def _check_author(row: Row, author_id: int | None) -> None:
    # author_id None means the caller speaks with authority (an operator), not a user.
    if author_id is not None and row[7] != author_id:
        raise NotAuthor(row[0])
