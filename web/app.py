"""web: server-rendered HTML pages with plain forms, talking to the public API only.

Every page works with JavaScript off. Sessions live in a signed cookie (HttpOnly,
SameSite=Lax); every state-changing form carries a CSRF token the server checks. Forms use
POST-redirect-GET (303), and the page after a write is fetched with ``Cache-Control:
no-cache`` so the writer sees the write at once through every cache. Each rendered form that
creates something (sign up, log in, post, like) also carries a fresh key, sent on to the API
as ``Idempotency-Key``: the same form sent twice (a double click, Back, a retry) acts once.

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

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from httpkit import (HTTPError, Request, Response, Router, Server, Upstream, UpstreamError,
                     UpstreamResponse, json_response, serve)
from httpkit.breaker import STALL_S, FailFast
from httpkit.config import env_bool, env_float, env_int, env_str, run_main
from httpkit.keys import load_secret
from httpkit.messages import path_id, whole_number
from httpkit.routing import Handler
from web import charts, session
from web.render import Markup, escape, join, path_part, render, tweet_text

LOG = logging.getLogger(__name__)
HTML = "text/html; charset=utf-8"
STATIC = Path(__file__).parent / "static"
KINDS = ("tweets", "hashtags", "accounts")
# Each idem field is autocomplete="off": Firefox may otherwise put a used key back into a
# reloaded page (Mozilla bug 520561), and the next post from it would not be a new one.
IDEM_FIELD = "idem"
# The keys new_key() makes. Anything else in the field did not come from our page, and a key
# the API refuses would fail the form: it is dropped and the form sent without one.
OUR_KEY = re.compile(r"[A-Za-z0-9_-]{16,255}\Z")


@dataclass(frozen=True)
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
        return cls(env_str("HOST", cls.host), env_int("PORT", cls.port, 0),
                   env_str("API_URL", cls.api_url), env_str("SECRET_KEY", ""),
                   env_str("DATA_DIR", cls.data_dir),
                   env_float("UPSTREAM_TIMEOUT_S", cls.timeout, 0.1),
                   env_bool("LOG_REQUESTS", False), FailFast.from_env("web"))


class Page:
    """What one request needs while it renders: the visitor's session and cookies."""

    def __init__(self, request: Request, key: bytes) -> None:
        self.request = request
        self.cookies = session.read_cookies(request.headers.get("cookie", ""))
        self.session = session.load(key, self.cookies)
        self.fresh = session.FRESH_COOKIE in self.cookies


class Web:
    """The front end's handlers."""

    def __init__(self, api: Upstream, key: bytes) -> None:
        self.api = api
        self.key = key

    def routes(self) -> Router:
        """Return the routing table."""
        router = Router()
        table: list[tuple[str, str, Handler]] = [
            ("GET", "/", self.timeline),
            ("POST", "/tweets", self.post_tweet),
            ("GET", "/tweets/{id:[0-9]+}", self.tweet_page),
            ("POST", "/tweets/{id:[0-9]+}/like", self.like),
            ("POST", "/tweets/{id:[0-9]+}/edit", self.edit),
            ("POST", "/tweets/{id:[0-9]+}/delete", self.delete),
            ("GET", "/accounts", self.accounts),
            ("GET", "/accounts/{username}", self.profile),
            ("GET", "/signup", self.signup_form),
            ("POST", "/signup", self.signup),
            ("GET", "/login", self.login_form),
            ("POST", "/login", self.login),
            ("POST", "/logout", self.logout),
            ("GET", "/password", self.password_form),
            ("POST", "/password", self.change_password),
            ("GET", "/search", self.search),
            ("GET", "/tags/{tag}", self.tag_page),
            ("GET", "/dashboard", self.dashboard),
            ("GET", "/dashboard/logs", self.raw_logs),
            ("GET", "/static/style.css", self.stylesheet),
            ("GET", "/healthz", self.health),
        ]
        for method, template, handler in table:
            router.add(method, template, handler)
        return router

    # -- pages ---------------------------------------------------------------------------

    def timeline(self, request: Request, error: str = "", text: str = "") -> Response:
        page = self.visit(request)
        data = self.get(page, "/tweets", paging(request))
        compose = (render("compose.html", csrf=page.session.csrf, idem=new_key(), text=text,
                          error=error_line(error)) if page.session.logged_in
                   else render("compose_guest.html"))
        body = render("timeline.html", compose=compose, tweets=self.tweet_list(page, data, "/"))
        return self.html(page, "Timeline", body, HTTPStatus.BAD_REQUEST if error else 200)

    def tweet_page(self, request: Request, error: str = "", text: str | None = None) -> Response:
        page = self.visit(request)
        tweet = self.get(page, f"/tweets/{path_id(request)}")
        tools = Markup("")
        if page.session.user == tweet["author"]:
            tools = render("author_tools.html", id=tweet["id"], csrf=page.session.csrf,
                           error=error_line(error), text=tweet["text"] if text is None else text)
        body = render("tweet_page.html", **tweet_values(tweet, page.session.csrf),
                      author_tools=tools)
        status = HTTPStatus.BAD_REQUEST if error else HTTPStatus.OK
        return self.html(page, f"Tweet by @{tweet['author']}", body, status)

    def profile(self, request: Request) -> Response:
        page = self.visit(request)
        username = request.params["username"]
        account = self.get(page, f"/accounts/{path_part(username)}")
        tweets = self.get(page, f"/accounts/{path_part(username)}/tweets", paging(request))
        body = render("profile.html", **account, joined=when(account["created_at"]),
                      tweets=self.tweet_list(page, tweets, request.path))
        return self.html(page, f"@{account['username']}", body)

    def accounts(self, request: Request) -> Response:
        page = self.visit(request)
        data = self.get(page, "/accounts", paging(request))
        items = join(render("account_item.html", **account) for account in data["accounts"])
        body = render("accounts.html", items=items or render("empty.html", message="No one yet."),
                      older=older_link("/accounts", data["next"]))
        return self.html(page, "Accounts", body)

    def tag_page(self, request: Request) -> Response:
        page = self.visit(request)
        tag = request.params["tag"].lstrip("#")
        data = self.get(page, f"/hashtags/{path_part(tag)}/tweets", paging(request))
        body = render("tag.html", tag=tag.lower(), tweets=self.tweet_list(page, data, request.path))
        return self.html(page, f"#{tag.lower()}", body)

    def search(self, request: Request) -> Response:
        page = self.visit(request)
        q = request.query.get("q", "").strip()
        kind = request.query.get("kind", "tweets")
        kind = kind if kind in KINDS else "tweets"
        tabs = join(render("tab.html", href="/search?" + urlencode({"q": q, "kind": k}),
                           css="active" if k == kind else "", label=k.title()) for k in KINDS)
        results = self.search_results(page, kind, q) if q else Markup("")
        body = render("search.html", q=q, kind=kind, tabs=tabs, results=results)
        return self.html(page, f"Search: {q}" if q else "Search", body)

    def search_results(self, page: Page, kind: str, q: str) -> Markup:
        """Render one tab of search results."""
        if kind == "hashtags":
            tags = self.get(page, "/hashtags", {"q": q.lstrip("#")})["hashtags"]
            items = join(render("hashtag_item.html", path=path_part(t["tag"]), **t) for t in tags)
            return render("hashtags.html", items=items) if tags else nothing_found(q)
        if kind == "accounts":
            found = self.get(page, "/accounts/search", {"q": q})["accounts"]
            items = join(render("account_item.html", **account) for account in found)
            return render("accounts.html", items=items, older="") if found else nothing_found(q)
        query = {"q": q, **paging(page.request)}
        data = self.get(page, "/tweets/search", query)
        return self.tweet_list(page, data, "/search?" + urlencode({"q": q, "kind": kind}))

    def dashboard(self, request: Request) -> Response:
        page = self.visit(request)
        api_stats = self.get(page, "/stats")
        try:
            lb = self.api.request("GET", "/_lb/stats")
            lb_stats = lb.json() if lb.status == 200 else None
        except (UpstreamError, ValueError):
            lb_stats = None
        body = render("dashboard.html", charts=charts.dashboard(api_stats, lb_stats))
        return self.html(page, "Dashboard", body)

    def raw_logs(self, request: Request) -> Response:
        page = Page(request, self.key)
        return json_response(self.get(page, "/logs", {"after": request.query.get("after", "0")}),
                             headers=[("Cache-Control", "no-store")])

    def signup_form(self, request: Request, error: str = "", username: str = "",
                    display_name: str = "") -> Response:
        page = self.visit(request)
        body = render("signup.html", csrf=page.session.csrf, idem=new_key(),
                      error=error_line(error), username=username, display_name=display_name)
        return self.html(page, "Sign up", body, HTTPStatus.BAD_REQUEST if error else 200)

    def login_form(self, request: Request, error: str = "", username: str = "") -> Response:
        page = self.visit(request)
        body = render("login.html", csrf=page.session.csrf, idem=new_key(),
                      error=error_line(error), username=username)
        return self.html(page, "Log in", body, HTTPStatus.UNAUTHORIZED if error else 200)

    # -- forms ---------------------------------------------------------------------------

    def post_tweet(self, request: Request) -> Response:
        page, form = self.form(request)
        if not page.session.logged_in:
            return self.redirect(page, "/login")
        text = form.get("text", "")
        answer = self.call(page, "POST", "/tweets", {"text": text}, form_key(form))
        if answer.status == HTTPStatus.BAD_REQUEST:
            return self.timeline(request, error=api_message(answer), text=text)
        if answer.status == HTTPStatus.UNAUTHORIZED:
            return self.logged_out(page)
        check(answer)
        return self.redirect(page, "/")

    def like(self, request: Request) -> Response:
        page, form = self.form(request)
        tweet = path_id(request)
        check(self.call(page, "POST", f"/tweets/{tweet}/like", None, form_key(form)))
        return self.redirect(page, local_path(form.get("next", ""), f"/tweets/{tweet}"))

    def edit(self, request: Request) -> Response:
        page, form = self.form(request)
        tweet = path_id(request)
        text = form.get("text", "")
        answer = self.call(page, "PUT", f"/tweets/{tweet}", {"text": text})
        if answer.status == HTTPStatus.BAD_REQUEST:
            return self.tweet_page(request, error=api_message(answer), text=text)
        if answer.status == HTTPStatus.UNAUTHORIZED:
            return self.logged_out(page)
        check(answer)
        return self.redirect(page, f"/tweets/{tweet}")

    def delete(self, request: Request) -> Response:
        page, _ = self.form(request)
        answer = self.call(page, "DELETE", f"/tweets/{path_id(request)}", None)
        if answer.status == HTTPStatus.UNAUTHORIZED:
            return self.logged_out(page)
        check(answer)
        return self.redirect(page, "/")

    def signup(self, request: Request) -> Response:
        page, form = self.form(request)
        username, display_name = form.get("username", "").strip(), form.get("display_name", "")
        password, key = form.get("password", ""), form_key(form)
        answer = self.call(page, "POST", "/accounts", {
            "username": username, "password": password, "display_name": display_name}, key)
        if answer.status in (HTTPStatus.BAD_REQUEST, HTTPStatus.CONFLICT):
            return self.signup_form(request, api_message(answer), username, display_name)
        check(answer)
        # The same key again: log-ins are keyed apart from sign-ups, and a sign-up sent twice
        # then gets the first log-in's answer too rather than a second session.
        return self.start_session(page, username, password, key)

    def login(self, request: Request) -> Response:
        page, form = self.form(request)
        username, password = form.get("username", "").strip(), form.get("password", "")
        return self.start_session(page, username, password, form_key(form))

    def logout(self, request: Request) -> Response:
        page, _ = self.form(request)
        if page.session.token:
            try:  # ends the token for every copy of the cookie; cleared here whatever it says
                self.api.call("DELETE", "/sessions", None,
                              {"authorization": f"Bearer {page.session.token}"})
            except UpstreamError as err:
                LOG.warning("could not end the session at the API: %s", err)
        page.session = session.Session()  # a new anonymous session, with a new CSRF token
        return self.redirect(page, "/")

    def password_form(self, request: Request, error: str = "") -> Response:
        page = self.visit(request)
        if not page.session.logged_in:
            return self.redirect(page, "/login")
        notice = Markup("")
        if request.query.get("changed") and not error:
            notice = render("empty.html", message="Your password is changed, and every other "
                            "session of your account is logged out.")
        body = render("password.html", csrf=page.session.csrf, error=error_line(error),
                      notice=notice)
        return self.html(page, "Change password", body, HTTPStatus.BAD_REQUEST if error else 200)

    def change_password(self, request: Request) -> Response:
        page, form = self.form(request)
        user = page.session.user
        if user is None or not page.session.logged_in:
            return self.redirect(page, "/login")
        new = form.get("new_password", "")
        if new != form.get("new_password_again", ""):
            return self.password_form(request, "The two new passwords are not the same.")
        answer = self.call(page, "PUT", f"/accounts/{path_part(user)}/password",
                           {"password": form.get("password", ""), "new_password": new})
        if answer.status in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED):
            return self.password_refused(page, answer)
        check(answer)
        data = answer.json()  # a token of the new generation: this session goes on
        page.session = session.Session(token=data["token"], user=data["account"]["username"])
        return self.redirect(page, "/password?changed=1")

    def password_refused(self, page: Page, answer: UpstreamResponse) -> Response:
        """Say why the API refused a new password, or log out if it refused the session."""
        code = api_code(answer)
        if code == "wrong_password":
            return self.password_form(page.request, "That is not your current password.")
        if answer.status == HTTPStatus.UNAUTHORIZED:
            return self.logged_out(page)
        if code == "invalid_password":
            return self.password_form(page.request, "The new password must be at least 8 "
                                      "characters long (and at most 1,024).")
        return self.password_form(page.request, api_message(answer))

    def start_session(self, page: Page, username: str, password: str,
                      key: str | None) -> Response:
        """Log in through the API and keep the token in a new session."""
        credentials = {"username": username, "password": password}
        answer = self.call(page, "POST", "/sessions", credentials, key)
        if answer.status in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED):
            return self.login_form(page.request, "Wrong username or password.", username)
        check(answer)
        data = answer.json()
        page.session = session.Session(token=data["token"], user=data["account"]["username"])
        return self.redirect(page, "/")

    def logged_out(self, page: Page) -> Response:
        """The API refused our token (expired, or the session was ended): forget it and ask
        to log in again."""
        page.session = session.Session()
        return self.redirect(page, "/login")

    # -- plumbing ------------------------------------------------------------------------

    def visit(self, request: Request) -> Page:
        """Read the visitor's session for a page: one whose token the API refuses (logged
        out elsewhere, a password change, expiry) is replaced by an anonymous one."""
        page = Page(request, self.key)
        if page.session.logged_in and self.session_ended(page):
            page.session = session.Session()
        return page

    def session_ended(self, page: Page) -> bool:
        """Ask the API whether the session's token was refused (not when it cannot say)."""
        try:
            answer = self.api.request("GET", "/sessions", headers={
                "authorization": f"Bearer {page.session.token}"})
        except UpstreamError:
            return False  # the page's own reads show the trouble
        return answer.status == HTTPStatus.UNAUTHORIZED

    def form(self, request: Request) -> tuple[Page, dict[str, str]]:
        """Parse a form post and check its CSRF token; 403 when it is missing or wrong."""
        page = Page(request, self.key)
        try:
            fields = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "The form could not be read.") from None
        form = {name: values[0] for name, values in fields.items()}
        token = form.get("csrf_token", "")
        if page.session.is_new or not session.same(token, page.session.csrf):
            raise HTTPError(HTTPStatus.FORBIDDEN, "This form has expired or did not come from "
                            "this site. Go back, reload the page and try again.", "csrf")
        return page, form

    def get(self, page: Page, path: str, query: dict[str, Any] | None = None) -> Any:
        """Read JSON from the API; 404 and upstream failures become error pages."""
        target = path + ("?" + urlencode(query) if query else "")
        headers = {"cache-control": "no-cache"} if page.fresh else {}
        answer = self.send(page, "GET", target, None, headers)
        check(answer)
        return answer.json()

    def call(self, page: Page, method: str, path: str, payload: Any,
             key: str | None = None) -> UpstreamResponse:
        """Send a write to the API with the visitor's token and the form's Idempotency-Key.

        A replayed answer (Idempotent-Replayed: true) is the first answer again, so it is
        handled as that answer was: a log-in still sets the cookie, a post still redirects."""
        headers = {"authorization": f"Bearer {page.session.token}"} if page.session.token else {}
        if key is not None:
            headers["idempotency-key"] = key
        return self.send(page, method, path, payload, headers)

    def send(self, page: Page, method: str, target: str, payload: Any,
             headers: dict[str, str]) -> UpstreamResponse:
        try:
            return self.api.call(method, target, payload, headers)
        except UpstreamError:
            raise unavailable() from None

    def tweet_list(self, page: Page, data: dict[str, Any], here: str) -> Markup:
        """Render a page of tweets with an "Older" link."""
        items = join(render("tweet_item.html", **tweet_values(tweet, page.session.csrf),
                            next=here) for tweet in data["tweets"])
        if not items:
            return render("empty.html", message="No tweets here yet.")
        return render("tweet_list.html", items=items, older=older_link(here, data["next"]))

    def html(self, page: Page, title: str, body: Markup, status: int = 200) -> Response:
        """Wrap a body in the layout and set the session cookies."""
        document = render("layout.html", title=title, account_nav=account_nav(page), body=body)
        headers = [("Content-Type", HTML), ("Cache-Control", "no-store")]
        response = Response(status, document.encode(), headers)
        return self.with_cookies(page, response, fresh=False)

    def redirect(self, page: Page, location: str) -> Response:
        """See Other, with the next page asked to read past the caches."""
        # A Location header is ASCII: percent-encode what is not (a /tags/café page).
        ascii_location = quote(location, safe="/?&=%#:@!$'()*+,;~-._")
        response = Response(HTTPStatus.SEE_OTHER, b"", [("Location", ascii_location)])
        return self.with_cookies(page, response, fresh=True)

    def with_cookies(self, page: Page, response: Response, fresh: bool) -> Response:
        response.headers.append(("Set-Cookie", session.cookie(self.key, page.session)))
        if fresh or page.fresh:
            response.headers.append(("Set-Cookie", session.fresh_cookie(fresh)))
        return response

    def stylesheet(self, request: Request) -> Response:
        return Response(200, (STATIC / "style.css").read_bytes(),
                        [("Content-Type", "text/css; charset=utf-8"),
                         ("Cache-Control", "public, max-age=3600")])

    def health(self, request: Request) -> Response:
        try:
            answer = self.api.request("GET", "/healthz")
        except UpstreamError:
            raise unavailable() from None
        if answer.status != 200:
            raise unavailable()
        return json_response({"status": "ok"}, headers=[("Cache-Control", "no-store")])


def tweet_values(tweet: dict[str, Any], csrf: str) -> dict[str, Any]:
    """Return the template values of one tweet."""
    edited = Markup(f" · edited {escape(when(tweet['edited_at']))}" if tweet["edited_at"] else "")
    return {"id": tweet["id"], "author": tweet["author"], "text": tweet_text(tweet["text"]),
            "likes": tweet["likes"], "created_at": tweet["created_at"],
            "when": when(tweet["created_at"]), "edited": edited, "csrf": csrf,
            "idem": new_key()}


def new_key() -> str:
    """Make a fresh idempotency key for one rendered form."""
    return secrets.token_urlsafe(16)


def form_key(form: dict[str, str]) -> str | None:
    """Return the form's idempotency key, or None when it has none of ours (send no header)."""
    key = form.get(IDEM_FIELD, "")
    return key if OUR_KEY.match(key) else None


def when(iso: str) -> str:
    """Format an ISO 8601 UTC time for people."""
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return moment.astimezone(timezone.utc).strftime("%d %b %Y, %H:%M UTC")


def paging(request: Request) -> dict[str, str]:
    """Pass the page's cursor on to the API."""
    cursor = whole_number(request.query.get("cursor", ""))
    return {"cursor": str(cursor)} if cursor else {}  # a cursor of nothing: the first page


def older_link(here: str, cursor: str | None) -> Markup:
    """Return the "Older" link for a page, or nothing on the last page."""
    if not cursor:
        return Markup("")
    joiner = "&" if "?" in here else "?"
    return render("older.html", href=f"{here}{joiner}cursor={cursor}")


def error_line(message: str) -> Markup:
    return render("error_line.html", message=message) if message else Markup("")


def nothing_found(q: str) -> Markup:
    return render("empty.html", message=f"Nothing matches “{q}”.")


# A path on this site: one "/", then no second "/" or "\\" at once (that would name another
# host), and nothing but visible characters: no whitespace or control characters, which
# browsers strip (turning "/\t/evil" into "//evil") or which would break the header.
LOCAL_PATH = re.compile(r"/(?![/\\])[!-~\u00a0-\U0010ffff]*\Z")


def local_path(candidate: str, default: str) -> str:
    """Return ``candidate`` if it is a path on this site (no open redirects), else default."""
    return candidate if LOCAL_PATH.match(candidate) and "\\" not in candidate else default


def api_message(answer: UpstreamResponse, default: str = "Something was wrong with that.") -> str:
    """Return the human sentence of an API error."""
    try:
        return str(answer.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return default


def api_code(answer: UpstreamResponse) -> str:
    """Return the code of an API error ("" if it has none)."""
    try:
        return str(answer.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


def check(answer: UpstreamResponse) -> None:
    """Turn an API failure into an error page (forms handle their own 400s first)."""
    if answer.status == HTTPStatus.BAD_REQUEST:
        raise HTTPError(HTTPStatus.BAD_REQUEST, api_message(answer))
    if answer.status == HTTPStatus.NOT_FOUND:
        raise HTTPError(HTTPStatus.NOT_FOUND, api_message(answer, "We could not find that."))
    if answer.status == HTTPStatus.FORBIDDEN:
        raise HTTPError(HTTPStatus.FORBIDDEN, api_message(answer, "That is not yours to change."))
    if answer.status == HTTPStatus.UNPROCESSABLE_ENTITY:  # the API's idempotency_key_reused
        # A page kept with its old key (no reload) and sent again with other contents.
        raise HTTPError(answer.status, "That form was already sent with something else in it. "
                        "Reload the page and try again.", "idempotency_key_reused")
    if answer.status == HTTPStatus.INSUFFICIENT_STORAGE:
        raise HTTPError(answer.status, "Our disk is full, so that was not saved. "
                        "Please try again later.", "storage_full")
    if answer.status >= 400:
        raise unavailable()


def account_nav(page: Page | None) -> Markup:
    """The header's account links: who is logged in and a log-out button, or log in / sign up."""
    if page is None or not page.session.logged_in:
        return render("nav_guest.html")
    return render("nav_user.html", username=page.session.user, csrf=page.session.csrf)


def unavailable() -> HTTPError:
    return HTTPError(HTTPStatus.SERVICE_UNAVAILABLE, "The service is having trouble right now. "
                     "Please try again in a moment.", "unavailable")


# Every page is HTML forms and one stylesheet of our own: nothing inline, nothing from
# elsewhere, so the policy can forbid all of it, and the like, edit and delete buttons cannot
# be framed by another site (clickjacking). X-Frame-Options is for browsers without CSP 2.
SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
]


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
        headings = {404: "Not found", 403: "Not allowed", 503: "Temporarily unavailable",
                    405: "Not allowed", 400: "That did not work", 422: "Already sent",
                    507: "Not saved"}
        heading = headings.get(err.status, "Something went wrong")
        body = render("error.html", heading=heading, message=err.message)
        page = Page(request, self.web.key) if request is not None else None
        document = render("layout.html", title=heading, account_nav=account_nav(page), body=body)
        headers = [("Content-Type", HTML), ("Cache-Control", "no-store"), *err.headers.items()]
        return Response(err.status, document.encode(), headers)


def make_server(config: Config) -> WebServer:
    """Build the front end's server, unstarted."""
    api = Upstream(config.api_url, read_timeout=config.timeout, fail_fast=config.fail_fast)
    key = load_secret(config.secret_key, config.data_dir, "web-secret.key")
    server = WebServer(Web(api, key), config)
    server.on_close.append(api.close)
    return server


def main() -> None:
    """Run the front end until SIGINT or SIGTERM."""
    run_main(Config.from_env, lambda config: serve(make_server(config)))
