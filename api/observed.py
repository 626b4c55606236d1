"""What the API did, for the dashboard and for anyone curious: every call in arrival order
(GET /logs), the database accesses and the like batcher's counters (GET /stats), whether the
database answers (GET /healthz), and the routes themselves (GET /openapi.json)."""
from __future__ import annotations

from http import HTTPStatus
from typing import Any

from httpkit import HTTPError, Request, Response, UpstreamError, json_response
from httpkit.messages import whole_number

from api import rules
from api.calllog import CallLog
from api.likes import Likes
from api.openapi import document
from api.storeclient import StoreClient

NO_STORE = [("Cache-Control", "no-store")]


class Observed:
    """The API's handlers that report on it rather than act."""

    def __init__(self, calls: CallLog, store: StoreClient, likes: Likes) -> None:
        self.calls = calls
        self.store = store
        self.likes = likes

    def logs(self, request: Request) -> Response:
        after = whole_number(request.query.get("after", "0") or "0")
        limit = whole_number(request.query.get("limit", "10000") or "10000")
        if after is None or limit is None or not 1 <= limit <= 100_000:
            raise rules.bad("after must be a whole number, limit 1 to 100000", "invalid_query")
        page = self.calls.read(after, limit)  # also stops at ~1 MiB: ``next`` has the rest
        return json_response({"calls": page.calls, "total": page.total, "after": after,
                              "next": page.next, "missing": page.missing,
                              "db_accesses": self.store.accesses}, headers=NO_STORE)

    def stats(self, request: Request) -> Response:
        # The layers below, for the dashboard; these look-ups are not counted as accesses.
        database = {"store": self.peek("/stats"), "dbcache": self.peek("/_cache/stats")}
        return json_response({"calls": len(self.calls), "db_accesses": self.store.accesses,
                              **self.likes.stats(), "database": database}, headers=NO_STORE)

    def peek(self, path: str) -> Any:
        """Return a statistics document from the database side, or None."""
        try:
            answer = self.store.upstream.request("GET", path)
            return answer.json() if answer.status == 200 else None
        except (UpstreamError, ValueError):
            return None

    def openapi(self, request: Request) -> Response:
        return json_response(document())

    def health(self, request: Request) -> Response:
        try:
            answer = self.store.upstream.request("GET", "/healthz")
        except UpstreamError as err:
            raise HTTPError(HTTPStatus.SERVICE_UNAVAILABLE, f"the database is unreachable: {err}",
                            "store_unavailable") from None
        if answer.status != 200:
            raise HTTPError(HTTPStatus.SERVICE_UNAVAILABLE, "the database is not ready",
                            "store_unavailable")
        return json_response({"status": "ok"}, headers=NO_STORE)
