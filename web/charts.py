"""The dashboard's charts: plain inline SVG bar charts drawn from the services' counters."""
from __future__ import annotations

import math
from typing import Any

from web.history import Step
from web.render import Markup, escape, join, render

# Drawn 360 units wide, about a phone's width in CSS pixels, so that 13-unit text stays 13 px
# on a phone; the stylesheet caps how wide a chart grows on a desktop.
WIDTH, BAR_HEIGHT, LABEL_HEIGHT, GAP = 360, 16, 17, 8
COLOURS = ("#1d6fb8", "#2f9e6e", "#c77d14", "#8a4fbf", "#b4235a", "#52606d")
SVG = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
       'aria-label="{title}" font-family="system-ui, sans-serif" font-size="13" '
       'fill="#1f2933">{body}</svg>')


def svg(title: str, height: float, body: str) -> Markup:
    return Markup(SVG.format(width=WIDTH, height=f"{height:.0f}", title=escape(title),
                             body=body))


def bar_chart(title: str, bars: list[tuple[str, int]]) -> Markup:
    """Draw labelled horizontal bars, one per (label, count): the label above its bar."""
    biggest = max((value for _, value in bars), default=0) or 1
    room = WIDTH - 80  # the rest holds the count after the longest bar
    row = LABEL_HEIGHT + BAR_HEIGHT + GAP
    rows = []
    for index, (label, value) in enumerate(bars):
        y = index * row + LABEL_HEIGHT
        length = max(1, round(room * value / biggest)) if value else 0
        rows.append(
            f'<text x="0" y="{y - 4}">{escape(label)}</text>'
            f'<rect x="0" y="{y}" width="{length}" height="{BAR_HEIGHT}" rx="3" '
            f'fill="{COLOURS[index % len(COLOURS)]}">'
            f'<title>{escape(label)}: {value:,}</title></rect>'
            f'<text x="{length + 6}" y="{y + BAR_HEIGHT - 3}">{value:,}</text>')
    return svg(title, len(bars) * row, "".join(rows))


Point = tuple[float, "float | None"]  # (seconds ago, value); None is a gap
PLOT_LEFT, PLOT_TOP, PLOT_HEIGHT = 14, 22, 110


def line_chart(title: str, series: list[tuple[str, list[Point]]], span: float,
               unit: str = "/s") -> Markup:
    """Draw lines over the last ``span`` seconds, now at the right; y from 0 to a round top."""
    values = [v for _, points in series for _, v in points if v is not None]
    top = round_up(max(values, default=0))
    width = WIDTH - PLOT_LEFT - 6
    bottom = PLOT_TOP + PLOT_HEIGHT

    def x(ago: float) -> float:
        return PLOT_LEFT + width * (1 - min(ago, span) / span)

    def y(value: float) -> float:
        return bottom - PLOT_HEIGHT * value / top

    parts = [f'<line x1="{PLOT_LEFT}" y1="{bottom}" x2="{WIDTH - 6}" y2="{bottom}" '
             'stroke="#7b8794"/>',
             f'<line x1="{PLOT_LEFT}" y1="{PLOT_TOP}" x2="{WIDTH - 6}" y2="{PLOT_TOP}" '
             'stroke="#d9dee3"/>',
             f'<text x="{PLOT_LEFT}" y="{PLOT_TOP - 6}">{number(top)}{escape(unit)}</text>',
             f'<text x="{PLOT_LEFT - 4}" y="{bottom + 4}" text-anchor="end">0</text>',
             f'<text x="{PLOT_LEFT}" y="{bottom + 17}">{escape(ago_words(span))}</text>',
             f'<text x="{WIDTH - 6}" y="{bottom + 17}" text-anchor="end">now</text>']
    for index, (label, points) in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        for run in runs(points):
            if len(run) == 1:
                ago, value = run[0]
                parts.append(f'<circle cx="{x(ago):.1f}" cy="{y(value):.1f}" r="2.5" '
                             f'fill="{colour}"/>')
            else:
                line = " ".join(f"{x(ago):.1f},{y(value):.1f}" for ago, value in run)
                parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" '
                             'stroke-width="2" stroke-linejoin="round"/>')
    return svg(title, bottom + 22, "".join(parts))


def runs(points: list[Point]) -> list[list[tuple[float, float]]]:
    """Split points at their gaps into runs a line joins."""
    found: list[list[tuple[float, float]]] = [[]]
    for ago, value in points:
        if value is None:
            found.append([])
        else:
            found[-1].append((ago, value))
    return [run for run in found if run]


def round_up(value: float) -> float:
    """The smallest of 1, 2 or 5 times a power of ten at or above value (1 for nothing)."""
    if value <= 0:
        return 1.0
    step = 10.0 ** math.floor(math.log10(value))
    return next(step * times for times in (1, 2, 5, 10) if step * times >= value * 0.9999)


def number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def ago_words(seconds: float) -> str:
    return f"{seconds / 60:.0f} min ago" if seconds >= 120 else f"{seconds:.0f} s ago"


def legend(labels: list[str]) -> Markup:
    """The names of a line chart's lines, each beside its colour."""
    return render("legend.html", items=join(
        render("legend_item.html", index=str(index % len(COLOURS) + 1), label=label)
        for index, label in enumerate(labels)))


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
    """Chart likes received against what became of them, and the store requests."""
    title = "Likes: received, written, dropped, and store requests"
    received, written = int(api.get("likes_received", 0)), int(api.get("likes_written", 0))
    dropped = int(api.get("likes_dropped", 0))
    requests, pending = int(api.get("store_requests", 0)), int(api.get("pending", 0))
    mode = "batched" if api.get("batching") else "written one by one (batching is off)"
    sentence = (f"Likes are {mode}. Of {received:,} likes received, {written:,} were written to "
                f"the store in {requests:,} store requests, {dropped:,} were dropped because "
                f"their tweet was deleted first, and {pending:,} are pending now.")
    if requests:
        sentence += f" That is {written / requests:.1f} likes written per store request."
    bars = [("likes received", received), ("likes written", written),
            ("dropped: tweet deleted first", dropped), ("pending now", pending),
            ("store requests for likes", requests)]
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
    """Return the dashboard's four charts of totals since each service started."""
    return join([front_caches(lb), feed(api, lb), database(api), likes(api)])


def over_time(steps: list[Step], now: float, every: float) -> Markup:
    """Return the four charts of the last minutes, drawn from the sampled history."""
    if not steps:
        return render("chart.html", title="The last minutes", svg="", sentence=(
            f"While someone looks at this page, it samples the counters every {every:g} s and "
            "draws the last ten minutes here. Reload in a few seconds to see the first step."))
    span = max(60.0, now - (steps[0].at - steps[0].seconds))

    def line(name: str) -> list[Point]:
        return [(now - step.at, step.rate(name)) for step in steps]

    def hit_rate(step: Step) -> float | None:
        asked = step.counts["cache_hits"] + step.counts["cache_passed"]
        return 100 * step.counts["cache_hits"] / asked if asked else None

    last = steps[-1]
    charts = [
        ("Requests per second through the front caches",
         [("answered by a cache", line("cache_hits")),
          ("passed on to the API", line("cache_passed"))], "/s",
         f"In the last {last.seconds:.0f} s: {last.rate('cache_hits'):,.1f} requests/s "
         f"answered by a cache, {last.rate('cache_passed'):,.1f}/s passed on to the API."),
        ("Share of requests the front caches answered",
         [("hit rate", [(now - step.at, hit_rate(step)) for step in steps])], "%",
         "The share of requests answered from memory in each step; a gap is a step with no "
         "requests." + ("" if hit_rate(last) is None else
                        f" Last {last.seconds:.0f} s: {hit_rate(last):.0f}%.")),
        ("Likes per second: received, written, dropped",
         [("received", line("likes_received")), ("written to the store", line("likes_written")),
          ("dropped (tweet deleted)", line("likes_dropped"))], "/s",
         f"In the last {last.seconds:.0f} s: {last.rate('likes_received'):,.1f} likes/s "
         f"received, {last.rate('likes_written'):,.1f}/s written (a batch writes many at once)."),
        ("Cached copies the change feed dropped, per second",
         [("dropped by a write", line("feed_dropped"))], "/s",
         f"In the last {last.seconds:.0f} s: {last.rate('feed_dropped'):,.1f} copies/s dropped "
         "by the front caches and the database cache because a write made them untrue."),
    ]
    return join(render("line_chart.html", title=title, sentence=sentence,
                       svg=line_chart(title, series, span, unit),
                       legend=legend([label for label, _ in series]))
                for title, series, unit, sentence in charts)
