"""mastodon: a gateway that speaks the Mastodon client API, so that real, unmodified
Mastodon clients (the ``toot`` CLI, the ``Mastodon.py`` library) can use the service.

A second front end beside ``web``: it talks to the public API through the load balancer, as
the web does. Public reads (timelines, statuses, accounts, search) go there *without* the
user's token, so the caches serve them; clients send ``Authorization`` on every request,
and a cache passes on whatever carries it. Writes carry the token, which is the API's own
bearer token (see mastodon.oauth). After a write, that token's reads skip the caches for a
while (``Cache-Control: no-cache``, as the web does after a form), so a client sees its own
write at once through every cache replica.

The mapping is honest (DESIGN.md "Mastodon clients"): statuses are public tweets of up to
280 characters; a favourite is the anonymous +1, which cannot be taken back; there are no
follows, so the home timeline is the one timeline; media, polls, boosts, replies and
notifications do not exist: lists of them are empty, and making one is a 422 that says why.

Paging is Mastodon's: ``max_id`` is exactly our cursor, ``min_id`` our ``after`` and
``since_id`` both (newest first, down to it); the Link header carries absolute URLs, so the
gateway must know the address clients reach it at (MASTODON_PUBLIC_URL).

Environment: HOST (127.0.0.1), PORT (8500), API_URL (http://127.0.0.1:8000, the load
balancer), MASTODON_PUBLIC_URL (http://HOST:PORT), WEB_PUBLIC_URL (http://127.0.0.1:8080:
where statuses and accounts link to), SECRET_KEY (else a key kept in DATA_DIR), DATA_DIR
(./data), UPSTREAM_TIMEOUT_S (10), LOG_REQUESTS (off).
"""
from __future__ import annotations

import hashlib
import time
import zlib
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Callable
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from httpkit import (HTTPError, Request, Response, Router, Server, Upstream, UpstreamError,
                     UpstreamResponse, json_response, serve)
from httpkit.breaker import STALL_S, FailFast
from httpkit.config import ConfigError, env_bool, env_float, env_int, env_str, run_main
from httpkit.keys import load_secret
from httpkit.lru import LRU
from httpkit.messages import MAX_ID, whole_number
from mastodon import entities, oauth, pages
from mastodon.entities import Site

ID = "{id:[0-9]+}"
ACCOUNT = "{account}"
DEFAULT_LIMIT, MOST_LIMIT = 20, 40  # Mastodon's, for statuses and accounts
FRESH_AFTER_WRITE_S = 30.0  # as long as the web's "read past the caches" cookie
AUTHOR_TTL_S = 60.0  # an author's statuses_count may be this old
MOST_REMEMBERED = 10_000
MAX_QUERY = 200  # the API's bound on search text
NO_STORE = [("Cache-Control", "no-store")]
NO_FOLLOWS = "There are no follows here: everyone's statuses are on the one timeline."
NO_MEDIA = "Media are not supported here: statuses are text only."
WORDS = {  # our sentences for what the API's errors mean to a Mastodon client
    HTTPStatus.UNAUTHORIZED: "The access token is invalid.",
    HTTPStatus.FORBIDDEN: "This action is not allowed: it is not your status.",
}
UNSUPPORTED = {  # POST /api/v1/statuses/:id/<action>
    "unfavourite": "A favourite here is an anonymous +1: it cannot be taken back.",
    "reblog": "Boosts are not supported here.", "unreblog": "Boosts are not supported here.",
    "bookmark": "Bookmarks are not supported here.",
    "unbookmark": "Bookmarks are not supported here.",
    "pin": "Pinned statuses are not supported here.",
    "unpin": "Pinned statuses are not supported here.",
    "mute": "Muting conversations is not supported here: there are no replies.",
    "unmute": "Muting conversations is not supported here: there are no replies.",
    "translate": "Translation is not supported here.",
}
EMPTY_FOR_USERS = ("notifications", "conversations", "favourites", "bookmarks", "lists",
                   "follow_requests", "mutes", "blocks", "domain_blocks", "endorsements",
                   "filters", "followed_tags", "featured_tags", "scheduled_statuses",
                   "announcements", "suggestions")
EMPTY_FOR_ALL = ("custom_emojis", "trends", "trends/tags", "trends/statuses", "trends/links",
                 "directory", "instance/peers", "instance/activity", "instance/rules",
                 "instance/domain_blocks")


@dataclass(frozen=True, kw_only=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8500
    api_url: str = "http://127.0.0.1:8000"
    public_url: str = ""  # "": http://host:port
    web_url: str = "http://127.0.0.1:8080"
    secret_key: str = ""
    data_dir: str = "data"
    timeout: float = 10.0
    log_requests: bool = False
    fail_fast: FailFast = field(default_factory=lambda: FailFast(stall_s=STALL_S["mastodon"]))

    @classmethod
    def from_env(cls) -> Config:
        """Read the configuration from the environment."""
        public_url = env_str("MASTODON_PUBLIC_URL", "")
        if public_url and not public_url.startswith(("http://", "https://")):
            raise ConfigError(f"MASTODON_PUBLIC_URL must be an http(s) URL, not {public_url!r}")
        return cls(host=env_str("HOST", cls.host), port=env_int("PORT", cls.port, 0),
                   api_url=env_str("API_URL", cls.api_url), public_url=public_url,
                   web_url=env_str("WEB_PUBLIC_URL", cls.web_url),
                   secret_key=env_str("SECRET_KEY", ""), data_dir=env_str("DATA_DIR", "data"),
                   timeout=env_float("UPSTREAM_TIMEOUT_S", cls.timeout, 0.1),
                   log_requests=env_bool("LOG_REQUESTS", False),
                   fail_fast=FailFast.from_env("mastodon"))


class Gateway:
    """The Mastodon client API, answered from the public API."""

    def __init__(self, api: Upstream, site: Site, key: bytes,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.site = site
        self.apps = oauth.Apps(key)
        self.codes = oauth.Codes(clock)
        self.clock = clock
        # An author's account as the API showed it, by username; who wrote lately, by token.
        self.authors: LRU[str, Any] = LRU(MOST_REMEMBERED, AUTHOR_TTL_S, clock)
        self.wrote: LRU[str, bool] = LRU(MOST_REMEMBERED, FRESH_AFTER_WRITE_S, clock)

    def routes(self) -> Router:
        """Return the routing table."""
        router = Router()
        v1 = "/api/v1"
        for method, template, handler in [
            ("GET", "/healthz", self.health),
            ("GET", "/avatars/original/missing.png", self.avatar),
            # Mastodon.py asks with a trailing slash, toot without: both are the instance.
            *[("GET", path, self.instance_v1) for path in (f"{v1}/instance", f"{v1}/instance/")],
            *[("GET", path, self.instance_v2)
              for path in ("/api/v2/instance", "/api/v2/instance/")],
            ("POST", f"{v1}/apps", self.register_app),
            *[("GET", path, self.authorize_form)
              for path in ("/oauth/authorize", "/oauth/authorize/")],
            *[("POST", path, self.authorize) for path in ("/oauth/authorize", "/oauth/authorize/")],
            ("POST", "/oauth/token", self.token),
            ("POST", "/oauth/revoke", self.revoke),
            ("GET", f"{v1}/accounts/verify_credentials", self.verify_credentials),
            ("PATCH", f"{v1}/accounts/update_credentials", self.update_credentials),
            ("GET", f"{v1}/accounts/lookup", self.lookup),
            ("GET", f"{v1}/accounts/relationships", self.relationships),
            ("GET", f"{v1}/accounts/search", self.search_accounts),
            ("POST", f"{v1}/accounts", self.register_account),
            ("GET", f"{v1}/accounts/{ACCOUNT}", self.account),
            ("GET", f"{v1}/accounts/{ACCOUNT}/statuses", self.account_statuses),
            *[("GET", f"{v1}/accounts/{ACCOUNT}/{what}", self.nobody)
              for what in ("followers", "following", "featured_tags", "lists")],
            *[("POST", f"{v1}/accounts/{ACCOUNT}/{what}", self.no_follows)
              for what in ("follow", "unfollow", "block", "unblock", "mute", "unmute",
                           "note", "pin", "unpin", "remove_from_followers")],
            ("POST", f"{v1}/statuses", self.post_status),
            ("GET", f"{v1}/statuses/{ID}", self.status),
            ("PUT", f"{v1}/statuses/{ID}", self.edit_status),
            ("DELETE", f"{v1}/statuses/{ID}", self.delete_status),
            ("GET", f"{v1}/statuses/{ID}/source", self.status_source),
            ("GET", f"{v1}/statuses/{ID}/context", self.context),
            *[("GET", f"{v1}/statuses/{ID}/{what}", self.nobody_on_status)
              for what in ("favourited_by", "reblogged_by")],
            ("POST", f"{v1}/statuses/{ID}/favourite", self.favourite),
            ("POST", f"{v1}/statuses/{ID}/{{action}}", self.unsupported_action),
            ("GET", f"{v1}/timelines/home", self.home),
            ("GET", f"{v1}/timelines/public", self.public),
            ("GET", f"{v1}/timelines/tag/{{tag}}", self.tag_timeline),
            ("GET", f"{v1}/timelines/list/{{list}}", self.no_list),
            ("GET", "/api/v2/search", self.search),
            ("GET", f"{v1}/tags/{{tag}}", self.tag),
            *[("POST", path, self.no_media) for path in (f"{v1}/media", "/api/v2/media")],
            ("GET", f"{v1}/preferences", self.preferences),
            ("GET", f"{v1}/markers", self.markers),
            *[("GET", f"{v1}/{what}", self.empty_for_users) for what in EMPTY_FOR_USERS],
            ("GET", "/api/v2/filters", self.empty_for_users),
            ("GET", "/api/v2/suggestions", self.empty_for_users),
            ("POST", f"{v1}/notifications/clear", self.cleared),
            *[("GET", f"{v1}/{what}", self.empty_for_all) for what in EMPTY_FOR_ALL],
        ]:
            router.add(method, template, handler)
        return router

    # -- instance and apps -----------------------------------------------------------------

    def health(self, request: Request) -> Response:
        answer = self.fetch("GET", "/healthz")
        if answer.status != 200:
            raise unavailable()
        return json_response({"status": "ok"}, headers=NO_STORE)

    def avatar(self, request: Request) -> Response:
        return Response(HTTPStatus.OK, AVATAR, [("Content-Type", "image/png"),
                                                ("Cache-Control", "public, max-age=86400")])

    def instance_v1(self, request: Request) -> Response:
        return json_response(entities.instance_v1(self.site))

    def instance_v2(self, request: Request) -> Response:
        return json_response(entities.instance_v2(self.site))

    def register_app(self, request: Request) -> Response:
        return json_response(self.apps.register(fields(request)))

    # -- OAuth ---------------------------------------------------------------------------

    def authorize_form(self, request: Request) -> Response:
        try:
            app, redirect_uri, scope = self.authorization_request(request.query)
        except HTTPError as err:
            return pages.problem_page(err.message, HTTPStatus.BAD_REQUEST)
        return pages.login_form(app.name, scope, hidden(request.query, app, redirect_uri, scope))

    def authorize(self, request: Request) -> Response:
        form = fields(request)
        try:
            app, redirect_uri, scope = self.authorization_request(form)
        except HTTPError as err:
            return pages.problem_page(err.message, HTTPStatus.BAD_REQUEST)
        username, password = form.get("username"), form.get("password")
        carried = hidden(form, app, redirect_uri, scope)
        if not isinstance(username, str) or not isinstance(password, str) \
                or not username or not password:
            return pages.login_form(app.name, scope, carried, error="Enter your username "
                                    "and password.", status=HTTPStatus.BAD_REQUEST)
        answer = self.fetch("POST", "/sessions", {"username": username, "password": password})
        if answer.status == HTTPStatus.UNAUTHORIZED:
            return pages.login_form(app.name, scope, carried, username,
                                    "Wrong username or password.", HTTPStatus.UNAUTHORIZED)
        token = self.answered(answer)["token"]
        code = self.codes.issue(token, app.client_id, redirect_uri, scope)
        if redirect_uri == oauth.OOB:
            return pages.code_page(app.name, code)
        query = {"code": code, **({"state": carried["state"]} if "state" in carried else {})}
        joiner = "&" if urlsplit(redirect_uri).query else "?"
        return Response(HTTPStatus.SEE_OTHER, headers=[
            ("Location", f"{redirect_uri}{joiner}{urlencode(query)}"), *NO_STORE])

    def authorization_request(self, params: dict[str, Any]) -> tuple[oauth.App, str, str]:
        """Check an authorization request: its app, redirect URI, response type and scope."""
        app = self.apps.find(params.get("client_id"))
        redirect_uri = params.get("redirect_uri") or app.redirect_uris[0]
        if redirect_uri not in app.redirect_uris:
            raise oauth.oauth_error("invalid_request", "The redirect URI is not one this app "
                                                       "registered.")
        if params.get("response_type", "code") != "code":
            raise oauth.oauth_error("unsupported_response_type",
                                    "Only response_type=code is supported.")
        asked = oauth.scopes(params.get("scope"))
        if not oauth.covered(asked, app.scopes):
            raise oauth.oauth_error("invalid_scope", "The app asks for more than it registered "
                                                     "for.")
        return app, redirect_uri, " ".join(asked)

    def token(self, request: Request) -> Response:
        form = fields(request)
        grant_type = form.get("grant_type")
        if grant_type not in ("password", "authorization_code"):
            raise oauth.oauth_error("unsupported_grant_type", "Use grant_type password or "
                                    "authorization_code: there are no app-only tokens here.")
        app = self.apps.check(form.get("client_id"), form.get("client_secret"))
        if grant_type == "authorization_code":
            grant = self.codes.redeem(form.get("code"), app.client_id, form.get("redirect_uri"))
            token, scope = grant.token, grant.scope
        else:
            asked = oauth.scopes(form.get("scope"))
            if not oauth.covered(asked, app.scopes):
                raise oauth.oauth_error("invalid_scope", "The app asks for more than it "
                                                         "registered for.")
            username, password = form.get("username"), form.get("password")
            if not isinstance(username, str) or not isinstance(password, str):
                raise oauth.oauth_error("invalid_request", "Send username and password.")
            answer = self.fetch("POST", "/sessions", {"username": username,
                                                      "password": password})
            if answer.status == HTTPStatus.UNAUTHORIZED:
                raise oauth.oauth_error("invalid_grant", "Wrong username or password.")
            token, scope = self.answered(answer)["token"], " ".join(asked)
        # Mastodon.py checks that "scope" holds every scope it asked for.
        return json_response({"access_token": token, "token_type": "Bearer", "scope": scope,
                              "created_at": int(time.time())}, headers=NO_STORE)

    def revoke(self, request: Request) -> Response:
        form = fields(request)
        self.apps.check(form.get("client_id"), form.get("client_secret"))
        token = form.get("token")
        if isinstance(token, str) and token:
            self.fetch("DELETE", "/sessions", headers={"authorization": f"Bearer {token}"})
        return json_response({}, headers=NO_STORE)  # RFC 7009 §2.2: 200 whatever the token

    # -- accounts ------------------------------------------------------------------------

    def verify_credentials(self, request: Request) -> Response:
        me = self.who(request)
        account = self.read(f"/accounts/{quote(me['username'])}", fresh=True)
        self.authors.put(account["username"], account)
        return json_response(self.site.credential_account(account), headers=NO_STORE)

    def update_credentials(self, request: Request) -> Response:
        self.who(request)
        raise refused("Profiles cannot be changed here.")

    def register_account(self, request: Request) -> Response:
        raise refused("Sign up on the web pages; then log in here.")

    def lookup(self, request: Request) -> Response:
        username = self.local_name(request.query.get("acct", ""))
        return json_response(self.site.account(self.api_account(username)))

    def account(self, request: Request) -> Response:
        username = self.local_name(request.params["account"])
        return json_response(self.site.account(self.api_account(username)))

    def relationships(self, request: Request) -> Response:
        self.who(request)
        ids = list_param(request.query_string, "id")
        return json_response([entities.relationship(account_id) for account_id in ids[:40]])

    def search_accounts(self, request: Request) -> Response:
        limit = limit_param(request.query)
        return json_response(self.find_accounts(search_text(request.query), limit))

    def account_statuses(self, request: Request) -> Response:
        username = self.local_name(request.params["account"])
        query = request.query
        if truthy(query.get("pinned")) or truthy(query.get("only_media")):
            self.api_account(username)
            return self.listed(request, [], None)
        return self.timeline(request, f"/accounts/{quote(username)}/tweets")

    def nobody(self, request: Request) -> Response:
        self.api_account(self.local_name(request.params["account"]))
        return json_response([])

    def no_follows(self, request: Request) -> Response:
        self.who(request)
        raise refused(NO_FOLLOWS)

    # -- statuses ------------------------------------------------------------------------

    def post_status(self, request: Request) -> Response:
        form = fields(request)
        check_plain(form)
        if form.get("visibility") not in (None, "", "public"):
            raise refused("Every status here is public: visibility must be public.")
        for name, what in [("in_reply_to_id", "Replies"), ("scheduled_at", "Scheduled statuses"),
                           ("quote_id", "Quotes")]:
            if form.get(name) not in (None, ""):
                raise refused(f"{what} are not supported here.")
        headers = self.bearer(request)
        key = request.headers.get("idempotency-key")
        if key:
            headers["idempotency-key"] = key
        tweet = self.answered(self.fetch("POST", "/tweets", {"text": status_text(form)},
                                         headers))
        self.wrote.put(digest(request), True)
        return json_response(self.status_of(tweet), headers=NO_STORE)

    def status(self, request: Request) -> Response:
        tweet = self.read(f"/tweets/{request.params['id']}", fresh=self.fresh(request),
                          missing="no such status")
        return json_response(self.status_of(tweet))

    def edit_status(self, request: Request) -> Response:
        form = fields(request)
        check_plain(form)
        tweet = self.answered(self.fetch("PUT", f"/tweets/{request.params['id']}",
                                         {"text": status_text(form)},
                                         self.bearer(request)), "no such status")
        self.wrote.put(digest(request), True)
        return json_response(self.status_of(tweet), headers=NO_STORE)

    def delete_status(self, request: Request) -> Response:
        headers = {**self.bearer(request), "prefer": "return=representation"}
        tweet = self.answered(self.fetch("DELETE", f"/tweets/{request.params['id']}",
                                         headers=headers), "no such status")
        self.wrote.put(digest(request), True)
        # Mastodon answers the deleted status with its text, for "delete and redraft".
        return json_response(self.status_of(tweet, source=True), headers=NO_STORE)

    def status_source(self, request: Request) -> Response:
        tweet = self.read(f"/tweets/{request.params['id']}", fresh=True,
                          missing="no such status")
        return json_response({"id": str(tweet["id"]), "text": tweet["text"],
                              "spoiler_text": ""}, headers=NO_STORE)

    def context(self, request: Request) -> Response:
        self.read(f"/tweets/{request.params['id']}", missing="no such status")
        return json_response({"ancestors": [], "descendants": []})  # there are no replies

    def nobody_on_status(self, request: Request) -> Response:
        self.read(f"/tweets/{request.params['id']}", missing="no such status")
        return json_response([])  # favourites are anonymous; there are no boosts

    def favourite(self, request: Request) -> Response:
        self.who(request)  # the API needs no token to like, but a Mastodon client sends one
        key = request.headers.get("idempotency-key")
        liked = self.answered(self.fetch("POST", f"/tweets/{request.params['id']}/like",
                                         headers={"idempotency-key": key} if key else {}),
                              "no such status")
        self.wrote.put(digest(request), True)
        tweet = self.read(f"/tweets/{liked['id']}", fresh=True, missing="no such status")
        status = self.status_of({**tweet, "likes": max(tweet["likes"], liked["likes"])})
        status["favourited"] = True  # this client just gave one
        return json_response(status, headers=NO_STORE)

    def unsupported_action(self, request: Request) -> Response:
        sentence = UNSUPPORTED.get(request.params["action"])
        if sentence is None:
            raise HTTPError(HTTPStatus.NOT_FOUND, f"no route for {request.path}")
        self.who(request)
        raise refused(sentence)

    # -- timelines and search --------------------------------------------------------------

    def home(self, request: Request) -> Response:
        self.who(request)  # there are no follows: home is the one timeline
        return self.timeline(request, "/tweets")

    def public(self, request: Request) -> Response:
        if truthy(request.query.get("remote")) or truthy(request.query.get("only_media")):
            return self.listed(request, [], None)  # no other servers, no media
        return self.timeline(request, "/tweets")

    def tag_timeline(self, request: Request) -> Response:
        if truthy(request.query.get("remote")) or truthy(request.query.get("only_media")):
            return self.listed(request, [], None)
        tag = request.params["tag"].lstrip("#")
        return self.timeline(request, f"/hashtags/{quote(tag)}/tweets")

    def no_list(self, request: Request) -> Response:
        self.who(request)
        raise HTTPError(HTTPStatus.NOT_FOUND, "there are no lists here")

    def search(self, request: Request) -> Response:
        query = request.query
        q = search_text(query)
        kind = query.get("type") or None
        if kind not in (None, "accounts", "statuses", "hashtags"):
            raise HTTPError(HTTPStatus.BAD_REQUEST,
                            "type must be accounts, statuses or hashtags")
        limit = limit_param(query)
        offset = whole_number(query.get("offset", "0") or "0", 6)
        if offset is None:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "offset must be a whole number")
        wanted = min(limit + offset, 100)
        results: dict[str, list[Any]] = {"accounts": [], "statuses": [], "hashtags": []}
        if q.strip() and offset < 100:
            if kind in (None, "accounts"):
                results["accounts"] = self.find_accounts(q, wanted)
            if kind in (None, "statuses"):
                page = self.read(f"/tweets/search?{urlencode({'q': q, 'limit': wanted})}",
                                 fresh=self.fresh(request))
                results["statuses"] = self.statuses_of(page)
            if kind in (None, "hashtags"):
                prefix = q.strip().lstrip("#")
                if prefix and len(prefix) <= 100:
                    found = self.read(f"/hashtags?{urlencode({'q': prefix, 'limit': wanted})}")
                    results["hashtags"] = [self.site.tag(tag["tag"])
                                           for tag in found["hashtags"]]
        return json_response({name: items[offset:offset + limit]
                              for name, items in results.items()})

    def tag(self, request: Request) -> Response:
        name = request.params["tag"].lstrip("#").lower()
        if not name or len(name) > 100:
            raise HTTPError(HTTPStatus.NOT_FOUND, "no status carries this hashtag")
        found = self.read(f"/hashtags?{urlencode({'q': name, 'limit': 100})}")
        if not any(tag["tag"] == name for tag in found["hashtags"]):
            raise HTTPError(HTTPStatus.NOT_FOUND, "no status carries this hashtag")
        return json_response(self.site.tag(name))

    # -- the honest empties ----------------------------------------------------------------

    def no_media(self, request: Request) -> Response:
        self.who(request)
        raise refused(NO_MEDIA)

    def preferences(self, request: Request) -> Response:
        self.who(request)
        return json_response({"posting:default:visibility": "public",
                              "posting:default:sensitive": False,
                              "posting:default:language": None,
                              "reading:expand:media": "default",
                              "reading:expand:spoilers": False}, headers=NO_STORE)

    def markers(self, request: Request) -> Response:
        self.who(request)
        return json_response({}, headers=NO_STORE)

    def empty_for_users(self, request: Request) -> Response:
        self.who(request)
        return json_response([], headers=NO_STORE)

    def empty_for_all(self, request: Request) -> Response:
        return json_response([])

    def cleared(self, request: Request) -> Response:
        self.who(request)
        return json_response({}, headers=NO_STORE)

    # -- helpers -------------------------------------------------------------------------

    def timeline(self, request: Request, path: str) -> Response:
        """Answer a page of statuses read from the API's ``path``, with Mastodon's paging."""
        query = request.query
        limit = limit_param(query)
        params = {"limit": str(limit)}
        max_id, since_id, min_id = (id_param(query, name)
                                    for name in ("max_id", "since_id", "min_id"))
        if max_id is not None:
            params["cursor"] = str(max_id)
        if min_id is not None:
            params["after"] = str(min_id)
        elif since_id is not None:  # the newest first, down to since_id
            params["after"] = str(since_id)
            params.setdefault("cursor", str(MAX_ID))
        page = self.read(f"{path}?{urlencode(params)}", fresh=self.fresh(request),
                         missing="Record not found")
        return self.listed(request, self.statuses_of(page), page.get("next"))

    def listed(self, request: Request, items: list[dict[str, Any]],
               next_id: Any) -> Response:
        """Answer a list of statuses with the Link header Mastodon clients page with."""
        links = []
        if items:
            kept = [(name, value) for name, value in parse_qs(
                request.query_string, keep_blank_values=True).items()
                if name not in ("max_id", "min_id", "since_id")]
            base = f"{self.site.public_url}{request.path}"
            if next_id is not None:
                links.append(f'<{link(base, kept, "max_id", next_id)}>; rel="next"')
            links.append(f'<{link(base, kept, "min_id", items[0]["id"])}>; rel="prev"')
        headers = [("Link", ", ".join(links))] if links else []
        return json_response(items, headers=headers)

    def statuses_of(self, page: dict[str, Any]) -> list[dict[str, Any]]:
        authors = page.get("authors") or {}
        return [self.status_of(tweet, name=authors.get(tweet["author"]))
                for tweet in page["tweets"]]

    def status_of(self, tweet: dict[str, Any], source: bool = False,
                  name: str | None = None) -> dict[str, Any]:
        return self.site.status(tweet, self.author(tweet, name), source)

    def author(self, tweet: dict[str, Any], name: str | None) -> dict[str, Any]:
        """Return the API account of a tweet's author: from memory, else one cached read
        (an account's name and creation never change; its tweet count may lag a minute)."""
        username = tweet["author"]
        known = self.authors.get(username.lower())
        if known is None:
            answer = self.fetch("GET", f"/accounts/{quote(username)}")
            if answer.status == HTTPStatus.OK:
                known = answer.json()
            else:  # deleted since, or the API is struggling: what the tweet itself says
                known = {"username": username, "display_name": name or username,
                         "created_at": tweet["created_at"], "tweet_count": 0}
            self.authors.put(username.lower(), known)
        return known

    def api_account(self, username: str) -> dict[str, Any]:
        account: dict[str, Any] = self.read(f"/accounts/{quote(username)}",
                                            missing="Record not found")
        self.authors.put(username.lower(), account)
        return account

    def find_accounts(self, q: str, limit: int) -> list[dict[str, Any]]:
        name = q.strip().lstrip("@")
        if "@" in name:
            local, _, domain = name.partition("@")
            if domain.lower() != self.site.domain.lower():
                return []  # no other servers here
            name = local
        if not name:
            return []
        found = self.read(f"/accounts/search?{urlencode({'q': name, 'limit': min(limit, 100)})}")
        return [self.site.account(account) for account in found["accounts"]]

    def local_name(self, acct: str) -> str:
        """Return the username of ``name`` or ``name@our-domain``; 404 for anyone else's."""
        name, _, domain = acct.strip().lstrip("@").partition("@")
        if not name or (domain and domain.lower() != self.site.domain.lower()) \
                or len(name) > 30 or not name.isascii() or not name.replace("_", "").isalnum():
            raise HTTPError(HTTPStatus.NOT_FOUND, "Record not found")
        return name

    def who(self, request: Request) -> dict[str, Any]:
        """Return whose token the request carries ({account_id, username}), or raise 401."""
        return self.answered(self.fetch("GET", "/sessions", headers=self.bearer(request)))

    def bearer(self, request: Request) -> dict[str, str]:
        """Return the request's Authorization header to pass on, or raise 401 without one."""
        value = request.headers.get("authorization", "")
        if not value.lower().startswith("bearer ") or not value[7:].strip():
            raise HTTPError(HTTPStatus.UNAUTHORIZED, "The access token is invalid.",
                            headers={"WWW-Authenticate": 'Bearer realm="first-price-twitter"'})
        return {"authorization": value}

    def fresh(self, request: Request) -> bool:
        """Tell whether this client wrote something lately, so its reads skip the caches."""
        return bool(request.headers.get("authorization")) and bool(self.wrote.get(digest(request)))

    def read(self, target: str, fresh: bool = False, missing: str = "Record not found") -> Any:
        """Read ``target`` from the API without the client's token, so caches may answer."""
        headers = {"cache-control": "no-cache"} if fresh else {}
        return self.answered(self.fetch("GET", target, headers=headers), missing)

    def fetch(self, method: str, target: str, payload: Any = None,
              headers: dict[str, str] | None = None) -> UpstreamResponse:
        try:
            return self.api.fetch(method, target, payload, headers)
        except UpstreamError:
            raise unavailable() from None

    def answered(self, answer: UpstreamResponse, missing: str = "Record not found") -> Any:
        """Return an API answer's JSON, or raise its error in Mastodon's words."""
        if answer.status < 400:
            return answer.json() if answer.body else None
        status = HTTPStatus(answer.status)
        if status == HTTPStatus.NOT_FOUND:
            raise HTTPError(status, missing)
        message = WORDS.get(status) or api_message(answer)
        if status in (HTTPStatus.BAD_REQUEST, HTTPStatus.CONFLICT,
                      HTTPStatus.UNPROCESSABLE_ENTITY):
            raise refused(message)  # Mastodon's word for a validation failure is 422
        if status == HTTPStatus.UNAUTHORIZED:
            raise HTTPError(status, message, headers={
                "WWW-Authenticate": answer.headers.get("www-authenticate", "Bearer")})
        raise HTTPError(status, message)


def fields(request: Request) -> dict[str, Any]:
    """Return a request's parameters: the query's, then the body's (JSON or a form), as
    Mastodon reads them; a form's ``name[]`` repeated is a list."""
    merged = form_fields(request.query_string)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.body and kind == "application/json":
        merged.update(request.json())
    elif request.body and kind in ("", "application/x-www-form-urlencoded"):
        try:
            merged.update(form_fields(request.body.decode("utf-8")))
        except UnicodeDecodeError:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "the form is not valid UTF-8") from None
    elif request.body:
        raise HTTPError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                        "send the fields as JSON or as a form (application/x-www-form-urlencoded)")
    return merged


def form_fields(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, values in parse_qs(text, keep_blank_values=True).items():
        if name.endswith("[]"):
            out[name[:-2]] = values
        else:
            out[name] = values[-1]
    return out


def list_param(query_string: str, name: str) -> list[str]:
    parsed = parse_qs(query_string, keep_blank_values=True)
    return [*parsed.get(f"{name}[]", []), *parsed.get(name, [])]


def hidden(params: dict[str, Any], app: oauth.App, redirect_uri: str,
           scope: str) -> dict[str, str]:
    """The fields the log-in form carries on to its POST."""
    carried = {"client_id": app.client_id, "redirect_uri": redirect_uri, "scope": scope,
               "response_type": "code"}
    state = params.get("state")
    if isinstance(state, str) and state and len(state) <= 500:
        carried["state"] = state
    return carried


def check_plain(form: dict[str, Any]) -> None:
    """Refuse what a status here cannot have: media, a poll, a content warning."""
    if form.get("media_ids"):
        raise refused(NO_MEDIA)
    if form.get("poll") or any(name.startswith("poll[") for name in form):  # a form's poll
        raise refused("Polls are not supported here.")
    if form.get("spoiler_text"):
        raise refused("Content warnings are not supported here.")


def status_text(form: dict[str, Any]) -> str:
    text = form.get("status")
    if not isinstance(text, str) or not text.strip():
        raise refused("Validation failed: Text can't be blank.")
    return text


def search_text(query: dict[str, str]) -> str:
    q = query.get("q", "")
    if len(q) > MAX_QUERY:
        raise HTTPError(HTTPStatus.BAD_REQUEST, f"q must be at most {MAX_QUERY} characters")
    return q


def limit_param(query: dict[str, str]) -> int:
    """Return ``limit``, as Mastodon reads it: absent or unreadable is 20, over 40 is 40."""
    limit = whole_number(query.get("limit", ""), 6)
    return DEFAULT_LIMIT if limit is None or limit == 0 else min(limit, MOST_LIMIT)


def id_param(query: dict[str, str], name: str) -> int | None:
    raw = query.get(name, "")
    if not raw:
        return None
    value = whole_number(raw)
    if value is None:
        raise HTTPError(HTTPStatus.BAD_REQUEST, f"{name} must be a status id")
    return min(value, MAX_ID)


def truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "on", "yes")


def link(base: str, kept: list[tuple[str, list[str]]], name: str, value: Any) -> str:
    return f"{base}?{urlencode([*kept, (name, [str(value)])], doseq=True)}"


def digest(request: Request) -> str:
    """Name a client's token without keeping it."""
    token = request.headers.get("authorization", "").encode()
    return hashlib.sha256(token).hexdigest()


def api_message(answer: UpstreamResponse) -> str:
    try:
        message = str(answer.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = "the request was refused"
    return sentence(message)


def sentence(text: str) -> str:
    text = text.strip() or "Something went wrong"
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def refused(message: str) -> HTTPError:
    return HTTPError(HTTPStatus.UNPROCESSABLE_ENTITY, sentence(message))


def unavailable() -> HTTPError:
    return HTTPError(HTTPStatus.SERVICE_UNAVAILABLE,
                     "The service is having trouble right now. Please try again in a moment.",
                     "unavailable")


def grey_png(size: int = 48) -> bytes:
    """A plain grey square: the avatar of every account (there are no uploads)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
    header = size.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])  # 8-bit greyscale
    rows = b"".join(b"\x00" + b"\x9a" * size for _ in range(size))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


AVATAR = grey_png()


# Clients that run in a browser on their own origin (Elk, Pinafore, ...) read the API and get
# tokens across origins, as Mastodon allows them: any origin, no cookies (the token is a
# header), and the Link header readable for paging (the Fetch standard's CORS protocol).
CORS = [("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", "Link")]
PREFLIGHT = [("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE"),
             ("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key"),
             ("Access-Control-Max-Age", "86400")]


def cross_origin(path: str) -> bool:
    return path.startswith(("/api/", "/oauth/token", "/oauth/revoke"))


class GatewayServer(Server):
    """Errors in Mastodon's shape: ``{"error": "sentence"}``; OAuth's at /oauth/. The API
    routes answer cross-origin requests."""

    def __init__(self, gateway: Gateway, config: Config) -> None:
        super().__init__((config.host, config.port), gateway.routes(), name="mastodon",
                         log_requests=config.log_requests)

    def respond(self, request: Request) -> Response:
        if not cross_origin(request.path):
            return super().respond(request)
        if request.method == "OPTIONS":
            return Response(HTTPStatus.NO_CONTENT, headers=[*CORS, *PREFLIGHT])
        response = super().respond(request)
        response.headers.extend(CORS)
        return response

    def error_response(self, err: HTTPError, request: Request | None = None) -> Response:
        headers = [("Content-Type", "application/json"), *err.headers.items()]
        if request is not None and request.path.startswith("/oauth/"):
            body: dict[str, Any] = {"error": err.code, "error_description": sentence(err.message)}
        else:
            body = {"error": sentence(err.message)}
        response = json_response(body, err.status)
        response.headers = headers
        return response


def make_server(config: Config, clock: Callable[[], float] = time.monotonic) -> GatewayServer:
    """Build the gateway's server, unstarted."""
    api = Upstream(config.api_url, read_timeout=config.timeout, fail_fast=config.fail_fast)
    key = load_secret(config.secret_key, config.data_dir, "mastodon-secret.key")
    gateway = Gateway(api, Site(config.public_url, config.web_url), key, clock)
    server = GatewayServer(gateway, config)
    if not config.public_url:  # where it listens (with port 0, the port the system gave)
        gateway.site = Site(server.url, config.web_url)
    server.on_close.append(api.close)
    return server


def main() -> None:
    """Run the gateway until SIGINT or SIGTERM."""
    run_main(Config.from_env, lambda config: serve(make_server(config)))
