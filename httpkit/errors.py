"""The one error type every service raises for an HTTP failure.

Handlers ``raise HTTPError(HTTPStatus.NOT_FOUND, "no such tweet")``; the server turns it into
the JSON body of DESIGN.md in exactly one place (``Server.error_response``).
"""
from __future__ import annotations

import errno
import sqlite3
from http import HTTPStatus


class HTTPError(Exception):
    """An HTTP failure with its status, a short snake_case code and a human sentence."""

    def __init__(self, status: HTTPStatus | int, message: str, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = HTTPStatus(status)
        self.message = message
        self.code = code or default_code(self.status)
        self.headers = headers or {}


# Shorter or clearer codes than the reason phrase gives.
CODES = {
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "body_too_large",
    HTTPStatus.INTERNAL_SERVER_ERROR: "internal_error",
    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE: "headers_too_large",
    HTTPStatus.INSUFFICIENT_STORAGE: "storage_full",
}


def default_code(status: HTTPStatus) -> str:
    """Return the snake_case name of a status: 404 -> "not_found"."""
    if status in CODES:
        return CODES[status]
    return status.phrase.lower().replace(" ", "_").replace("-", "_").replace("'", "")


def storage_full(exc: BaseException) -> HTTPError | None:
    """Return the 507 for an exception that says the disk is full (SQLite's SQLITE_FULL, or
    ENOSPC / EDQUOT from the OS), else None. Nothing was written: the write may be retried."""
    code = getattr(exc, "sqlite_errorcode", None) if isinstance(exc, sqlite3.Error) else None
    full = code == sqlite3.SQLITE_FULL or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT))
    if not full:
        return None
    return HTTPError(HTTPStatus.INSUFFICIENT_STORAGE,
                     "the server's disk is full, so nothing was saved; try again later",
                     "storage_full")
