"""web: server-rendered HTML pages with plain forms, talking to the public API only.

One job a module: ``web.pages`` (the pages and what they are made of), ``web.forms`` (the form
handlers, CSRF and idempotency keys), ``web.api`` (the client of the API), ``web.context``
(what a request's cookies say), ``web.session`` (the cookies themselves); this module routes
them, serves the static files and answers errors as pages.

Sessions end when the API says so. Logging out ends the token at the API (DELETE /sessions)
as well as clearing the cookie, so a copy of the old cookie is logged out too: every page for
a logged-in visitor first asks the API whether the token still works (GET /sessions, which
the API answers from memory, no database round trip), and an API 401 for the session's token
anywhere means "logged out", never an error page. /password changes the password, which
logs out every other session of the account.

Environment: HOST (127.0.0.1), PORT (8080), API_URL (http://127.0.0.1:8000, the load
balancer; the API itself works too), SECRET_KEY (else a key kept in DATA_DIR), DATA_DIR
(./data), UPSTREAM_TIMEOUT_S (10), LOG_REQUESTS (off).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Callable

from httpkit import (HTTPError, Request, Response, Router, Server, Upstream, UpstreamError,
                     json_response, serve)
from httpkit.breaker import STALL_S, FailFast
from httpkit.config import env_bool, env_float, env_int, env_str, run_main
from httpkit.keys import load_secret
from httpkit.messages import path_id
from httpkit.routing import Handler
from web.api import Api, unavailable
from web.context import RequestContext
from web.forms import Forms, Shown
from web.pages import HEADINGS, HTML, ROUTER_WORDS, SECURITY_HEADERS, nav
from web.render import render

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {"style.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
                "favicon.svg": "image/svg+xml"}


@dataclass(frozen=True, kw_only=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    api_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""
    data_dir: str = "data"
    timeout: float = 10.0
    log_requests: bool = False
    fail_fast: FailFast = FailFast(stall_s=STALL_S["web"])

    @classmethod
    def from_env(cls) -> Config:
        """Read the configuration from the environment."""
        return cls(host=env_str("HOST", cls.host), port=env_int("PORT", cls.port, 0),
                   api_url=env_str("API_URL", cls.api_url), secret_key=env_str("SECRET_KEY", ""),
                   data_dir=env_str("DATA_DIR", cls.data_dir),
                   timeout=env_float("UPSTREAM_TIMEOUT_S", cls.timeout, 0.1),
                   log_requests=env_bool("LOG_REQUESTS", False), fail_fast=FailFast.from_env("web"))


class Web(Forms):
    """The front end: its pages and forms, routed, and its static files."""

    def __init__(self, api: Api, key: bytes, clock: Callable[[], float] = time.time) -> None:
        super().__init__(api, key, clock)
        self.static = {name: (STATIC / name).read_bytes() for name in STATIC_TYPES}

    def routes(self) -> Router:
        """Return the routing table."""
        router = Router()
        table: list[tuple[str, str, Handler]] = [
            ("GET", "/", self.timeline),
            ("POST", "/tweets", self.post_tweet),
            ("GET", "/tweets", self.to_timeline),
            ("GET", "/tweets/{id:[0-9]+}", self.tweet_page),
            ("POST", "/tweets/{id:[0-9]+}/like", self.like),
            ("GET", "/tweets/{id:[0-9]+}/like", self.to_tweet),
            ("POST", "/tweets/{id:[0-9]+}/edit", self.edit),
            ("GET", "/tweets/{id:[0-9]+}/edit", self.to_tweet),
            ("GET", "/tweets/{id:[0-9]+}/delete", self.delete_form),
            ("POST", "/tweets/{id:[0-9]+}/delete", self.delete),
            ("GET", "/accounts", self.accounts),
            ("GET", "/accounts/{username}", self.profile),
            ("GET", "/signup", self.signup_form),
            ("POST", "/signup", self.signup),
            ("GET", "/login", self.login_form),
            ("POST", "/login", self.login),
            ("GET", "/logout", self.logout_form),
            ("POST", "/logout", self.logout),
            ("GET", "/password", self.password_form),
            ("POST", "/password", self.change_password),
            ("GET", "/search", self.search),
            ("GET", "/tags/{tag}", self.tag_page),
            ("GET", "/dashboard", self.dashboard),
            ("GET", "/dashboard/logs", self.call_log),
            ("GET", "/dashboard/logs.json", self.raw_logs),
            ("GET", "/static/{name}", self.static_file),
            ("GET", "/favicon.ico", self.favicon),
            ("GET", "/healthz", self.health),
        ]
        for method, template, handler in table:
            router.add(method, template, handler)
        return router

    def to_timeline(self, request: Request) -> Response:
        """GET /tweets: an old bookmark, or the address a refused post once left."""
        return Response(HTTPStatus.SEE_OTHER, b"", [("Location", "/")])

    def to_tweet(self, request: Request) -> Response:
        return Response(HTTPStatus.SEE_OTHER, b"", [("Location", f"/tweets/{path_id(request)}")])

    def static_file(self, request: Request) -> Response:
        name = request.params["name"]
        if name not in self.static:
            raise HTTPError(HTTPStatus.NOT_FOUND, "no such file")
        return Response(200, self.static[name], [("Content-Type", STATIC_TYPES[name]),
                                                 ("Cache-Control", "public, max-age=3600")])

    def favicon(self, request: Request) -> Response:
        return Response(200, self.static["favicon.svg"], [
            ("Content-Type", STATIC_TYPES["favicon.svg"]),
            ("Cache-Control", "public, max-age=86400")])

    def health(self, request: Request) -> Response:
        try:
            answer = self.api.upstream.request("GET", "/healthz")
        except UpstreamError:
            raise unavailable() from None
        if answer.status != 200:
            raise unavailable()
        return json_response({"status": "ok"}, headers=[("Cache-Control", "no-store")])


class WebServer(Server):
    """Errors are pages here, not JSON; every answer carries the security headers."""

    def __init__(self, web: Web, config: Config) -> None:
        super().__init__((config.host, config.port), web.routes(), name="web",
                         log_requests=config.log_requests)
        self.web = web

    def respond(self, request: Request) -> Response:
        response = super().respond(request)
        response.headers.extend(SECURITY_HEADERS)
        return response

    def error_response(self, err: HTTPError, request: Request | None = None) -> Response:
        if isinstance(err, Shown):
            return err.response
        heading = HEADINGS.get(err.status, "Something went wrong")
        message = err.message
        if err.code in ("not_found", "method_not_allowed") and err.status in ROUTER_WORDS:
            message = ROUTER_WORDS[err.status]
        elif err.status >= 500 and err.code not in ("unavailable", "storage_full"):
            message = "Something went wrong on our side. Please try again in a moment."
        body = render("error.html", heading=heading, message=message)
        context = RequestContext(request, self.web.key) if request is not None else None
        document = render("layout.html", title=f"Error: {heading}", nav=nav(context),
                          flash="", body=body)
        headers = [("Content-Type", HTML), ("Cache-Control", "no-store"), *err.headers.items()]
        return Response(err.status, document.encode(), headers)


def make_server(config: Config, clock: Callable[[], float] = time.time) -> WebServer:
    """Build the front end's server, unstarted (``clock`` says how long ago things were)."""
    api = Upstream(config.api_url, read_timeout=config.timeout, fail_fast=config.fail_fast)
    key = load_secret(config.secret_key, config.data_dir, "web-secret.key")
    web = Web(Api(api), key, clock)
    server = WebServer(web, config)
    server.on_start.append(web.history.start)
    server.on_close.extend([web.history.stop, api.close])
    return server


def main() -> None:
    """Run the front end until SIGINT or SIGTERM."""
    run_main(Config.from_env, lambda config: serve(make_server(config)))
