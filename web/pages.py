"""The parts pages are made of: the navigation, times, tweet boxes, paging links, and the
headers and words of error pages."""
from __future__ import annotations

from typing import Any

from httpkit import Request
from httpkit.messages import whole_number
from web import words
from web.forms import RequestContext
from web.render import Markup, join, render

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
