"""Benchmark the store's read queries at two or more database sizes.

For each size it fills a fresh sqlite3 file in a temporary directory straight with SQL
(deriving the full-text index, tag rows and counters in bulk, as the schema's triggers
would row by row), then times the Database API: the median of many runs per query, in
microseconds, the sizes taking turns. Indexed access means the large database answers
about as fast as the small one, so the table ends with the ratio largest/smallest.

    python bench/store_bench.py [--sizes 10000,1000000] [--runs 200] [--rounds 5]

Standard library only; not part of the test suite.
"""

import argparse
import itertools
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from store.db import Database, iso_time  # noqa: E402  (needs the path above)

# At most 1000 accounts, and at least 100 tweets each, so every author's first page is full.
MAX_ACCOUNTS = 1000
TAGS = 500
# Zipf-like weights: the first word is in a large share of tweets, the last ones rarely.
VOCABULARY = [f"w{n}" for n in range(300)]
WEIGHTS = [1 / (rank + 1) for rank in range(len(VOCABULARY))]
COMMON_WORD = "w0"
RARE_WORD = "rareword"  # in one tweet in 250: enough to fill a page at 10k tweets
# What the schema's triggers would have derived from the rows, computed in bulk.
DERIVE_SQL = [
    "insert into tweet_tags (tag, tweet_id)"
    " select j.value, t.id from tweets t, json_each(t.hashtags) j",
    "insert into hashtag_counts (tag, tweets) select tag, count(*) from tweet_tags group by tag",
    "update accounts set tweet_count ="
    " (select count(*) from tweets where author_id = accounts.id)",
    "update counters set value = (select count(*) from accounts) where name = 'accounts'",
    "update counters set value = (select count(*) from tweets) where name = 'tweets'",
    "insert into tweets_fts (tweets_fts) values ('rebuild')",
]


@dataclass(frozen=True)
class Filled:
    """What the timed queries need to know about a filled database."""

    path: str
    oldest_id: int
    usernames: list[str]
    tags: list[str]
    fill_seconds: float


def tweet_rows(
    size: int, accounts: int, rng: random.Random,
) -> Iterator[tuple[int, str, str, str]]:
    """Yield (author_id, text, hashtags JSON, created_at) rows, oldest first."""
    start = time.time() - size
    cum_weights = list(itertools.accumulate(WEIGHTS))
    for n in range(size):
        words = rng.choices(VOCABULARY, cum_weights=cum_weights, k=4 + n % 9)
        if n % 250 == 125:
            words.append(RARE_WORD)
        # Skewed towards low tag numbers, so some tags are popular, as in life.
        tags = sorted({f"tag{int(TAGS * rng.random() ** 2)}" for _ in range(n % 3)})
        text = " ".join(words + ["#" + tag for tag in tags])
        hashtags = "[" + ",".join(f'"{tag}"' for tag in tags) + "]"
        yield 1 + int(rng.random() * accounts), text, hashtags, iso_time(start + n)


def fill(path: str, size: int) -> Filled:
    """Create the schema through Database, then bulk-load it in one transaction."""
    began = time.perf_counter()
    accounts = max(1, min(MAX_ACCOUNTS, size // 100))
    Database(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    # A throwaway file: no syncing, and a rollback journal so the load is written once,
    # not once to the WAL and again by the checkpoint.
    conn.execute("pragma journal_mode = delete")
    conn.execute("pragma synchronous = off")
    conn.execute("pragma cache_size = -262144")
    conn.execute("begin immediate")
    # Row-by-row triggers cost ~100 µs a tweet here; set-based SQL builds the same derived
    # data in one pass each, and the triggers come back unchanged before the commit.
    triggers = conn.execute("select name, sql from sqlite_master where type = 'trigger'").fetchall()
    for name, _ in triggers:
        conn.execute(f'drop trigger "{name}"')
    conn.executemany(
        "insert into accounts (id, username, display_name, display_lower, password_hash,"
        " created_at) values (?, ?, ?, ?, 'x', ?)",
        ((n, f"user{n}", f"User {n}", f"user {n}", iso_time(0)) for n in range(1, accounts + 1)),
    )
    conn.executemany("insert into tweets (author_id, text, hashtags, created_at)"
                     " values (?, ?, ?, ?)", tweet_rows(size, accounts, random.Random(size)))
    for sql in DERIVE_SQL:
        conn.execute(sql)
    for _, sql in triggers:
        conn.execute(sql)
    conn.execute("commit")
    conn.execute("pragma journal_mode = wal")
    oldest = conn.execute("select min(id) from tweets").fetchone()[0]
    conn.close()
    return Filled(path, oldest, [f"user{n}" for n in range(1, accounts + 1)],
                  [f"tag{n}" for n in range(20)], time.perf_counter() - began)


def queries(db: Database, filled: Filled, limit: int) -> dict[str, Callable[[int], object]]:
    """Name each timed query; each takes the run number so it can vary its argument."""
    deep = filled.oldest_id + 2 * limit + 1
    users, tags = filled.usernames, filled.tags
    return {
        "timeline, first page": lambda n: db.timeline(limit, None),
        "timeline, deep cursor (near oldest)": lambda n: db.timeline(limit, deep),
        f"search common word ({COMMON_WORD}), first page":
            lambda n: db.search_tweets(COMMON_WORD, limit, None),
        "search common word, deep cursor": lambda n: db.search_tweets(COMMON_WORD, limit, deep),
        "search two words, first page": lambda n: db.search_tweets("w0 w1", limit, None),
        "search rare word, first page": lambda n: db.search_tweets(RARE_WORD, limit, None),
        "hashtag page (top 20 tags)": lambda n: db.tag_tweets(tags[n % len(tags)], limit, None),
        "per-author page": lambda n: db.author_tweets(users[n * 7 % len(users)], limit, None),
        "hashtag list, most used": lambda n: db.hashtags("", limit),
        "one tweet": lambda n: db.get_tweet(filled.oldest_id + n),
    }


def time_runs(run: Callable[[int], object], first: int, count: int) -> list[float]:
    """Time run(first) .. run(first + count - 1); return each duration in microseconds."""
    times = []
    for n in range(first, first + count):
        began = time.perf_counter_ns()
        run(n)
        times.append((time.perf_counter_ns() - began) / 1000)
    return times


def measure(dbs: list[tuple[Database, Filled]], runs: int, rounds: int,
            limit: int) -> list[dict[str, float]]:
    """Return the median time of each query on each database.

    The sizes take turns, a slice of the runs at a time, so a change in the machine's
    load during the benchmark falls on every size alike instead of skewing the ratio.
    """
    plans = [queries(db, filled, limit) for db, filled in dbs]
    samples: list[dict[str, list[float]]] = [{name: [] for name in plan} for plan in plans]
    for plan in plans:
        for run in plan.values():
            time_runs(run, 0, 10)  # warm the caches and sqlite's statement cache
    per_round = max(1, runs // rounds)
    for turn in range(rounds):
        for name in plans[0]:
            for plan, sample in zip(plans, samples):
                sample[name] += time_runs(plan[name], turn * per_round, per_round)
    return [{name: statistics.median(times) for name, times in sample.items()}
            for sample in samples]


def table(sizes: list[int], results: list[dict[str, float]], fills: list[float]) -> str:
    """Format the medians as Markdown, one column per size, then largest/smallest."""
    head = "| query (median µs) | " + " | ".join(f"{s:,} tweets" for s in sizes) + " | ratio |"
    lines = [head, "|---" * (len(sizes) + 2) + "|"]
    for name in results[0]:
        cells = [f"{r[name]:.0f}" for r in results]
        lines.append(f"| {name} | " + " | ".join(cells)
                     + f" | {results[-1][name] / results[0][name]:.2f} |")
    lines.append("| (fill time, s) | " + " | ".join(f"{f:.1f}" for f in fills) + " | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000",
                        help="comma-separated tweet counts (default 10000,1000000)")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per query")
    parser.add_argument("--rounds", type=int, default=5, help="turns the sizes take")
    parser.add_argument("--limit", type=int, default=20, help="page size")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        filled = []
        for size in sizes:
            filled.append(fill(str(Path(tmp) / f"store-{size}.db"), size))
            print(f"filled {size:,} tweets in {filled[-1].fill_seconds:.1f} s", file=sys.stderr)
        if hasattr(os, "sync"):
            os.sync()  # so the kernel's write-back of the fill does not run during timing
        dbs = [(Database(f.path), f) for f in filled]
        try:
            results = measure(dbs, args.runs, args.rounds, args.limit)
        finally:
            for db, _ in dbs:
                db.close()
    print(table(sizes, results, [f.fill_seconds for f in filled]))


if __name__ == "__main__":
    main()
