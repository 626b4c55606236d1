"""What the lb's workers share: the round-robin turn and the per-upstream counts.

With LB_WORKERS > 1 the lb is several processes sharing one port (``httpkit.serve`` forks
them). A turn or a count kept in a worker's own memory would make each worker take its own
round (two requests in a row could go to one replica) and show only what it forwarded
itself. So they live in an anonymous shared memory map made before the fork:
- the turn is one number that every thread of every worker advances without a lock: two
  taking a turn at the same instant may take the same one, which only makes the round a
  little uneven under load, never wrong, and keeps a lock off every request's path;
- the counts are in one section per worker, written only by that worker, so no lock
  between processes is needed; a reader adds the sections up.
"""
from __future__ import annotations

import mmap
import struct

TURN = struct.Struct("=q")  # the next round-robin turn, at the start of the map
NAME = struct.Struct("=64s")  # an upstream's address, UTF-8, NUL-padded
COUNTS = struct.Struct("=qq")  # requests, failures
ROW_SIZE = NAME.size + COUNTS.size
ROWS = 256  # addresses one worker can count; more than any replica list we expect


class Tally:
    """Counts by upstream address, one section per worker, in memory shared across forks."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self.memory = mmap.mmap(-1, TURN.size + workers * ROWS * ROW_SIZE)  # MAP_SHARED
        self.section = 0
        self.rows: dict[str, int] = {}  # this worker's address -> byte offset of its row

    def attach(self, worker: int) -> None:
        """Write to worker ``worker``'s section from now on (in that worker, after the fork).
        A worker started in place of one that died takes over its rows, counts and all."""
        if not 0 <= worker < self.workers:
            raise ValueError(f"worker {worker} of {self.workers}")
        self.section = worker
        self.rows = {}
        for row in range(ROWS):
            offset = row_offset(worker, row)
            name = NAME.unpack_from(self.memory, offset)[0].rstrip(b"\0")
            if not name:
                break
            self.rows[name.decode(errors="replace")] = offset

    def turn(self) -> int:
        """Return the next round-robin turn (racy by design: see the module's docstring)."""
        turn: int = TURN.unpack_from(self.memory, 0)[0]
        TURN.pack_into(self.memory, 0, turn + 1)
        return turn

    def add(self, address: str, failed: bool) -> None:
        """Count one request forwarded to ``address``, or one failure (one thread at a time)."""
        offset = self.rows.get(address)
        if offset is None:
            if len(self.rows) == ROWS:
                return  # the table is full: this address goes uncounted
            offset = row_offset(self.section, len(self.rows))
            NAME.pack_into(self.memory, offset, address.encode())
            self.rows[address] = offset
        requests, failures = COUNTS.unpack_from(self.memory, offset + NAME.size)
        COUNTS.pack_into(self.memory, offset + NAME.size,
                         requests + (not failed), failures + failed)

    def totals(self) -> dict[str, tuple[int, int]]:
        """Return (requests, failures) by address, summed over every worker."""
        totals: dict[str, tuple[int, int]] = {}
        for section in range(self.workers):
            for row in range(ROWS):
                offset = row_offset(section, row)
                name = NAME.unpack_from(self.memory, offset)[0].rstrip(b"\0")
                if not name:
                    break  # a worker fills its rows in order: the rest are unused
                requests, failures = COUNTS.unpack_from(self.memory, offset + NAME.size)
                address = name.decode(errors="replace")
                before = totals.get(address, (0, 0))
                totals[address] = (before[0] + requests, before[1] + failures)
        return totals


def row_offset(section: int, row: int) -> int:
    """Where a row of counts begins in the shared map."""
    return TURN.size + (section * ROWS + row) * ROW_SIZE
