"""The call log: every API call since start-up, in arrival order, as ``[method, path]``.

Memory matters (DESIGN.md: small and bounded per call), so calls are not kept as Python
objects (a list of (method, path) tuples costs 130 bytes a call). Each call is one method byte
plus its UTF-8 path appended to a ``bytearray``, with its end offset in an ``array`` of 8-byte
integers: 27 bytes a call for the API's paths (bench/results/calllog.json,
``python3 bench/calllog.py``).
"""
from __future__ import annotations

import threading
from array import array

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
OTHER = len(METHODS)  # any other method is logged as its own name in the path slot


class CallLog:
    """An append-only, thread-safe log of (method, path) pairs."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._ends = array("Q")
        self._codes = {method: index for index, method in enumerate(METHODS)}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._ends)

    def append(self, method: str, path: str) -> None:
        """Record one call; the order of appends is the order of the log."""
        code = self._codes.get(method, OTHER)
        entry = path if code != OTHER else f"{method} {path}"
        encoded = bytes((code,)) + entry.encode("utf-8", "replace")
        with self._lock:
            self._data += encoded
            self._ends.append(len(self._data))

    def page(self, after: int, limit: int) -> list[list[str]]:
        """Return up to ``limit`` calls that follow the first ``after`` ones."""
        with self._lock:
            after = min(after, len(self._ends))
            stop = min(len(self._ends), after + limit)
            start_offset = self._ends[after - 1] if after > 0 else 0
            ends = self._ends[after:stop].tolist()
            data = bytes(self._data[start_offset:ends[-1]]) if ends else b""
        calls = []
        begin = 0
        for end in ends:
            end -= start_offset
            code = data[begin]
            text = data[begin + 1:end].decode("utf-8")
            calls.append(list(text.split(" ", 1)) if code == OTHER else [METHODS[code], text])
            begin = end
        return calls
