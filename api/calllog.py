"""The call log: every API call since start-up, in arrival order, as ``[method, path]``.

Its memory is bounded by bytes whatever the traffic (DESIGN.md, "Faults, supervision and bad
input"), while it still lists every call since start-up:

- A call is one record: a method byte (for an unusual method, a marker byte, a length byte
  and the name) and the UTF-8 path, appended to a ``bytearray``, with the stream offset where
  it ends in an ``array`` of 8-byte integers: 9 bytes plus the path, no Python object per
  call. Paths longer than MAX_PATH_BYTES (and method names longer than MAX_METHOD_BYTES) are
  cut on a character boundary and end with a marker saying how much went, as in
  ``/aaaa…[cut 63,488 bytes]``, so no call costs more than ~600 bytes.
- Memory holds at most ``memory_bytes`` (MEMORY_BYTES by default) of records and offsets, in
  two halves: the one appended to and, while it is written out, the one before it. When the
  first half is full it is spilled to an append-only file in the data directory,
  ``calls-<start-up time>-<random>.log``, and its end offsets to ``.idx`` beside it (8 bytes a
  call on disk, nothing in memory), so reading a page anywhere is two ``pread`` calls:
  O(page), not O(calls before it). A slow disk makes appenders wait for the spill before
  them rather than memory grow.
- One log per start-up, since the log is "since start-up": a new CallLog removes the files of
  earlier start-ups that no live process holds (each holds an ``flock`` on its ``.log``), and
  ``close`` removes its own.
- Pages are bounded: ``read`` stops after ``limit`` calls or once the page would pass
  ``max_bytes`` (PAGE_BYTES) of JSON, with ``next`` pointing at the rest; a page runs across
  file and memory seamlessly and a call's number is its place in the log.
- Without a directory, or once the file cannot be written (DATA_DIR not writable, disk
  full), the log keeps counting and keeps what is in memory, but gives the file up for this
  start-up: the calls pushed out of memory from then on are counted, not kept.
  ``Page.missing`` says which ones and why; a page that starts among them is empty and its
  ``next`` points past them, so numbering never shifts.
"""
from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import threading
import time
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, TypedDict

log = logging.getLogger(__name__)

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
OTHER = len(METHODS)  # then a length byte and the method's own name come before the path
CODES = {method: bytes((code,)) for code, method in enumerate(METHODS)}
MAX_PATH_BYTES = 512
MAX_METHOD_BYTES = 32  # the name's length must fit the record's length byte
CUT_MARKER = "…[cut {:,} bytes]"
MEMORY_BYTES = 8 * 2 ** 20
PAGE_BYTES = 2 ** 20
# What JSON adds to a record at most, escapes aside: ["DELETE",""], for a 1-byte code.
PER_CALL_JSON = 16
END = array("Q").itemsize  # bytes per end offset, in memory and in the index file


class Missing(TypedDict):
    """Calls ``after+1`` to ``next`` were counted but are not kept, for ``reason``."""

    after: int
    next: int
    reason: str


@dataclass(frozen=True)
class Page:
    """Calls of the log in order, the log's length, where the next page starts (None at the
    end) and which calls the log lost, if any."""

    calls: list[list[str]]
    total: int
    next: int | None
    missing: Missing | None


def cut(text: bytes, most: int) -> bytes:
    """Return UTF-8 ``text`` if it has at most ``most`` bytes, else its head, ended on a
    character boundary, and a marker saying how many bytes were cut."""
    if len(text) <= most:
        return text
    end = most
    while text[end] & 0xC0 == 0x80:  # a continuation byte: a character starts further back
        end -= 1
    return text[:end] + CUT_MARKER.format(len(text) - end).encode()


def encode(method: str, path: str) -> bytes:
    """Return the record of one call."""
    body = path.encode("utf-8", "replace")
    if len(body) > MAX_PATH_BYTES:
        body = cut(body, MAX_PATH_BYTES)
    code = CODES.get(method)
    if code is not None:
        return code + body
    name = cut(method.encode("utf-8", "replace"), MAX_METHOD_BYTES)
    return bytes((OTHER, len(name))) + name + body


def decode(blob: bytes, ends: Sequence[int], origin: int) -> list[list[str]]:
    """Return the calls of the records in ``blob``, which starts at stream offset ``origin``;
    ``ends`` are their end offsets."""
    calls = []
    begin = 0
    for end in ends:
        end -= origin
        code = blob[begin]
        if code == OTHER:
            path_at = begin + 2 + blob[begin + 1]
            calls.append([blob[begin + 2:path_at].decode(), blob[path_at:end].decode()])
        else:
            calls.append([METHODS[code], blob[begin + 1:end].decode()])
        begin = end
    return calls


def fit(ends: Sequence[int], lo: int, hi: int, origin: int, room: int) -> int:
    """Return where records ``lo`` to ``hi`` (exclusive) stop fitting ``room`` bytes of JSON,
    keeping at least one so that every page moves on."""
    def size(i: int) -> int:
        return ends[i] - origin + PER_CALL_JSON * (i - lo + 1)
    return max(lo + 1, lo + bisect_right(range(lo, hi), room, key=size))


def remove_stale(directory: str) -> None:
    """Remove the call log files of earlier start-ups that no live process holds."""
    try:
        logs = list(Path(directory).glob("calls-*.log"))
        for path in logs:
            with open(path, "rb") as held:
                try:
                    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live api's log
                path.with_suffix(".idx").unlink(missing_ok=True)
                path.unlink(missing_ok=True)
        for index in Path(directory).glob("calls-*.idx"):
            if not index.with_suffix(".log").exists():  # its log is gone: a crash between
                index.unlink(missing_ok=True)
    except OSError as err:  # an unreadable DATA_DIR: the first spill will say so
        log.warning("could not clear old call logs in %s: %s", directory, err)


@dataclass
class Chunk:
    """Calls in memory, back to back: ``first`` calls come before them, ``data[0]`` is at
    stream offset ``base``, ``ends`` are where each record ends in the stream."""

    first: int
    base: int
    data: bytearray = field(default_factory=bytearray)
    ends: array[int] = field(default_factory=lambda: array("Q"))

    def take(self, start: int, stop: int, room: int) -> tuple[bytes, list[int], int]:
        """Copy out records ``start`` to ``stop`` (call numbers), as many as fit ``room``:
        their bytes, their ends and the stream offset of the first byte."""
        lo, hi = start - self.first, stop - self.first
        origin = self.ends[lo - 1] if lo else self.base
        hi = fit(self.ends, lo, hi, origin, room)
        blob = bytes(self.data[origin - self.base:self.ends[hi - 1] - self.base])
        return blob, self.ends[lo:hi].tolist(), origin


class SpillFile:
    """The calls spilled out of memory: records in ``.log`` at their stream offsets, their end
    offsets in ``.idx`` at ``END * call number``."""

    def __init__(self, directory: str, stamp: str) -> None:
        os.makedirs(directory, exist_ok=True)
        self.data, name = tempfile.mkstemp(prefix=f"calls-{stamp}-", suffix=".log",
                                           dir=directory)  # owner-only, a unique name
        self.path = Path(name)
        try:
            fcntl.flock(self.data, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while this runs
            self.index = os.open(self.path.with_suffix(".idx"),
                                 os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            os.close(self.data)
            self.path.unlink(missing_ok=True)
            raise

    def write(self, chunk: Chunk) -> None:
        """Write a chunk's records and ends where they belong."""
        with memoryview(chunk.data) as data, memoryview(chunk.ends).cast("B") as ends:
            write_at(self.data, data, chunk.base)
            write_at(self.index, ends, END * chunk.first)

    def take(self, start: int, stop: int, room: int) -> tuple[bytes, array[int], int]:
        """Read calls ``start`` to ``stop``, as many as fit ``room``: their bytes, their ends
        and the stream offset of the first byte."""
        before = max(start - 1, 0)  # the end of the call before is where ``start`` begins
        ends = array("Q", read_at(self.index, END * (stop - before), END * before))
        origin = ends.pop(0) if start else 0
        hi = fit(ends, 0, len(ends), origin, room)
        return read_at(self.data, ends[hi - 1] - origin, origin), ends[:hi], origin

    def close(self) -> None:
        """Close and remove both files."""
        for fd in (self.index, self.data):
            os.close(fd)
        self.path.with_suffix(".idx").unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)


def write_at(fd: int, view: memoryview, offset: int) -> None:
    """Write all of ``view`` at ``offset``."""
    while view:
        done = os.pwrite(fd, view, offset)
        view, offset = view[done:], offset + done


def read_at(fd: int, size: int, offset: int) -> bytes:
    """Read ``size`` bytes at ``offset``, which were written before."""
    parts = []
    while size > 0:
        part = os.pread(fd, size, offset)
        if not part:
            raise OSError(f"call log file ends early at {offset}")
        parts.append(part)
        size, offset = size - len(part), offset + len(part)
    return b"".join(parts)


class CallLog:
    """An append-only, thread-safe log of (method, path) pairs in bounded memory."""

    def __init__(self, directory: str | None = None,
                 memory_bytes: int = MEMORY_BYTES) -> None:
        self._directory = directory
        self._half = max(memory_bytes // 2, 1)
        self._stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self._lock = threading.Lock()  # appends, and every look at what is where
        self._spill_lock = threading.Lock()  # one spill at a time; held across the write
        # Calls [0, _stored) are in the file, [_stored, _dropped) were lost, the rest are in
        # _spilling (while it is written) and in the chunk appended to, kept as plain fields.
        self._first = self._base = 0
        self._data = bytearray()
        self._ends: array[int] = array("Q")
        self._spilling: Chunk | None = None
        self._file: SpillFile | None = None
        self._stored = self._dropped = 0
        self._failure = "" if directory else "the call log has no directory for old calls"
        if directory:
            remove_stale(directory)

    def __len__(self) -> int:
        with self._lock:
            return self._first + len(self._ends)

    def append(self, method: str, path: str) -> None:
        """Record one call; the order of appends is the order of the log."""
        record = encode(method, path)
        with self._lock:
            self._data += record
            self._ends.append(self._base + len(self._data))
            full = len(self._data) + END * len(self._ends) > self._half
        if full:
            self._spill()

    def page(self, after: int, limit: int) -> list[list[str]]:
        """Return up to ``limit`` calls that follow the first ``after`` ones."""
        return self.read(after, limit).calls

    def read(self, after: int, limit: int, max_bytes: int = PAGE_BYTES) -> Page:
        """Return the page of up to ``limit`` calls after the first ``after`` ones, at most
        about ``max_bytes`` of JSON (paths full of characters JSON escapes make more)."""
        with self._lock:
            stop = min(self._first + len(self._ends), after + limit)
        calls: list[list[str]] = []
        at, room = after, max_bytes
        while at < stop and room > 0:
            run, used = self._take(at, stop, room)
            if not run:
                break  # among the lost calls
            calls += run
            at, room = at + len(run), room - used
        with self._lock:
            total, missing = self._first + len(self._ends), self._missing()
        if missing and not calls and missing["after"] <= at < missing["next"]:
            at = missing["next"]  # an empty page, pointing past what is lost
        return Page(calls, total, at if at < total else None, missing)

    def close(self) -> None:
        """Give the file up and remove it: what it holds is this start-up's alone."""
        with self._spill_lock, self._lock:
            file, self._file = self._file, None
            self._dropped, self._stored = max(self._dropped, self._stored), 0
            self._failure = "the call log is closed"
        if file is not None:
            file.close()

    def _missing(self) -> Missing | None:
        if self._dropped == self._stored:
            return None
        return Missing(after=self._stored, next=self._dropped, reason=self._failure)

    def _take(self, start: int, stop: int, room: int) -> tuple[list[list[str]], int]:
        """Read calls from ``start`` towards ``stop`` out of the one place that holds
        ``start``, within ``room`` bytes; return them (none if lost) and the bytes used."""
        stop = min(stop, start + room // (PER_CALL_JSON + 1) + 1)  # no more than can fit
        file: SpillFile | None = None
        ends: Sequence[int]
        with self._lock:
            if start >= self._dropped:  # in memory: copied out under the lock
                chunks = [self._spilling, Chunk(self._first, self._base, self._data, self._ends)]
                chunk = next(c for c in chunks if c and start < c.first + len(c.ends))
                blob, ends, origin = chunk.take(start, min(stop, chunk.first + len(chunk.ends)),
                                                room)
            elif start >= self._stored or self._file is None:
                return [], 0
            else:
                file, stop = self._file, min(stop, self._stored)
        if file is not None:  # written once and never again: read without the lock
            blob, ends, origin = file.take(start, stop, room)
        return decode(blob, ends, origin), len(blob) + PER_CALL_JSON * len(ends)

    def _spill(self) -> None:
        """Move the full chunk out of memory into the file, or, failing that, count its calls
        as lost; appenders go on into a new chunk meanwhile."""
        with self._spill_lock:
            with self._lock:
                if len(self._data) + END * len(self._ends) <= self._half:
                    return  # another thread spilled it
                chunk = Chunk(self._first, self._base, self._data, self._ends)
                self._first, self._base = self._first + len(self._ends), self._base + len(
                    self._data)
                self._data, self._ends = bytearray(), array("Q")
                if self._failure:
                    self._dropped = self._first
                    return
                self._spilling = chunk
            failure = self._write(chunk)
            with self._lock:
                self._spilling = None
                self._dropped = chunk.first + len(chunk.ends)
                if failure:
                    self._failure = failure
                else:
                    self._stored = self._dropped

    def _write(self, chunk: Chunk) -> str:
        """Write a chunk to the file; return why it could not be, or ""."""
        assert self._directory is not None  # else _failure says so and nothing is written
        try:
            if self._file is None:
                self._file = SpillFile(self._directory, self._stamp)
            self._file.write(chunk)
            return ""
        except OSError as err:
            log.warning("call log: giving up its file in %s: %s", self._directory, err)
            return ("calls pushed out of memory could not be written to the data directory "
                    f"({err.strerror or 'write failed'}); they are counted, not kept")
