"""The whole stack as `make run` starts it (real processes, on free loopback ports), shared by
the Mastodon gateway's tests: real clients drive it, as they would drive a real server."""
from __future__ import annotations

import itertools
import json
import os
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stack.launcher import Stack, default_ports, plan
from tests.api.helpers import Client
from tests.harness import free_ports

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
CACHES = 2
PASSWORD = "correct horse"
NAMES = itertools.count(1)


@dataclass
class Running:
    ports: dict[str, int]
    gateway: Client
    api: Client  # the lb: the public API as clients reach it

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.ports['mastodon']}"

    def lb_stats(self) -> dict[str, Any]:
        return dict(self.api.get_json("/_lb/stats"))


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    ports = free_ports(list(default_ports()), {"cache": CACHES})
    wired = ("HOST", "PORT", "STORE_URL", "UPSTREAM_URL", "LB_UPSTREAMS", "API_URL",
             "MASTODON_PUBLIC_URL", "WEB_PUBLIC_URL")
    env = {k: v for k, v in os.environ.items() if k not in wired}
    env.update(DATA_DIR=str(tmp_path_factory.mktemp("data")), SCRYPT_N="16",
               PYTHONPATH=str(ROOT))
    running = Stack(plan(HOST, ports, CACHES), HOST, env)
    running.start()
    gateway, api = Client(f"http://{HOST}:{ports['mastodon']}"), Client(
        f"http://{HOST}:{ports['lb']}")
    try:
        yield Running(ports, gateway, api)
    finally:
        gateway.close()
        api.close()
        running.stop()


def sign_up(stack: Running, display_name: str = "") -> str:
    """Make a new account through the public API; return its username."""
    username = f"user{next(NAMES)}_{os.getpid() % 1000}"
    answer = stack.api.call("POST", "/accounts", {"username": username, "password": PASSWORD,
                                                  "display_name": display_name or username})
    assert answer.status == 201, answer.body
    return username


def post_form(url: str, form: dict[str, str]) -> tuple[int, str, dict[str, str]]:
    """POST a form as a browser does (no redirects followed); return status, body, headers."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, urllib.parse.urlencode(form).encode(), method="POST")
    try:
        with opener.open(request, timeout=10) as answer:
            return answer.status, answer.read().decode(), dict(answer.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), dict(err.headers)


def authorize(stack: Running, login_url: str, username: str, password: str = PASSWORD) -> str:
    """Do what a user does in the browser with a client's log-in URL: open the form, log in,
    and read the code off the page; return the code."""
    with urllib.request.urlopen(login_url, timeout=10) as page:
        html = page.read().decode()
    assert page.status == 200 and "<form" in html
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))
    hidden = {name: value.replace("&amp;", "&") for name, value in hidden.items()}
    status, body, _ = post_form(f"{stack.url}/oauth/authorize",
                                {**hidden, "username": username, "password": password})
    assert status == 200, body
    found = re.search(r"<code>([^<]+)</code>", body)
    assert found, body
    return found.group(1)


def register_app(stack: Running, redirect_uris: str = "urn:ietf:wg:oauth:2.0:oob",
                 scopes: str = "read write") -> dict[str, Any]:
    answer = stack.gateway.call("POST", "/api/v1/apps", {
        "client_name": "tests", "redirect_uris": redirect_uris, "scopes": scopes})
    assert answer.status == 200
    return dict(answer.json())


def password_token(stack: Running, username: str, scope: str = "read write") -> str:
    app = register_app(stack)
    answer = stack.gateway.call("POST", "/oauth/token", {
        "grant_type": "password", "client_id": app["client_id"],
        "client_secret": app["client_secret"], "username": username, "password": PASSWORD,
        "scope": scope})
    assert answer.status == 200, answer.body
    return str(answer.json()["access_token"])


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.startswith(("{", "["))]
