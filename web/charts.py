"""The dashboard's charts: plain inline SVG bar charts drawn from the services' counters."""
from __future__ import annotations

from typing import Any

from web.render import Markup, escape, join, render

WIDTH, LABEL_WIDTH, BAR_HEIGHT, GAP = 640, 270, 26, 10
COLOURS = ("#1d6fb8", "#2f9e6e", "#c77d14", "#8a4fbf", "#b4235a")


def bar_chart(title: str, bars: list[tuple[str, int]]) -> Markup:
    """Draw labelled horizontal bars, one per (label, count)."""
    biggest = max((value for _, value in bars), default=0) or 1
    room = WIDTH - LABEL_WIDTH - 90
    height = len(bars) * (BAR_HEIGHT + GAP) + GAP
    rows = []
    for index, (label, value) in enumerate(bars):
        y = GAP + index * (BAR_HEIGHT + GAP)
        length = max(1, round(room * value / biggest)) if value else 0
        text_y = y + BAR_HEIGHT * 0.68
        rows.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{text_y:.0f}" text-anchor="end">'
            f'{escape(label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length}" height="{BAR_HEIGHT}" rx="3" '
            f'fill="{COLOURS[index % len(COLOURS)]}">'
            f'<title>{escape(label)}: {value:,}</title></rect>'
            f'<text x="{LABEL_WIDTH + length + 6}" y="{text_y:.0f}">{value:,}</text>')
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" font-family="system-ui, sans-serif" font-size="13" '
        f'fill="#1f2933">{"".join(rows)}</svg>')


def share(part: int, whole: int) -> str:
    """Return part/whole as a percentage for a sentence."""
    return f"{100 * part / whole:.0f}%" if whole else "0%"


def front_caches(lb: dict[str, Any] | None) -> Markup:
    """Chart what the load balancer's caches answered without asking the API."""
    title = "Front caches: requests answered without the API"
    if lb is None:
        return render("chart.html", title=title, svg="", sentence=(
            "This front end talks to the API directly, without the load balancer and caches, "
            "so there is nothing to show here."))
    upstreams = lb.get("upstreams", [])
    caches = [u["cache"] for u in upstreams if u.get("cache")]
    received = sum(int(u.get("requests", 0)) for u in upstreams)
    hits = sum(int(c.get("hits", 0)) for c in caches)
    passed = sum(int(c.get("upstream_requests", 0)) for c in caches)
    healthy = sum(1 for u in upstreams if u.get("healthy"))
    sentence = (f"The load balancer spread {received:,} requests over {len(upstreams)} cache "
                f"replicas ({healthy} healthy now). The caches answered {hits:,} of them "
                f"({share(hits, received)}) from memory and passed {passed:,} on to the API.")
    svg = bar_chart(title, [("requests through the load balancer", received),
                            ("answered by a cache (hits)", hits),
                            ("passed on to the API", passed)])
    return render("chart.html", title=title, sentence=sentence, svg=svg)


def database(api: dict[str, Any]) -> Markup:
    """Chart API calls against what reached the database."""
    title = "API calls, database accesses and queries run"
    db = api.get("database") or {}
    store, dbcache = db.get("store") or {}, db.get("dbcache") or {}
    calls, accesses = int(api.get("calls", 0)), int(api.get("db_accesses", 0))
    absorbed = int(dbcache.get("hits", 0))
    bars = [("API calls", calls), ("database accesses by the API", accesses),
            ("answered by the database cache", absorbed),
            ("requests that reached the store", int(store.get("requests", 0))),
            ("SQL statements the store ran", int(store.get("queries", 0)))]
    sentence = (f"The API handled {calls:,} calls and asked the database {accesses:,} times; "
                f"the database cache answered {absorbed:,} of those ({share(absorbed, accesses)})"
                f" so the store never saw them.")
    if not dbcache:
        sentence += " (No database cache is configured: the API talks to the store directly.)"
    return render("chart.html", title=title, sentence=sentence, svg=bar_chart(title, bars))


def likes(api: dict[str, Any]) -> Markup:
    """Chart likes received against likes written and store requests."""
    title = "Likes: received, written, and store requests"
    received, written = int(api.get("likes_received", 0)), int(api.get("likes_written", 0))
    requests, pending = int(api.get("store_requests", 0)), int(api.get("pending", 0))
    mode = "batched" if api.get("batching") else "written one by one (batching is off)"
    sentence = (f"Likes are {mode}. {received:,} likes were received and {written:,} written "
                f"to the store in {requests:,} store requests; {pending:,} are pending now.")
    if requests and api.get("batching"):
        sentence += f" That is {received / requests:.1f} likes per store request."
    bars = [("likes received", received), ("likes written", written),
            ("store requests for likes", requests), ("pending now", pending)]
    return render("chart.html", title=title, sentence=sentence, svg=bar_chart(title, bars))


def feed(api: dict[str, Any], lb: dict[str, Any] | None) -> Markup:
    """Chart what the change feed dropped, against what the TTL alone let expire."""
    title = "Change feed: cached copies dropped because a write made them untrue"
    fronts = [u["cache"] for u in (lb or {}).get("upstreams", []) if u.get("cache")]
    dbcache = ((api.get("database") or {}).get("dbcache")) or {}
    following = [c["feed"] for c in [*fronts, dbcache] if c.get("feed")]
    if not following:
        return render("chart.html", title=title, svg="", sentence=(
            "No cache follows a change feed here (CACHE_FEED=off, or no caches): copies live "
            "until their TTL runs out."))
    dropped = sum(int(c["feed"]["dropped_by_key"]) for c in fronts if c.get("feed"))
    by_db = int((dbcache.get("feed") or {}).get("dropped_by_key", 0))
    resets = sum(int(f["dropped_by_reset"]) for f in following)
    refused = sum(int(f["refused_in_flight"]) for f in following)
    refetched = sum(int(f.get("revalidations", 0)) for f in following)
    expired = sum(int(c.get("expirations", 0)) for c in [*fronts, dbcache])
    lags = [u["lag_s"] for f in following for u in f["upstreams"] if u.get("lag_s") is not None]
    sentence = (f"The front caches dropped {dropped:,} copies and the database cache {by_db:,} "
                f"the moment a write made them untrue, instead of serving them until their TTL "
                f"ran out. {refetched:,} copies of busy pages (like counts, lists under a stream "
                f"of posts) were fetched again in the background while still answered; "
                f"{expired:,} copies expired by the TTL.")
    if lags:
        sentence += (f" The latest change reached a cache {1000 * max(lags):.0f} ms after it "
                     "was made.")
    bars = [("dropped by the front caches", dropped), ("dropped by the database cache", by_db),
            ("refetched in the background", refetched),
            ("dropped on a reset (a restart)", resets),
            ("fetches not stored (changed mid-way)", refused), ("expired by the TTL", expired)]
    return render("chart.html", title=title, sentence=sentence, svg=bar_chart(title, bars))


def dashboard(api: dict[str, Any], lb: dict[str, Any] | None) -> Markup:
    """Return the dashboard's four charts."""
    return join([front_caches(lb), feed(api, lb), database(api), likes(api)])
