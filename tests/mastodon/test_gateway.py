"""The gateway's own promises, over HTTP against the running stack: the pitfalls that break
real clients (DESIGN.md "Mastodon clients"), OAuth's edges, bad input, and that public reads
are served by the caches."""
from __future__ import annotations

import base64
import json
import re
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.api.helpers import bearer
from tests.mastodon.conftest import (PASSWORD, Running, password_token, post_form,
                                     register_app, sign_up)


def post_status(stack: Running, token: str, text: str) -> dict[str, Any]:
    answer = stack.gateway.fetch("POST", "/api/v1/statuses", {"status": text}, bearer(token))
    assert answer.status == 200, answer.body
    return dict(answer.json())


@pytest.mark.parametrize("path", ["/api/v1/instance", "/api/v1/instance/", "/api/v2/instance",
                                  "/api/v2/instance/"])
def test_the_instance_answers_with_and_without_a_trailing_slash(stack: Running,
                                                                path: str) -> None:
    answer = stack.gateway.get(path)
    assert answer.status == 200  # not a redirect: Mastodon.py loops on one
    assert answer.json()["version"] == "4.2.0 (compatible; First Price Twitter 1.0)"
    assert "there are no follows" in answer.json()["description"]


def test_errors_are_a_sentence_and_no_oauth_metadata_is_claimed(stack: Running) -> None:
    for path in ["/.well-known/oauth-authorization-server", "/api/v1/nothing",
                 "/api/v1/statuses/999999", "/api/v1/accounts/nobody_here"]:
        answer = stack.gateway.get(path)
        assert answer.status == 404 and set(answer.json()) == {"error"}
        assert answer.json()["error"][0].isupper() and answer.json()["error"].endswith(".")
    wrong = stack.gateway.fetch("DELETE", "/api/v1/instance")
    assert wrong.status == 405 and "GET" in wrong.headers["allow"]
    home = stack.gateway.get("/api/v1/timelines/home")
    assert home.status == 401 and home.json() == {"error": "The access token is invalid."}
    assert stack.gateway.get("/api/v1/timelines/home", bearer("forged.1.2.3")).status == 401


def test_oauth_refuses_bad_clients_passwords_grants_and_scopes(stack: Running) -> None:
    me = sign_up(stack)
    app = register_app(stack, scopes="read write")

    def token(**fields: str) -> Any:
        form = {"grant_type": "password", "client_id": app["client_id"],
                "client_secret": app["client_secret"], "username": me, "password": PASSWORD,
                "scope": "read", **fields}
        return stack.gateway.request("POST", "/oauth/token", urllib.parse.urlencode(
            form).encode(), {"content-type": "application/x-www-form-urlencoded"})

    granted = token(scope="read write:statuses")
    assert granted.status == 200 and granted.json()["scope"] == "read write:statuses"
    assert granted.json()["token_type"] == "Bearer"
    for fields, status, code in [
            ({"client_secret": "not it"}, 401, "invalid_client"),
            ({"client_id": "garbage!"}, 401, "invalid_client"),
            ({"password": "wrong password"}, 400, "invalid_grant"),
            ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
            ({"scope": "read follow"}, 400, "invalid_scope"),  # more than it registered
            ({"scope": "everything"}, 400, "invalid_scope")]:
        answer = token(**fields)
        assert (answer.status, answer.json()["error"]) == (status, code), fields
        assert answer.json()["error_description"].endswith(".")
    for bad in [{"client_name": "x", "redirect_uris": "not a uri"},
                {"client_name": "", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"},
                {"client_name": "x", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
                 "scopes": "root"}]:
        refused = stack.gateway.fetch("POST", "/api/v1/apps", bad)
        assert refused.status == 422 and set(refused.json()) == {"error"}


def test_the_code_flow_redirects_with_state_and_a_code_works_once(stack: Running) -> None:
    me = sign_up(stack)
    app = register_app(stack, redirect_uris="http://127.0.0.1:1/back?from=us")
    query = urllib.parse.urlencode({"client_id": app["client_id"], "response_type": "code",
                                    "redirect_uri": "http://127.0.0.1:1/back?from=us",
                                    "scope": "read", "state": "xyz<>"})
    with urllib.request.urlopen(f"{stack.url}/oauth/authorize?{query}", timeout=10) as page:
        html = page.read().decode()
        assert page.headers["x-frame-options"] == "DENY"
    assert "xyz&lt;&gt;" in html and "tests" in html  # the app's name, state escaped
    form = {"client_id": app["client_id"], "redirect_uri": "http://127.0.0.1:1/back?from=us",
            "scope": "read", "response_type": "code", "state": "xyz<>", "username": me}
    status, body, _ = post_form(f"{stack.url}/oauth/authorize", {**form, "password": "nope!"})
    assert status == 401 and "Wrong username or password." in body and f'value="{me}"' in body
    status, _, headers = post_form(f"{stack.url}/oauth/authorize", {**form, "password": PASSWORD})
    assert status == 303
    location = urllib.parse.urlsplit(headers["Location"])
    sent = dict(urllib.parse.parse_qsl(location.query))
    assert location.path == "/back" and sent["from"] == "us" and sent["state"] == "xyz<>"
    exchange = {"grant_type": "authorization_code", "code": sent["code"],
                "client_id": app["client_id"], "client_secret": app["client_secret"],
                "redirect_uri": "http://127.0.0.1:1/back?from=us"}
    first = stack.gateway.fetch("POST", "/oauth/token", exchange)
    assert first.status == 200 and first.json()["scope"] == "read"
    again = stack.gateway.fetch("POST", "/oauth/token", exchange)
    assert again.status == 400 and again.json()["error"] == "invalid_grant"
    me_again = stack.gateway.get("/api/v1/accounts/verify_credentials",
                                 bearer(first.json()["access_token"]))
    assert me_again.status == 200 and me_again.json()["username"] == me
    unknown = urllib.parse.urlencode({"client_id": app["client_id"],
                                      "redirect_uri": "http://evil.example/"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{stack.url}/oauth/authorize?{unknown}", timeout=10)
    assert refused.value.code == 400  # never a code sent to an address the app did not give


def test_a_revoked_token_no_longer_works(stack: Running) -> None:
    me = sign_up(stack)
    app = register_app(stack)
    token = password_token(stack, me)
    assert stack.gateway.get("/api/v1/accounts/verify_credentials", bearer(token)).status == 200
    revoked = stack.gateway.fetch("POST", "/oauth/revoke", {
        "client_id": app["client_id"], "client_secret": app["client_secret"], "token": token})
    assert revoked.status == 200 and revoked.json() == {}
    assert stack.gateway.get("/api/v1/accounts/verify_credentials", bearer(token)).status == 401


def test_statuses_come_as_json_or_forms_and_what_cannot_be_is_a_422(stack: Running) -> None:
    token = password_token(stack, sign_up(stack))
    as_json = stack.gateway.fetch("POST", "/api/v1/statuses", {
        "status": "json <b>bold</b> & co", "media_ids": [], "visibility": "public"},
        bearer(token))  # as toot sends it
    assert as_json.status == 200
    assert as_json.json()["content"] == "<p>json &lt;b&gt;bold&lt;/b&gt; &amp; co</p>"
    assert as_json.json()["id"] == str(int(as_json.json()["id"]))  # ids are strings
    as_form = stack.gateway.request("POST", "/api/v1/statuses", b"status=a+form%0A%0Atwo",
                                    {**bearer(token),
                                     "content-type": "application/x-www-form-urlencoded"})
    assert as_form.status == 200 and as_form.json()["content"] == "<p>a form</p><p>two</p>"
    for fields, words in [({"media_ids[]": "1"}, "Media are not supported"),
                          ({"visibility": "unlisted"}, "Every status here is public"),
                          ({"in_reply_to_id": "1"}, "Replies are not supported"),
                          ({"poll[options][]": "a"}, "Polls are not supported"),
                          ({"status": "x" * 281}, "at most 280 characters"),
                          ({"status": " "}, "Text can't be blank")]:
        body = urllib.parse.urlencode({"status": "hello", **fields}).encode()
        answer = stack.gateway.request("POST", "/api/v1/statuses", body, {
            **bearer(token), "content-type": "application/x-www-form-urlencoded"})
        assert answer.status == 422 and words in answer.json()["error"], fields
    broken = stack.gateway.request("POST", "/api/v1/statuses", b"{",
                                   {**bearer(token), "content-type": "application/json"})
    assert broken.status == 400 and set(broken.json()) == {"error"}
    unfav = stack.gateway.fetch("POST", f"/api/v1/statuses/{as_json.json()['id']}/unfavourite",
                                headers=bearer(token))
    assert unfav.status == 422


def test_paging_links_are_absolute_and_keep_the_query(stack: Running) -> None:
    me = sign_up(stack)
    token = password_token(stack, me)
    ids = [post_status(stack, token, f"page {n}")["id"] for n in range(5)]
    page = stack.gateway.get(f"/api/v1/accounts/{me}/statuses?limit=2", bearer(token))
    assert [s["id"] for s in page.json()] == [ids[4], ids[3]]
    links = dict((rel, url) for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"',
                                                       page.headers["link"]))
    assert links["next"] == f"{stack.url}/api/v1/accounts/{me}/statuses?limit=2&max_id={ids[3]}"
    assert links["prev"] == f"{stack.url}/api/v1/accounts/{me}/statuses?limit=2&min_id={ids[4]}"
    path = f"/api/v1/accounts/{me}/statuses"
    since = stack.gateway.get(f"{path}?limit=2&since_id={ids[1]}", bearer(token)).json()
    assert [s["id"] for s in since] == [ids[4], ids[3]]  # the newest, down to since_id
    just_newer = stack.gateway.get(f"{path}?limit=2&min_id={ids[1]}", bearer(token)).json()
    assert [s["id"] for s in just_newer] == [ids[3], ids[2]]  # the page just above min_id
    between = stack.gateway.get(f"{path}?max_id={ids[4]}&min_id={ids[1]}", bearer(token))
    assert [s["id"] for s in between.json()] == [ids[3], ids[2]]
    assert stack.gateway.get(f"{path}?limit=999", bearer(token)).status == 200  # 40 at most
    assert stack.gateway.get(f"{path}?max_id=abc").status == 400


def test_public_reads_are_served_by_the_caches_and_writers_see_their_writes(
        stack: Running) -> None:
    token = password_token(stack, sign_up(stack))
    post_status(stack, token, "warm the author")
    reads = 60
    before = stack.api.get_json("/stats")["calls"]
    for _ in range(reads):  # as a client sends them: the token on every request
        answer = stack.gateway.get("/api/v1/timelines/public?limit=20", bearer("someone.else"))
        assert answer.status == 200
    reached_api = stack.api.get_json("/stats")["calls"] - before - 1  # the /stats read itself
    assert reached_api <= 4, f"{reached_api} of {reads} public reads reached the API"
    # A write, then the writer's reads through every cache replica show it at once.
    fresh = post_status(stack, token, "seen at once")
    for _ in range(4):
        newest = stack.gateway.get("/api/v1/timelines/public?limit=1", bearer(token)).json()
        assert newest[0]["id"] == fresh["id"]


def test_accounts_lookups_search_and_the_honest_empties(stack: Running) -> None:
    me = sign_up(stack, "Erin Empty")
    token = password_token(stack, me)
    domain = urllib.parse.urlsplit(stack.url).netloc
    for acct in [me, f"@{me}", f"{me}@{domain}"]:
        looked = stack.gateway.get(f"/api/v1/accounts/lookup?acct={urllib.parse.quote(acct)}")
        assert looked.status == 200 and looked.json()["display_name"] == "Erin Empty"
    assert stack.gateway.get(f"/api/v1/accounts/lookup?acct={me}@elsewhere.example"
                             ).status == 404
    found = stack.gateway.get(f"/api/v2/search?q=@{me}&type=accounts").json()
    assert [a["acct"] for a in found["accounts"]] == [me] and found["statuses"] == []
    assert stack.gateway.get("/api/v2/search?q=x&type=people").status == 400
    assert stack.gateway.get("/api/v2/search?q=" + "x" * 201).status == 400
    for path in ["notifications", "conversations", "favourites", "bookmarks", "lists",
                 "follow_requests", "mutes", "blocks", "filters"]:
        answer = stack.gateway.get(f"/api/v1/{path}", bearer(token))
        assert answer.status == 200 and answer.json() == [], path
    relationships = stack.gateway.get(f"/api/v1/accounts/relationships?id[]={me}",
                                      bearer(token)).json()
    assert relationships[0]["id"] == me and relationships[0]["following"] is False
    assert stack.gateway.get(f"/api/v1/accounts/{me}/followers").json() == []
    media = stack.gateway.request("POST", "/api/v2/media", b"--x--", {
        **bearer(token), "content-type": "multipart/form-data; boundary=x"})
    assert media.status == 422 and "Media are not supported" in json.loads(media.body)["error"]
    avatar = stack.gateway.get("/avatars/original/missing.png")
    assert avatar.status == 200 and avatar.body.startswith(b"\x89PNG")


@pytest.mark.parametrize("record", [{"n": "x", "w": None, "r": [], "s": ["read"]},
                                    {"n": "x", "w": None, "r": "urn:x", "s": [1]}, [1, 2]])
def test_a_hand_made_client_id_is_no_app(stack: Running, record: Any) -> None:
    client_id = base64.urlsafe_b64encode(json.dumps(record).encode()).decode().rstrip("=")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{stack.url}/oauth/authorize?client_id={client_id}", timeout=10)
    assert refused.value.code == 400 and b"not registered here" in refused.value.read()


def test_browser_clients_on_other_origins_may_call_the_api(stack: Running) -> None:
    preflight = stack.gateway.request("OPTIONS", "/api/v1/timelines/home", headers={
        "origin": "https://elk.example", "access-control-request-method": "GET",
        "access-control-request-headers": "authorization"})
    assert preflight.status == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    public = stack.gateway.get("/api/v1/timelines/public", {"origin": "https://elk.example"})
    assert public.headers["access-control-allow-origin"] == "*"
    assert public.headers["access-control-expose-headers"] == "Link"
    form = stack.gateway.get("/oauth/authorize", {"origin": "https://elk.example"})
    assert "access-control-allow-origin" not in form.headers  # our log-in page stays ours
