"""The `toot` CLI (0.52, unmodified) against the running stack: every journey a Mastodon user takes,
asserting what toot prints. toot runs as a user runs it, with its own HOME (its config)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mastodon.conftest import PASSWORD, Running, authorize, sign_up

TOOT = Path(sys.executable).parent / "toot"


class Toot:
    def __init__(self, home: Path, stack: Running) -> None:
        self.env = {"HOME": str(home), "PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8",
                    "TERM": "dumb", "NO_COLOR": "1"}
        self.home = home
        self.stack = stack

    def run(self, *args: str, stdin: str = "", ok: bool = True) -> str:
        done = subprocess.run([str(TOOT), *args], input=stdin, capture_output=True, text=True,
                              env=self.env, cwd=self.home, timeout=60)
        out = done.stdout + done.stderr
        assert (done.returncode == 0) == ok, out
        return out

    def bearer(self) -> dict[str, str]:
        """The Authorization header of the user toot logged in."""
        config = json.loads((self.home / ".config/toot/config.json").read_text())
        user = config["users"][config["active_user"]]
        return {"authorization": f"Bearer {user['access_token']}"}

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([str(TOOT), *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=self.env, cwd=self.home)


@pytest.fixture
def toot(tmp_path: Path, stack: Running) -> Toot:
    assert TOOT.exists(), "toot is a pinned development dependency: run make test"
    return Toot(tmp_path, stack)


def posted_id(out: str) -> str:
    found = re.search(r"Toot posted: \S+/tweets/(\d+)", out)
    assert found, out
    return found.group(1)


def test_toot_logs_in_with_a_password_posts_reads_pages_favourites_and_deletes(
        toot: Toot, stack: Running) -> None:
    me = sign_up(stack, "Tess Toot")
    out = toot.run("login_cli", "-i", stack.url, "-e", me, stdin=f"{PASSWORD}\n")
    assert "Successfully logged in" in out
    assert f"@{me} Tess Toot" in toot.run("whoami")

    first = posted_id(toot.run("post", f"Hello from toot #toot{me}\nsecond line"))
    ids = [first, *(posted_id(toot.run("post", f"more {n} #toot{me}")) for n in range(3))]
    home = toot.run("timelines", "home", "--no-pager", "--limit", "10")
    assert "more 2 #toot" in home and "Hello from toot" in home
    assert home.index("more 2") < home.index("more 1") < home.index("Hello from toot")

    # Paging: two at a time, and from an id down (our cursor is exactly max_id).
    newest_two = toot.run("timelines", "account", me, "--no-pager", "--limit", "2")
    assert "more 2" in newest_two and "more 1" in newest_two and "more 0" not in newest_two
    older = toot.run("timelines", "account", me, "--no-pager", "--limit", "2",
                     "--max-id", ids[2])
    assert "more 0" in older and "Hello from toot" in older and "more 1" not in older

    assert "Hello from toot" in toot.run("status", first)
    assert "Hello from toot" in toot.run("thread", first)
    assert "Status favourited" in toot.run("favourite", first)
    # Its own reads skip the caches a while after a write: the favourite shows at once.
    mine = stack.gateway.get(f"/api/v1/statuses/{first}", toot.bearer())
    assert mine.json()["favourites_count"] == 1
    refused = toot.run("unfavourite", first, ok=False)
    assert "anonymous +1: it cannot be taken back" in refused

    tagged = toot.run("timelines", "tag", f"toot{me}", "--no-pager")
    assert tagged.count(f"#toot{me}") == 4
    found = toot.run("search", f"toot{me}")
    assert f"#toot{me}" in found and f"/tweets/{first}" in found
    assert f"@{me} Tess Toot" in toot.run("search", me)
    assert f"@{me}" in toot.run("whois", me)
    assert "First Price Twitter" in toot.run("instance")

    assert "Status deleted" in toot.run("delete", first)
    assert "No such status" in toot.run("status", first, ok=False)
    private = toot.run("post", "--visibility", "private", "secret", ok=False)
    assert "Every status here is public" in private
    too_long = toot.run("post", "x" * 281, ok=False)
    assert "at most 280 characters" in too_long
    assert "There are no follows here" in toot.run("follow", me, ok=False)
    assert "no notifications" in toot.run("notifications")


def test_toot_logs_in_through_the_browser_with_the_out_of_band_code(
        toot: Toot, stack: Running) -> None:
    me = sign_up(stack, "Brow Ser")
    login = toot.popen("login", "-i", stack.url)
    assert login.stdout is not None and login.stdin is not None
    url = ""
    while not url:
        line = login.stdout.readline()
        assert line, "toot ended before printing the log-in URL"
        if line.startswith(stack.url):
            url = line.strip()
    assert "/oauth/authorize/?" in url  # toot asks with a trailing slash
    code = authorize(stack, url, me)
    out, _ = login.communicate(f"n\n{code}\n", timeout=60)
    assert login.returncode == 0 and "Successfully logged in" in out, out
    assert f"@{me} Brow Ser" in toot.run("whoami")
    assert "Toot posted" in toot.run("post", "through the browser")
