"""The benchmarks' ceiling: a bare server on the shared handler answering one fixed JSON tweet.

Run as ``python -m bench.origin`` with PORT set; every GET answers the same 200.
"""
from __future__ import annotations

import json

from httpkit import Request, Response, Router, Server, serve
from httpkit.config import env_int, run_main

TWEET = {"id": 1, "author": "alice", "text": "a benchmark tweet about #caching and #python",
         "hashtags": ["caching", "python"], "likes": 42, "created_at": "2026-11-29T12:00:00.000Z",
         "edited_at": None}


def make_server(port: int) -> Server:
    """Build a server whose fallback answers every request with the same tweet."""
    body = json.dumps(TWEET).encode()

    def answer(request: Request) -> Response:
        return Response(200, body, [("Content-Type", "application/json")])

    router = Router(fallback=answer)
    router.add("GET", "/healthz", lambda request: Response(200, b'{"status":"ok"}'))
    return Server(("127.0.0.1", port), router, name="origin")


def main() -> None:
    """Serve until SIGINT or SIGTERM."""
    run_main(lambda: env_int("PORT", 8900, 0), lambda port: serve(make_server(port)))


if __name__ == "__main__":
    main()
