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
from web.api import Api, api_code, api_message, check, problem_of, unavailable
from web.forms import (DRAFT, NOT_CHECKED, NOT_LOGGED_IN, RequestContext, Shown, form_key,
                       local_path, new_key)
from web.pages import (CURRENT, HEADINGS, HTML, KINDS, ROUTER_WORDS, SEARCH_HINTS,
                       SECURITY_HEADERS, account_items, joined, like_label, moment, nav,
                       nothing_found,
                       paging, paging_links, text_box)
from web.history import History, counters
from web.render import Markup, join, path_part, render, tweet_text
from web.session import Flash

LOG = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {"style.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
                "favicon.svg": "image/svg+xml"}
LOG_PAGE = 50  # calls per page of /dashboard/logs
DEFAULT_REFRESH_S, MIN_REFRESH_S = 5, 2  # the dashboard's opt-in ?refresh=


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


class Web:
    """The front end's handlers."""

    def __init__(self, api: Api, key: bytes, clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.key = key
        self.clock = clock
        self.static = {name: (STATIC / name).read_bytes() for name in STATIC_TYPES}
        self.history = History(self.read_counters, clock)

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

    def timeline_page(self, context: RequestContext) -> Response:
        data = self.api.read(context, "/tweets", paging(context.request))
        body = render("timeline.html", compose=self.compose(context),
                      tweets=self.tweet_list(context, data, "/"))
        return self.html(context, "Timeline", body)

    def compose_page(self, context: RequestContext) -> Response:
        """The post form on its own, holding the text, for when the timeline cannot be
        read (the API is down) or the form was refused."""
        body = render("timeline.html", compose=self.compose(context), tweets=Markup(""))
        return self.html(context, "Not posted", body)

    def compose(self, context: RequestContext) -> Markup:
        if not context.session.logged_in:
            return render("compose_guest.html")
        return render("compose.html", csrf=context.csrf, idem=new_key(),
                      **text_box(context.field(DRAFT)))

    def tweet_page(self, request: Request) -> Response:
        return self.tweet_view(self.visit(request))

    def tweet_view(self, context: RequestContext) -> Response:
        tweet_id = path_id(context.request)
        tweet = self.api.read(context, f"/tweets/{tweet_id}",
                              missing="This tweet does not exist. It may have been deleted.")
        tools = Markup("")
        if context.session.user == tweet["author"]:
            draft = context.field("edit_text") if context.field("edit_id") == str(tweet_id) else ""
            tools = render("author_tools.html", id=tweet["id"], csrf=context.csrf,
                           **text_box(draft or tweet["text"]))
        authors = {tweet["author"]: self.api.display_name(tweet["author"])}
        body = render("tweet_page.html", author_tools=tools,
                      **self.tweet_values(context, tweet, f"/tweets/{tweet_id}", authors))
        return self.html(context, f"Tweet by @{tweet['author']}", body)

    def delete_form(self, request: Request) -> Response:
        context = self.visit(request)
        tweet = self.api.read(context, f"/tweets/{path_id(request)}", missing=(
            "This tweet does not exist. It may have been deleted already."))
        if context.session.user != tweet["author"]:
            raise HTTPError(HTTPStatus.FORBIDDEN, "Only its author can delete this tweet.")
        body = render("delete_confirm.html", id=tweet["id"], csrf=context.csrf,
                      text=tweet_text(tweet["text"]))
        return self.html(context, "Delete this tweet?", body)

    def profile(self, request: Request) -> Response:
        context = self.visit(request)
        username = request.params["username"]
        missing = f"There is no account called @{username}."
        account = self.api.read(context, f"/accounts/{path_part(username)}", missing=missing)
        tweets = self.api.read(context, f"/accounts/{path_part(username)}/tweets", paging(request),
                               missing=missing)
        body = render("profile.html", username=account["username"],
                      display_name=account["display_name"] or account["username"],
                      joined=joined(account["created_at"]),
                      tweets=words.plural(int(account["tweet_count"]), "tweet"),
                      tweets_list=self.tweet_list(context, tweets, request.path))
        return self.html(context, f"{account['display_name']} (@{account['username']})", body)

    def accounts(self, request: Request) -> Response:
        context = self.visit(request)
        data = self.api.read(context, "/accounts", paging(request))
        items = account_items(data["accounts"])
        body = render("accounts.html", items=items or render("empty.html", message="No one yet."),
                      paging=paging_links("/accounts", data))
        return self.html(context, "Accounts", body)

    def tag_page(self, request: Request) -> Response:
        context = self.visit(request)
        tag = request.params["tag"].lstrip("#")
        data = self.api.read(context, f"/hashtags/{path_part(tag)}/tweets", paging(request))
        tweets = self.tweet_list(context, data, request.path)
        body = render("tag.html", tag=tag.lower(), tweets=tweets)
        return self.html(context, f"#{tag.lower()}", body)

    def search(self, request: Request) -> Response:
        context = self.visit(request)
        q = request.query.get("q", "").strip()
        kind = request.query.get("kind", "tweets")
        kind = kind if kind in KINDS else "tweets"
        tabs = join(render("tab.html", href="/search?" + urlencode({"q": q, "kind": k}),
                           css="active" if k == kind else "", label=k.title(),
                           current=CURRENT if k == kind else "") for k in KINDS)
        results = self.search_results(context, kind, q) if q else Markup("")
        body = render("search.html", q=q, kind=kind, tabs=tabs, results=results,
                      hint=SEARCH_HINTS[kind])
        return self.html(context, f"Search: {q}" if q else "Search", body)

    def search_results(self, context: RequestContext, kind: str, q: str) -> Markup:
        """Render one tab of search results."""
        if kind == "hashtags":
            tags = self.api.read(context, "/hashtags", {"q": q.lstrip("#")})["hashtags"]
            items = join(render("hashtag_item.html", path=path_part(t["tag"]), tag=t["tag"],
                                count=words.plural(int(t["tweets"]), "tweet")) for t in tags)
            return render("hashtags.html", items=items) if tags else nothing_found(q)
        if kind == "accounts":
            found = self.api.read(context, "/accounts/search", {"q": q})["accounts"]
            return (render("accounts.html", items=account_items(found), paging="")
                    if found else nothing_found(q))
        query = {"q": q, **paging(context.request)}
        data = self.api.read(context, "/tweets/search", query)
        if not data["tweets"] and "cursor" not in query and "after" not in query:
            return nothing_found(q)
        return self.tweet_list(context, data, "/search?" + urlencode({"q": q, "kind": kind}))

    def dashboard(self, request: Request) -> Response:
        context = self.visit(request)
        api_stats = self.api.read(context, "/stats")
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
        response = self.html(context, "Dashboard", body)
        if refresh:  # the HTML standard's Refresh header, as <meta http-equiv> would say it
            response.headers.append(("Refresh", str(refresh)))
        return response

    def lb_stats(self) -> Any:
        """The load balancer's stats, or None when the API_URL is not a load balancer."""
        try:
            lb = self.api.upstream.request("GET", "/_lb/stats")
            return lb.json() if lb.status == 200 else None
        except (UpstreamError, ValueError):
            return None

    def read_counters(self) -> dict[str, int] | None:
        """What the dashboard's sampler records (None while the API cannot answer)."""
        try:
            answer = self.api.upstream.request("GET", "/stats")
            api_stats = answer.json() if answer.status == 200 else None
        except (UpstreamError, ValueError):
            api_stats = None
        return None if api_stats is None else counters(api_stats, self.lb_stats())

    def call_log(self, request: Request) -> Response:
        """The API's call log as a table, LOG_PAGE calls a page, the newest page first."""
        context = self.visit(request)
        after = whole_number(request.query.get("after", ""))
        if after is None:  # no (or no valid) after: the newest page
            newest = self.api.read(context, "/logs", {"after": str(2 ** 62), "limit": "1"})
            total = int(newest["total"])
            after = max(0, total - LOG_PAGE)
        log = self.api.read(context, "/logs", {"after": str(after), "limit": str(LOG_PAGE)})
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
        return self.html(context, "Call log", body)

    def raw_logs(self, request: Request) -> Response:
        context = RequestContext(request, self.key)
        calls = self.api.read(context, "/logs", {"after": request.query.get("after", "0")})
        return json_response(calls, headers=[("Cache-Control", "no-store")])

    def signup_form(self, request: Request) -> Response:
        context = self.visit(request)
        if context.session.logged_in:
            return self.already_in(context)
        return self.signup_view(context)

    def signup_view(self, context: RequestContext) -> Response:
        body = render("signup.html", csrf=context.csrf, idem=new_key(),
                      username=context.field("username"),
                      display_name=context.field("display_name"))
        return self.html(context, "Sign up", body)

    def login_form(self, request: Request) -> Response:
        context = self.visit(request)
        if context.session.logged_in:
            return self.already_in(context)
        return self.login_view(context)

    def login_view(self, context: RequestContext) -> Response:
        body = render("login.html", csrf=context.csrf, idem=new_key(),
                      username=context.field("username"))
        return self.html(context, "Log in", body)

    def already_in(self, context: RequestContext) -> Response:
        notice = (f"You are logged in as @{context.session.user}. To use another account, "
                  "log out first.")
        return self.redirect(context, "/", Flash(notice=notice))

    def logout_form(self, request: Request) -> Response:
        context = self.visit(request)
        if not context.session.logged_in:
            return self.redirect(context, "/", Flash(notice="You are not logged in."))
        body = render("logout.html", username=context.session.user, csrf=context.csrf)
        return self.html(context, "Log out", body)

    def password_form(self, request: Request) -> Response:
        context = self.visit(request)
        if not context.session.logged_in:
            return self.redirect(context, "/login")
        return self.password_view(context)

    def password_view(self, context: RequestContext) -> Response:
        return self.html(context, "Change password", render("password.html", csrf=context.csrf))

    # -- forms ---------------------------------------------------------------------------

    def post_tweet(self, request: Request) -> Response:
        context, form = self.form(request, self.compose_page)
        text = form.get("text", "")
        if not context.session.logged_in:
            return self.log_in_first(context, text)
        problem = words.tweet_problem(text)
        if problem:
            return self.again(context, "/", Flash(error=problem, fields={DRAFT: text}),
                              self.timeline_page)
        try:
            answer = self.api.submit(context, "POST", "/tweets", {"text": text}, form_key(form))
        except HTTPError as err:  # the API is down: the text is kept on the page
            return self.not_sent(context, err, {DRAFT: text}, self.compose_page)
        if answer.status == HTTPStatus.UNAUTHORIZED:
            return self.log_in_first(context, text)
        if answer.status == HTTPStatus.BAD_REQUEST:
            return self.again(context, "/", Flash(error=words.CONTROL_CHARACTERS, fields={
                DRAFT: text}), self.timeline_page)
        failure = problem_of(answer)
        if failure is not None:
            return self.not_sent(context, failure, {DRAFT: text}, self.compose_page)
        context.flash = None  # posted: no draft waits on
        return self.redirect(context, "/", Flash(notice="Posted."))

    def like(self, request: Request) -> Response:
        context, form = self.form(request)
        tweet = path_id(request)
        answer = self.api.submit(context, "POST", f"/tweets/{tweet}/like", None, form_key(form))
        check(answer, "This tweet does not exist any more: it was deleted.")
        if "application/json" in request.headers.get("accept", ""):  # /static/app.js
            likes = int(answer.json()["likes"])
            answer_js = json_response({"id": tweet, "likes": likes, "idem": new_key(),
                                       "label": like_label(likes)},
                                      headers=[("Cache-Control", "no-store")])
            return self.with_cookies(context, answer_js, fresh=True)  # a reload shows the like
        here = local_path(form.get("next", ""), f"/tweets/{tweet}")
        return self.redirect(context, f"{here}#tweet-{tweet}")

    def edit(self, request: Request) -> Response:
        context, form = self.form(request)
        tweet = path_id(request)
        text = form.get("text", "")
        fields = {"edit_id": str(tweet), "edit_text": text}
        problem = words.tweet_problem(text)
        if problem:
            return self.again(context, f"/tweets/{tweet}", Flash(error=problem, fields=fields),
                              self.tweet_view)
        answer = self.api.submit(context, "PUT", f"/tweets/{tweet}", {"text": text})
        if answer.status == HTTPStatus.BAD_REQUEST:
            return self.again(context, f"/tweets/{tweet}", Flash(
                error=words.CONTROL_CHARACTERS, fields=fields), self.tweet_view)
        if answer.status == HTTPStatus.UNAUTHORIZED:
            return self.logged_out(context)
        check(answer, "This tweet does not exist any more: it was deleted.")
        return self.redirect(context, f"/tweets/{tweet}", Flash(notice="Saved."))

    def delete(self, request: Request) -> Response:
        context, _ = self.form(request)
        answer = self.api.submit(context, "DELETE", f"/tweets/{path_id(request)}", None)
        if answer.status == HTTPStatus.UNAUTHORIZED:
            return self.logged_out(context)
        check(answer, "This tweet does not exist any more: it was deleted already.")
        return self.redirect(context, "/", Flash(notice="Deleted."))

    def signup(self, request: Request) -> Response:
        context, form = self.form(request)
        username, display_name = form.get("username", "").strip(), form.get("display_name", "")
        password, key = form.get("password", ""), form_key(form)
        answer = self.api.submit(context, "POST", "/accounts", {
            "username": username, "password": password, "display_name": display_name}, key)
        if answer.status in (HTTPStatus.BAD_REQUEST, HTTPStatus.CONFLICT):
            problem = words.sign_up_problem(api_code(answer), api_message(answer))
            return self.again(context, "/signup", Flash(error=problem, fields={
                "username": username, "display_name": display_name}), self.signup_view)
        check(answer)
        # The same key again: log-ins are keyed apart from sign-ups, and a sign-up sent twice
        # then gets the first log-in's answer too rather than a second session.
        return self.start_session(context, username, password, key,
                                  f"Welcome, @{username}! Your account is ready.")

    def login(self, request: Request) -> Response:
        context, form = self.form(request)
        username, password = form.get("username", "").strip(), form.get("password", "")
        return self.start_session(context, username, password, form_key(form),
                                  f"Logged in as @{username}.")

    def logout(self, request: Request) -> Response:
        context, _ = self.form(request)
        if context.session.token:
            try:  # ends the token for every copy of the cookie; cleared here whatever it says
                self.api.upstream.fetch("DELETE", "/sessions", None,
                                        {"authorization": f"Bearer {context.session.token}"})
            except UpstreamError as err:
                LOG.warning("could not end the session at the API: %s", err)
        context.session = session.Session()
        return self.redirect(context, "/", Flash(notice="Logged out."))

    def change_password(self, request: Request) -> Response:
        context, form = self.form(request)
        user = context.session.user
        if user is None or not context.session.logged_in:
            return self.redirect(context, "/login")
        new = form.get("new_password", "")
        if new != form.get("new_password_again", ""):
            return self.password_again(context, "The two new passwords are not the same.")
        answer = self.api.submit(context, "PUT", f"/accounts/{path_part(user)}/password",
                                 {"password": form.get("password", ""), "new_password": new})
        if answer.status in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED):
            return self.password_refused(context, answer)
        check(answer)
        data = answer.json()  # a token of the new generation: this session goes on
        context.session = session.Session(token=data["token"], user=data["account"]["username"])
        return self.redirect(context, "/password", Flash(
            notice="Your password is changed, and every other session of your account is "
                   "logged out."))

    def password_refused(self, context: RequestContext, answer: UpstreamResponse) -> Response:
        """Say why the API refused a new password, or log out if it refused the session."""
        code = api_code(answer)
        if code == "wrong_password":
            return self.password_again(context, "That is not your current password.")
        if answer.status == HTTPStatus.UNAUTHORIZED:
            return self.logged_out(context)
        if code == "invalid_password":
            return self.password_again(context, "The new password must be at least 8 characters "
                                       "long (and at most 1,024).")
        return self.password_again(context, api_message(answer))

    def password_again(self, context: RequestContext, error: str) -> Response:
        return self.again(context, "/password", Flash(error=error), self.password_view)

    def start_session(self, context: RequestContext, username: str, password: str, key: str | None,
                      welcome: str) -> Response:
        """Log in through the API and keep the token in a new session."""
        credentials = {"username": username, "password": password}
        answer = self.api.submit(context, "POST", "/sessions", credentials, key)
        if answer.status in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED):
            return self.again(context, "/login", Flash(error="Wrong username or password.",
                                                       fields={"username": username}),
                              self.login_view)
        check(answer)
        data = answer.json()
        context.session = session.Session(token=data["token"], user=data["account"]["username"])
        return self.redirect(context, "/", Flash(notice=welcome))

    def logged_out(self, context: RequestContext) -> Response:
        """The API refused our token (expired, or the session was ended): forget it and ask
        to log in again."""
        context.session = session.Session()
        return self.redirect(context, "/login", Flash(notice="You were logged out. Please log in "
                                                      "again."))

    def log_in_first(self, context: RequestContext, text: str) -> Response:
        """Someone not logged in (any more) posted: keep the text until they are."""
        context.session = session.Session()
        return self.again(context, "/login", Flash(notice=NOT_LOGGED_IN, fields={DRAFT: text}),
                          self.compose_page)

    def again(self, context: RequestContext, location: str, flash: Flash,
              show: Callable[[RequestContext], Response]) -> Response:
        """Send the visitor back to a form's page to say what was wrong, the form filled in
        as it was sent, so that reloading that page sends nothing. When that is too much for
        a cookie, ``show`` the form here at once instead, so nothing typed is lost."""
        if session.flash_cookie(self.key, flash) is not None:
            return self.redirect(context, location, flash)
        context.flash, context.status = flash, HTTPStatus.BAD_REQUEST
        return show(context)

    def not_sent(self, context: RequestContext, failure: HTTPError, fields: dict[str, str],
                 show: Callable[[RequestContext], Response]) -> Response:
        """Show the form again at once with what was typed and why it was not sent."""
        context.flash = Flash(error=failure.message, fields=fields)
        context.status = failure.status
        return show(context)

    # -- plumbing ------------------------------------------------------------------------

    def visit(self, request: Request) -> RequestContext:
        """Read the visitor's session for a page: one whose token the API refuses (logged
        out elsewhere, a password change, expiry) is replaced by an anonymous one."""
        context = RequestContext(request, self.key)
        if context.session.logged_in and self.api.session_ended(context):
            context.session = session.Session()
        return context

    def form(self, request: Request, show: Callable[[RequestContext], Response] | None = None
             ) -> tuple[RequestContext, dict[str, str]]:
        """Parse a form post and check its CSRF token against the browser's. A form refused
        is answered at once: a page that says cookies are needed when the browser sent none,
        else the form's page (``show``) again with what was typed, or a 403 page."""
        context = RequestContext(request, self.key)
        try:
            fields = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "The form could not be read.") from None
        form = {name: values[0] for name, values in fields.items()}
        if context.checkable and session.same(form.get("csrf_token", ""), context.csrf):
            return context, form
        context.status = HTTPStatus.FORBIDDEN
        kept = {DRAFT: form["text"]} if "text" in form and show is not None else {}
        if context.cookieless:
            raise Shown(self.html(context, "Cookies are needed", render(
                "cookies.html", kept=render("kept.html", text=form["text"]) if kept else "")))
        if show is None:
            raise HTTPError(HTTPStatus.FORBIDDEN, NOT_CHECKED + " Reload the page first.", "csrf")
        context.flash = Flash(error=NOT_CHECKED, fields=kept)
        raise Shown(show(context))

    def tweet_list(self, context: RequestContext, data: dict[str, Any], base: str) -> Markup:
        """Render a page of tweets with its Newer and Older links."""
        here = context.here()
        authors = data.get("authors") or {}
        self.api.remember(authors)
        items = join(render("tweet_item.html", **self.tweet_values(context, tweet, here, authors))
                     for tweet in data["tweets"])
        if not items:
            return join([render("empty.html", message="No tweets here yet."),
                         paging_links(base, data)])
        return render("tweet_list.html", items=items, paging=paging_links(base, data))

    def tweet_values(self, context: RequestContext, tweet: dict[str, Any], here: str,
                     authors: dict[str, str]) -> dict[str, Any]:
        """Return the template values of one tweet; its like form comes back to ``here``;
        ``authors`` gives display names (the API's pages carry them)."""
        now = self.clock()
        edited = Markup("")
        if tweet["edited_at"]:
            edited = Markup(f" · edited {moment(tweet['edited_at'], now)}")
        likes = int(tweet["likes"])
        like = render("like.html", id=tweet["id"], csrf=context.csrf, idem=new_key(), next=here,
                      likes=f"{likes:,}", likes_words=words.plural(likes, "like"))
        name = authors.get(tweet["author"])
        byline = (render("byline.html", author=tweet["author"], display=name)
                  if name and name != tweet["author"]
                  else render("byline_handle.html", author=tweet["author"]))
        return {"id": tweet["id"], "text": tweet_text(tweet["text"]), "edited": edited,
                "byline": byline,
                "when": moment(tweet["created_at"], now), "like": like}

    def html(self, context: RequestContext, title: str, body: Markup) -> Response:
        """Wrap a body in the layout, with the flash's message, and set the cookies."""
        flash = context.flash or Flash()
        parts = []
        if flash.notice:
            parts.append(render("notice.html", message=flash.notice))
        if flash.error:
            parts.append(render("error_summary.html", message=flash.error))
            title = f"Error: {title}"
        document = render("layout.html", title=title, nav=nav(context), flash=join(parts),
                          body=body)
        headers = [("Content-Type", HTML), ("Cache-Control", "no-store")]
        response = Response(context.status, document.encode(), headers)
        if context.flash is not None:  # shown now; only a draft no form took waits on
            draft = context.flash.fields.get(DRAFT)
            waiting = {DRAFT: draft} if draft and DRAFT not in context.taken else {}
            context.next_flash = Flash(fields=waiting)
        return self.with_cookies(context, response, fresh=False)

    def redirect(self, context: RequestContext, location: str,
                 flash: Flash | None = None) -> Response:
        """See Other, with the next page asked to read past the caches and shown ``flash``."""
        # A Location header is ASCII: percent-encode what is not (a /tags/café page).
        ascii_location = quote(location, safe="/?&=%#:@!$'()*+,;~-._")
        response = Response(HTTPStatus.SEE_OTHER, b"", [("Location", ascii_location)])
        if flash is not None:
            waiting = context.flash.fields.get(DRAFT) if context.flash else None
            if waiting and DRAFT not in flash.fields:  # a draft waits on through a log-in
                flash = Flash(flash.notice, flash.error, {**flash.fields, DRAFT: waiting})
            context.next_flash = flash
        return self.with_cookies(context, response, fresh=True)

    def with_cookies(self, context: RequestContext, response: Response, fresh: bool) -> Response:
        response.headers.append(("Set-Cookie", session.cookie(self.key, context.session)))
        if context.new_browser:
            response.headers.append(("Set-Cookie", session.csrf_cookie(self.key, context.csrf)))
        if fresh or context.fresh:
            response.headers.append(("Set-Cookie", session.fresh_cookie(fresh)))
        if context.next_flash is not None:
            flash = session.flash_cookie(self.key, context.next_flash)
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
