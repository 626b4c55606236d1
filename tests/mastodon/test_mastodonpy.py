"""The Mastodon.py library (2.3, unmodified) against the running stack, in its own process
(tests/mastodon/mastodonpy_journey.py says why), through every journey a Mastodon user takes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.mastodon.conftest import PASSWORD, Running, authorize, sign_up

JOURNEY = Path(__file__).with_name("mastodonpy_journey.py")


def journey(stack: Running, username: str, flow: str, tmp_path: Path,
            stdin: str = "") -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-P", str(JOURNEY), stack.url, username, PASSWORD,
                           flow], input=stdin, capture_output=True, text=True, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    return {line["step"]: line["value"] for line in lines}


def test_mastodon_py_logs_in_posts_edits_favourites_pages_searches_and_deletes(
        stack: Running, tmp_path: Path) -> None:
    me = sign_up(stack, "Molly Py")
    got = journey(stack, me, "password", tmp_path)
    assert got["me"] == {"username": me, "display_name": "Molly Py", "id": me}
    assert got["version"].startswith("4.2.0") and got["instance_v2"] == "First Price Twitter"
    posted = got["posted"]
    assert posted["content"].startswith("<p>From Mastodon.py <a href=")
    assert 'rel="tag">#<span>mpy' in posted["content"]
    assert '<br>see <a href="https://example.org/a"' in posted["content"]
    assert posted["content"].endswith("</a>.</p>")  # the full stop is not part of the address
    assert posted["tags"] == [f"mpy{me}".lower()] and posted["url"].endswith(
        f"/tweets/{posted['id']}")
    assert got["edited"]["edited"] and "number 0, edited" in got["edited"]["content"]
    assert got["favourited"] == {"count": 1, "favourited": True}
    assert got["read"] == {"count": 1, "favourited": None}  # anonymous: nobody knows whose

    first = int(posted["id"])
    mine = [str(first + n) for n in range(5)]  # this account's five, oldest first
    assert got["page1"] == [mine[4], mine[3]]
    assert got["page2"] == [mine[2], mine[1]]
    assert got["page3"] == [mine[0]]
    assert got["newer_than_page2"] == [mine[4], mine[3]]
    assert got["home"][:1] == got["public"][:1] == [mine[4]]
    assert got["tag"] == [mine[4], mine[3], mine[2], mine[1], mine[0]]
    assert got["search"]["statuses"][0] == mine[4] and got["search"]["hashtags"] == [
        f"mpy{me}".lower()]
    assert got["search_accounts"] == [me] and got["lookup"] == "Molly Py"
    assert got["context"] == {"ancestors": [], "descendants": []}
    assert got["deleted"] == {"id": mine[4], "text": f"number 3 #mpy{me}"}
    assert got["notifications"] == []
    untaken = "A favourite here is an anonymous +1: it cannot be taken back."
    assert got["unfavourite"] == [422, untaken]
    assert got["reblog"][0] == 422 and got["private"][0] == 422
    assert got["read_deleted"][0] == 404


def test_mastodon_py_logs_in_with_an_authorization_code(stack: Running, tmp_path: Path) -> None:
    me = sign_up(stack, "Cody")
    process = subprocess.Popen([sys.executable, "-P", str(JOURNEY), stack.url, me, "", "code"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert process.stdout is not None
    url = json.loads(process.stdout.readline())["value"]
    out, _ = process.communicate(authorize(stack, url, me) + "\n", timeout=60)
    assert process.returncode == 0
    assert json.loads(out.splitlines()[-1])["value"]["username"] == me
