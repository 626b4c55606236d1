"""web: server-rendered HTML pages with plain forms, talking to the public API only.

Every page works with JavaScript off; /static/app.js only adds a live character count and
likes without a page load. Forms use POST-redirect-GET (303), also when a form is refused:
the page after the redirect says why and holds what was typed (web.session's flash cookie),
so reloading it never sends the form again. The page after a write is fetched with
``Cache-Control: no-cache`` so the writer sees the write at once through every cache. A like
sends you back to the page you were on, at the tweet you liked.

Every state-changing form carries the browser's CSRF token (web.session): it does not change
when someone logs in or out in another tab, so open forms keep working. Each rendered form
that creates something (sign up, log in, post, like) also carries a fresh key, sent on to the
API as ``Idempotency-Key``: the same form sent twice (a double click, Back, a retry) acts once.

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
import time
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, quote, urlencode

from httpkit import (HTTPError, Request, Response, Router, Server, Upstream, UpstreamError,
                     UpstreamResponse, json_response, serve)
from httpkit.breaker import STALL_S, FailFast
from httpkit.config import env_bool, env_float, env_int, env_str, run_main
from httpkit.keys import load_secret
from httpkit.messages import path_id, whole_number
from httpkit.routing import Handler
from web import charts, session, words
from web.history import History, counters
from web.render import Markup, join, path_part, render, tweet_text
from web.session import Flash

LOG = logging.getLogger(__name__)
HTML = "text/html; charset=utf-8"
STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {"style.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
                "favicon.svg": "image/svg+xml"}
KINDS = ("tweets", "hashtags", "accounts")
LOG_PAGE = 50  # calls per page of /dashboard/logs
MOST_NAMES = 10_000  # display names kept (Web.names)
DEFAULT_REFRESH_S, MIN_REFRESH_S = 5, 2  # the dashboard's opt-in ?refresh=
SEARCH_HINTS = {
    "tweets": "Finds tweets holding every word you type, in any order; case does not matter.",
    "hashtags": "Finds hashtags by how they start, with or without the #: “caf” finds #café.",
    "accounts": "Finds people by how their username or display name starts.",
}
NAV = (("/", "Timeline"), ("/search", "Search"), ("/accounts", "Accounts"),
       ("/dashboard", "Dashboard"))
CURRENT = Markup(' aria-current="page"')
# Each idem field is autocomplete="off": Firefox may otherwise put a used key back into a
# reloaded page (Mozilla bug 520561), and the next post from it would not be a new one.
IDEM_FIELD = "idem"
# The keys new_key() makes. Anything else in the field did not come from our page, and a key
# the API refuses would fail the form: it is dropped and the form sent without one.
OUR_KEY = re.compile(r"[A-Za-z0-9_-]{16,255}\Z")
# The one field of a refused form that outlives the page after the redirect: a tweet's text
# waits in the flash until a compose box shows it (after logging in again, say).
DRAFT = "text"
NOT_LOGGED_IN = ("You are not logged in (perhaps you logged out in another tab), so that was "
                 "not posted. Log in and your text will be waiting for you.")
NOT_CHECKED = ("We could not check that this form came from our page (perhaps this site's "
               "cookies were cleared since it was opened). Check it and send it again.")


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
    """One visit to a page: the visitor's session, the browser's CSRF token, the flash the
    last redirect left (its message and the fields of a refused form) and what to answer."""

    def __init__(self, request: Request, key: bytes) -> None:
        self.request = request
        self.cookies = session.read_cookies(request.headers.get("cookie", ""))
        self.session = session.load(key, self.cookies)
        browser = session.load_csrf(key, self.cookies)
        known = browser or session.legacy_csrf(key, self.cookies)
        self.csrf = known or session.new_csrf()
        self.checkable = known is not None  # a form's token can be checked against it
        self.new_browser = browser is None  # it sent no CSRF cookie of ours: give it one
        # No cookie of ours came at all: the browser refuses them (or this is its first visit).
        self.cookieless = not {session.COOKIE, session.BROWSER_COOKIE} & self.cookies.keys()
        self.flash = session.load_flash(key, self.cookies)
        self.taken: set[str] = set()  # the flash fields this page put back in its form
        self.next_flash: Flash | None = None  # for the page after a redirect
        self.status: int = HTTPStatus.OK
        self.fresh = session.FRESH_COOKIE in self.cookies

    def field(self, name: str) -> str:
        """Take a field of the refused form from the flash ("" if there is none)."""
        if self.flash is None or name not in self.flash.fields:
            return ""
        self.taken.add(name)
        return self.flash.fields[name]

    def here(self) -> str:
        """The address of this page, query included, to come back to after a form."""
        target = self.request.target
        return target if target.startswith("/") else self.request.path


class Shown(HTTPError):
    """A page that answers a request at once, raised from deep in a form's handling."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status, "shown")
        self.response = response


class Web:
    """The front end's handlers."""

    def __init__(self, api: Upstream, key: bytes,
                 clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.key = key
        self.clock = clock
        self.static = {name: (STATIC / name).read_bytes() for name in STATIC_TYPES}
        self.history = History(self.read_counters, clock)
        # Display names never change (no route renames an account), so the ones seen are
        # kept: a tweet's own page then needs no account look-up. Bounded: cleared when full.
        self.names: dict[str, str] = {}

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

    # -- pages ---------------------------------------------------------------------------

    def timeline(self, request: Request) -> Response:
        return self.timeline_page(self.visit(request))

    def timeline_page(self, page: Page) -> Response:
        data = self.get(page, "/tweets", paging(page.request))
        body = render("timeline.html", compose=self.compose(page),
                      tweets=self.tweet_list(page, data, "/"))
        return self.html(page, "Timeline", body)

    def compose_page(self, page: Page) -> Response:
        """The post form on its own, holding the text, for when the timeline cannot be
        read (the API is down) or the form was refused."""
        return self.html(page, "Not posted", render("timeline.html", compose=self.compose(page),
                                                    tweets=Markup("")))

    def compose(self, page: Page) -> Markup:
        if not page.session.logged_in:
            return render("compose_guest.html")
        return render("compose.html", csrf=page.csrf, idem=new_key(),
                      **text_box(page.field(DRAFT)))

    def tweet_page(self, request: Request) -> Response:
        return self.tweet_view(self.visit(request))

    def tweet_view(self, page: Page) -> Response:
        tweet_id = path_id(page.request)
        tweet = self.get(page, f"/tweets/{tweet_id}",
                         missing="This tweet does not exist. It may have been deleted.")
        tools = Markup("")
        if page.session.user == tweet["author"]:
            draft = page.field("edit_text") if page.field("edit_id") == str(tweet_id) else ""
            tools = render("author_tools.html", id=tweet["id"], csrf=page.csrf,
                           **text_box(draft or tweet["text"]))
        authors = {tweet["author"]: self.display_name(tweet["author"])}
        body = render("tweet_page.html", author_tools=tools,
                      **self.tweet_values(page, tweet, f"/tweets/{tweet_id}", authors))
        return self.html(page, f"Tweet by @{tweet['author']}", body)

    def delete_form(self, request: Request) -> Response:
        page = self.visit(request)
        tweet = self.get(page, f"/tweets/{path_id(request)}",
                         missing="This tweet does not exist. It may have been deleted already.")
        if page.session.user != tweet["author"]:
            raise HTTPError(HTTPStatus.FORBIDDEN, "Only its author can delete this tweet.")
        body = render("delete_confirm.html", id=tweet["id"], csrf=page.csrf,
                      text=tweet_text(tweet["text"]))
        return self.html(page, "Delete this tweet?", body)

    def profile(self, request: Request) -> Response:
        page = self.visit(request)
        username = request.params["username"]
        missing = f"There is no account called @{username}."
        account = self.get(page, f"/accounts/{path_part(username)}", missing=missing)
        tweets = self.get(page, f"/accounts/{path_part(username)}/tweets", paging(request),
                          missing=missing)
        body = render("profile.html", username=account["username"],
                      display_name=account["display_name"] or account["username"],
                      joined=joined(account["created_at"]),
                      tweets=words.plural(int(account["tweet_count"]), "tweet"),
                      tweets_list=self.tweet_list(page, tweets, request.path))
        return self.html(page, f"{account['display_name']} (@{account['username']})", body)

    def accounts(self, request: Request) -> Response:
        page = self.visit(request)
        data = self.get(page, "/accounts", paging(request))
        items = account_items(data["accounts"])
        body = render("accounts.html", items=items or render("empty.html", message="No one yet."),
                      paging=paging_links("/accounts", data))
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
                           css="active" if k == kind else "", label=k.title(),
                           current=CURRENT if k == kind else "") for k in KINDS)
        results = self.search_results(page, kind, q) if q else Markup("")
        body = render("search.html", q=q, kind=kind, tabs=tabs, results=results,
                      hint=SEARCH_HINTS[kind])
        return self.html(page, f"Search: {q}" if q else "Search", body)

    def search_results(self, page: Page, kind: str, q: str) -> Markup:
        """Render one tab of search results."""
        if kind == "hashtags":
            tags = self.get(page, "/hashtags", {"q": q.lstrip("#")})["hashtags"]
            items = join(render("hashtag_item.html", path=path_part(t["tag"]), tag=t["tag"],
                                count=words.plural(int(t["tweets"]), "tweet")) for t in tags)
            return render("hashtags.html", items=items) if tags else nothing_found(q)
        if kind == "accounts":
            found = self.get(page, "/accounts/search", {"q": q})["accounts"]
            return (render("accounts.html", items=account_items(found), paging="")
                    if found else nothing_found(q))
        query = {"q": q, **paging(page.request)}
        data = self.get(page, "/tweets/search", query)
        if not data["tweets"] and "cursor" not in query and "after" not in query:
            return nothing_found(q)
        return self.tweet_list(page, data, "/search?" + urlencode({"q": q, "kind": kind}))

    def dashboard(self, request: Request) -> Response:
        page = self.visit(request)
        api_stats = self.get(page, "/stats")
        lb_stats = self.lb_stats()
        self.history.viewed(counters(api_stats, lb_stats))
        refresh = whole_number(request.query.get("refresh", ""))
        refresh = min(max(refresh, MIN_REFRESH_S), 300) if refresh else None
        body = render("dashboard.html", every=f"{self.history.every:g}",
                      over_time=charts.over_time(self.history.steps(), self.clock(),
                                                 self.history.every),
                      totals=charts.dashboard(api_stats, lb_stats),
                      refresh=render("refresh_on.html", seconds=str(refresh)) if refresh
                      else render("refresh_off.html", seconds=str(DEFAULT_REFRESH_S)))
        response = self.html(page, "Dashboard", body)
        if refresh:  # the HTML standard's Refresh header, as <meta http-equiv> would say it
            response.headers.append(("Refresh", str(refresh)))
        return response

    def lb_stats(self) -> Any:
        """The load balancer's stats, or None when the API_URL is not a load balancer."""
        try:
            lb = self.api.request("GET", "/_lb/stats")
            return lb.json() if lb.status == 200 else None
        except (UpstreamError, ValueError):
            return None

    def read_counters(self) -> dict[str, int] | None:
        """What the dashboard's sampler records (None while the API cannot answer)."""
        try:
            answer = self.api.request("GET", "/stats")
            api_stats = answer.json() if answer.status == 200 else None
        except (UpstreamError, ValueError):
            api_stats = None
        return None if api_stats is None else counters(api_stats, self.lb_stats())

    def call_log(self, request: Request) -> Response:
        """The API's call log as a table, LOG_PAGE calls a page, the newest page first."""
        page = self.visit(request)
        after = whole_number(request.query.get("after", ""))
        if after is None:  # no (or no valid) after: the newest page
            total = int(self.get(page, "/logs", {"after": str(2 ** 62), "limit": "1"})["total"])
            after = max(0, total - LOG_PAGE)
        log = self.get(page, "/logs", {"after": str(after), "limit": str(LOG_PAGE)})
        calls, total = log["calls"], int(log["total"])
        rows = join(render("log_row.html", number=f"{after + n:,}", method=method, path=path)
                    for n, (method, path) in enumerate(calls, start=1))
        earlier = (render("log_earlier.html",
                          href=f"/dashboard/logs?after={max(0, after - LOG_PAGE)}")
                   if after > 0 else Markup(""))
        later = (render("log_later.html", href=f"/dashboard/logs?after={log['next']}")
                 if log.get("next") is not None else Markup(""))
        missing = log.get("missing")
        body = render(
            "call_log.html", total=words.plural(total, "call"),
            shown=(f"Calls {after + 1:,} to {after + len(calls):,}" if calls
                   else "No calls on this page"),
            missing=(f"Calls {missing['after'] + 1:,} to {missing['next']:,} were counted but "
                     f"not kept ({missing['reason']})." if missing else ""),
            rows=rows, paging=render("paging.html", newer=earlier, older=later))
        return self.html(page, "Call log", body)

    def raw_logs(self, request: Request) -> Response:
        page = Page(request, self.key)
        return json_response(self.get(page, "/logs", {"after": request.query.get("after", "0")}),
                             headers=[("Cache-Control", "no-store")])

    def signup_form(self, request: Request) -> Response:
        page = self.visit(request)
        if page.session.logged_in:
            return self.already_in(page)
        return self.signup_view(page)

    def signup_view(self, page: Page) -> Response:
        body = render("signup.html", csrf=page.csrf, idem=new_key(),
                      username=page.field("username"), display_name=page.field("display_name"))
        return self.html(page, "Sign up", body)

    def login_form(self, request: Request) -> Response:
        page = self.visit(request)
        if page.session.logged_in:
            return self.already_in(page)
        return self.login_view(page)

    def login_view(self, page: Page) -> Response:
        body = render("login.html", csrf=page.csrf, idem=new_key(),
                      username=page.field("username"))
        return self.html(page, "Log in", body)

    def already_in(self, page: Page) -> Response:
        return self.redirect(page, "/", Flash(notice=f"You are logged in as @{page.session.user}."
                                              " To use another account, log out first."))

    def logout_form(self, request: Request) -> Response:
        page = self.visit(request)
        if not page.session.logged_in:
            return self.redirect(page, "/", Flash(notice="You are not logged in."))
        body = render("logout.html", username=page.session.user, csrf=page.csrf)
        return self.html(page, "Log out", body)

    def password_form(self, request: Request) -> Response:
        page = self.visit(request)
        if not page.session.logged_in:
            return self.redirect(page, "/login")
        return self.password_view(page)

    def password_view(self, page: Page) -> Response:
        return self.html(page, "Change password", render("password.html", csrf=page.csrf))

    # -- forms ---------------------------------------------------------------------------

    def post_tweet(self, request: Request) -> Response:
        page, form = self.form(request, self.compose_page)
        text = form.get("text", "")
        if not page.session.logged_in:
            return self.log_in_first(page, text)
        problem = words.tweet_problem(text)
        if problem:
            return self.again(page, "/", Flash(error=problem, fields={DRAFT: text}),
                              self.timeline_page)
        try:
            answer = self.call(page, "POST", "/tweets", {"text": text}, form_key(form))
        except HTTPError as err:  # the API is down: the text is kept on the page
            return self.not_sent(page, err, {DRAFT: text}, self.compose_page)
        if answer.status == HTTPStatus.UNAUTHORIZED:
            return self.log_in_first(page, text)
        if answer.status == HTTPStatus.BAD_REQUEST:
            return self.again(page, "/", Flash(error=words.CONTROL_CHARACTERS, fields={
                DRAFT: text}), self.timeline_page)
        failure = problem_of(answer)
        if failure is not None:
            return self.not_sent(page, failure, {DRAFT: text}, self.compose_page)
        page.flash = None  # posted: no draft waits on
        return self.redirect(page, "/", Flash(notice="Posted."))

    def like(self, request: Request) -> Response:
        page, form = self.form(request)
        tweet = path_id(request)
        answer = self.call(page, "POST", f"/tweets/{tweet}/like", None, form_key(form))
        check(answer, "This tweet does not exist any more: it was deleted.")
        if "application/json" in request.headers.get("accept", ""):  # /static/app.js
            likes = int(answer.json()["likes"])
            answer_js = json_response({"id": tweet, "likes": likes, "idem": new_key(),
                                       "label": like_label(likes)},
                                      headers=[("Cache-Control", "no-store")])
            return self.with_cookies(page, answer_js, fresh=True)  # a reload shows the like
        here = local_path(form.get("next", ""), f"/tweets/{tweet}")
        return self.redirect(page, f"{here}#tweet-{tweet}")

    def edit(self, request: Request) -> Response:
        page, form = self.form(request)
        tweet = path_id(request)
        text = form.get("text", "")
        fields = {"edit_id": str(tweet), "edit_text": text}
        problem = words.tweet_problem(text)
        if problem:
            return self.again(page, f"/tweets/{tweet}", Flash(error=problem, fields=fields),
                              self.tweet_view)
        answer = self.call(page, "PUT", f"/tweets/{tweet}", {"text": text})
        if answer.status == HTTPStatus.BAD_REQUEST:
            return self.again(page, f"/tweets/{tweet}", Flash(
                error=words.CONTROL_CHARACTERS, fields=fields), self.tweet_view)
        if answer.status == HTTPStatus.UNAUTHORIZED:
            return self.logged_out(page)
        check(answer, "This tweet does not exist any more: it was deleted.")
        return self.redirect(page, f"/tweets/{tweet}", Flash(notice="Saved."))

    def delete(self, request: Request) -> Response:
        page, _ = self.form(request)
        answer = self.call(page, "DELETE", f"/tweets/{path_id(request)}", None)
        if answer.status == HTTPStatus.UNAUTHORIZED:
            return self.logged_out(page)
        check(answer, "This tweet does not exist any more: it was deleted already.")
        return self.redirect(page, "/", Flash(notice="Deleted."))

    def signup(self, request: Request) -> Response:
        page, form = self.form(request)
        username, display_name = form.get("username", "").strip(), form.get("display_name", "")
        password, key = form.get("password", ""), form_key(form)
        answer = self.call(page, "POST", "/accounts", {
            "username": username, "password": password, "display_name": display_name}, key)
        if answer.status in (HTTPStatus.BAD_REQUEST, HTTPStatus.CONFLICT):
            problem = words.sign_up_problem(api_code(answer), api_message(answer))
            return self.again(page, "/signup", Flash(error=problem, fields={
                "username": username, "display_name": display_name}), self.signup_view)
        check(answer)
        # The same key again: log-ins are keyed apart from sign-ups, and a sign-up sent twice
        # then gets the first log-in's answer too rather than a second session.
        return self.start_session(page, username, password, key,
                                  f"Welcome, @{username}! Your account is ready.")

    def login(self, request: Request) -> Response:
        page, form = self.form(request)
        username, password = form.get("username", "").strip(), form.get("password", "")
        return self.start_session(page, username, password, form_key(form),
                                  f"Logged in as @{username}.")

    def logout(self, request: Request) -> Response:
        page, _ = self.form(request)
        if page.session.token:
            try:  # ends the token for every copy of the cookie; cleared here whatever it says
                self.api.call("DELETE", "/sessions", None,
                              {"authorization": f"Bearer {page.session.token}"})
            except UpstreamError as err:
                LOG.warning("could not end the session at the API: %s", err)
        page.session = session.Session()
        return self.redirect(page, "/", Flash(notice="Logged out."))

    def change_password(self, request: Request) -> Response:
        page, form = self.form(request)
        user = page.session.user
        if user is None or not page.session.logged_in:
            return self.redirect(page, "/login")
        new = form.get("new_password", "")
        if new != form.get("new_password_again", ""):
            return self.password_again(page, "The two new passwords are not the same.")
        answer = self.call(page, "PUT", f"/accounts/{path_part(user)}/password",
                           {"password": form.get("password", ""), "new_password": new})
        if answer.status in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED):
            return self.password_refused(page, answer)
        check(answer)
        data = answer.json()  # a token of the new generation: this session goes on
        page.session = session.Session(token=data["token"], user=data["account"]["username"])
        return self.redirect(page, "/password", Flash(
            notice="Your password is changed, and every other session of your account is "
                   "logged out."))

    def password_refused(self, page: Page, answer: UpstreamResponse) -> Response:
        """Say why the API refused a new password, or log out if it refused the session."""
        code = api_code(answer)
        if code == "wrong_password":
            return self.password_again(page, "That is not your current password.")
        if answer.status == HTTPStatus.UNAUTHORIZED:
            return self.logged_out(page)
        if code == "invalid_password":
            return self.password_again(page, "The new password must be at least 8 characters "
                                       "long (and at most 1,024).")
        return self.password_again(page, api_message(answer))

    def password_again(self, page: Page, error: str) -> Response:
        return self.again(page, "/password", Flash(error=error), self.password_view)

    def start_session(self, page: Page, username: str, password: str, key: str | None,
                      welcome: str) -> Response:
        """Log in through the API and keep the token in a new session."""
        credentials = {"username": username, "password": password}
        answer = self.call(page, "POST", "/sessions", credentials, key)
        if answer.status in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED):
            return self.again(page, "/login", Flash(error="Wrong username or password.",
                                                    fields={"username": username}),
                              self.login_view)
        check(answer)
        data = answer.json()
        page.session = session.Session(token=data["token"], user=data["account"]["username"])
        return self.redirect(page, "/", Flash(notice=welcome))

    def logged_out(self, page: Page) -> Response:
        """The API refused our token (expired, or the session was ended): forget it and ask
        to log in again."""
        page.session = session.Session()
        return self.redirect(page, "/login", Flash(notice="You were logged out. Please log in "
                                                   "again."))

    def log_in_first(self, page: Page, text: str) -> Response:
        """Someone not logged in (any more) posted: keep the text until they are."""
        page.session = session.Session()
        return self.again(page, "/login", Flash(notice=NOT_LOGGED_IN, fields={DRAFT: text}),
                          self.compose_page)

    def again(self, page: Page, location: str, flash: Flash,
              show: Callable[[Page], Response]) -> Response:
        """Send the visitor back to a form's page to say what was wrong, the form filled in
        as it was sent, so that reloading that page sends nothing. When that is too much for
        a cookie, ``show`` the form here at once instead, so nothing typed is lost."""
        if session.flash_cookie(self.key, flash) is not None:
            return self.redirect(page, location, flash)
        page.flash, page.status = flash, HTTPStatus.BAD_REQUEST
        return show(page)

    def not_sent(self, page: Page, failure: HTTPError, fields: dict[str, str],
                 show: Callable[[Page], Response]) -> Response:
        """Show the form again at once with what was typed and why it was not sent."""
        page.flash = Flash(error=failure.message, fields=fields)
        page.status = failure.status
        return show(page)

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

    def form(self, request: Request, show: Callable[[Page], Response] | None = None
             ) -> tuple[Page, dict[str, str]]:
        """Parse a form post and check its CSRF token against the browser's. A form refused
        is answered at once: a page that says cookies are needed when the browser sent none,
        else the form's page (``show``) again with what was typed, or a 403 page."""
        page = Page(request, self.key)
        try:
            fields = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "The form could not be read.") from None
        form = {name: values[0] for name, values in fields.items()}
        if page.checkable and session.same(form.get("csrf_token", ""), page.csrf):
            return page, form
        page.status = HTTPStatus.FORBIDDEN
        kept = {DRAFT: form["text"]} if "text" in form and show is not None else {}
        if page.cookieless:
            raise Shown(self.html(page, "Cookies are needed", render(
                "cookies.html", kept=render("kept.html", text=form["text"]) if kept else "")))
        if show is None:
            raise HTTPError(HTTPStatus.FORBIDDEN, NOT_CHECKED + " Reload the page first.", "csrf")
        page.flash = Flash(error=NOT_CHECKED, fields=kept)
        raise Shown(show(page))

    def get(self, page: Page, path: str, query: dict[str, Any] | None = None,
            missing: str = "") -> Any:
        """Read JSON from the API; 404 and upstream failures become error pages."""
        target = path + ("?" + urlencode(query) if query else "")
        headers = {"cache-control": "no-cache"} if page.fresh else {}
        answer = self.send(page, "GET", target, None, headers)
        check(answer, missing)
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

    def tweet_list(self, page: Page, data: dict[str, Any], base: str) -> Markup:
        """Render a page of tweets with its Newer and Older links."""
        here = page.here()
        authors = data.get("authors") or {}
        self.remember(authors)
        items = join(render("tweet_item.html", **self.tweet_values(page, tweet, here, authors))
                     for tweet in data["tweets"])
        if not items:
            return join([render("empty.html", message="No tweets here yet."),
                         paging_links(base, data)])
        return render("tweet_list.html", items=items, paging=paging_links(base, data))

    def display_name(self, username: str) -> str:
        """Return an account's display name (its username if it cannot be read now)."""
        if username in self.names:
            return self.names[username]
        try:
            answer = self.api.request("GET", f"/accounts/{path_part(username)}")
            if answer.status == HTTPStatus.OK:
                name = str(answer.json()["display_name"] or username)
                self.remember({username: name})
                return name
        except (UpstreamError, ValueError, KeyError):
            pass
        return username

    def remember(self, names: dict[str, str]) -> None:
        if len(self.names) + len(names) > MOST_NAMES:
            self.names.clear()
        self.names.update(names)

    def tweet_values(self, page: Page, tweet: dict[str, Any], here: str,
                     authors: dict[str, str]) -> dict[str, Any]:
        """Return the template values of one tweet; its like form comes back to ``here``;
        ``authors`` gives display names (the API's pages carry them)."""
        now = self.clock()
        edited = Markup("")
        if tweet["edited_at"]:
            edited = Markup(f" · edited {moment(tweet['edited_at'], now)}")
        likes = int(tweet["likes"])
        like = render("like.html", id=tweet["id"], csrf=page.csrf, idem=new_key(), next=here,
                      likes=f"{likes:,}", likes_words=words.plural(likes, "like"))
        name = authors.get(tweet["author"])
        byline = (render("byline.html", author=tweet["author"], display=name)
                  if name and name != tweet["author"]
                  else render("byline_handle.html", author=tweet["author"]))
        return {"id": tweet["id"], "text": tweet_text(tweet["text"]), "edited": edited,
                "byline": byline,
                "when": moment(tweet["created_at"], now), "like": like}

    def html(self, page: Page, title: str, body: Markup) -> Response:
        """Wrap a body in the layout, with the flash's message, and set the cookies."""
        flash = page.flash or Flash()
        parts = []
        if flash.notice:
            parts.append(render("notice.html", message=flash.notice))
        if flash.error:
            parts.append(render("error_summary.html", message=flash.error))
            title = f"Error: {title}"
        document = render("layout.html", title=title, nav=nav(page), flash=join(parts),
                          body=body)
        headers = [("Content-Type", HTML), ("Cache-Control", "no-store")]
        response = Response(page.status, document.encode(), headers)
        if page.flash is not None:  # shown now; only a draft no form took waits on
            draft = page.flash.fields.get(DRAFT)
            waiting = {DRAFT: draft} if draft and DRAFT not in page.taken else {}
            page.next_flash = Flash(fields=waiting)
        return self.with_cookies(page, response, fresh=False)

    def redirect(self, page: Page, location: str, flash: Flash | None = None) -> Response:
        """See Other, with the next page asked to read past the caches and shown ``flash``."""
        # A Location header is ASCII: percent-encode what is not (a /tags/café page).
        ascii_location = quote(location, safe="/?&=%#:@!$'()*+,;~-._")
        response = Response(HTTPStatus.SEE_OTHER, b"", [("Location", ascii_location)])
        if flash is not None:
            waiting = page.flash.fields.get(DRAFT) if page.flash else None
            if waiting and DRAFT not in flash.fields:  # a draft waits on through a log-in
                flash = Flash(flash.notice, flash.error, {**flash.fields, DRAFT: waiting})
            page.next_flash = flash
        return self.with_cookies(page, response, fresh=True)

    def with_cookies(self, page: Page, response: Response, fresh: bool) -> Response:
        response.headers.append(("Set-Cookie", session.cookie(self.key, page.session)))
        if page.new_browser:
            response.headers.append(("Set-Cookie", session.csrf_cookie(self.key, page.csrf)))
        if fresh or page.fresh:
            response.headers.append(("Set-Cookie", session.fresh_cookie(fresh)))
        if page.next_flash is not None:
            flash = session.flash_cookie(self.key, page.next_flash)
            if flash is not None:
                response.headers.append(("Set-Cookie", flash))
        return response

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
            answer = self.api.request("GET", "/healthz")
        except UpstreamError:
            raise unavailable() from None
        if answer.status != 200:
            raise unavailable()
        return json_response({"status": "ok"}, headers=[("Cache-Control", "no-store")])


def text_box(text: str) -> dict[str, Any]:
    """The values of a tweet text box: its text and its count as the API counts."""
    count = words.tweet_length(text)
    return {"text": text, "count": count, "over": " over" if count > words.MAX_TWEET else ""}


def moment(iso: str, now: float) -> Markup:
    """A time as social sites show it ("5m ago"), the full time on hover."""
    return render("time.html", iso=iso, full=words.absolute(iso), ago=words.ago(iso, now))


def joined(iso: str) -> Markup:
    found = words.moment(iso)
    shown = f"{found.day} {found:%B %Y}" if found else iso
    return render("time.html", iso=iso, full=words.absolute(iso), ago=shown)


def like_label(likes: int) -> str:
    return f"Like, {words.plural(likes, 'like')}"


def account_items(accounts: list[dict[str, Any]]) -> Markup:
    return join(render("account_item.html", username=a["username"],
                       display_name=a["display_name"],
                       tweets=words.plural(int(a["tweet_count"]), "tweet")) for a in accounts)


def new_key() -> str:
    """Make a fresh idempotency key for one rendered form."""
    return secrets.token_urlsafe(16)


def form_key(form: dict[str, str]) -> str | None:
    """Return the form's idempotency key, or None when it has none of ours (send no header)."""
    key = form.get(IDEM_FIELD, "")
    return key if OUR_KEY.match(key) else None


def paging(request: Request) -> dict[str, str]:
    """Pass the page's cursor (older) or ``after`` (newer) on to the API."""
    for name in ("cursor", "after"):
        value = whole_number(request.query.get(name, ""))
        if value:
            return {name: str(value)}
    return {}  # none, or not a number: the first page


def paging_links(base: str, data: dict[str, Any]) -> Markup:
    """Return the Newer and Older links of a list page (nothing on a one-page list)."""
    joiner = "&" if "?" in base else "?"
    newer = (render("newer.html", href=f"{base}{joiner}after={data['prev']}")
             if data.get("prev") else Markup(""))
    older = (render("older.html", href=f"{base}{joiner}cursor={data['next']}")
             if data.get("next") else Markup(""))
    return render("paging.html", newer=newer, older=older) if newer or older else Markup("")


def nothing_found(q: str) -> Markup:
    return render("empty.html", message=f"Nothing matches “{q}”.")


def nav(page: Page | None) -> Markup:
    """The header's links, the current one marked (aria-current), and the account's: who is
    logged in and a log-out button, or log in and sign up."""
    path = page.request.path if page is not None else ""
    user = page.session.user if page is not None and page.session.logged_in else None
    own = f"/accounts/{user}" if user else None

    def current(href: str) -> Markup:
        inside = path == href or (href != "/" and path.startswith(href + "/") and path != own)
        return CURRENT if inside else Markup("")

    links = join(render("nav_link.html", href=href, label=label, current=current(href))
                 for href, label in NAV)
    if page is None or user is None:
        return join([links, render("nav_guest.html", login_current=current("/login"),
                                   signup_current=current("/signup"))])
    return join([links, render("nav_user.html", username=user, csrf=page.csrf,
                               profile_current=CURRENT if path == own else "",
                               password_current=current("/password"))])


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


def problem_of(answer: UpstreamResponse, missing: str = "") -> HTTPError | None:
    """Return the error page for an API failure, or None when the API did it."""
    if answer.status < 400:
        return None
    if answer.status == HTTPStatus.BAD_REQUEST:
        return HTTPError(HTTPStatus.BAD_REQUEST, api_message(answer))
    if answer.status == HTTPStatus.NOT_FOUND:
        return HTTPError(HTTPStatus.NOT_FOUND, missing or "We could not find that. It may have "
                         "been deleted, or the link may be mistyped.", "missing")
    if answer.status == HTTPStatus.FORBIDDEN:
        return HTTPError(HTTPStatus.FORBIDDEN, "That is not yours to change.")
    if answer.status == HTTPStatus.UNPROCESSABLE_ENTITY:  # the API's idempotency_key_reused
        # A page kept with its old key (no reload) and sent again with other contents.
        return HTTPError(answer.status, "That form was already sent with something else in it."
                         " Reload the page and try again.", "idempotency_key_reused")
    if answer.status == HTTPStatus.INSUFFICIENT_STORAGE:
        return HTTPError(answer.status, "Our disk is full, so that was not saved. "
                         "Please try again later.", "storage_full")
    return unavailable()


def check(answer: UpstreamResponse, missing: str = "") -> None:
    """Turn an API failure into an error page (forms handle their own 400s first)."""
    failure = problem_of(answer, missing)
    if failure is not None:
        raise failure


def unavailable() -> HTTPError:
    return HTTPError(HTTPStatus.SERVICE_UNAVAILABLE, "The service is having trouble right now. "
                     "Please try again in a moment.", "unavailable")


# Pages load one stylesheet and one script of our own, and the script talks only to us:
# nothing inline, nothing from elsewhere, so the policy can forbid all of it, and the like,
# edit and delete buttons cannot be framed by another site (clickjacking). X-Frame-Options
# is for browsers without CSP 2.
SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; "
                                "script-src 'self'; connect-src 'self'; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
]
# Error pages in our words: the router's own sentences are for programmers.
HEADINGS = {404: "Page not found", 403: "Not allowed", 503: "Temporarily unavailable",
            405: "Not available", 400: "That did not work", 422: "Already sent",
            507: "Not saved", 413: "Too much", 500: "Something went wrong"}
ROUTER_WORDS = {
    404: "There is no page at this address. Check the link, or start again from the timeline.",
    405: "This address cannot be used that way. Use the links and buttons on our pages.",
}


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
        page = Page(request, self.web.key) if request is not None else None
        document = render("layout.html", title=f"Error: {heading}", nav=nav(page),
                          flash="", body=body)
        headers = [("Content-Type", HTML), ("Cache-Control", "no-store"), *err.headers.items()]
        return Response(err.status, document.encode(), headers)


def make_server(config: Config, clock: Callable[[], float] = time.time) -> WebServer:
    """Build the front end's server, unstarted (``clock`` says how long ago things were)."""
    api = Upstream(config.api_url, read_timeout=config.timeout, fail_fast=config.fail_fast)
    key = load_secret(config.secret_key, config.data_dir, "web-secret.key")
    web = Web(api, key, clock)
    server = WebServer(web, config)
    server.on_start.append(web.history.start)
    server.on_close.extend([web.history.stop, api.close])
    return server


def main() -> None:
    """Run the front end until SIGINT or SIGTERM."""
    run_main(Config.from_env, lambda config: serve(make_server(config)))
