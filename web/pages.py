"""The pages: timeline, tweets, profiles, tags, search, the dashboard and the forms' own pages,
and the parts they are made of (layout, navigation, times, tweet boxes, paging links).

Every page works with JavaScript off; /static/app.js only adds a live character count and
likes without a page load. The page after a write is fetched with ``Cache-Control: no-cache``
(the fresh cookie), so the writer sees the write at once through every cache. A like sends
you back to the page you were on, at the tweet you liked.
"""
from __future__ import annotations

import secrets
import time
from http import HTTPStatus
from typing import Any, Callable
from urllib.parse import quote, urlencode

from httpkit import HTTPError, Request, Response, UpstreamError, json_response
from httpkit.messages import path_id, whole_number
from web import charts, session, words
from web.api import Api
from web.context import DRAFT, RequestContext
from web.history import History, counters
from web.render import Markup, join, path_part, render, tweet_text
from web.session import Flash

LOG_PAGE = 50  # calls per page of /dashboard/logs
DEFAULT_REFRESH_S, MIN_REFRESH_S = 5, 2  # the dashboard's opt-in ?refresh=
HTML = "text/html; charset=utf-8"
KINDS = ("tweets", "hashtags", "accounts")
SEARCH_HINTS = {
    "tweets": "Finds tweets holding every word you type, in any order; case does not matter.",
    "hashtags": "Finds hashtags by how they start, with or without the #: “caf” finds #café.",
    "accounts": "Finds people by how their username or display name starts.",
}
NAV = (("/", "Timeline"), ("/search", "Search"), ("/accounts", "Accounts"),
       ("/dashboard", "Dashboard"))
CURRENT = Markup(' aria-current="page"')


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


def nav(context: RequestContext | None) -> Markup:
    """The header's links, the current one marked (aria-current), and the account's: who is
    logged in and a log-out button, or log in and sign up."""
    path = context.request.path if context is not None else ""
    user = context.session.user if context is not None and context.session.logged_in else None
    own = f"/accounts/{user}" if user else None

    def current(href: str) -> Markup:
        inside = path == href or (href != "/" and path.startswith(href + "/") and path != own)
        return CURRENT if inside else Markup("")

    links = join(render("nav_link.html", href=href, label=label, current=current(href))
                 for href, label in NAV)
    if context is None or user is None:
        return join([links, render("nav_guest.html", login_current=current("/login"),
                                   signup_current=current("/signup"))])
    return join([links, render("nav_user.html", username=user, csrf=context.csrf,
                               profile_current=CURRENT if path == own else "",
                               password_current=current("/password"))])


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


def new_key() -> str:
    """Make a fresh idempotency key for one rendered form."""
    return secrets.token_urlsafe(16)


class Pages:
    """The handlers of the pages, and what every page is rendered with."""

    def __init__(self, api: Api, key: bytes, clock: Callable[[], float] = time.time) -> None:
        self.api = api
        self.key = key
        self.clock = clock
        self.history = History(self.read_counters, clock)

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

    def visit(self, request: Request) -> RequestContext:
        """Read the visitor's session for a page: one whose token the API refuses (logged
        out elsewhere, a password change, expiry) is replaced by an anonymous one."""
        context = RequestContext(request, self.key)
        if context.session.logged_in and self.api.session_ended(context):
            context.session = session.Session()
        return context

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
