"""load_test.py: check and load a running First Price Twitter stack over HTTP.

Standard library only, one file: it runs on a bare Python 3.11 against any running stack
(`make run`, `docker compose up`, or a single `api`) and imports nothing from the project.

    python3 load_test.py functional [--url URL]
    python3 load_test.py load [--url URL] [--concurrency 32] [--duration 30 | --requests N]
                              [--mix reads=80,posts=5,likes=15] [--hot 0.5] [--verify-likes]

``functional`` makes its own uniquely named accounts and tweets and checks, one line per
check, that every feature behaves as DESIGN.md says; it exits 1 if any check fails. Behind an
lb it also reads each page straight from every cache replica that ``/_lb/stats`` lists, as a
reader does, to check that a write through the lb shows on every replica within seconds.
``load`` drives the stack from keep-alive worker threads, shows progress on stderr, and
reports throughput, latency, errors and what each layer saved (from ``/stats``, ``/logs``,
``/_lb/stats`` and the caches' stats, read before and after). Every POST either mode sends
carries an Idempotency-Key, a fresh uuid4 hex per request. Run with ``--help`` for more.
"""
from __future__ import annotations

import argparse
import http.client
import json
import math
import random
import secrets
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from itertools import count
from typing import Any, Callable, Iterator
from urllib.parse import quote, urlencode, urlsplit

DEFAULT_URL = "http://127.0.0.1:8000"
FRESH = {"Cache-Control": "no-cache"}  # skip the caches' copies: read what was just written
IDLE_RECONNECT_S = 20.0  # the services drop connections idle for 30 s
ACCOUNT_KEYS = {"id", "username", "display_name", "created_at", "tweet_count"}
TWEET_KEYS = {"id", "author", "text", "hashtags", "likes", "created_at", "edited_at"}
STATS_KEYS = {"calls", "db_accesses", "likes_received", "likes_written", "batches", "pending"}
API_ROUTES = {  # DESIGN.md's public API, which /openapi.json must describe
    "/accounts": {"get", "post"}, "/sessions": {"post"}, "/accounts/search": {"get"},
    "/accounts/{}": {"get"}, "/accounts/{}/tweets": {"get"}, "/tweets": {"get", "post"},
    "/tweets/{}": {"get", "put", "delete"}, "/tweets/search": {"get"},
    "/tweets/{}/like": {"post"}, "/hashtags": {"get"}, "/hashtags/{}/tweets": {"get"},
    "/logs": {"get"}, "/stats": {"get"}, "/openapi.json": {"get"},
}
HOSTILE_QUERIES = ['"', "*", "NEAR(", "' OR 1=1 --", "a AND", "(((", "-x", "^"]
# After a write every reader through every replica sees it "within about a second" (DESIGN.md);
# a like count may lag LIKE_PUBLISH_S (1 s) more. The checks allow some slack on a busy machine.
REPLICA_DEADLINE_S = 5.0
POLL_S = 0.02
REPLICA_TIMEOUT_S = 3.0  # a replica's address that drops packets (a container IP) fails fast


# -- HTTP ----------------------------------------------------------------------------------


@dataclass
class Reply:
    """One HTTP answer, read whole."""

    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        """Return the body parsed as JSON, or fail the check."""
        try:
            return json.loads(self.body)
        except ValueError:
            raise Failed(f"answer {self.status} is not JSON: {self.body[:120]!r}") from None

    def header(self, name: str) -> str:
        """Return a header's value ('' if absent)."""
        return self.headers.get(name.lower(), "")


def new_key() -> str:
    """Return a fresh Idempotency-Key, for one logical request and any retry of it."""
    return uuid.uuid4().hex


class Client:
    """One kept-alive HTTP/1.1 connection to the target; reconnects after a failure.

    Every POST carries an Idempotency-Key: the caller's, else a fresh one. Requests are never
    retried (a failure is what a run measures); code that retries one must pass the first
    try's key, so that the stack does it once."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not an http:// URL: {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None
        self.last_used = 0.0

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                headers: dict[str, str] | None = None, raw: bytes | None = None,
                key: str | None = None) -> Reply:
        """Send one request and read its whole answer."""
        payload = raw if raw is not None or body is None else json.dumps(body).encode()
        sent = {"Accept": "application/json", **(headers or {})}
        if method == "POST":
            sent["Idempotency-Key"] = key or new_key()
        if payload is not None:
            sent["Content-Type"] = "application/json"
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        conn = self.connection()
        start = time.perf_counter()
        try:
            conn.request(method, self.prefix + path, payload, sent)
            answer = conn.getresponse()
            data = answer.read()
        except BaseException:
            self.close()
            raise
        seconds = time.perf_counter() - start
        if answer.will_close:
            self.close()
        self.last_used = time.monotonic()
        return Reply(answer.status, {k.lower(): v for k, v in answer.getheaders()}, data,
                     seconds)

    def connection(self) -> http.client.HTTPConnection:
        """Return the open connection, or a new one if there is none or it sat idle."""
        if self.conn is not None and time.monotonic() - self.last_used > IDLE_RECONNECT_S:
            self.close()
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self.conn

    def close(self) -> None:
        """Drop the connection; the next request opens a new one."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def get_json(self, path: str) -> Any:
        """Return the JSON of a fresh GET that answered 200, else None."""
        try:
            reply = self.request("GET", path, headers=FRESH)
            return json.loads(reply.body) if reply.status == 200 else None
        except (OSError, http.client.HTTPException, ValueError):
            return None


# -- functional checks ---------------------------------------------------------------------


class Failed(Exception):
    """A check found the stack not doing what DESIGN.md says."""


class Skipped(Exception):
    """A check does not apply to this target (say, no cache in front of it)."""


def expect(condition: bool, why: str) -> None:
    """Fail the check with ``why`` unless ``condition`` holds."""
    if not condition:
        raise Failed(why)


def ok(reply: Reply, status: int, what: str) -> Any:
    """Return the JSON of an answer with the expected success status, else fail."""
    expect(reply.status == status,
           f"{what}: expected {status}, got {reply.status} {reply.body[:160]!r}")
    if status == 204:
        expect(reply.body == b"", f"{what}: a 204 with a body")
        return None
    expect(reply.header("content-type").startswith("application/json"),
           f"{what}: Content-Type is {reply.header('content-type')!r}")
    return reply.json()


def refused(reply: Reply, status: int, what: str) -> dict[str, Any]:
    """Check an error answer: its status and a JSON {"error": {"code", "message"}} body."""
    expect(reply.status == status,
           f"{what}: expected {status}, got {reply.status} {reply.body[:160]!r}")
    expect(reply.header("content-type").startswith("application/json"),
           f"{what}: error Content-Type is {reply.header('content-type')!r}")
    error = reply.json().get("error")
    expect(isinstance(error, dict) and isinstance(error.get("code"), str)
           and isinstance(error.get("message"), str) and bool(error["message"]),
           f"{what}: error body is not {{'error': {{'code', 'message'}}}}: {reply.body[:160]!r}")
    return dict(error)


def is_utc_time(value: Any) -> bool:
    """Tell whether ``value`` is an ISO 8601 time in UTC."""
    if not isinstance(value, str):
        return False
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return moment.utcoffset() == timedelta(0)


def check_account(doc: Any, username: str) -> None:
    """Check an Account's shape and that it is ``username``'s."""
    expect(isinstance(doc, dict) and set(doc) == ACCOUNT_KEYS,
           f"account keys {sorted(doc) if isinstance(doc, dict) else doc!r}")
    expect(doc["username"] == username, f"username {doc['username']!r}, not {username!r}")
    expect(isinstance(doc["id"], int) and isinstance(doc["tweet_count"], int),
           "id and tweet_count must be integers")
    expect(is_utc_time(doc["created_at"]), f"created_at {doc['created_at']!r} is not UTC ISO")


def check_tweet(doc: Any) -> None:
    """Check a Tweet's shape."""
    expect(isinstance(doc, dict) and set(doc) == TWEET_KEYS,
           f"tweet keys {sorted(doc) if isinstance(doc, dict) else doc!r}")
    expect(isinstance(doc["id"], int) and isinstance(doc["likes"], int),
           "id and likes must be integers")
    expect(is_utc_time(doc["created_at"]), f"created_at {doc['created_at']!r} is not UTC ISO")
    expect(doc["edited_at"] is None or is_utc_time(doc["edited_at"]),
           f"edited_at {doc['edited_at']!r}")


def ids(page: Any, key: str = "tweets") -> list[Any]:
    """Return the ids in a page of tweets (or accounts)."""
    expect(isinstance(page, dict) and isinstance(page.get(key), list) and "next" in page,
           f"not a page of {key}: {str(page)[:160]}")
    return [item["id"] for item in page[key]]


@dataclass
class World:
    """What one functional run made and shares between its checks."""

    client: Client
    run: str = field(default_factory=lambda: secrets.token_hex(4))
    password: str = field(default_factory=lambda: "pw-" + secrets.token_hex(8))
    tokens: dict[str, str] = field(default_factory=dict)
    tweet: dict[str, Any] | None = None
    deleted: bool = False
    replica_clients: list[Reader] | None = None  # found once by replicas()
    no_replicas: str = ""  # why the replica checks skip, once replicas() found out
    echo: dict[str, Any] | None = None  # the newcomer's tweet, read through every replica
    tweet_key: str = field(default_factory=new_key)  # the Idempotency-Key of ``keyed``
    keyed: dict[str, Any] | None = None  # the other user's tweet, posted twice with one key

    @property
    def user(self) -> str:
        return f"lt_{self.run}"

    @property
    def other(self) -> str:
        return f"lt_{self.run}_b"

    @property
    def newcomer(self) -> str:
        return f"lt_{self.run}_r"

    def fetch(self, method: str, path: str, body: Any = None, token: str | None = None,
              raw: bytes | None = None, key: str | None = None) -> Reply:
        """Send a request (a POST with Idempotency-Key ``key``, else a fresh one); reads ask
        the caches for a fresh answer."""
        headers = FRESH if method == "GET" else None
        return self.client.request(method, path, body, token=token, headers=headers, raw=raw,
                                   key=key)

    def read(self, path: str) -> Any:
        """Return the JSON of a fresh GET that must answer 200."""
        return ok(self.fetch("GET", path), 200, f"GET {path}")

    def token(self, who: str) -> str:
        """Return a user's token, or fail if logging in failed earlier."""
        if who not in self.tokens:
            raise Failed(f"needs {who} logged in (see the log_in check)")
        return self.tokens[who]

    def the_tweet(self) -> dict[str, Any]:
        """Return the tweet the run posted, or fail if posting failed earlier."""
        if self.tweet is None:
            raise Failed("needs the posted tweet (see the post_tweet check)")
        return self.tweet

    def the_keyed(self) -> dict[str, Any]:
        """Return the tweet posted with ``tweet_key``, or fail if posting it failed earlier."""
        if self.keyed is None:
            raise Failed("needs the tweet posted with a key (see post_tweet_same_key_once)")
        return self.keyed

    def tag(self, name: str) -> str:
        return f"lt{self.run}{name}"

    def replicas(self) -> list[Reader]:
        """Return a client per cache replica behind the lb (found once), or skip the check;
        a check asks first, so that it skips before it fails for want of anything else."""
        if self.replica_clients is None and not self.no_replicas:
            try:
                self.replica_clients = find_replicas(self.client)
            except Skipped as why:
                self.no_replicas = str(why)
        if self.replica_clients is None:
            raise Skipped(self.no_replicas)
        return self.replica_clients

    def the_echo(self) -> dict[str, Any]:
        """Return the newcomer's tweet, or fail if posting it failed earlier."""
        if self.echo is None:
            raise Failed("needs the newcomer's tweet (see every_replica_sees_post)")
        return self.echo


Check = Callable[[World], None]
CHECKS: list[tuple[str, Check]] = []


def check(name: str) -> Callable[[Check], Check]:
    """Register a functional check; they run in the order they are defined."""
    def register(function: Check) -> Check:
        CHECKS.append((name, function))
        return function
    return register


@check("healthz")
def check_health(w: World) -> None:
    expect(w.read("/healthz") == {"status": "ok"}, "GET /healthz is not {'status': 'ok'}")


@check("sign_up")
def check_sign_up(w: World) -> None:
    for username in (w.user, w.other):
        body = {"username": username, "password": w.password,
                "display_name": f"Load Tester {w.run}"}
        account = ok(w.fetch("POST", "/accounts", body), 201, f"sign up {username}")
        check_account(account, username)
        expect(account["tweet_count"] == 0, f"new account has tweet_count {account['tweet_count']}")
        expect(account["display_name"] == f"Load Tester {w.run}", "display_name not kept")


@check("sign_up_duplicate_ignoring_case_409")
def check_duplicate(w: World) -> None:
    body = {"username": w.user.upper(), "password": w.password}
    refused(w.fetch("POST", "/accounts", body), 409, f"sign up {w.user.upper()}")


@check("sign_up_bad_input_400")
def check_bad_sign_ups(w: World) -> None:
    cases: list[tuple[str, Any, bytes | None]] = [
        ("short username", {"username": "ab", "password": w.password}, None),
        ("username with a space", {"username": "a b c", "password": w.password}, None),
        ("reserved username", {"username": "search", "password": w.password}, None),
        ("reserved username in capitals", {"username": "SEARCH", "password": w.password}, None),
        ("short password", {"username": f"lt_{w.run}_c", "password": "1234567"}, None),
        ("malformed JSON", None, b'{"username": "x", '),
        ("not an object", None, b"[1, 2]"),
        ("wrong type", {"username": 12345, "password": w.password}, None),
        ("missing password", {"username": f"lt_{w.run}_d"}, None),
    ]
    for what, body, raw in cases:
        refused(w.fetch("POST", "/accounts", body, raw=raw), 400, what)


@check("log_in_201")
def check_log_in(w: World) -> None:
    for username in (w.user, w.other):
        reply = w.fetch("POST", "/sessions", {"username": username, "password": w.password})
        session = ok(reply, 201, f"log in {username}")
        expect(isinstance(session.get("token"), str) and len(session["token"]) > 10,
               "no token in the answer")
        check_account(session.get("account"), username)
        w.tokens[username] = session["token"]


@check("log_in_wrong_password_401")
def check_log_in_wrong(w: World) -> None:
    wrong = {"username": w.user, "password": w.password + "x"}
    refused(w.fetch("POST", "/sessions", wrong), 401, "wrong password")
    nobody = {"username": f"lt_{w.run}_nobody", "password": w.password}
    refused(w.fetch("POST", "/sessions", nobody), 401, "unknown username")


@check("get_account")
def check_get_account(w: World) -> None:
    check_account(w.read(f"/accounts/{w.user}"), w.user)
    refused(w.fetch("GET", f"/accounts/lt_{w.run}_nobody"), 404, "unknown account")


@check("post_tweet_201_hashtags")
def check_post(w: World) -> None:
    text = (f"  Hello from load_test {w.tag('alpha')} #LT{w.run}Tag #lt{w.run}tag "
            f"#Über{w.run} and #lt{w.run}TAG again  ")
    tweet = ok(w.fetch("POST", "/tweets", {"text": text}, w.token(w.user)), 201, "post")
    check_tweet(tweet)
    w.tweet = tweet
    expect(tweet["author"] == w.user, f"author {tweet['author']!r}")
    expect(tweet["text"] == text.strip(), f"text not trimmed: {tweet['text']!r}")
    expect(tweet["hashtags"] == [w.tag("tag"), f"über{w.run}"],
           f"hashtags {tweet['hashtags']} (want lower-case, de-duplicated, in order)")
    expect(tweet["likes"] == 0 and tweet["edited_at"] is None, "a new tweet has likes or edits")


@check("get_tweet_back")
def check_read_back(w: World) -> None:
    tweet = w.the_tweet()
    got = w.read(f"/tweets/{tweet['id']}")
    check_tweet(got)
    expect(got == tweet, f"read back {got} differs from posted {tweet}")


@check("tweet_on_timeline")
def check_timeline(w: World) -> None:
    expect(w.the_tweet()["id"] in ids(w.read("/tweets?limit=100")), "not on the timeline")


@check("tweet_in_author_tweets")
def check_author_tweets(w: World) -> None:
    tweet_id = w.the_tweet()["id"]
    expect(ids(w.read(f"/accounts/{w.user}/tweets")) == [tweet_id],
           "the author's tweets are not just the posted one")
    count_now = w.read(f"/accounts/{w.user}")["tweet_count"]
    expect(count_now == 1, f"tweet_count is {count_now}, want 1")


@check("tweet_text_limits")
def check_text_limits(w: World) -> None:
    token = w.token(w.other)
    emoji = ok(w.fetch("POST", "/tweets", {"text": "\U0001F600" * 280}, token), 201, "280 emoji")
    expect(len(emoji["text"]) == 280, "280 emoji did not come back as 280 characters")
    refused(w.fetch("POST", "/tweets", {"text": "\U0001F600" * 281}, token), 400, "281 emoji")
    refused(w.fetch("POST", "/tweets", {"text": "x" * 281}, token), 400, "281 characters")
    refused(w.fetch("POST", "/tweets", {"text": "   "}, token), 400, "blank text")
    refused(w.fetch("POST", "/tweets", {"text": ""}, token), 400, "empty text")
    refused(w.fetch("POST", "/tweets", {"text": 5}, token), 400, "text not a string")
    refused(w.fetch("POST", "/tweets", None, token, raw=b"{oops"), 400, "malformed JSON")


@check("paging_with_cursor")
def check_paging(w: World) -> None:
    first = w.read("/tweets?limit=1")
    expect(len(ids(first)) == 1 and first["next"] is not None, "limit=1 gave no next cursor")
    second = w.read(f"/tweets?limit=1&cursor={quote(str(first['next']))}")
    older = ids(second)
    expect(bool(older) and older[0] < ids(first)[0], "the next page is not older")
    for bad in ("0", "101", "x"):
        refused(w.fetch("GET", f"/tweets?limit={bad}"), 400, f"limit={bad}")


@check("token_required_401")
def check_tokens(w: World) -> None:
    refused(w.fetch("POST", "/tweets", {"text": "no token"}), 401, "no token")
    refused(w.fetch("POST", "/tweets", {"text": "forged"}, "forged.token"), 401, "forged token")
    real = w.token(w.user)
    tampered = real[:-2] + ("AA" if real[-2:] != "AA" else "BB")
    refused(w.fetch("POST", "/tweets", {"text": "tampered"}, tampered), 401, "tampered token")
    tweet_id = w.the_tweet()["id"]
    refused(w.fetch("PUT", f"/tweets/{tweet_id}", {"text": "x"}), 401, "edit without token")
    refused(w.fetch("DELETE", f"/tweets/{tweet_id}"), 401, "delete without token")


@check("search_every_word")
def check_search(w: World) -> None:
    tweet_id = w.the_tweet()["id"]
    for q in (w.tag("alpha").upper(), f"hello {w.tag('alpha')}", f"{w.tag('alpha')} LOAD_TEST"):
        expect(tweet_id in ids(w.read(f"/tweets/search?{urlencode({'q': q})}")),
               f"search {q!r} did not find it")
    q = f"{w.tag('alpha')} {w.tag('absent')}"
    expect(tweet_id not in ids(w.read(f"/tweets/search?{urlencode({'q': q})}")),
           f"search {q!r} found it though one word does not match")


@check("search_hostile_queries_200")
def check_hostile_search(w: World) -> None:
    for q in HOSTILE_QUERIES + [f'{w.tag("alpha")}"', f"{w.tag('alpha')} OR"]:
        ids(w.read(f"/tweets/search?{urlencode({'q': q})}"))
        w.read(f"/accounts/search?{urlencode({'q': q})}")
        w.read(f"/hashtags?{urlencode({'q': q})}")


@check("hashtags_prefix_with_count")
def check_hashtag_prefix(w: World) -> None:
    w.the_tweet()
    for q in (f"LT{w.run}", f"#lt{w.run}t"):
        found = w.read(f"/hashtags?{urlencode({'q': q})}")["hashtags"]
        expect({"tag": w.tag("tag"), "tweets": 1} in found,
               f"/hashtags?q={q} gave {found}, want {w.tag('tag')} with 1 tweet")


@check("hashtag_tweets")
def check_hashtag_tweets(w: World) -> None:
    tweet_id = w.the_tweet()["id"]
    for tag in (w.tag("tag"), f"LT{w.run}TAG", quote(f"ÜBER{w.run}")):
        expect(tweet_id in ids(w.read(f"/hashtags/{tag}/tweets")), f"not under #{tag}")


@check("accounts_list")
def check_accounts_list(w: World) -> None:
    path = "/accounts?limit=100"
    for _ in range(20):
        page = w.read(path)
        accounts = {account["username"]: account for account in page["accounts"]}
        if w.user in accounts:
            check_account(accounts[w.user], w.user)
            return
        if page["next"] is None:
            break
        path = f"/accounts?limit=100&cursor={quote(str(page['next']))}"
    raise Failed(f"{w.user} not in the first pages of /accounts")


@check("accounts_search")
def check_accounts_search(w: World) -> None:
    for q in (w.user.upper(), f"tester {w.run}", w.run):
        found = [a["username"] for a in w.read(f"/accounts/search?{urlencode({'q': q})}")
                 ["accounts"]]
        expect(w.user in found and w.other in found, f"search {q!r} found {found}")
    first = w.read(f"/accounts/search?{urlencode({'q': w.user})}")["accounts"][0]["username"]
    expect(first == w.user, f"the exact username is not first: {first}")


@check("likes_202_running_count_and_pending")
def check_likes(w: World) -> None:
    tweet_id = w.the_tweet()["id"]
    before = w.read(f"/tweets/{tweet_id}")["likes"]
    for n in range(1, 4):
        liked = ok(w.fetch("POST", f"/tweets/{tweet_id}/like"), 202, "like")
        expect(liked == {"id": tweet_id, "likes": before + n},
               f"like {n} answered {liked}, want likes {before + n}")
    now = w.read(f"/tweets/{tweet_id}")["likes"]
    expect(now == before + 3, f"a read shows {now} likes, want {before + 3} (pending included)")


@check("like_unknown_tweet_404")
def check_like_unknown(w: World) -> None:
    for tweet_id in (9_000_000_000_000_000_000, 0):
        refused(w.fetch("POST", f"/tweets/{tweet_id}/like"), 404, f"like tweet {tweet_id}")
    refused(w.fetch("GET", "/tweets/9000000000000000000"), 404, "unknown tweet")


def replayed(first: Reply, again: Reply, status: int, what: str) -> Any:
    """Check that ``again``, sent with ``first``'s Idempotency-Key, repeated its answer marked
    Idempotent-Replayed; return that answer's JSON."""
    answered = ok(first, status, what)
    expect(first.header("idempotent-replayed") == "",
           f"{what}: the first answer carries Idempotent-Replayed")
    expect(ok(again, status, f"{what}, again with the same key") == answered,
           f"{what}, again with the same key: answered {again.body[:160]!r}, not the first "
           f"answer {first.body[:160]!r}")
    expect(again.header("idempotent-replayed") == "true",
           f"{what}, again with the same key: Idempotent-Replayed is "
           f"{again.header('idempotent-replayed')!r}, want 'true'")
    return answered


def key_reused(reply: Reply, what: str) -> None:
    """Check the 422 of a key sent again with a different request."""
    code = refused(reply, 422, what)["code"]
    expect(code == "idempotency_key_reused", f"{what}: code {code!r}, want idempotency_key_reused")


@check("post_tweet_same_key_once")
def check_post_once(w: World) -> None:
    token, text = w.token(w.other), f"Said once {w.tag('once')} #lt{w.run}once"
    count_before = w.read(f"/accounts/{w.other}")["tweet_count"]
    first = w.fetch("POST", "/tweets", {"text": text}, token, key=w.tweet_key)
    again = w.fetch("POST", "/tweets", {"text": text}, token, key=w.tweet_key)
    tweet = replayed(first, again, 201, "post with an Idempotency-Key")
    check_tweet(tweet)
    w.keyed = tweet
    mine = [t["id"] for t in w.read(f"/accounts/{w.other}/tweets?limit=100")["tweets"]
            if t["text"] == text]
    expect(mine == [tweet["id"]], f"the author's tweets hold {mine} with that text, want "
           f"just {tweet['id']}")
    count_now = w.read(f"/accounts/{w.other}")["tweet_count"]
    expect(count_now == count_before + 1, f"tweet_count went {count_before} -> {count_now}")


@check("post_tweet_key_with_other_text_422")
def check_post_key_reused(w: World) -> None:
    tweet, token = w.the_keyed(), w.token(w.other)
    count_before = w.read(f"/accounts/{w.other}")["tweet_count"]
    other = {"text": f"Said otherwise {w.tag('otherwise')}"}
    key_reused(w.fetch("POST", "/tweets", other, token, key=w.tweet_key),
               "the same key with other text")
    expect(w.read(f"/tweets/{tweet['id']}")["text"] == tweet["text"], "the tweet changed")
    count_now = w.read(f"/accounts/{w.other}")["tweet_count"]
    expect(count_now == count_before, f"tweet_count went {count_before} -> {count_now}")


@check("like_same_key_once")
def check_like_once(w: World) -> None:
    tweet_id, key = w.the_keyed()["id"], new_key()
    before = w.read(f"/tweets/{tweet_id}")["likes"]
    first = w.fetch("POST", f"/tweets/{tweet_id}/like", key=key)
    again = w.fetch("POST", f"/tweets/{tweet_id}/like", key=key)
    liked = replayed(first, again, 202, "like with an Idempotency-Key")
    expect(liked == {"id": tweet_id, "likes": before + 1},
           f"the like answered {liked}, want likes {before + 1}")
    now = w.read(f"/tweets/{tweet_id}")["likes"]
    expect(now == before + 1, f"a read shows {now} likes, want {before + 1}: one like")
    other_id = w.the_tweet()["id"]
    other_before = w.read(f"/tweets/{other_id}")["likes"]
    key_reused(w.fetch("POST", f"/tweets/{other_id}/like", key=key),
               "the same key liking another tweet")
    other_now = w.read(f"/tweets/{other_id}")["likes"]
    expect(other_now == other_before, f"the other tweet's likes went {other_before} -> "
           f"{other_now}")


@check("edit_by_author_200")
def check_edit(w: World) -> None:
    tweet_id = w.the_tweet()["id"]
    text = f"Edited {w.tag('alpha')} {w.tag('gamma')} #LT{w.run}Edited #lt{w.run}EDITED"
    edited = ok(w.fetch("PUT", f"/tweets/{tweet_id}", {"text": text}, w.token(w.user)), 200,
                "edit")
    check_tweet(edited)
    expect(edited["text"] == text and edited["edited_at"] is not None, "edit not applied")
    expect(edited["hashtags"] == [w.tag("edited")], f"hashtags {edited['hashtags']}")
    expect(w.read(f"/tweets/{tweet_id}")["text"] == text, "a fresh read shows the old text")
    expect(tweet_id in ids(w.read(f"/hashtags/{w.tag('edited')}/tweets")), "not under new tag")
    expect(tweet_id not in ids(w.read(f"/hashtags/{w.tag('tag')}/tweets")), "still under old")
    expect(tweet_id in ids(w.read(f"/tweets/search?q={w.tag('gamma')}")), "search misses edit")


@check("edit_delete_by_other_403")
def check_not_yours(w: World) -> None:
    tweet_id, token = w.the_tweet()["id"], w.token(w.other)
    refused(w.fetch("PUT", f"/tweets/{tweet_id}", {"text": "mine now"}, token), 403, "edit")
    refused(w.fetch("DELETE", f"/tweets/{tweet_id}", None, token), 403, "delete")
    expect(w.read(f"/tweets/{tweet_id}")["author"] == w.user, "the tweet changed hands")


@check("delete_204_then_404")
def check_delete(w: World) -> None:
    tweet_id, token = w.the_tweet()["id"], w.token(w.user)
    ok(w.fetch("DELETE", f"/tweets/{tweet_id}", None, token), 204, "delete")
    w.deleted = True
    refused(w.fetch("GET", f"/tweets/{tweet_id}"), 404, "read after delete")
    refused(w.fetch("POST", f"/tweets/{tweet_id}/like"), 404, "like after delete")
    refused(w.fetch("PUT", f"/tweets/{tweet_id}", {"text": "x"}, token), 404, "edit after delete")
    refused(w.fetch("DELETE", f"/tweets/{tweet_id}", None, token), 404, "delete twice")
    expect(tweet_id not in ids(w.read(f"/accounts/{w.user}/tweets")), "still in author tweets")


@check("method_not_allowed_405_with_allow")
def check_405(w: World) -> None:
    for method, path in (("PATCH", "/tweets/1"), ("DELETE", "/accounts"), ("PUT", "/stats")):
        refused(w.fetch(method, path), 405, f"{method} {path}")
    allow = {m.strip() for m in w.fetch("PATCH", "/tweets/1").header("allow").split(",")}
    expect({"GET", "PUT", "DELETE"} <= allow, f"Allow is {allow}")


@check("unknown_route_404")
def check_404(w: World) -> None:
    refused(w.fetch("GET", f"/no-such-route-{w.run}"), 404, "unknown route")
    refused(w.fetch("POST", f"/tweets/{w.run}x/like"), 404, "non-numeric tweet id")


@check("body_over_64KiB_413")
def check_413(w: World) -> None:
    raw = json.dumps({"username": w.user, "password": "x" * 70_000}).encode()
    refused(w.fetch("POST", "/sessions", raw=raw), 413, "70 kB body")


@check("front_cache_hit_and_no_cache")
def check_front_cache(w: World) -> None:
    path = f"/accounts/{w.user}/tweets?limit=7"
    seen = []
    for _ in range(8):
        reply = w.client.request("GET", path)
        ok(reply, 200, f"GET {path}")
        if not reply.header("x-cache"):
            raise Skipped("no X-Cache header: no cache in front of this URL")
        seen.append(reply.header("x-cache"))
        if seen[-1] == "HIT":
            expect(reply.header("age").isdigit(), "a HIT without an Age")
            break
    expect("HIT" in seen, f"8 GETs of one path never hit a cache: {seen}")
    fresh = w.client.request("GET", path, headers=FRESH)
    expect(fresh.header("x-cache") == "MISS", "Cache-Control: no-cache was answered from cache")


@check("logs_in_order")
def check_logs(w: World) -> None:
    start = ok(w.fetch("GET", "/logs?limit=1"), 200, "GET /logs")["total"]
    made = [("GET", f"/accounts/{w.user}"), ("GET", f"/accounts/lt_{w.run}_nobody"),
            ("GET", f"/accounts/{w.user}/tweets"), ("POST", f"/tweets/{w.run}9/like"),
            ("GET", f"/hashtags/{w.tag('logs')}/tweets"), ("GET", f"/accounts/{w.other}")]
    for method, path in made:
        w.fetch(method, path)
    reply = w.fetch("GET", f"/logs?after={start}")
    logs = ok(reply, 200, "GET /logs")
    expect("no-store" in reply.header("cache-control"), "/logs lacks Cache-Control: no-store")
    expect(isinstance(logs.get("total"), int) and isinstance(logs.get("db_accesses"), int),
           "/logs lacks total or db_accesses")
    mine = [tuple(c) for c in logs["calls"] if w.run in c[1]]
    expect(mine == made, f"/logs shows {mine}, want {made}")


@check("stats")
def check_stats(w: World) -> None:
    reply = w.fetch("GET", "/stats")
    stats = ok(reply, 200, "GET /stats")
    expect(STATS_KEYS <= set(stats), f"/stats lacks {sorted(STATS_KEYS - set(stats))}")
    expect("no-store" in reply.header("cache-control"), "/stats lacks Cache-Control: no-store")


@check("openapi_3_1")
def check_openapi(w: World) -> None:
    doc = w.read("/openapi.json")
    expect(str(doc.get("openapi", "")).startswith("3.1"), f"openapi is {doc.get('openapi')!r}")
    described = {}
    for path, item in doc.get("paths", {}).items():
        generic = "/".join("{}" if p.startswith("{") else p for p in path.split("/"))
        described[generic] = {method.lower() for method in item}
    for path, methods in API_ROUTES.items():
        expect(methods <= described.get(path, set()), f"{path} {sorted(methods)} undescribed")


# -- reading after writing, through every replica ------------------------------------------


@dataclass(frozen=True)
class Page:
    """A page to read on every replica, and what it must show once a write has reached it."""

    path: str
    field: str  # how the page names what it shows: "id" (tweets), "username" or "tag"
    value: Any
    shown: Callable[[dict[str, Any] | None], bool]  # given the item the page shows, or None
    wanted: str
    status: int = 200

    def shows(self, reply: Reply) -> bool:
        """Tell whether an answer shows what the write made true (or has moved past it)."""
        if reply.status != self.status:
            return False
        item = find(reply, self.field, self.value)
        return self.shown(item) or item is None and moved_past(reply, self.field, self.value)


def showing(path: str, field: str, value: Any, **has: Any) -> Page:
    """A page that must show the item whose ``field`` is ``value``, holding the values ``has``
    names (say, ``likes=3``)."""
    def shown(item: dict[str, Any] | None) -> bool:
        return item is not None and all(item.get(key) == want for key, want in has.items())
    wanted = f"{field} {value!r}" + "".join(f", {key} {want!r}" for key, want in has.items())
    return Page(path, field, value, shown, wanted)


def without(path: str, field: str, value: Any) -> Page:
    """A page (a 200 list) that must not show the item whose ``field`` is ``value``."""
    return Page(path, field, value, lambda item: item is None, f"no {field} {value!r}")


def gone(path: str, tweet_id: int) -> Page:
    """A tweet's page that must answer 404."""
    return Page(path, "id", tweet_id, lambda item: True, "404", 404)


def unused_tag(path: str, tag: str) -> Page:
    """A /hashtags?q= page that must not count any tweet under ``tag``."""
    return Page(path, "tag", tag, lambda item: item is None or item.get("tweets") == 0,
                f"tag {tag!r} absent or with 0 tweets")


def moved_past(reply: Reply, field: str, tweet_id: Any) -> bool:
    """Tell whether a page of tweets (newest first) lists only tweets newer than ``tweet_id``:
    other clients' posts pushed it off since, so the page cannot be showing it stale."""
    tweets = dig(answer(reply), "tweets")
    return (field == "id" and isinstance(tweet_id, int) and isinstance(tweets, list)
            and bool(tweets) and all(isinstance(tweet, dict) and isinstance(tweet.get("id"), int)
                                     and tweet["id"] > tweet_id for tweet in tweets))


def answer(reply: Reply) -> Any:
    """Return the JSON of a 200 answer, else None."""
    if reply.status != 200:
        return None
    try:
        return json.loads(reply.body)
    except ValueError:
        return None


def find(reply: Reply, field: str, value: Any) -> dict[str, Any] | None:
    """Return the item an answer shows with ``field`` == ``value``: the answer itself (one
    tweet, one account) or an entry of its list of tweets, accounts or hashtags."""
    doc = answer(reply)
    if not isinstance(doc, dict):
        return None
    if doc.get(field) == value:
        return doc
    for key in ("tweets", "accounts", "hashtags"):
        items = doc.get(key)
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and item.get(field) == value:
                return item
    return None


def glimpse(reply: Reply, page: Page) -> str:
    """Say briefly what a replica answered: status, X-Cache and Age, and the item or list."""
    head = (f"{reply.status} (X-Cache {reply.header('x-cache') or '-'}, "
            f"Age {reply.header('age') or '-'})")
    item, doc = find(reply, page.field, page.value), answer(reply)
    if item is None and isinstance(doc, dict) and page.field in doc:
        item = doc  # one tweet or account, though not the one wanted
    if item is not None:
        return f"{head} {json.dumps(item)[:240]}"
    for key in ("tweets", "accounts", "hashtags"):
        if isinstance(doc, dict) and isinstance(doc.get(key), list):
            listed = [entry.get(page.field) for entry in doc[key] if isinstance(entry, dict)]
            return f"{head} {key} {listed[:12]}"
    return f"{head} {reply.body[:160]!r}"


def lb_upstreams(client: Client) -> list[dict[str, Any]]:
    """Return the replicas /_lb/stats lists, or skip: the target is not an lb."""
    upstreams = dig(client.get_json("/_lb/stats"), "upstreams")
    if not isinstance(upstreams, list) or not upstreams:
        raise Skipped("no /_lb/stats at this URL: not an lb, no replicas behind it")
    return [up for up in upstreams if isinstance(up, dict)]


@dataclass
class Reader:
    """Where a check reads: one replica directly, or the lb ``reads`` times in a row, which
    round robin spreads over every replica (where the replicas cannot be read directly)."""

    client: Client
    name: str
    reads: int = 1

    def get(self, path: str) -> list[Reply]:
        return [self.client.request("GET", path) for _ in range(self.reads)]


def find_replicas(client: Client) -> list[Reader]:
    """Return a reader per replica that /_lb/stats lists, or one reader through the lb that
    reaches them all; skip when the target is no lb."""
    stats = client.get_json("/_lb/stats")
    healthy = [up for up in lb_upstreams(client) if up.get("healthy")]
    try:
        return [Reader(reach(up.get("address")), f"replica {up.get('address')}")
                for up in healthy]
    except Skipped:
        if dig(stats, "strategy") != "round_robin":
            raise  # hashing sends each path to one replica: the lb cannot show them all
        # Twice round the replicas per read, so every replica answers each read.
        return [Reader(client, f"every replica in turn through the lb "
                       f"({len(healthy)} healthy)", 2 * len(healthy))]


def reach(address: Any) -> Client:
    """Return a client of one replica once its /healthz answers ok, or skip: the address
    cannot be reached from here, or is not on this machine's loopback."""
    host = urlsplit(f"http://{address}").hostname or ""
    if not (host == "localhost" or host == "::1" or host.startswith("127.")):
        # Replicas are read directly only on loopback: under docker compose their addresses
        # are container IPs on a private network, which a test run does not send traffic to.
        raise Skipped(f"replica {address} (from /_lb/stats) is not on this machine's "
                      "loopback; run this where the replicas' addresses are local to read "
                      "through each replica")
    try:
        replica = Client(f"http://{address}", timeout=REPLICA_TIMEOUT_S)
        reply = replica.request("GET", "/healthz")
    except (ValueError, OSError, http.client.HTTPException) as err:
        why = f"{type(err).__name__}: {err}"
    else:
        if answer(reply) == {"status": "ok"}:
            return replica
        why = f"its /healthz answered {reply.status} {reply.body[:60]!r}"
    raise Skipped(f"replica {address} (from /_lb/stats) cannot be reached from here ({why}); "
                  "under docker compose the replicas' addresses are container IPs: run this "
                  "inside the compose network to read through each replica")


def warm(replicas: list[Reader], paths: list[str]) -> None:
    """GET each page on every replica as a reader does, so that each replica holds a copy."""
    for replica in replicas:
        for path in paths:
            replica.get(path)


def settle(replicas: list[Reader], pages: list[Page]) -> None:
    """Poll every page on every replica, as a reader does (no no-cache), until each shows the
    write or the deadline passes; then read them all once more: none may go back."""
    deadline = time.monotonic() + REPLICA_DEADLINE_S
    for replica in replicas:
        for page in pages:
            until_shown(replica, page, deadline)
    for replica in replicas:
        for page in pages:
            for reply in replica.get(page.path):
                expect(page.shows(reply), f"{replica.name} GET {page.path} showed the write, "
                       f"then {glimpse(reply, page)}; want {page.wanted}")


def until_shown(replica: Reader, page: Page, deadline: float) -> None:
    """Read a page on a replica every POLL_S until it shows the write, or fail at the deadline."""
    while True:
        stale = [reply for reply in replica.get(page.path) if not page.shows(reply)]
        if not stale:
            return
        if time.monotonic() >= deadline:
            raise Failed(f"{replica.name} GET {page.path} still shows "
                         f"{glimpse(stale[0], page)} {REPLICA_DEADLINE_S:g} s after the write; "
                         f"want {page.wanted}")
        time.sleep(POLL_S)


def feed_waits(upstreams: list[dict[str, Any]]) -> list[str]:
    """Return what keeps each replica from following its upstream's feed (nothing: all do);
    skip when no replica is a cache, or none follows a feed (switched off)."""
    # A replica the lb sees as down (stopped on purpose, say) serves nobody: leave it out.
    caches = {up.get("address"): up.get("cache") for up in upstreams if up.get("healthy")}
    feeds = {address: cache.get("feed") for address, cache in caches.items()
             if isinstance(cache, dict)}
    if not feeds:
        raise Skipped("no replica behind the lb shows /_cache/stats: no caches to keep true")
    if all(feed is None for feed in feeds.values()):
        raise Skipped("every replica's /_cache/stats has feed: null: following is switched off"
                      " (CACHE_FEED=off), so the caches live by their TTL alone")
    waits = [f"replica {address}: no /_cache/stats through the lb"
             for address in caches if address not in feeds]
    for address, feed in feeds.items():
        followed = dig(feed, "upstreams")
        if not isinstance(followed, list) or not followed:
            waits.append(f"replica {address} follows no feed while others do: feed {feed!r}")
            continue
        waits += [f"replica {address}: the feed of {dig(up, 'address')} is "
                  f"{dig(up, 'state')!r}" for up in followed if dig(up, "state") != "following"]
    return waits


@check("change_feed_not_served_by_lb_404")
def check_feed_hidden(w: World) -> None:
    lb_upstreams(w.client)  # skip unless the target is an lb (a bare api serves its feed)
    for path in ("/_changes", "/_changes?after=0&wait=0"):
        refused(w.fetch("GET", path), 404, f"GET {path} through the lb")


@check("every_replica_follows_change_feed")
def check_feed_followed(w: World) -> None:
    waits = feed_waits(lb_upstreams(w.client))
    deadline = time.monotonic() + REPLICA_DEADLINE_S  # a follower starts as "connecting"
    while waits and time.monotonic() < deadline:
        time.sleep(POLL_S)
        waits = feed_waits(lb_upstreams(w.client))
    expect(not waits, "; ".join(waits))


@check("every_replica_sees_new_account")
def check_replicas_new_account(w: World) -> None:
    replicas = w.replicas()
    who, display = w.newcomer, f"Replica Reader {w.run}"
    searches = [f"/accounts/search?{urlencode({'q': q})}" for q in (who, f"reader {w.run}")]
    pages = [showing(path, "username", who, display_name=display)
             for path in [f"/accounts/{who}", "/accounts?limit=100", *searches]]
    warm(replicas, [page.path for page in pages])
    body = {"username": who, "password": w.password, "display_name": display}
    ok(w.fetch("POST", "/accounts", body), 201, f"sign up {who}")
    session = ok(w.fetch("POST", "/sessions", {"username": who, "password": w.password}), 201,
                 f"log in {who}")
    w.tokens[who] = session["token"]  # the next checks post as the newcomer
    settle(replicas, pages)


@check("every_replica_sees_post")
def check_replicas_post(w: World) -> None:
    replicas = w.replicas()
    who, tag, word = w.newcomer, w.tag("echo"), w.tag("said")
    lists = ["/tweets", f"/accounts/{who}/tweets", f"/hashtags/{tag}/tweets",
             f"/tweets/search?q={word}"]
    counts = [f"/accounts/{who}", f"/hashtags?q={tag}"]
    warm(replicas, lists + counts)
    text = f"Read after write {word} #{tag}"
    w.echo = ok(w.fetch("POST", "/tweets", {"text": text}, w.token(who)), 201, "post")
    tweet_id = w.echo["id"]
    pages = [showing(path, "id", tweet_id, text=text, likes=0)
             for path in [f"/tweets/{tweet_id}", *lists]]
    settle(replicas, pages + [showing(counts[0], "username", who, tweet_count=1),
                              showing(counts[1], "tag", tag, tweets=1)])


@check("every_replica_sees_edit")
def check_replicas_edit(w: World) -> None:
    replicas = w.replicas()
    who, tweet_id = w.newcomer, w.the_echo()["id"]
    old_tag, new_tag = w.tag("echo"), w.tag("reecho")
    old_word, new_word = w.tag("said"), w.tag("resaid")
    text = f"Edited after write {new_word} #{new_tag}"
    pages = [*(showing(path, "id", tweet_id, text=text, hashtags=[new_tag]) for path in (
                 f"/tweets/{tweet_id}", "/tweets", f"/accounts/{who}/tweets",
                 f"/hashtags/{new_tag}/tweets", f"/tweets/search?q={new_word}")),
             without(f"/hashtags/{old_tag}/tweets", "id", tweet_id),
             without(f"/tweets/search?q={old_word}", "id", tweet_id),
             showing(f"/hashtags?q={new_tag}", "tag", new_tag, tweets=1),
             unused_tag(f"/hashtags?q={old_tag}", old_tag)]
    warm(replicas, [page.path for page in pages])
    ok(w.fetch("PUT", f"/tweets/{tweet_id}", {"text": text}, w.token(who)), 200, "edit")
    settle(replicas, pages)


@check("every_replica_sees_likes")
def check_replicas_likes(w: World) -> None:
    replicas = w.replicas()
    tweet_id, tag = w.the_echo()["id"], w.tag("reecho")
    paths = [f"/tweets/{tweet_id}", "/tweets", f"/accounts/{w.newcomer}/tweets",
             f"/hashtags/{tag}/tweets", f"/tweets/search?q={w.tag('resaid')}"]
    # One like a round, so that it passes through one replica and the others learn of it
    # from the feed alone. The second comes within LIKE_PUBLISH_S of the first one's
    # publication: it is seen only if the api publishes the throttled key once that is over.
    for _ in range(2):
        warm(replicas, paths)
        liked = ok(w.fetch("POST", f"/tweets/{tweet_id}/like"), 202, "like")
        settle(replicas, [showing(path, "id", tweet_id, likes=liked["likes"]) for path in paths])


@check("every_replica_sees_delete")
def check_replicas_delete(w: World) -> None:
    replicas = w.replicas()
    who, tweet_id, tag = w.newcomer, w.the_echo()["id"], w.tag("reecho")
    pages = [gone(f"/tweets/{tweet_id}", tweet_id),
             *(without(path, "id", tweet_id) for path in (
                 "/tweets", f"/accounts/{who}/tweets", f"/hashtags/{tag}/tweets",
                 f"/tweets/search?q={w.tag('resaid')}")),
             showing(f"/accounts/{who}", "username", who, tweet_count=0),
             unused_tag(f"/hashtags?q={tag}", tag)]
    warm(replicas, [page.path for page in pages])
    ok(w.fetch("DELETE", f"/tweets/{tweet_id}", None, w.token(who)), 204, "delete")
    settle(replicas, pages)


# -- running the checks --------------------------------------------------------------------


def run_functional(url: str) -> int:
    """Run every check against ``url``, print one line each and a summary; return the exit
    status."""
    world = World(Client(url))
    print(f"functional checks against {url} (accounts lt_{world.run}, lt_{world.run}_b)")
    results: Counter[str] = Counter()
    for name, function in CHECKS:
        try:
            function(world)
        except Skipped as why:
            results["skipped"] += 1
            print(f"SKIP {name}: {why}", flush=True)
        except Failed as why:
            results["failed"] += 1
            print(f"FAIL {name}: {why}", flush=True)
        except Exception as err:  # a crash fails this check only
            results["failed"] += 1
            print(f"FAIL {name}: {type(err).__name__}: {err}", flush=True)
        else:
            results["passed"] += 1
            print(f"PASS {name}", flush=True)
    skipped = f" ({results['skipped']} skipped)" if results["skipped"] else ""
    print(f"{results['passed']} passed, {results['failed']} failed{skipped}")
    return 1 if results["failed"] else 0


# -- load ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadConfig:
    """The load run's options."""

    url: str
    concurrency: int
    duration: float
    requests: int | None
    mix: dict[str, float]
    hot: float
    hot_tweets: int
    accounts: int
    tweets: int
    json_path: str | None
    verify_likes: bool
    flush_wait: float
    seed: int | None


@dataclass
class Fixture:
    """The accounts and tweets made before the run: what the workers read and like."""

    run: str
    users: list[str]
    tokens: list[str]
    tweet_ids: list[int]
    likes_before: dict[int, int]
    hot_ids: list[int]


@dataclass
class Call:
    """One request a worker makes."""

    op: str
    method: str
    path: str
    expect: int
    body: Any = None
    token: str | None = None
    tweet_id: int | None = None
    key: str | None = None  # the Idempotency-Key of a POST, which a retry would send again


@dataclass
class Tally:
    """One worker's counts; merged once the workers have stopped."""

    requests: int = 0
    error_count: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    ops: Counter[str] = field(default_factory=Counter)
    likes: Counter[int] = field(default_factory=Counter)  # tweet -> likes answered 202


def prepare(config: LoadConfig) -> Fixture:
    """Sign up and log in the accounts, then post the tweets (in parallel)."""
    run, client = secrets.token_hex(4), Client(config.url)
    users = [f"lt_{run}_{n}" for n in range(config.accounts)]
    tokens = [sign_up_and_log_in(client, user) for user in users]
    texts = [tweet_text(run, n) for n in range(config.tweets)]
    posted: list[dict[str, Any]] = []
    threads = [threading.Thread(target=post_all, daemon=True,
                                args=(config.url, texts[n::8], tokens[n % len(tokens)], posted))
               for n in range(min(8, len(texts)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(posted) != len(texts):
        raise SetupError(f"posted {len(posted)} of {len(texts)} tweets")
    posted.sort(key=lambda tweet: tweet["id"])
    tweet_ids = [tweet["id"] for tweet in posted]
    return Fixture(run, users, tokens, tweet_ids,
                   {tweet["id"]: tweet["likes"] for tweet in posted},
                   tweet_ids[:config.hot_tweets])


class SetupError(Exception):
    """The accounts or tweets for the load run could not be made."""


def sign_up_and_log_in(client: Client, user: str) -> str:
    """Make an account and return its token."""
    password = "pw-" + secrets.token_hex(8)
    reply = client.request("POST", "/accounts", {"username": user, "password": password})
    if reply.status != 201:
        raise SetupError(f"sign up {user}: {reply.status} {reply.body[:160]!r}")
    reply = client.request("POST", "/sessions", {"username": user, "password": password})
    if reply.status != 201:
        raise SetupError(f"log in {user}: {reply.status} {reply.body[:160]!r}")
    return str(json.loads(reply.body)["token"])


def tweet_text(run: str, n: int) -> str:
    """Return the text of a load-test tweet: searchable words and one of five hashtags."""
    return f"load test {run} tweet {n} w{n % 10} #lt{run}t{n % 5}"


def post_all(url: str, texts: list[str], token: str, posted: list[dict[str, Any]]) -> None:
    """Post the texts over one connection; add the tweets to ``posted``."""
    client = Client(url)
    for text in texts:
        try:
            reply = client.request("POST", "/tweets", {"text": text}, token=token)
        except (OSError, http.client.HTTPException):
            continue  # prepare() sees the shortfall
        if reply.status == 201:
            posted.append(json.loads(reply.body))  # list.append is atomic
    client.close()


def next_call(config: LoadConfig, fixture: Fixture, rng: random.Random) -> Call:
    """Choose the next request by the mix."""
    op = rng.choices(list(config.mix), weights=list(config.mix.values()))[0]
    if op == "likes":
        hot = fixture.hot_ids and rng.random() < config.hot
        tweet_id = rng.choice(fixture.hot_ids if hot else fixture.tweet_ids)
        return Call(op, "POST", f"/tweets/{tweet_id}/like", 202, tweet_id=tweet_id,
                    key=new_key())
    if op == "posts":
        n = rng.randrange(1_000_000)
        return Call(op, "POST", "/tweets", 201, {"text": tweet_text(fixture.run, n)},
                    rng.choice(fixture.tokens), key=new_key())
    return Call(op, "GET", read_path(fixture, rng), 200)


def read_path(fixture: Fixture, rng: random.Random) -> str:
    """Choose a read: timeline, one tweet, one account, a hashtag prefix or a search."""
    kind = rng.choices(["timeline", "tweet", "account", "hashtags", "search"],
                       weights=[2, 4, 2, 1, 1])[0]
    if kind == "timeline":
        return "/tweets"
    if kind == "tweet":
        return f"/tweets/{rng.choice(fixture.tweet_ids)}"
    if kind == "account":
        return f"/accounts/{rng.choice(fixture.users)}"
    if kind == "hashtags":
        return f"/hashtags?q=lt{fixture.run}t"
    return f"/tweets/search?{urlencode({'q': f'{fixture.run} w{rng.randrange(10)}'})}"


def work(config: LoadConfig, fixture: Fixture, tally: Tally, stop: threading.Event,
         tickets: Iterator[int], rng: random.Random) -> None:
    """Send requests over one kept-alive connection until told to stop."""
    client = Client(config.url)
    while not stop.is_set():
        if config.requests is not None and next(tickets) >= config.requests:
            break
        call = next_call(config, fixture, rng)
        tally.ops[call.op] += 1
        try:
            reply = client.request(call.method, call.path, call.body, token=call.token,
                                   key=call.key)
        except (OSError, http.client.HTTPException) as err:
            tally.errors[type(err).__name__] += 1
            tally.error_count += 1
        else:
            tally.latencies.append(reply.seconds)
            if reply.status != call.expect:
                tally.errors[f"HTTP {reply.status}"] += 1
                tally.error_count += 1
            elif call.tweet_id is not None:
                tally.likes[call.tweet_id] += 1
        tally.requests += 1
    client.close()


def show_progress(tallies: list[Tally], started: float, done: threading.Event) -> None:
    """Rewrite one progress line on stderr every second until done."""
    last = 0
    while not done.wait(1.0):
        total = sum(t.requests for t in tallies)
        elapsed = time.monotonic() - started
        errors = sum(t.error_count for t in tallies)
        sys.stderr.write(f"\r  {elapsed:6.1f} s  {total:9d} requests  "
                         f"{total / elapsed:8.0f} req/s (last second {total - last:6d})  "
                         f"errors {errors}   ")
        sys.stderr.flush()
        last = total
    sys.stderr.write("\n")


def drive(config: LoadConfig, fixture: Fixture) -> tuple[Tally, float]:
    """Run the workers for the duration (or number of requests); return the merged tally and
    the seconds it took."""
    tallies = [Tally() for _ in range(config.concurrency)]
    stop, done, tickets = threading.Event(), threading.Event(), count()
    seed = config.seed if config.seed is not None else secrets.randbits(32)
    workers = [threading.Thread(target=work, daemon=True,
                                args=(config, fixture, tally, stop, tickets,
                                      random.Random(seed + n)))
               for n, tally in enumerate(tallies)]
    started = time.monotonic()
    progress = threading.Thread(target=show_progress, args=(tallies, started, done), daemon=True)
    progress.start()
    for worker in workers:
        worker.start()
    try:
        if config.requests is None:
            stop.wait(config.duration)
            stop.set()
        for worker in workers:
            worker.join()
    except KeyboardInterrupt:  # Ctrl-C ends the run early; report what was measured
        stop.set()
        for worker in workers:
            worker.join()
    seconds = time.monotonic() - started
    done.set()
    progress.join()
    return merge(tallies), seconds


def merge(tallies: list[Tally]) -> Tally:
    """Add the workers' tallies into one."""
    total = Tally()
    for tally in tallies:
        total.requests += tally.requests
        total.error_count += tally.error_count
        total.latencies.extend(tally.latencies)
        total.errors.update(tally.errors)
        total.ops.update(tally.ops)
        total.likes.update(tally.likes)
    return total


def percentile(ordered: list[float], share: float) -> float:
    """Return the nearest-rank percentile of sorted values (0 if there are none)."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def latency_ms(latencies: list[float]) -> dict[str, float]:
    """Summarise latencies in milliseconds."""
    ordered = sorted(latencies)
    mean = sum(ordered) / len(ordered) if ordered else 0.0
    points = {"p50": 0.50, "p95": 0.95, "p99": 0.99, "max": 1.0}
    summary = {name: percentile(ordered, share) * 1000 for name, share in points.items()}
    return {name: round(value, 2) for name, value in {**summary, "mean": mean * 1000}.items()}


# -- what each layer saved -----------------------------------------------------------------


def snapshot(client: Client) -> dict[str, Any]:
    """Read every layer's counters: the API's /stats (with the store's and dbcache's), the
    call log's total, and the front tier's (an lb's, or a single cache's) when there is one."""
    return {"api": client.get_json("/stats"), "logs": client.get_json("/logs?limit=1"),
            "front": front_stats(client)}


def front_stats(client: Client) -> dict[str, Any] | None:
    """Return the front caches' stats: via /_lb/stats, or /_cache/stats; None for neither."""
    lb = client.get_json("/_lb/stats")
    if isinstance(lb, dict):
        return {"kind": "lb", "upstreams": len(lb.get("upstreams", [])),
                "caches": [up["cache"] for up in lb.get("upstreams", []) if up.get("cache")],
                "requests": sum(up.get("requests", 0) for up in lb.get("upstreams", []))}
    cache = client.get_json("/_cache/stats")
    if isinstance(cache, dict):
        return {"kind": "cache", "upstreams": 1, "caches": [cache], "requests": None}
    return None


def dig(doc: Any, *keys: str) -> Any:
    """Return doc[k1][k2]..., or None where something is missing."""
    for key in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def change(before: Any, after: Any, *keys: str) -> int | None:
    """Return how much a counter grew between two snapshots (None if either lacks it)."""
    old, new = dig(before, *keys), dig(after, *keys)
    if isinstance(old, (int, float)) and isinstance(new, (int, float)):
        return int(new - old)
    return None


def rate(hits: int | None, misses: int | None) -> float | None:
    """Return a hit rate, or None when nothing was counted."""
    if hits is None or misses is None or hits + misses == 0:
        return None
    return round(hits / (hits + misses), 4)


def front_change(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any] | None:
    """Return what the front caches did during the run, summed over the replicas."""
    old, new = before.get("front"), after.get("front")
    if old is None or new is None:
        return None
    sums = {key: change({key: sum(c.get(key, 0) for c in old["caches"])},
                        {key: sum(c.get(key, 0) for c in new["caches"])}, key)
            for key in ("hits", "misses", "upstream_requests")}
    return {"kind": new["kind"], "caches": len(new["caches"]),
            "lb_forwarded": change(old, new, "requests"), **sums,
            "hit_rate": rate(sums["hits"], sums["misses"])}


def savings(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Return what each layer did and saved between two snapshots."""
    def api(*keys: str) -> int | None:
        return change(before, after, "api", *keys)
    dbcache = {key: api("database", "dbcache", key)
               for key in ("hits", "misses", "upstream_requests")}
    likes: dict[str, Any] = {"received": api("likes_received"), "written": api("likes_written"),
                             "batches": api("batches"), "store_requests": api("store_requests")}
    if likes["received"] and likes["store_requests"] is not None:
        likes["store_requests_per_like"] = round(likes["store_requests"] / likes["received"], 4)
    return {
        "front_cache": front_change(before, after),
        "api": {"calls": api("calls"), "logged_calls": change(before, after, "logs", "total"),
                "db_accesses": api("db_accesses")},
        "dbcache": {**dbcache, "hit_rate": rate(dbcache["hits"], dbcache["misses"])},
        "store": {"requests": api("database", "store", "requests"),
                  "queries": api("database", "store", "queries")},
        "likes": likes,
    }


# -- verifying likes -----------------------------------------------------------------------


def wait_for_flush(client: Client, seconds: float) -> tuple[bool, Any]:
    """Poll /stats until nothing is pending in the like batcher or time runs out; return
    whether it emptied and the last /stats."""
    started = time.monotonic()
    while True:
        stats = client.get_json("/stats")
        pending = dig(stats, "pending")
        waited = time.monotonic() - started
        if pending == 0 or waited >= seconds:
            return pending == 0, stats
        sys.stderr.write(f"\r  {waited:6.1f} s  waiting for the like batcher: {pending} pending ")
        sys.stderr.flush()
        time.sleep(1.0)


def verify_likes(config: LoadConfig, fixture: Fixture, liked: Counter[int],
                 before: dict[str, Any]) -> dict[str, Any]:
    """Once the batcher has flushed, check every liked tweet counts every 202 it answered."""
    client = Client(config.url)
    flushed, stats = wait_for_flush(client, config.flush_wait)
    sys.stderr.write("\n")
    mismatches = []
    for tweet_id, sent in sorted(liked.items()):
        want = fixture.likes_before[tweet_id] + sent
        try:
            reply = client.request("GET", f"/tweets/{tweet_id}", headers=FRESH)
            got: Any = json.loads(reply.body).get("likes") if reply.status == 200 else None
        except (OSError, http.client.HTTPException, ValueError) as err:
            got = type(err).__name__
        if got != want:
            mismatches.append({"tweet": tweet_id, "want": want, "got": got})
    client.close()
    return {"flushed": flushed, "pending": dig(stats, "pending"),
            "tweets": len(liked), "likes_sent": sum(liked.values()),
            "written_after_flush": change(before, {"api": stats}, "api", "likes_written"),
            "store_requests_after_flush": change(before, {"api": stats}, "api",
                                                 "store_requests"),
            "mismatches": mismatches, "ok": flushed and not mismatches}


# -- the load run and its report -----------------------------------------------------------


def run_load(config: LoadConfig) -> int:
    """Prepare, snapshot, drive, snapshot, (verify), report; return the exit status."""
    print(f"load against {config.url}: preparing {config.accounts} accounts and "
          f"{config.tweets} tweets...", file=sys.stderr)
    try:
        fixture = prepare(config)
    except (SetupError, OSError, http.client.HTTPException, ValueError) as err:
        print(f"setup failed: {err}", file=sys.stderr)
        return 2
    client = Client(config.url)
    before = snapshot(client)
    tally, seconds = drive(config, fixture)
    after = snapshot(Client(config.url))
    result = summarise(config, tally, seconds, before, after)
    if config.verify_likes:
        result["verify_likes"] = verify_likes(config, fixture, tally.likes, before)
    print(report(result))
    if config.json_path:
        with open(config.json_path, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=2)
    verified = dig(result, "verify_likes", "ok") is not False
    return 0 if tally.error_count == 0 and verified else 1


def summarise(config: LoadConfig, tally: Tally, seconds: float, before: dict[str, Any],
              after: dict[str, Any]) -> dict[str, Any]:
    """Return the run's results as one JSON-ready document."""
    options = {key: value for key, value in asdict(config).items() if key != "json_path"}
    return {
        "url": config.url, "options": options, "duration_s": round(seconds, 3),
        "requests": tally.requests, "requests_per_s": round(tally.requests / seconds, 1),
        "by_op": dict(tally.ops), "likes_accepted": sum(tally.likes.values()),
        "latency_ms": latency_ms(tally.latencies),
        "error_count": tally.error_count, "errors": dict(tally.errors),
        "savings": savings(before, after), "stats_before": before, "stats_after": after,
        "verify_likes": None,
    }


def show(value: Any, unit: str = "") -> str:
    """Format a counter that may be missing."""
    if value is None:
        return "n/a"
    if isinstance(value, float) and unit == "%":
        return f"{value * 100:.1f}%"
    return f"{value}{unit}"


def report(result: dict[str, Any]) -> str:
    """Return the human-readable report of a load run."""
    lat, ops = result["latency_ms"], result["by_op"]
    errors = ", ".join(f"{kind} x{n}" for kind, n in sorted(result["errors"].items())) or "none"
    lines = [
        f"requests      {result['requests']} in {result['duration_s']} s = "
        f"{result['requests_per_s']} req/s  ({result['options']['concurrency']} clients; "
        + ", ".join(f"{op} {n}" for op, n in sorted(ops.items())) + ")",
        f"latency ms    p50 {lat['p50']}  p95 {lat['p95']}  p99 {lat['p99']}  "
        f"max {lat['max']}  mean {lat['mean']}",
        f"errors        {result['error_count']}: {errors}",
        "what each layer did and saved during the run:",
        *layer_lines(result["savings"], result["requests"]),
    ]
    if result["verify_likes"] is not None:
        lines.append(verify_line(result["verify_likes"]))
    return "\n".join(lines)


def layer_lines(saved: dict[str, Any], sent: int) -> list[str]:
    """Return one report line per layer."""
    front, api, db, store, likes = (saved[key] for key in
                                    ("front_cache", "api", "dbcache", "store", "likes"))
    lines = []
    if front is None:
        lines.append("  front caches  none answer at this URL (no /_lb/stats or /_cache/stats)")
    else:
        lines.append(f"  front caches  {front['caches']} via {front['kind']}: hits "
                     f"{show(front['hits'])}, misses {show(front['misses'])}, hit rate "
                     f"{show(front['hit_rate'], '%')}; passed {show(front['upstream_requests'])}"
                     f" of {sent} requests on to the API")
    lines += [
        f"  api           calls {show(api['calls'])} (logged {show(api['logged_calls'])}), "
        f"db accesses {show(api['db_accesses'])}",
        f"  dbcache       hits {show(db['hits'])}, misses {show(db['misses'])}, hit rate "
        f"{show(db['hit_rate'], '%')}; passed on {show(db['upstream_requests'])}",
        f"  store         requests {show(store['requests'])}, queries {show(store['queries'])}",
        f"  likes         received {show(likes['received'])}, written {show(likes['written'])}"
        f" in {show(likes['batches'])} batches, store requests {show(likes['store_requests'])}"
        f" ({show(likes.get('store_requests_per_like'))} per like)",
    ]
    return lines


def verify_line(verified: dict[str, Any]) -> str:
    """Return the report line of --verify-likes."""
    head = (f"verify likes  {'OK' if verified['ok'] else 'FAILED'}: {verified['likes_sent']} "
            f"likes on {verified['tweets']} tweets; batcher "
            f"{'flushed' if verified['flushed'] else 'NOT flushed'} (pending "
            f"{show(verified['pending'])}), written {show(verified['written_after_flush'])} "
            f"with {show(verified['store_requests_after_flush'])} store requests")
    wrong = verified["mismatches"]
    if wrong:
        head += f"; {len(wrong)} tweets miscounted, e.g. {wrong[:3]}"
    return head


# -- command line --------------------------------------------------------------------------


def mix_option(text: str) -> dict[str, float]:
    """Parse --mix: 'reads=80,posts=5,likes=15'."""
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, _, share = part.partition("=")
        name = name.strip()
        if name not in ("reads", "posts", "likes"):
            raise argparse.ArgumentTypeError(f"unknown kind {name!r}: use reads, posts, likes")
        try:
            mix[name] = float(share)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not kind=percent") from None
        if mix[name] < 0:
            raise argparse.ArgumentTypeError(f"{part!r} is negative")
    if sum(mix.values()) <= 0:
        raise argparse.ArgumentTypeError("the mix adds up to nothing")
    return {name: share for name, share in mix.items() if share > 0}


def share_option(text: str) -> float:
    """Parse a share from 0 to 1."""
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """Return a parser of a number above zero."""
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be above zero")
        return value
    return parse


EPILOG = """\
what `load` reports:
  requests, requests/s, latency p50/p95/p99/max (ms, per request as this client saw it),
  errors by kind (an unexpected HTTP status, or the exception's name), and, from the counters
  every layer keeps, read before and after the run through the same URL:
    front caches  hits, misses, hit rate, and the requests they passed on to the API, summed
                  over the caches behind /_lb/stats (or the one cache at /_cache/stats);
                  skipped when the URL has neither (say, the api). Misses count requests
                  that waited for a concurrent miss of the same path, so what reached the API
                  is the "passed on" figure, not the misses.
    api           calls (/stats, and /logs' total) and accesses towards the database
    dbcache       hits and misses of the database cache, requests passed to the store
    store         requests and SQL queries the store ran
    likes         likes received vs written, batches, store requests spent on likes
  The numbers are deltas, so a stack shared with other clients counts their work too, and the
  /stats and /logs reads themselves add a few calls.

--verify-likes: after the run, poll /stats until the like batcher has nothing pending (up to
  --flush-wait s; LIKE_MAX_AGE_S is 60 s by default), then read every tweet this run liked
  with Cache-Control: no-cache and check likes == likes before + the 202s it answered.

exit status: functional: 1 if any check failed. load: 1 if any request failed or the likes
  did not verify, 2 if the accounts and tweets could not be made.

The client is Python: its worker threads share one GIL, so past a few thousand requests/s
(fewer on a small machine that also runs the stack) the client itself is the bottleneck and
the numbers are a floor on what the stack can do. It reports what it measured; compare
configurations with the same client, not absolute numbers.
"""


def parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=DEFAULT_URL,
                        help=f"the stack's front door: the lb of `make run` (default {DEFAULT_URL})"
                        "; a cache or the api itself work too")
    top = argparse.ArgumentParser(description=__doc__, epilog=EPILOG,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = top.add_subparsers(dest="mode", required=True, metavar="{functional,load}")
    modes.add_parser("functional", parents=[common], help="check every feature over HTTP",
                     description="Make accounts and tweets named lt_<random hex> and check, "
                     "one PASS/FAIL line each, what DESIGN.md promises.")
    add_load_options(modes.add_parser(
        "load", parents=[common], help="measure throughput, latency and what each layer saved",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Make a few accounts and tweets, then send a mix of reads, posts and\n"
        "likes from --concurrency threads, one kept-alive connection each (never retried:\n"
        "a failed request is counted as an error and the connection is reopened)."))
    return top


def add_load_options(load: argparse.ArgumentParser) -> None:
    """Add the load mode's options."""
    add = load.add_argument
    add("--concurrency", type=positive(int), default=32, help="worker threads (default 32)")
    add("--duration", type=positive(float), default=30.0, help="seconds to run (default 30)")
    add("--requests", type=positive(int),
        help="stop after this many requests instead of after --duration")
    add("--mix", type=mix_option, default=mix_option("reads=80,posts=5,likes=15"),
        help="percentages of reads, posts and likes (default reads=80,posts=5,likes=15); reads"
        " are GET /tweets, /tweets/{id}, /accounts/{u}, /hashtags?q=, /tweets/search?q=")
    add("--hot", type=share_option, default=0.5,
        help="share of likes that go to the few hot tweets (default 0.5)")
    add("--hot-tweets", type=positive(int), default=3, help="how many hot tweets (default 3)")
    add("--accounts", type=positive(int), default=4,
        help="accounts made (and logged in once) beforehand (default 4)")
    add("--tweets", type=positive(int), default=100, help="tweets posted beforehand (default 100)")
    add("--json", dest="json_path", metavar="FILE", help="also write the results as JSON")
    add("--verify-likes", action="store_true",
        help="after the run, check that every like answered 202 was counted (see below)")
    add("--flush-wait", type=float, default=75.0,
        help="seconds --verify-likes waits for the batcher to flush (default 75)")
    add("--seed", type=int, help="seed the request mix, for repeatable runs")


def main(argv: list[str] | None = None) -> int:
    """Run the chosen mode; return the exit status."""
    command_line = parser()
    args = command_line.parse_args(argv)
    try:
        Client(args.url)
    except ValueError as err:
        command_line.error(str(err))
    if args.mode == "functional":
        return run_functional(args.url)
    options = {key: value for key, value in vars(args).items() if key != "mode"}
    return run_load(LoadConfig(**options))


if __name__ == "__main__":
    sys.exit(main())
