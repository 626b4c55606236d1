"""A routing table: ``(method, compiled regex, handler)`` rows checked in order.

An unknown path is a 404; a known path asked with another method is a 405 carrying ``Allow``
(RFC 9110 §15.5.6). HEAD is answered by the GET handler; the server drops the body.
"""
from __future__ import annotations

import re
from http import HTTPStatus
from typing import Callable, NamedTuple

from httpkit.errors import HTTPError
from httpkit.messages import Request, Response

Handler = Callable[[Request], Response]


class Route(NamedTuple):
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    template: str


class Router:
    """Map (method, path) to a handler and the path's named groups."""

    def __init__(self, fallback: Handler | None = None) -> None:
        self.routes: list[Route] = []
        self.fallback = fallback  # answers paths no route matches (a proxy forwards them)
        # Routes without parameters that no earlier route shadows: found with one dict
        # look-up before any regex is tried, with the same result as the ordered scan.
        self.literal: dict[str, dict[str, Handler]] = {}
        self.all_literal = True

    def add(self, method: str, template: str, handler: Handler) -> None:
        """Add a route; ``{name}`` matches one path segment, ``{name:regex}`` a custom one."""
        shadowed = any(route.method == method and route.pattern.match(template)
                       for route in self.routes)
        self.routes.append(Route(method, compile_template(template), handler, template))
        if "{" in template:
            self.all_literal = False
        elif not shadowed:
            self.literal.setdefault(template, {}).setdefault(method, handler)

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        """Return the handler for this request and its path parameters, or raise 404/405."""
        wanted = "GET" if method == "HEAD" else method
        handler = self.literal.get(path, {}).get(wanted)
        if handler is not None:
            return handler, {}
        if self.fallback is not None and self.all_literal and path not in self.literal:
            return self.fallback, {}
        allowed: list[str] = []
        for route in self.routes:
            found = route.pattern.match(path)
            if found is None:
                continue
            if route.method == wanted:
                return route.handler, found.groupdict()
            allowed.append(route.method)
        if not allowed and self.fallback is not None:
            return self.fallback, {}
        if not allowed:
            raise HTTPError(HTTPStatus.NOT_FOUND, f"no route for {path}")
        if "GET" in allowed:
            allowed.append("HEAD")
        raise HTTPError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed on {path}",
                        headers={"Allow": ", ".join(sorted(set(allowed)))})


def compile_template(template: str) -> re.Pattern[str]:
    """Compile ``/tweets/{id:[0-9]+}``: literal text escaped, parameters as named groups."""
    parts: list[str] = []
    position = 0
    while (start := template.find("{", position)) >= 0:
        parts.append(re.escape(template[position:start]))
        depth, end = 0, start
        for end in range(start, len(template)):  # the matching brace: regexes may hold {n}
            depth += {"{": 1, "}": -1}.get(template[end], 0)
            if depth == 0:
                break
        if depth:
            raise ValueError(f"unbalanced braces in route {template!r}")
        name, _, regex = template[start + 1:end].partition(":")
        parts.append(f"(?P<{name}>{regex or '[^/]+'})")
        position = end + 1
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts) + r"\Z")
