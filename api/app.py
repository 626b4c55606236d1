"""api: the public JSON API of First Price Twitter.

Validates input, hashes passwords, signs tokens, parses hashtags, logs every call in arrival
order (``/logs``), and takes likes (answered at once, written through the like batcher). It
reaches the database only through STORE_URL: dbcache by default, or store itself.

Environment: HOST (127.0.0.1), PORT (8200), STORE_URL (http://127.0.0.1:8300), DATA_DIR
(./data: likes.sqlite3, the like journal; secret.key unless SECRET_KEY is set; calls-*.log
and .idx, the calls past the call log's 8 MiB in memory, see ``api.calllog``),
SECRET_KEY (signs tokens), TOKEN_TTL_S (7 days), TOKEN_CHECK_S (5: how long an account's
token generation and ended sessions are trusted from memory before the store is asked again;
see ``api.auth``), UPSTREAM_TIMEOUT_S (10), LIKE_BATCHING (on), LIKE_BATCH_SIZE (10: a
tweet's likes are sent when more than this many are pending), LIKE_MAX_AGE_S (60),
LIKE_PUBLISH_S (1: liked tweets' keys go into the change feed together, this often),
FEED_COALESCE_S (0.5: a key a write changed goes into the feed at once, then at most this
often; 0 publishes every write at once; see ``api.publisher``), IDEMPOTENCY_WINDOW_S
(86400: how long an Idempotency-Key answers its first answer; see ``api.idempotency``),
SCRYPT_N (16384: the password hashing cost, a power of 2; lower it only for tests),
LOG_REQUESTS (off).

Routes: see ``api/openapi.py`` (served at GET /openapi.json) and DESIGN.md's Public API.
Besides them, GET /_changes is the change feed the front caches follow (``httpkit.feed``):
reads carry the store's Surrogate-Key, and every write publishes what it made untrue (the
keys the store names, and liked tweets), coalesced per key by ``api.publisher``.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Callable
from urllib.parse import quote, unquote, urlencode

from httpkit import (HTTPError, Request, Response, Router, Server, Upstream, json_response,
                     optional, page_params, require, serve)
from httpkit.breaker import STALL_S, FailFast
from httpkit.keys import load_secret
from httpkit.lru import LRU
from httpkit.messages import after_param, path_id
from httpkit.config import ConfigError, env_bool, env_float, env_int, env_str, run_main
from httpkit.feed import (CHANGED_KEYS, SURROGATE_KEY, ChangeFeed, changes_handler, key_header,
                          tweet_key)

from api import auth, rules
from api.calllog import CallLog
from api.idempotency import REPLAYED, Fingerprints, Keyed, Recent, Replayed
from api.batcher import LikeBatcher
from api.likes import DirectLikes, Likes
from api.observed import Observed
from api.publisher import Coalescer
from api.storeclient import StoreClient, StoreLikes

NO_STORE = [("Cache-Control", "no-store")]
UNLOGGED = frozenset({"/healthz", "/_changes"})
TWEET_ID = "{id:[0-9]+}"
USERNAMES = 100_000  # accounts whose username GET /sessions remembers


@dataclass(frozen=True, kw_only=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8200
    store_url: str = "http://127.0.0.1:8300"
    data_dir: str = "data"
    secret_key: str = ""
    token_ttl: float = 7 * 24 * 3600.0
    token_check: float = 5.0
    timeout: float = 10.0
    scrypt_n: int = auth.SCRYPT_N
    log_requests: bool = False
    like_batching: bool = True
    like_batch_size: int = 10
    like_max_age: float = 60.0
    like_publish: float = 1.0
    feed_coalesce: float = 0.5
    idempotency_window: float = 86400.0
    fail_fast: FailFast = FailFast(stall_s=STALL_S["api"])

    @classmethod
    def from_env(cls) -> Config:
        """Read the configuration from the environment."""
        return cls(host=env_str("HOST", cls.host), port=env_int("PORT", cls.port, 0),
                   store_url=env_str("STORE_URL", cls.store_url),
                   data_dir=env_str("DATA_DIR", cls.data_dir),
                   secret_key=env_str("SECRET_KEY", ""),
                   token_ttl=env_float("TOKEN_TTL_S", cls.token_ttl, 1),
                   token_check=env_float("TOKEN_CHECK_S", cls.token_check, 0),
                   timeout=env_float("UPSTREAM_TIMEOUT_S", cls.timeout, 0.1),
                   scrypt_n=scrypt_cost(env_int("SCRYPT_N", auth.SCRYPT_N, 2)),
                   log_requests=env_bool("LOG_REQUESTS", False),
                   like_batching=env_bool("LIKE_BATCHING", True),
                   like_batch_size=env_int("LIKE_BATCH_SIZE", cls.like_batch_size, 0),
                   like_max_age=env_float("LIKE_MAX_AGE_S", cls.like_max_age, 0),
                   like_publish=env_float("LIKE_PUBLISH_S", cls.like_publish, 0),
                   feed_coalesce=env_float("FEED_COALESCE_S", cls.feed_coalesce, 0),
                   idempotency_window=env_float("IDEMPOTENCY_WINDOW_S", cls.idempotency_window, 1),
                   fail_fast=FailFast.from_env("api"))


def scrypt_cost(n: int) -> int:
    """Return ``n`` if it is a power of two, as scrypt needs; else raise ConfigError."""
    if n & (n - 1):
        raise ConfigError(f"SCRYPT_N={n} must be a power of 2")
    return n


class Api:
    """The public API's handlers."""

    def __init__(self, config: Config, store: StoreClient, likes: Likes,
                 tokens: auth.Tokens) -> None:
        self.config = config
        self.store = store
        self.likes = likes
        self.tokens = tokens
        self.sessions = auth.Sessions(tokens, auth.Generations(
            self.stored_endings, config.token_check, tokens.clock))
        self.once = Fingerprints(tokens.key, config.idempotency_window)
        self.log_ins = Recent(tokens.clock)  # a log-in changes nothing: memory will do
        # The call log spills old calls to DATA_DIR past its budget.
        self.observed = Observed(CallLog(config.data_dir), store, likes)
        self.feed = ChangeFeed()
        self.writes = Coalescer(self.feed, config.feed_coalesce, leading=True)
        self.liked = Coalescer(self.feed, config.like_publish, leading=False)
        self.usernames: LRU[int, str] = LRU(USERNAMES)  # for GET /sessions

    def routes(self) -> Router:
        """Return the routing table (GET /openapi.json describes the same routes)."""
        router = Router()
        for method, template, handler in [
            ("GET", "/healthz", self.observed.health),
            ("POST", "/accounts", self.sign_up),
            ("GET", "/accounts", self.list_accounts),
            ("GET", "/accounts/search", self.search_accounts),
            ("GET", "/accounts/{username}", self.get_account),
            ("GET", "/accounts/{username}/tweets", self.author_tweets),
            ("POST", "/sessions", self.log_in),
            ("GET", "/sessions", self.session),
            ("DELETE", "/sessions", self.log_out),
            ("PUT", "/accounts/{username}/password", self.change_password),
            ("POST", "/tweets", self.post_tweet),
            ("GET", "/tweets", self.timeline),
            ("GET", "/tweets/search", self.search_tweets),
            ("GET", f"/tweets/{TWEET_ID}", self.get_tweet),
            ("PUT", f"/tweets/{TWEET_ID}", self.edit_tweet),
            ("DELETE", f"/tweets/{TWEET_ID}", self.delete_tweet),
            ("POST", f"/tweets/{TWEET_ID}/like", self.like),
            ("GET", "/hashtags", self.hashtags),
            ("GET", "/hashtags/{tag}/tweets", self.tag_tweets),
            ("GET", "/logs", self.observed.logs),
            ("GET", "/stats", self.observed.stats),
            ("GET", "/openapi.json", self.observed.openapi),
            ("GET", "/_changes", changes_handler(self.feed)),
        ]:
            router.add(method, template, handler)
        return router

    # -- accounts ------------------------------------------------------------------------

    def sign_up(self, request: Request) -> Response:
        data = request.json()
        username = rules.validate_username(require(data, "username", str))
        password = rules.validate_password(require(data, "password", str))
        display_name = rules.clean_display_name(optional(data, "display_name", str, ""),
                                                username)
        keyed = self.once.keyed(request, "accounts", username, password, display_name)
        account, changed = self.keyed_write("/accounts", keyed, {
            "username": username, "display_name": display_name,
            "password_hash": auth.hash_password(password, self.config.scrypt_n)})
        return json_response(account, HTTPStatus.CREATED,
                             [("Location", f"/accounts/{account['username']}"), *changed])

    def log_in(self, request: Request) -> Response:
        data = request.json()
        username, password = require(data, "username", str), require(data, "password", str)
        keyed = self.once.keyed(request, f"sessions:{username.lower()}", password)
        try:
            self.log_ins.replay(keyed)
        except Replayed as replay:
            return json_response(replay.answer, HTTPStatus.CREATED, [*NO_STORE, REPLAYED])
        credentials = None
        if rules.USERNAME.match(username):
            answer = self.store.fetch("GET", f"/accounts/{username}/credentials")
            credentials = answer.json() if answer.status == 200 else None
        if credentials is None:
            auth.waste_time_like_a_check(password, self.config.scrypt_n)
            raise auth.unauthorized("wrong username or password")
        if not auth.verify_password(password, credentials["password_hash"]):
            raise auth.unauthorized("wrong username or password")
        session = self.new_session(credentials)
        self.log_ins.keep(keyed, session)
        return json_response(session, HTTPStatus.CREATED, NO_STORE)

    def session(self, request: Request) -> Response:
        claims = self.sessions.check(request.headers.get("authorization"))
        return json_response({"account_id": claims.account_id,
                              "username": self.username(claims.account_id),
                              "expires_at": iso_time(claims.expiry)}, headers=NO_STORE)

    def log_out(self, request: Request) -> Response:
        claims = self.sessions.check(request.headers.get("authorization"))
        target = f"/token-generations/{claims.account_id}"
        if claims.session:  # this session alone: the account's others go on (see api.auth)
            ended = self.store.answer("POST", f"{target}/ended", {
                "session": claims.session, "until": claims.expiry}, missing="no such account")
        else:  # a token from before session numbers cannot be named alone: end its generation
            ended = self.store.answer("PUT", target, {"through": claims.generation},
                                      missing="no such account")
        self.sessions.ended(claims.account_id, endings(ended))
        return Response(HTTPStatus.NO_CONTENT, headers=NO_STORE)

    def change_password(self, request: Request) -> Response:
        claims = self.sessions.check(request.headers.get("authorization"))
        data = request.json()
        old = require(data, "password", str)
        new = rules.validate_password(require(data, "new_password", str))
        credentials = self.own_credentials(claims.account_id, known_username(request))
        if not auth.verify_password(old, credentials["password_hash"]):
            raise auth.unauthorized("the current password is wrong", "wrong_password")
        changed = self.store.answer("PUT", f"/accounts/{credentials['username']}/password", {
            "password_hash": auth.hash_password(new, self.config.scrypt_n)},
            missing="no such account")
        # Every older token, of this session and the others: a new generation has none ended.
        self.sessions.ended(changed["id"], auth.Ended(changed["generation"]))
        return json_response(self.new_session(changed), headers=NO_STORE)

    def list_accounts(self, request: Request) -> Response:
        return self.read(request, f"/accounts?{paging(request)}")

    def search_accounts(self, request: Request) -> Response:
        q = search_text(request)
        limit, _ = page_params(request)  # checked even when blank: a bad limit is a 400
        if not q.strip():
            return json_response({"accounts": []})
        return self.read(request, f"/accounts/search?{urlencode({'q': q, 'limit': limit})}")

    def get_account(self, request: Request) -> Response:
        username = known_username(request)
        return self.read(request, f"/accounts/{username}", missing="no such account")

    def author_tweets(self, request: Request) -> Response:
        username = known_username(request)
        return self.read_tweets(request, f"/accounts/{username}/tweets?{paging(request)}",
                                missing="no such account")

    # -- tweets --------------------------------------------------------------------------

    def post_tweet(self, request: Request) -> Response:
        author_id = self.sessions.check(request.headers.get("authorization")).account_id
        text = rules.clean_tweet_text(require(request.json(), "text", str))
        keyed = self.once.keyed(request, f"tweets:{author_id}", text)
        try:
            tweet, changed = self.keyed_write("/tweets", keyed, {
                "author_id": author_id, "text": text, "hashtags": rules.hashtags(text)})
        except HTTPError as err:
            if err.status == HTTPStatus.NOT_FOUND:  # a valid token for a deleted account
                raise auth.unauthorized("your account no longer exists") from None
            raise
        if REPLAYED not in changed:
            self.likes.saw(tweet["id"], 0)
        return json_response(tweet, HTTPStatus.CREATED,
                             [("Location", f"/tweets/{tweet['id']}"), *changed])

    def timeline(self, request: Request) -> Response:
        return self.read_tweets(request, f"/tweets?{paging(request)}")

    def search_tweets(self, request: Request) -> Response:
        query = urlencode({"q": search_text(request)})
        return self.read_tweets(request, f"/tweets/search?{query}&{paging(request)}")

    def get_tweet(self, request: Request) -> Response:
        tweet, keys = self.store.tagged("GET", f"/tweets/{path_id(request)}",
                                        fresh=wants_fresh(request), missing="no such tweet")
        return json_response(self.with_pending(tweet), headers=tagged(keys))

    def edit_tweet(self, request: Request) -> Response:
        author_id = self.sessions.check(request.headers.get("authorization")).account_id
        text = rules.clean_tweet_text(require(request.json(), "text", str))
        tweet, changed = self.store.tagged("PUT", f"/tweets/{path_id(request)}", {
            "author_id": author_id, "text": text, "hashtags": rules.hashtags(text)},
            missing="no such tweet")
        return json_response(self.with_pending(tweet), headers=self.publish(changed))

    def delete_tweet(self, request: Request) -> Response:
        author_id = self.sessions.check(request.headers.get("authorization")).account_id
        tweet = path_id(request)
        deleted, changed = self.store.tagged("DELETE", f"/tweets/{tweet}?author_id={author_id}",
                                             missing="no such tweet")
        deleted = self.with_pending(deleted)
        self.likes.forget(tweet)
        # RFC 7240 §4.2: a client that wants to show what it deleted (a Mastodon client's
        # "delete and redraft") asks for it rather than reading it first.
        if "return=representation" in request.headers.get("prefer", "").replace(" ", ""):
            return json_response(deleted, headers=self.publish(changed))
        return Response(HTTPStatus.NO_CONTENT, headers=self.publish(changed))

    def like(self, request: Request) -> Response:
        tweet = path_id(request)
        try:
            likes = self.likes.like(tweet, self.once.keyed(request, "likes", tweet))
        except Replayed as replay:
            return json_response(replay.answer, HTTPStatus.ACCEPTED, [REPLAYED])
        self.liked.publish([tweet_key(tweet)])
        return json_response({"id": tweet, "likes": likes}, HTTPStatus.ACCEPTED)

    # -- hashtags ------------------------------------------------------------------------

    def hashtags(self, request: Request) -> Response:
        limit, _ = page_params(request)
        prefix = request.query.get("q", "").strip().lstrip("#")
        if len(prefix) > rules.MAX_TAG:
            raise rules.bad(f"q must be at most {rules.MAX_TAG} characters", "invalid_query")
        return self.read(request, f"/hashtags?{urlencode({'q': prefix.lower(), 'limit': limit})}")

    def tag_tweets(self, request: Request) -> Response:
        tag = request.params["tag"].lstrip("#")
        # What no tweet can carry is no hashtag, counted as ``rules.hashtags`` counts: before
        # lower-casing (and a control character would not even fit in Surrogate-Key).
        if len(tag) > rules.MAX_TAG or not rules.TAG.fullmatch(tag):
            raise HTTPError(HTTPStatus.NOT_FOUND, "no such hashtag")
        tag = tag.lower()
        return self.read_tweets(request, f"/hashtags/{quote(tag)}/tweets?{paging(request)}")

    # -- helpers -------------------------------------------------------------------------

    def new_session(self, credentials: dict[str, Any]) -> dict[str, Any]:
        """Return a token of a new session in the account's current generation, and the
        account."""
        account = self.store.answer("GET", f"/accounts/{credentials['username']}", fresh=True)
        self.usernames.put(credentials["id"], account["username"])
        return {"token": self.sessions.issue(credentials["id"], credentials["generation"]),
                "account": account}

    def own_credentials(self, account_id: int, username: str) -> dict[str, Any]:
        """Return the credentials of ``username`` if they are the caller's; else 403."""
        credentials: dict[str, Any] = self.store.answer(
            "GET", f"/accounts/{username}/credentials", missing="no such account")
        if credentials["id"] != account_id:
            raise HTTPError(HTTPStatus.FORBIDDEN, "you can change only your own password",
                            "not_owner")
        return credentials

    def username(self, account_id: int) -> str:
        """Return the username of a token's account: from memory (no route renames an
        account), else from the store's answer about its tokens."""
        known = self.usernames.get(account_id)
        if known is None:
            known = self.store.answer("GET", f"/token-generations/{account_id}",
                                      missing="your account no longer exists")["username"]
            self.usernames.put(account_id, known)
        return known

    def stored_endings(self, account_id: int) -> auth.Ended | None:
        """Read the account's token generation and ended sessions from the store (None: no
        such account)."""
        try:
            answer = self.store.answer("GET", f"/token-generations/{account_id}")
        except HTTPError as err:
            if err.status == HTTPStatus.NOT_FOUND:
                return None
            raise
        return endings(answer)

    def read(self, request: Request, target: str, missing: str = "not found") -> Response:
        """Answer a read with the store's JSON as it is, tagged as the store tagged it."""
        data, keys = self.store.tagged("GET", target, fresh=wants_fresh(request),
                                       missing=missing)
        return json_response(data, headers=tagged(keys))

    def read_tweets(self, request: Request, target: str, missing: str = "not found") -> Response:
        """Answer a read of a page of tweets, adding the likes still pending."""
        page, keys = self.store.tagged("GET", target, fresh=wants_fresh(request),
                                       missing=missing)
        page["tweets"] = [self.with_pending(tweet) for tweet in page["tweets"]]
        return json_response(page, headers=tagged(keys))

    def keyed_write(self, target: str, keyed: Keyed | None,
                    payload: dict[str, Any]) -> tuple[Any, list[tuple[str, str]]]:
        """POST a creating write to the store, with its Idempotency-Key if it has one;
        return the answer and its headers: what it changed, published, or that it was the
        first answer to this key again (then nothing changed and nothing is published)."""
        if keyed is not None:
            payload = {**payload, "idempotency": keyed.for_store()}
        data, changed, replayed = self.store.written("POST", target, payload)
        return data, [REPLAYED] if replayed else self.publish(changed)

    def publish(self, changed: list[str]) -> list[tuple[str, str]]:
        """Put what a write made untrue in the feed; return the header naming the keys
        published now (the cache relaying the answer drops those at once), if any."""
        published = self.writes.publish(changed)
        return [(CHANGED_KEYS, key_header(published))] if published else []

    def with_pending(self, tweet: dict[str, Any]) -> dict[str, Any]:
        """Count a tweet's likes that are received but not yet written."""
        tweet["likes"] = self.likes.likes(tweet["id"], tweet["likes"])
        return tweet


def endings(answer: dict[str, Any]) -> auth.Ended:
    """Read the store's ``{generation, ended}`` answer about an account's tokens."""
    return auth.Ended(int(answer["generation"]), frozenset(map(int, answer["ended"])))


def iso_time(seconds: int) -> str:
    """Format a Unix time as ISO 8601 UTC, e.g. 2026-11-29T23:57:38Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def tagged(keys: list[str]) -> list[tuple[str, str]]:
    """Return the Surrogate-Key header for an answer showing ``keys`` (none without keys)."""
    return [(SURROGATE_KEY, key_header(keys))] if keys else []


def paging(request: Request) -> str:
    """Return the store query for the request's validated limit and cursor (or after)."""
    limit, cursor = page_params(request)
    after = after_param(request)
    return f"limit={limit}" + (f"&cursor={cursor}" if cursor else "") + (
        f"&after={after}" if after else "")


def wants_fresh(request: Request) -> bool:
    """Tell whether the client asked caches to skip their copies (read-your-writes)."""
    return "no-cache" in request.headers.get("cache-control", "").lower()


def search_text(request: Request) -> str:
    """Return the ``q`` parameter, bounded."""
    q = request.query.get("q", "")
    if len(q) > 200:
        raise rules.bad("q must be at most 200 characters", "invalid_query")
    return q


def known_username(request: Request) -> str:
    """Return the path's username, or 404 if it cannot name an account."""
    username = request.params["username"]
    if not rules.USERNAME.match(username):
        raise HTTPError(HTTPStatus.NOT_FOUND, "no such account")
    return username


class ApiServer(Server):
    """The API's server: every call is logged on arrival, before it is routed."""

    def __init__(self, api: Api, config: Config) -> None:
        super().__init__((config.host, config.port), api.routes(), name="api",
                         log_requests=config.log_requests)
        self.api = api

    def respond(self, request: Request) -> Response:
        if request.path not in UNLOGGED:  # probes and the caches' feed are not API calls
            self.api.observed.calls.append(request.method, request.path)
        return super().respond(request)

    def refused(self, method: str, path: str) -> None:
        if method and path:  # e.g. a body over 64 KiB: still a call, and a failing one
            self.api.observed.calls.append(method, unquote(path))


def make_server(config: Config, clock: Callable[[], float] = time.time) -> ApiServer:
    """Build the API's server, unstarted."""
    store = StoreClient(Upstream(config.store_url, read_timeout=config.timeout,
                                 fail_fast=config.fail_fast))
    tokens = auth.Tokens(load_secret(config.secret_key, config.data_dir), config.token_ttl,
                         clock)
    likes: Likes = DirectLikes(StoreLikes(store))
    if config.like_batching:
        os.makedirs(config.data_dir, exist_ok=True)
        likes = LikeBatcher(StoreLikes(store), os.path.join(config.data_dir, "likes.sqlite3"),
                            config.like_batch_size, config.like_max_age, clock)
    server = ApiServer(Api(config, store, likes, tokens), config)
    api = server.api
    server.on_start.extend([likes.start, api.writes.start, api.liked.start])
    # On stop, what waits for its interval goes out and waiting followers are answered (a
    # long poll is not drained); once the requests under way are done, the likes are flushed.
    server.on_stop.extend([api.writes.stop, api.liked.stop, api.feed.close])
    server.on_close.append(likes.stop)
    server.on_close.append(store.upstream.close)
    server.on_close.append(api.observed.calls.close)  # its file is of this start-up only
    return server


def main() -> None:
    """Run the API until SIGINT or SIGTERM."""
    run_main(Config.from_env, lambda config: serve(make_server(config)))
