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
from typing import Any

import pytest

from tests.api.helpers import Client
from tests.harness import RunningStack, running_stack

CACHES = 2
PASSWORD = "correct horse"
NAMES = itertools.count(1)


@dataclass
class Running:
    processes: RunningStack
    gateway: Client
    api: Client  # the lb: the public API as clients reach it

    @property
    def url(self) -> str:
        return self.processes.url("mastodon")

    def lb_stats(self) -> dict[str, Any]:
        return dict(self.api.get_json("/_lb/stats"))


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running_stack(tmp_path_factory.mktemp("data"), CACHES) as processes:
        gateway, api = Client(processes.url("mastodon")), Client(processes.url("lb"))
        try:
            yield Running(processes, gateway, api)
        finally:
            gateway.close()
            api.close()


def sign_up(stack: Running, display_name: str = "") -> str:
    """Make a new account through the public API; return its username."""
    username = f"user{next(NAMES)}_{os.getpid() % 1000}"
    answer = stack.api.fetch("POST", "/accounts", {"username": username, "password": PASSWORD,
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
    answer = stack.gateway.fetch("POST", "/api/v1/apps", {
        "client_name": "tests", "redirect_uris": redirect_uris, "scopes": scopes})
    assert answer.status == 200
    return dict(answer.json())


def password_token(stack: Running, username: str, scope: str = "read write") -> str:
    app = register_app(stack)
    answer = stack.gateway.fetch("POST", "/oauth/token", {
        "grant_type": "password", "client_id": app["client_id"],
        "client_secret": app["client_secret"], "username": username, "password": PASSWORD,
        "scope": scope})
    assert answer.status == 200, answer.body
    return str(answer.json()["access_token"])


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.startswith(("{", "["))]
