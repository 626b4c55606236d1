"""Requests and responses as handlers see them, and the JSON helpers that read and write them."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs

from httpkit.errors import HTTPError
from httpkit.wire import Headers

MAX_BODY = 64 * 1024
JSON_TYPE = "application/json"

T = TypeVar("T")


@dataclass(slots=True)
class Request:
    """One parsed request: ``path`` is percent-decoded, ``target`` is as the client sent it."""

    method: str
    target: str
    path: str
    query_string: str
    headers: Headers
    body: bytes = b""
    client: str = ""
    params: dict[str, str] = field(default_factory=dict)
    _query: dict[str, str] | None = None

    @property
    def query(self) -> dict[str, str]:
        """Return the query parameters, first value of each."""
        if self._query is None:
            parsed = parse_qs(self.query_string, keep_blank_values=True)
            self._query = {key: values[0] for key, values in parsed.items()}
        return self._query

    def json(self) -> dict[str, Any]:
        """Decode the body as a JSON object, or raise 400."""
        try:
            data = json.loads(self.body)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            raise HTTPError(HTTPStatus.BAD_REQUEST, "the body is not valid JSON",
                            "malformed_json") from None
        if not isinstance(data, dict):
            raise HTTPError(HTTPStatus.BAD_REQUEST, "the body must be a JSON object",
                            "malformed_json")
        try:  # JSON may spell lone surrogates ("\\ud800"), which are not text
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "the body holds invalid Unicode text",
                            "malformed_json") from None
        return data


@dataclass(slots=True)
class Response:
    """A complete response; the server adds Content-Length, Date and Connection."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    # Content-Length when it is not len(body): a relayed answer to HEAD (RFC 9110 §8.6).
    length: int | None = None


def json_response(data: Any, status: int = HTTPStatus.OK,
                  headers: list[tuple[str, str]] | None = None) -> Response:
    """Encode ``data`` as a compact UTF-8 JSON response."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(status, body, [("Content-Type", JSON_TYPE), *(headers or [])])


def error_body(code: str, message: str) -> dict[str, Any]:
    """Return the error document of DESIGN.md."""
    return {"error": {"code": code, "message": message}}


def require(data: dict[str, Any], name: str, kind: type[T]) -> T:
    """Return ``data[name]`` if present and of ``kind``, else raise 400."""
    value = data.get(name)
    # bool is an int in Python, but never a valid JSON number for our fields.
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return cast(T, float(value))  # JSON does not tell 3 from 3.0
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        noun = json_name(kind)
        article = "an" if noun[0] in "aeiou" else "a"
        raise HTTPError(HTTPStatus.BAD_REQUEST, f"'{name}' must be {article} {noun}",
                        "invalid_field")
    return value


def optional(data: dict[str, Any], name: str, kind: type[T], default: T) -> T:
    """Return ``data[name]`` if present (and not null), else ``default``; wrong types give 400."""
    if data.get(name) is None:
        return default
    return require(data, name, kind)


def page_params(request: Request, default: int = 20, most: int = 100) -> tuple[int, int | None]:
    """Return ``(limit, cursor)`` from ``?limit=&cursor=``, or raise 400."""
    raw_limit = request.query.get("limit", "")
    raw_cursor = request.query.get("cursor", "")
    limit = whole_number(raw_limit) if raw_limit else default
    if limit is None or not 1 <= limit <= most:
        raise HTTPError(HTTPStatus.BAD_REQUEST, f"limit must be a whole number from 1 to {most}",
                        "invalid_limit")
    cursor = whole_number(raw_cursor) if raw_cursor else None
    if raw_cursor and not cursor:
        raise HTTPError(HTTPStatus.BAD_REQUEST, "cursor must be the 'next' of a previous page",
                        "invalid_cursor")
    # A page holds what is older than its cursor, and ids stop at SQLite's 2**63 - 1: a cursor
    # past them all reads from the newest, as none does (not a 400 for 19 digits of 9).
    return limit, None if cursor is None else min(cursor, MAX_ID)


def after_param(request: Request) -> int | None:
    """Return ``?after=``: a page of what is just newer than it (the ``prev`` of a page), or
    raise 400. With a ``cursor`` too, the page is what lies between the two, newest first."""
    raw = request.query.get("after", "")
    if not raw:
        return None
    after = whole_number(raw)
    if not after:
        raise HTTPError(HTTPStatus.BAD_REQUEST, "after must be the 'prev' of a previous page",
                        "invalid_cursor")
    return min(after, MAX_ID)  # past every id: nothing is newer


def path_id(request: Request, what: str = "tweet") -> int:
    """Return the path's ``{id}``, or 404: an id is 1 to 2**63 - 1 in its one spelling, so
    that ``/tweets/0304`` is no tweet (else it would be tweet 304 under a second cache key)."""
    text = request.params["id"]
    value = whole_number(text)
    if value is None or not 0 < value <= MAX_ID or text[0] == "0":
        raise HTTPError(HTTPStatus.NOT_FOUND, f"no such {what}")
    return value


MAX_DIGITS = 19  # SQLite's integers are 64-bit: a longer number names and counts nothing
MAX_ID = 2 ** 63 - 1  # the largest SQLite integer, so the largest id


def whole_number(text: str, most_digits: int = MAX_DIGITS) -> int | None:
    """Return ``text`` as a whole number, or None unless it is 1 to ``most_digits`` ASCII
    digits: the one way a number from outside is read, so that no length reaches ``int``'s
    4,300-digit limit (a ValueError deep in a handler) and "²" is not a digit."""
    if 0 < len(text) <= most_digits and text.isascii() and text.isdigit():
        return int(text)
    return None


def json_name(kind: type) -> str:
    """Name a Python type the way a JSON user would."""
    names = {str: "string", int: "integer", float: "number", bool: "boolean",
             dict: "object", list: "array"}
    return names.get(kind, kind.__name__)
