"""The OpenAPI document against the code: the router's table and the document's paths must
name the same (method, path) pairs, and what a live API answers must be what the document
says: every status seen is documented for its operation, and every JSON body fits the schema
documented for that status."""
from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api import auth
from api.app import ApiServer, Config, make_server
from api.openapi import document
from httpkit import Server
from httpkit.routing import Route
from tests.api.conftest import StartApi
from tests.api.helpers import (PASSWORD, Client, User, bearer, delete_tweet, edit_tweet, join,
                               like, post_tweet)

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# Answered by the router or the server for any path, not by one operation (DESIGN.md's
# conventions, described once in the document's info).
GENERIC_STATUSES = {405}


@pytest.fixture
def routes(tmp_path: Path) -> Iterator[list[Route]]:
    server: ApiServer = make_server(Config(port=0, data_dir=str(tmp_path), like_batching=False))
    try:
        yield server.api.routes().routes
    finally:
        server.server_close()


def normalise(template: str) -> str:
    """``/tweets/{id:[0-9]+}`` -> ``/tweets/{id}`` (a parameter's regex may hold braces)."""
    out, depth, name = [], 0, ""
    for char in template:
        if char == "{":
            depth += 1
            if depth == 1:
                name = ""
                continue
        elif char == "}":
            depth -= 1
            if depth == 0:
                out.append("{" + name.partition(":")[0] + "}")
                continue
        if depth:
            name += char
        else:
            out.append(char)
    assert depth == 0, template
    return "".join(out)


def test_normalise_keeps_only_parameter_names() -> None:
    assert normalise("/tweets/{id:[0-9]+}/like") == "/tweets/{id}/like"
    assert normalise("/a/{x:[0-9]{1,3}}/{y}") == "/a/{x}/{y}"


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def test_the_router_and_the_document_name_the_same_routes(routes: list[Route]) -> None:
    # The change feed is the caches' way to the API, not a public call (DESIGN.md).
    in_router = {(route.method, normalise(route.template)) for route in routes
                 if route.template != "/_changes"}
    in_document = {(method, path) for method, path, _ in operations()}
    assert len(in_router) == len(routes) - 1, "a route is in the table twice"
    assert sorted(in_router - in_document) == [], "routes the document does not describe"
    assert sorted(in_document - in_router) == [], "documented routes the API does not have"
    assert len(in_router) >= 19


def test_the_document_is_openapi_3_1() -> None:
    doc = document()
    assert re.fullmatch(r"3\.1\.\d+", doc["openapi"])
    assert doc["info"]["title"] and doc["info"]["version"]
    assert set(doc["paths"]) and all(path.startswith("/") for path in doc["paths"])


def test_every_operation_has_described_responses_with_valid_statuses() -> None:
    for method, path, operation in operations():
        responses = operation.get("responses")
        assert responses, (method, path)
        assert operation.get("summary"), (method, path)
        for status, response in responses.items():
            assert status == "default" or re.fullmatch(r"[1-5][0-9][0-9]", status), status
            assert response.get("description"), (method, path, status)
        assert any(status.startswith("2") for status in responses), (method, path)


def parameters(operation: dict[str, Any]) -> list[dict[str, Any]]:
    """Return an operation's parameters, a reference to a reusable one resolved."""
    doc = document()
    return [resolve(doc, p["$ref"]) if "$ref" in p else p
            for p in operation.get("parameters", [])]


def test_every_path_parameter_is_declared_and_every_declared_one_is_in_the_path() -> None:
    for method, path, operation in operations():
        in_path = set(re.findall(r"\{(\w+)\}", path))
        declared = {p["name"] for p in parameters(operation) if p["in"] == "path"}
        assert in_path == declared, (method, path)
        assert all(p["required"] for p in parameters(operation) if p["in"] == "path")


def test_secured_operations_document_401_and_bodies_400_and_413() -> None:
    secured = set()
    for method, path, operation in operations():
        if "security" in operation:
            secured.add((method, path))
            assert "401" in operation["responses"], (method, path)
        if "requestBody" in operation:
            assert {"400", "413"} <= set(operation["responses"]), (method, path)
    assert secured == {("POST", "/tweets"), ("PUT", "/tweets/{id}"), ("DELETE", "/tweets/{id}")}
    assert "bearer" in document()["components"]["securitySchemes"]


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_every_reference_resolves() -> None:
    doc = document()
    found = list(refs(doc))
    assert found
    for ref in found:
        assert isinstance(resolve(doc, ref), dict), ref


# --- Idempotency-Key ---------------------------------------------------------------------------

IDEMPOTENT = {("POST", "/accounts"), ("POST", "/sessions"), ("POST", "/tweets"),
              ("POST", "/tweets/{id}/like")}
KEY_PARAMETER = "#/components/parameters/IdempotencyKey"
REPLAYED_HEADER = "#/components/headers/IdempotentReplayed"


def example_codes(response: dict[str, Any]) -> set[str]:
    """Return the error codes a response's examples show."""
    examples = response.get("content", {}).get("application/json", {}).get("examples", {})
    return {example["value"]["error"]["code"] for example in examples.values()}


def test_exactly_the_idempotent_posts_take_the_reusable_idempotency_key() -> None:
    doc = document()
    key = doc["components"]["parameters"]["IdempotencyKey"]
    assert (key["name"], key["in"], key["required"]) == ("Idempotency-Key", "header", False)
    assert key["schema"]["type"] == "string" and "invalid_idempotency_key" in key["description"]
    taking = set()
    for method, path, operation in operations():
        if any(p["in"] == "header" and p["name"].lower() == "idempotency-key"
               for p in parameters(operation)):
            taking.add((method, path))
            assert {"$ref": KEY_PARAMETER} in operation["parameters"], (method, path)
            assert "Idempotency-Key" in operation["description"], (method, path)
    assert taking == IDEMPOTENT


def test_idempotent_posts_document_the_replay_header_and_the_key_errors() -> None:
    doc = document()
    header = resolve(doc, REPLAYED_HEADER)
    assert header["schema"] == {"type": "string", "const": "true"} and header["description"]
    for method, path, operation in operations():
        responses = operation["responses"]
        successes = [status for status in responses if status.startswith("2")]
        replayed = [status for status in successes
                    if "Idempotent-Replayed" in responses[status].get("headers", {})]
        if (method, path) not in IDEMPOTENT:
            assert replayed == [] and "422" not in responses, (method, path)
            assert "invalid_idempotency_key" not in example_codes(responses.get("400", {}))
            continue
        assert replayed == successes != [], (method, path)
        for status in successes:
            headers = responses[status]["headers"]
            assert headers["Idempotent-Replayed"] == {"$ref": REPLAYED_HEADER}, (method, path)
        assert example_codes(responses["400"]) >= {"invalid_idempotency_key"}, (method, path)
        assert example_codes(responses["422"]) == {"idempotency_key_reused"}, (method, path)
        for status in ("400", "422"):
            content = responses[status]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}
            assert "idempotency" in responses[status]["description"].lower(), (method, path)


def test_every_example_fits_its_schema() -> None:
    doc = document()
    checked = 0
    for method, path, operation in operations():
        for status, response in operation["responses"].items():
            for media in response.get("content", {}).values():
                for name, example in media.get("examples", {}).items():
                    where = f"{method} {path} {status} {name}"
                    assert problems(doc, media["schema"], example["value"], where) == []
                    checked += 1
    for parameter in doc["components"]["parameters"].values():
        for name, example in parameter.get("examples", {}).items():
            assert re.fullmatch(parameter["schema"]["pattern"], example["value"]), name
            checked += 1
    assert checked >= 10


# What api/idempotency.py takes: a bare token of 1-255 visible ASCII characters, or an RFC 8941
# sf-string of 1-255 printable ones (its quotes and escapes do not count).
KEYS_TAKEN = ["a", "0f9c2b6d4e8a4c1b9d3e7f5a2b6c8d0e", "x" * 255, "!#$%&'*+-.^_`|~", 'ends"',
              '"quoted-key"', '"with space"', r'"with \"escapes\" and \\"',
              '"' + "y" * 255 + '"', '"' + r"\"" * 255 + '"']
KEYS_REFUSED = ["", "x" * 256, "has space", '""', "caf\u00e9", "\u00e9", "tab\there",
                '"unclosed', r'"bad\escape"', '"a"b"', '"' + "y" * 256 + '"',
                '"' + r"\"" * 256 + '"', '"caf\u00e9"']


def test_the_documented_key_pattern_takes_and_refuses_what_the_contract_says() -> None:
    pattern = document()["components"]["parameters"]["IdempotencyKey"]["schema"]["pattern"]
    for key in KEYS_TAKEN:
        assert re.fullmatch(pattern, key), key
    for key in KEYS_REFUSED:
        assert not re.fullmatch(pattern, key), key


# --- a minimal JSON Schema check, for the keywords the document uses ---------------------------

JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict, "array": list, "string": str, "integer": int, "number": (int, float),
    "boolean": bool, "null": type(None)}


def problems(doc: dict[str, Any], schema: dict[str, Any], value: Any, where: str) -> list[str]:
    """Return how ``value`` breaks ``schema`` (empty when it fits)."""
    if "$ref" in schema:
        return problems(doc, resolve(doc, schema["$ref"]), value, where)
    found: list[str] = []
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        fits = [k for k in kinds if isinstance(value, JSON_TYPES[k])
                and not (k in ("integer", "number") and isinstance(value, bool))]
        if not fits:
            return [f"{where}: {value!r} is not {kinds}"]
    if "const" in schema and value != schema["const"]:
        found.append(f"{where}: {value!r} is not {schema['const']!r}")
    if isinstance(value, dict):
        found += [f"{where}: no {name!r}" for name in schema.get("required", [])
                  if name not in value]
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                found += problems(doc, sub, value[name], f"{where}.{name}")
    if isinstance(value, list):
        for index, item in enumerate(value):
            prefix = schema.get("prefixItems", [])
            sub = prefix[index] if index < len(prefix) else schema.get("items")
            if sub is not None:
                found += problems(doc, sub, item, f"{where}[{index}]")
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            found.append(f"{where}: length {len(value)} is out of range")
    return found


def test_the_schema_check_can_fail() -> None:
    doc = document()
    tweet = {"$ref": "#/components/schemas/Tweet"}
    assert problems(doc, tweet, {"id": 1}, "tweet")
    assert problems(doc, tweet, {"id": "1", "author": "a", "text": "t", "hashtags": [],
                                 "likes": 0, "created_at": "x", "edited_at": None}, "tweet")
    assert not problems(doc, tweet, {"id": 1, "author": "a", "text": "t", "hashtags": ["x"],
                                     "likes": 0, "created_at": "x", "edited_at": None}, "tweet")


# --- the document against a live API -----------------------------------------------------------

def operation_for(routes: list[Route], method: str, target: str) -> tuple[str, str] | None:
    """Return the documented (method, path) a request was routed to, or None."""
    path = target.partition("?")[0]
    wanted = "GET" if method == "HEAD" else method
    for route in routes:
        if route.method == wanted and route.pattern.match(path):
            return route.method, normalise(route.template)
    return None


def story(api: Client, store_client: Client) -> None:
    """Ask for every operation's successes and failures."""
    alice = join(api, "alice")
    bob = join(api, "bob")
    api.call("POST", "/accounts", {"username": "ALICE", "password": PASSWORD})
    api.call("POST", "/accounts", {"username": "x", "password": PASSWORD})
    api.request("POST", "/accounts", b"x" * (64 * 1024 + 1))
    api.call("POST", "/sessions", {"username": "alice", "password": "wrong password"})
    api.call("POST", "/sessions", {})
    tweet = post_tweet(api, alice, "hello #world")
    api.call("POST", "/tweets", {"text": ""}, alice.auth)
    api.call("POST", "/tweets", {"text": "no token"})
    for target in ["/accounts", "/accounts?limit=0", "/accounts/search?q=al",
                   "/accounts/search?q=" + "a" * 201, "/accounts/alice", "/accounts/nobody",
                   "/accounts/alice/tweets", "/accounts/alice/tweets?cursor=x",
                   "/accounts/nobody/tweets", "/tweets", "/tweets?limit=101",
                   "/tweets/search?q=hello", "/tweets/search?q=x&limit=0",
                   f"/tweets/{tweet['id']}", "/tweets/999", "/hashtags", "/hashtags?q=w",
                   "/hashtags?limit=abc", "/hashtags/world/tweets", "/hashtags/%23/tweets",
                   "/hashtags/world/tweets?limit=0", "/logs", "/logs?after=x", "/stats",
                   "/openapi.json", "/healthz"]:
        api.get(target)
    api.request("HEAD", "/tweets")
    like(api, tweet["id"])
    api.call("POST", "/tweets/999/like")
    keyed_story(api, alice, tweet["id"], post_tweet(api, bob, "another")["id"])
    api.call("PUT", f"/tweets/{tweet['id']}", {"text": "mine"}, bob.auth)
    api.call("PUT", f"/tweets/{tweet['id']}", {"text": " "}, alice.auth)
    api.call("PUT", "/tweets/999", {"text": "gone"}, alice.auth)
    api.call("PUT", f"/tweets/{tweet['id']}", {"text": "x"})
    edit_tweet(api, alice, tweet["id"], "edited #world")
    api.call("DELETE", f"/tweets/{tweet['id']}", headers=bob.auth)
    api.call("DELETE", f"/tweets/{tweet['id']}")
    delete_tweet(api, alice, tweet["id"])
    api.call("DELETE", f"/tweets/{tweet['id']}", headers=alice.auth)
    api.request("PATCH", "/tweets/1")


def keyed(key: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    return {**(headers or {}), "idempotency-key": key}


def keyed_story(api: Client, user: User, tweet_id: int, other_tweet_id: int) -> None:
    """Send each POST that takes an Idempotency-Key twice with one key, then that key with
    another request, then a malformed key; a replay repeats the first answer."""
    carol = {"username": "carol", "password": PASSWORD}
    log_in = {"username": user.username, "password": PASSWORD}
    cases: list[tuple[str, Any, str, Any, dict[str, str]]] = [
        ("/accounts", carol, "/accounts", {**carol, "username": "carol2"}, {}),
        ("/sessions", log_in, "/sessions", {**log_in, "password": PASSWORD + "!"}, {}),
        ("/tweets", {"text": "once"}, "/tweets", {"text": "other text"}, user.auth),
        (f"/tweets/{tweet_id}/like", None, f"/tweets/{other_tweet_id}/like", None, {}),
    ]
    for path, payload, other_path, other_payload, headers in cases:
        key = uuid.uuid4().hex
        first = api.call("POST", path, payload, keyed(key, headers))
        again = api.call("POST", path, payload, keyed(f'"{key}"', headers))
        assert first.status // 100 == 2 and "idempotent-replayed" not in first.headers, path
        assert (again.status, again.body) == (first.status, first.body), path
        assert again.headers.get("idempotent-replayed") == "true", path
        reused = api.call("POST", other_path, other_payload, keyed(key, headers))
        assert (reused.status, reused.json()["error"]["code"]) == (
            422, "idempotency_key_reused"), path
        bad = api.call("POST", path, payload, keyed("not a key", headers))
        assert (bad.status, bad.json()["error"]["code"]) == (400, "invalid_idempotency_key")


def test_every_answer_of_a_live_api_is_documented(api: Client, store_client: Client,
                                                  routes: list[Route]) -> None:
    story(api, store_client)
    doc = document()
    seen: set[tuple[str, str, int]] = set()
    replays: set[tuple[str, str]] = set()
    for method, target, answer in api.answers:
        if answer.status in GENERIC_STATUSES:
            continue
        operation = operation_for(routes, method, target)
        assert operation is not None, (method, target, answer.status)
        documented = doc["paths"][operation[1]][operation[0].lower()]["responses"]
        assert str(answer.status) in documented, (method, target, answer.status)
        seen.add((*operation, answer.status))
        if "idempotent-replayed" in answer.headers:
            replayed = documented[str(answer.status)].get("headers", {})
            assert "Idempotent-Replayed" in replayed, (method, target, answer.status)
            replays.add(operation)
        content = documented[str(answer.status)].get("content")
        if method == "HEAD" or not answer.body:
            assert content is None or method == "HEAD", (method, target)
            continue
        assert content is not None, (method, target, answer.status)
        schema = content["application/json"]["schema"]
        assert problems(doc, schema, answer.json(), f"{method} {target}") == []
    statuses = {status for _, _, status in seen}
    assert {200, 201, 202, 204, 400, 401, 403, 404, 409, 413, 422} <= statuses
    assert replays == IDEMPOTENT
    assert len(seen) >= 45


def test_the_api_takes_and_refuses_the_keys_the_document_says(api: Client) -> None:
    pattern = document()["components"]["parameters"]["IdempotencyKey"]["schema"]["pattern"]
    tweet = post_tweet(api, join(api, "alice"), "like me")
    for key in KEYS_TAKEN + KEYS_REFUSED:
        answer = api.call("POST", f"/tweets/{tweet['id']}/like", headers=keyed(key))
        if re.fullmatch(pattern, key):
            assert answer.status == 202, (key, answer.body)
        else:
            assert answer.status == 400, (key, answer.body)
            assert answer.json()["error"]["code"] == "invalid_idempotency_key", key


def test_the_api_serves_the_document(api: Client) -> None:
    answer = api.get("/openapi.json")
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == document()


def test_a_token_for_a_vanished_account_gets_a_documented_answer(start_api: StartApi,
                                                                 store: Server) -> None:
    api = start_api(store.url, secret_key="known")
    token = auth.Tokens(b"known", 3600.0, lambda: 1_700_000_000.0).issue(4242, 0)
    answer = api.call("POST", "/tweets", {"text": "who am I?"}, bearer(token))
    assert answer.status in (400, 401, 403, 404)
    documented = document()["paths"]["/tweets"]["post"]["responses"]
    assert str(answer.status) in documented
