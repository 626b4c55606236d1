"""store: the database server — a small JSON-over-HTTP data API over one sqlite3 file.

It is the only process that opens the file (WAL mode, one connection per thread). The public
rules (validation, passwords, hashtag parsing) live in ``api``; this service trusts its caller
for those but still answers 400 for a malformed request, never 500.

Environment: HOST (127.0.0.1), PORT (8400), DATA_DIR (./data; the file is twitter.sqlite3),
LOG_REQUESTS (off).

Routes (all JSON; list routes take ?limit=1..100&cursor=<next of the previous page>):
  GET  /healthz, /stats
  POST /accounts {username, password_hash, display_name, idempotency?}     GET /accounts
  GET  /accounts/search?q=   /accounts/{username}   /accounts/{username}/tweets
  GET  /accounts/{username}/credentials   (what log in needs, generation included; never
       cached)
  PUT  /accounts/{username}/password {password_hash}   (and ends every token issued so far)
  GET  /token-generations/{account_id}   PUT /token-generations/{account_id} {through}
  POST /token-generations/{account_id}/ended {session, until}
       (each answers {account_id, username, generation, ended}: the account's token generation and
       the sessions ended in it whose tokens have not expired, never cached; the PUT ends
       the tokens of every generation up to ``through``, the POST one session until its
       token's expiry, or every session of the account past 100 ended ones)
  POST /tweets {author_id, text, hashtags, idempotency?}
  GET  /tweets   /tweets/search?q=   /tweets/{id}
  PUT  /tweets/{id} {text, hashtags, author_id?}   DELETE /tweets/{id}?author_id= (answers the
       tweet as it was)
  GET  /hashtags?q=   /hashtags/{tag}/tweets
  POST /like-batches {batch_id, likes: {tweet_id: n}}   (each batch_id applied once)
  GET  /_changes?epoch=&after=&wait=   (the change feed dbcache follows; see httpkit.feed)

Every cacheable answer carries Surrogate-Key (what it shows); every write publishes the keys
it made untrue to the change feed before it is answered, and names them in Changed-Keys.

The two creating writes take ``idempotency: {scope, key, fingerprint, window_s}``, the api's
Idempotency-Key: the first answer is kept in the write's transaction, and a repeat within the
window gets it again with ``Idempotent-Replayed: true``, changing and publishing nothing (the
same key with another fingerprint is a 422).
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Callable, Iterable, Iterator

from httpkit import (HTTPError, Request, Response, Router, Server, json_response, optional,
                     page_params, require, serve)
from httpkit.messages import after_param
from httpkit.config import env_bool, env_int, env_str, run_main
from httpkit.feed import (CHANGED_KEYS, SURROGATE_KEY, ChangeFeed, account_key, changes_handler,
                          key_header, tag_key, tweet_key)
from httpkit.messages import MAX_ID, path_id, whole_number
from store.db import (Database, KeyReused, NotAuthor, Replayed, RequestKey, UnknownAccount,
                      UsernameTaken)

NO_STORE = [("Cache-Control", "no-store")]
ID = "{id:[0-9]+}"
REPLAYED = ("Idempotent-Replayed", "true")


@dataclass(frozen=True, kw_only=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8400
    data_dir: str = "data"
    log_requests: bool = False

    @classmethod
    def from_env(cls) -> Config:
        """Read the configuration from the environment."""
        return cls(host=env_str("HOST", cls.host), port=env_int("PORT", cls.port, 0),
                   data_dir=env_str("DATA_DIR", cls.data_dir),
                   log_requests=env_bool("LOG_REQUESTS", False))


class StoreApp:
    """The data API's handlers over one ``Database``."""

    def __init__(self, db: Database, feed: ChangeFeed | None = None) -> None:
        self.db = db
        self.feed = feed or ChangeFeed()
        self.requests = 0
        self._lock = threading.Lock()

    def routes(self) -> Router:
        """Return the routing table."""
        router = Router()
        for method, template, handler in [
            ("GET", "/healthz", self.health),
            ("GET", "/stats", self.stats),
            ("POST", "/accounts", self.create_account),
            ("GET", "/accounts", self.list_accounts),
            ("GET", "/accounts/search", self.search_accounts),
            ("GET", "/accounts/{username}", self.get_account),
            ("GET", "/accounts/{username}/credentials", self.get_credentials),
            ("GET", "/accounts/{username}/tweets", self.author_tweets),
            ("PUT", "/accounts/{username}/password", self.set_password),
            ("GET", f"/token-generations/{ID}", self.token_generation),
            ("PUT", f"/token-generations/{ID}", self.end_tokens),
            ("POST", f"/token-generations/{ID}/ended", self.end_session),
            ("POST", "/tweets", self.create_tweet),
            ("GET", "/tweets", self.timeline),
            ("GET", "/tweets/search", self.search_tweets),
            ("GET", f"/tweets/{ID}", self.get_tweet),
            ("PUT", f"/tweets/{ID}", self.edit_tweet),
            ("DELETE", f"/tweets/{ID}", self.delete_tweet),
            ("GET", "/hashtags", self.hashtags),
            ("GET", "/hashtags/{tag}/tweets", self.tag_tweets),
            ("POST", "/like-batches", self.apply_like_batch),
            ("GET", "/_changes", changes_handler(self.feed)),
        ]:
            # Probes, statistics and the feed are not data requests: reading them must not
            # move them.
            plain = template in ("/healthz", "/stats", "/_changes")
            router.add(method, template, handler if plain else self.counted(handler))
        return router

    def counted(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """Wrap a handler so that every data request is counted."""
        def wrapper(request: Request) -> Response:
            with self._lock:
                self.requests += 1
            try:
                return handler(request)
            except OverflowError:  # an integer beyond SQLite's 64 bits
                raise HTTPError(HTTPStatus.BAD_REQUEST, "a number is out of range",
                                "invalid_field") from None
            except Replayed as replay:  # nothing changed: no Changed-Keys, nothing published
                return json_response(replay.answer, replay.status, [REPLAYED])
            except KeyReused:
                raise HTTPError(HTTPStatus.UNPROCESSABLE_ENTITY, "this Idempotency-Key was "
                                "already used for a different request",
                                "idempotency_key_reused") from None
        return wrapper

    def health(self, request: Request) -> Response:
        self.db.stats()  # proves the file is open and readable
        return json_response({"status": "ok"}, headers=NO_STORE)

    def stats(self, request: Request) -> Response:
        return json_response({"requests": self.requests, **self.db.stats()}, headers=NO_STORE)

    def create_account(self, request: Request) -> Response:
        data = request.json()
        try:
            account = self.db.create_account(require(data, "username", str),
                                             require(data, "password_hash", str),
                                             optional(data, "display_name", str, ""),
                                             request_key(data))
        except UsernameTaken:
            raise HTTPError(HTTPStatus.CONFLICT, "that username is taken",
                            "username_taken") from None
        # Only lists change: anything showing the new account was fetched after it existed.
        changed = self.publish(["accounts"])
        return json_response(account, HTTPStatus.CREATED,
                             [("Location", f"/accounts/{account['username']}"), changed])

    def list_accounts(self, request: Request) -> Response:
        page = self.db.list_accounts(*page_params(request), after_param(request))
        return json_response({"accounts": page["items"], "next": page["next"],
                              "prev": page["prev"]},
                             headers=[account_keys(page["items"])])

    def search_accounts(self, request: Request) -> Response:
        limit, _ = page_params(request)
        accounts = self.db.search_accounts(query_text(request), limit)
        return json_response({"accounts": accounts}, headers=[account_keys(accounts)])

    def get_account(self, request: Request) -> Response:
        account = found(self.db.get_account(request.params["username"]), "account")
        return json_response(account, headers=[tagged([account_key(account["username"])])])

    def get_credentials(self, request: Request) -> Response:
        credentials = self.db.get_credentials(request.params["username"])
        return json_response(found(credentials, "account"), headers=NO_STORE)

    # Passwords, token generations and ended sessions show in no cacheable answer: these
    # writes name and publish no keys, and their answers are no-store like the credentials.

    def set_password(self, request: Request) -> Response:
        password_hash = require(request.json(), "password_hash", str)
        credentials = found(self.db.set_password(request.params["username"], password_hash),
                            "account")
        return json_response({"id": credentials["id"], "username": credentials["username"],
                              "generation": credentials["generation"]}, headers=NO_STORE)

    def token_generation(self, request: Request) -> Response:
        generation = self.db.token_generation(path_id(request, "account"))
        return json_response(found(generation, "account"), headers=NO_STORE)

    def end_tokens(self, request: Request) -> Response:
        through = require(request.json(), "through", int)
        if through < 0:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "through must not be negative",
                            "invalid_field")
        generation = self.db.end_tokens(path_id(request, "account"), through)
        return json_response(found(generation, "account"), headers=NO_STORE)

    def end_session(self, request: Request) -> Response:
        data = request.json()
        session, until = require(data, "session", int), require(data, "until", int)
        # Session 0 names no one session (the PUT ends its tokens); both are SQLite integers.
        if not (0 < session <= MAX_ID and 0 <= until <= MAX_ID):
            raise HTTPError(HTTPStatus.BAD_REQUEST, f"session must be 1 to {MAX_ID} and until "
                            f"0 to {MAX_ID}", "invalid_field")
        generation = self.db.end_session(path_id(request, "account"), session, until)
        return json_response(found(generation, "account"), headers=NO_STORE)

    def author_tweets(self, request: Request) -> Response:
        username = request.params["username"]
        page = self.db.author_tweets(username, *page_params(request), after_param(request))
        return tweet_page(found(page, "account"), account_key(username))

    def create_tweet(self, request: Request) -> Response:
        data = request.json()
        try:
            tweet = self.db.create_tweet(require(data, "author_id", int),
                                         require(data, "text", str), tag_list(data),
                                         request_key(data))
        except UnknownAccount:
            raise HTTPError(HTTPStatus.NOT_FOUND, "no such account") from None
        # A new tweet heads the timeline, its author's page and its tags' pages, changes its
        # author's tweet count and the tag counts, and may match any search. Its own key is
        # not among them: whatever shows the tweet was fetched after it existed, and is true.
        changed = self.publish(["timeline", "search", "hashtags", account_key(tweet["author"]),
                                *map(tag_key, tweet["hashtags"])])
        return json_response(tweet, HTTPStatus.CREATED,
                             [("Location", f"/tweets/{tweet['id']}"), changed])

    def timeline(self, request: Request) -> Response:
        return tweet_page(self.db.timeline(*page_params(request), after_param(request)),
                          "timeline")

    def search_tweets(self, request: Request) -> Response:
        page = self.db.search_tweets(query_text(request), *page_params(request),
                                     after_param(request))
        return tweet_page(page, "search")

    def get_tweet(self, request: Request) -> Response:
        tweet = found(self.db.get_tweet(path_id(request)), "tweet")
        return json_response(tweet, headers=[tagged([tweet_key(tweet["id"])])])

    def edit_tweet(self, request: Request) -> Response:
        data = request.json()
        author_id = optional(data, "author_id", int, None)  # None: an operator's edit
        with author_guard():
            edited = self.db.edit_tweet(path_id(request), require(data, "text", str),
                                        tag_list(data), author_id)
        tweet, old_tags = found(edited, "tweet")
        # Every page showing the tweet carries its key; the new text may match other searches
        # and the tags it gained or lost change those tags' pages and counts.
        changed = self.publish([tweet_key(tweet["id"]), "search", "hashtags",
                                *map(tag_key, [*old_tags, *tweet["hashtags"]])])
        return json_response(tweet, headers=[changed])

    def delete_tweet(self, request: Request) -> Response:
        raw_author = request.query.get("author_id")
        author_id = None if raw_author is None else whole_number(raw_author)  # None: an operator
        if raw_author is not None and author_id is None:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "author_id must be a number", "invalid_field")
        with author_guard():
            deleted = self.db.delete_tweet(path_id(request), author_id)
        if deleted is None:
            raise HTTPError(HTTPStatus.NOT_FOUND, "no such tweet")
        # Pages showing the tweet carry its key; the lists are named too, since a page that
        # ended just before it loses its link to an older page when it was the last.
        changed = self.publish([tweet_key(deleted["id"]), "timeline", "search", "hashtags",
                                account_key(deleted["author"]),
                                *map(tag_key, deleted["hashtags"])])
        return json_response(deleted, headers=[changed])  # the api may show what went

    def hashtags(self, request: Request) -> Response:
        limit, _ = page_params(request)
        prefix = request.query.get("q", "").lstrip("#").lower()
        return json_response({"hashtags": self.db.hashtags(prefix, limit)},
                             headers=[tagged(["hashtags"])])

    def tag_tweets(self, request: Request) -> Response:
        tag = request.params["tag"].lstrip("#").lower()
        page = self.db.tag_tweets(tag, *page_params(request), after_param(request))
        return tweet_page(page, tag_key(tag))

    def apply_like_batch(self, request: Request) -> Response:
        data = request.json()
        batch_id = require(data, "batch_id", str)
        likes = require(data, "likes", dict)
        counts: dict[int, int] = {}
        for key, count in likes.items():
            tweet = whole_number(key)
            if tweet is None or isinstance(count, bool) or not isinstance(count, int) \
                    or count < 1:
                raise HTTPError(HTTPStatus.BAD_REQUEST,
                                "likes must map tweet ids to positive counts", "invalid_field")
            counts[tweet] = count
        if not batch_id or len(batch_id) > 100:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "batch_id must be 1-100 characters",
                            "invalid_field")
        result = self.db.apply_like_batch(batch_id, counts)
        changed = self.publish(map(tweet_key, result["applied"]))
        return json_response(result, headers=[changed])

    def publish(self, keys: Iterable[str]) -> tuple[str, str]:
        """Publish what a write made untrue; return the header that names it."""
        keys = list(keys)
        self.feed.publish(keys)
        return CHANGED_KEYS, key_header(keys)


@contextmanager
def author_guard() -> Iterator[None]:
    """Turn the database's NotAuthor into a 403."""
    try:
        yield
    except NotAuthor:
        raise HTTPError(HTTPStatus.FORBIDDEN, "only the author may change this tweet",
                        "not_author") from None


def found(value: Any, what: str) -> Any:
    """Return ``value`` or raise 404 for a missing ``what``."""
    if value is None:
        raise HTTPError(HTTPStatus.NOT_FOUND, f"no such {what}")
    return value


def query_text(request: Request) -> str:
    """Return the ``q`` parameter, bounded in length."""
    q = request.query.get("q", "")
    if len(q) > 500:
        raise HTTPError(HTTPStatus.BAD_REQUEST, "q is longer than 500 characters", "invalid_query")
    return q


def tag_list(data: dict[str, Any]) -> list[str]:
    """Return the ``hashtags`` field as a list of strings."""
    tags = optional(data, "hashtags", list, [])
    if not all(isinstance(tag, str) and tag for tag in tags):
        raise HTTPError(HTTPStatus.BAD_REQUEST, "hashtags must be a list of strings",
                        "invalid_field")
    return tags


def request_key(data: dict[str, Any]) -> RequestKey | None:
    """Return the write's ``idempotency`` field, if any, or raise 400."""
    once = optional(data, "idempotency", dict, {})
    if not once:
        return None
    scope, key = require(once, "scope", str), require(once, "key", str)
    fingerprint, window = require(once, "fingerprint", str), require(once, "window_s", float)
    if not (0 < len(scope) <= 300 and 0 < len(key) <= 255 and 0 < len(fingerprint) <= 128
            and window > 0):
        raise HTTPError(HTTPStatus.BAD_REQUEST, "idempotency needs a scope, key and fingerprint "
                        "(at most 300, 255 and 128 characters) and a positive window_s",
                        "invalid_field")
    return RequestKey(scope, key, fingerprint, window)


def tagged(keys: Iterable[str]) -> tuple[str, str]:
    """Return the Surrogate-Key header naming what an answer shows."""
    return SURROGATE_KEY, key_header(keys)


def account_keys(accounts: list[Any]) -> tuple[str, str]:
    """Tag a list of accounts: the list itself and each account on it (tweet counts)."""
    return tagged(["accounts", *(account_key(account["username"]) for account in accounts)])


def tweet_page(page: Any, list_key: str) -> Response:
    """Render a page of tweets, tagged with its list and every tweet on it."""
    keys = [list_key, *(tweet_key(tweet["id"]) for tweet in page["items"])]
    return json_response({"tweets": page["items"], "next": page["next"], "prev": page["prev"],
                          "authors": page["authors"]}, headers=[tagged(keys)])


def make_server(config: Config, clock: Callable[[], float] = time.time) -> Server:
    """Build the store's server, unstarted, with its database opened."""
    os.makedirs(config.data_dir, exist_ok=True)
    db = Database(os.path.join(config.data_dir, "twitter.sqlite3"), clock)
    app = StoreApp(db)
    server = Server((config.host, config.port), app.routes(), name="store",
                    log_requests=config.log_requests)
    server.on_stop.append(app.feed.close)  # waiting followers are answered, not drained
    server.on_close.append(db.close)
    return server


def main() -> None:
    """Run the store until SIGINT or SIGTERM."""
    run_main(Config.from_env, lambda config: serve(make_server(config)))
