"""What crash safety costs a like: LikeBatcher.like() with its sqlite journal, against the
same bookkeeping in memory only, in one process with no network (the store is never called:
the tweet's total is known, and the batch rules never fire).

    python3 bench/journal.py [--likes 20000]

Writes bench/results/journal.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.batcher import LikeBatcher  # noqa: E402  (needs the path above)
from api.storeclient import StoreClient, StoreLikes  # noqa: E402
from httpkit import Upstream  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def per_like_us(batcher: LikeBatcher, likes: int) -> float:
    """Median over 5 runs of the time per like, in microseconds."""
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(likes):
            batcher.like(1)
        runs.append((time.perf_counter() - start) / likes * 1e6)
    return statistics.median(runs)


def main() -> None:
    """Measure like() with the journal and with the journal's writes skipped."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--likes", type=int, default=20_000)
    args = parser.parse_args()
    store = StoreLikes(StoreClient(Upstream("http://127.0.0.1:9")))  # never called
    with tempfile.TemporaryDirectory() as workdir:
        batcher = LikeBatcher(store, str(Path(workdir) / "likes.sqlite3"),
                              batch_size=10**9, max_age=10**9)
        batcher.saw(1, 0)
        journaled = per_like_us(batcher, args.likes)
        real_journal = batcher.journal

        class NoJournal:
            def add_like(self, *args: object) -> None:
                return None
        batcher.journal = NoJournal()  # type: ignore[assignment]
        in_memory = per_like_us(batcher, args.likes)
        batcher.journal = real_journal
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": " ".join(["python3 bench/journal.py", *sys.argv[1:]]),
              "like_with_journal_us": round(journaled, 1),
              "like_in_memory_only_us": round(in_memory, 1),
              "journal_share": round(1 - in_memory / journaled, 2)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "journal.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
