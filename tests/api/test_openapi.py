"""The OpenAPI document against the code: the router's table and the document's paths must
name the same (method, path) pairs, and what a live API answers must be what the document
says: every status seen is documented for its operation, and every JSON body fits the schema
documented for that status."""
from __future__ import annotations

import re
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
from tests.api.helpers import (PASSWORD, Client, bearer, delete_tweet, edit_tweet, join, like,
                               post_tweet)

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


def test_every_path_parameter_is_declared_and_every_declared_one_is_in_the_path() -> None:
    for method, path, operation in operations():
        in_path = set(re.findall(r"\{(\w+)\}", path))
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert in_path == declared, (method, path)
        assert all(p["required"] for p in operation.get("parameters", []) if p["in"] == "path")


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


def test_every_answer_of_a_live_api_is_documented(api: Client, store_client: Client,
                                                  routes: list[Route]) -> None:
    story(api, store_client)
    doc = document()
    seen: set[tuple[str, str, int]] = set()
    for method, target, answer in api.answers:
        if answer.status in GENERIC_STATUSES:
            continue
        operation = operation_for(routes, method, target)
        assert operation is not None, (method, target, answer.status)
        documented = doc["paths"][operation[1]][operation[0].lower()]["responses"]
        assert str(answer.status) in documented, (method, target, answer.status)
        seen.add((*operation, answer.status))
        content = documented[str(answer.status)].get("content")
        if method == "HEAD" or not answer.body:
            assert content is None or method == "HEAD", (method, target)
            continue
        assert content is not None, (method, target, answer.status)
        schema = content["application/json"]["schema"]
        assert problems(doc, schema, answer.json(), f"{method} {target}") == []
    statuses = {status for _, _, status in seen}
    assert {200, 201, 202, 204, 400, 401, 403, 404, 409, 413} <= statuses
    assert len(seen) >= 45


def test_the_api_serves_the_document(api: Client) -> None:
    answer = api.get("/openapi.json")
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == document()


def test_a_token_for_a_vanished_account_gets_a_documented_answer(start_api: StartApi,
                                                                 store: Server) -> None:
    api = start_api(store.url, secret_key="known")
    token = auth.Tokens(b"known", 3600.0, lambda: 1_700_000_000.0).issue(4242)
    answer = api.call("POST", "/tweets", {"text": "who am I?"}, bearer(token))
    assert answer.status in (400, 401, 403, 404)
    documented = document()["paths"]["/tweets"]["post"]["responses"]
    assert str(answer.status) in documented
