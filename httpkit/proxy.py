"""Forwarding one request to an upstream, as Go's ``httputil.ReverseProxy`` does.

Copies method, target, body and end-to-end headers, drops hop-by-hop ones (RFC 9110 §7.6.1),
appends the client to ``X-Forwarded-For``, and maps an upstream timeout to 504 and any other
failure to reach it to 502. Used by ``cache`` and ``lb``.
"""
from __future__ import annotations

from functools import lru_cache

from httpkit import wire
from httpkit.client import Upstream, UpstreamError, UpstreamResponse
from httpkit.errors import HTTPError
from httpkit.messages import Request, Response

# Headers this hop recomputes itself rather than copying from the upstream's answer.
RECOMPUTED = frozenset({"content-length", "date"})


def outgoing_headers(request: Request) -> wire.Headers:
    """Return the headers to send upstream for ``request``."""
    headers = wire.end_to_end(request.headers)
    headers.pop("host", None)
    headers.pop("content-length", None)
    forwarded = headers.get("x-forwarded-for")
    if request.client:  # none for a request a proxy makes of its own (a cache refetching)
        headers["x-forwarded-for"] = f"{forwarded}, {request.client}" if forwarded \
            else request.client
    return headers


def send(upstream: Upstream, request: Request) -> UpstreamResponse:
    """Forward ``request`` to ``upstream``; raises UpstreamError when it cannot be had."""
    return upstream.request(request.method, request.target, request.body,
                            outgoing_headers(request))


def to_response(answer: UpstreamResponse, *extra: tuple[str, str]) -> Response:
    """Turn an upstream's answer into our response, hop-by-hop headers removed."""
    headers = [(canonical(name), value)
               for name, value in wire.end_to_end(answer.headers).items()
               if name not in RECOMPUTED]
    headers.extend(extra)
    # An answer to HEAD has no body but keeps the length a GET would have (RFC 9110 §8.6).
    length = answer.headers.get("content-length") if not answer.body else None
    declared = None
    if length and length.isascii() and length.isdigit() \
            and len(length) <= wire.MAX_LENGTH_DIGITS:
        declared = int(length)  # checked first: int() of 4,301 digits raises
    return Response(answer.status, answer.body, headers, declared)


def failure(err: UpstreamError, name: str = "the upstream") -> HTTPError:
    """Return the 502 or 504 that a failed upstream call becomes."""
    verb = "did not answer in time" if err.status == 504 else "is unavailable"
    # A 503 is answered at once while the upstream is down or saturated: worth a retry soon.
    retry = {"Retry-After": "1"} if err.status == 503 else None
    return HTTPError(err.status, f"{name} {verb}: {err}", err.code, retry)


@lru_cache(maxsize=256)
def canonical(name: str) -> str:
    """Spell a lower-case header name the customary way: content-type -> Content-Type."""
    return "-".join(part.capitalize() for part in name.split("-"))
