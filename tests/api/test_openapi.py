"""The OpenAPI document against the code: the router's table and the document's paths must
name the same (method, path) pairs, and what a live API answers must be what the document
says: every status seen is documented for its operation, and every JSON body fits the schema
documented for that status."""
from __future__ import annotations

import random
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from api import auth, openapi, rules
from api.app import ApiServer, Config, make_server
from api.openapi import document
from httpkit import HTTPError, Request, Server
from httpkit.messages import page_params
from httpkit.routing import Route
from httpkit.wire import Headers
from tests.api.conftest import StartApi, World
from tests.api.helpers import (PASSWORD, Client, User, bearer, delete_tweet, edit_tweet,
                               error_code, join, like, post_tweet)

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
    assert secured == {("POST", "/tweets"), ("PUT", "/tweets/{id}"), ("DELETE", "/tweets/{id}"),
                       ("GET", "/sessions"), ("DELETE", "/sessions"),
                       ("PUT", "/accounts/{username}/password")}
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


def problems(doc: dict[str, Any], schema: Any, value: Any, where: str) -> list[str]:
    """Return how ``value`` breaks ``schema`` (empty when it fits)."""
    if schema is False or schema is True:
        return [] if schema else [f"{where}: {value!r} is not allowed here"]
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
    if "oneOf" in schema:
        fitting = [sub for sub in schema["oneOf"] if not problems(doc, sub, value, where)]
        if len(fitting) != 1:
            found.append(f"{where}: {value!r} fits {len(fitting)} of oneOf")
    if "not" in schema and not problems(doc, schema["not"], value, where):
        found.append(f"{where}: {value!r} fits what 'not' excludes")
    if isinstance(value, dict):
        found += [f"{where}: no {name!r}" for name in schema.get("required", [])
                  if name not in value]
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                found += problems(doc, sub, value[name], f"{where}.{name}")
    if isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            found.append(f"{where}: {len(value)} items is out of range")
        for index, item in enumerate(value):
            prefix = schema.get("prefixItems", [])
            sub = prefix[index] if index < len(prefix) else schema.get("items")
            if sub is not None:
                found += problems(doc, sub, item, f"{where}[{index}]")
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            found.append(f"{where}: length {len(value)} is out of range")
        # Every pattern is anchored at both ends (a test says so), so fullmatch is what an
        # ECMA-262 search finds; re.search would let "$" take a final newline.
        if "pattern" in schema and not re.fullmatch(schema["pattern"], value):
            found.append(f"{where}: {value!r} does not match {schema['pattern']!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not schema.get("minimum", value) <= value <= schema.get("maximum", value):
            found.append(f"{where}: {value!r} is out of range")
    return found


def fits(schema: Any, value: Any) -> bool:
    return not problems(document(), schema, value, "value")


def test_the_schema_check_can_fail() -> None:
    doc = document()
    tweet = {"$ref": "#/components/schemas/Tweet"}
    assert problems(doc, tweet, {"id": 1}, "tweet")
    assert problems(doc, tweet, {"id": "1", "author": "a", "text": "t", "hashtags": [],
                                 "likes": 0, "created_at": "x", "edited_at": None}, "tweet")
    assert not problems(doc, tweet, {"id": 1, "author": "a", "text": "t", "hashtags": ["x"],
                                     "likes": 0, "created_at": "x", "edited_at": None}, "tweet")


def test_the_schema_check_knows_the_keywords_the_document_uses() -> None:
    assert not fits({"type": "string", "pattern": "^a$"}, "a\n")
    assert not fits({"type": "integer", "minimum": 1}, 0)
    assert not fits({"type": "array", "items": {"type": "string"}, "maxItems": 2}, ["a"] * 3)
    assert not fits({"oneOf": [{"type": "null"}, {"type": "object"}]}, 3)
    assert not fits({"type": "string", "not": {"pattern": "^x$"}}, "x")
    assert fits({"type": "string", "not": {"pattern": "^x$"}}, "y")


# --- what the document says against what the code does ----------------------------------------

def schema_keywords(node: Any) -> Iterator[tuple[str, Any]]:
    """Yield every (keyword, value) pair anywhere in the document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from schema_keywords(value)
    elif isinstance(node, list):
        for value in node:
            yield from schema_keywords(value)


def test_every_pattern_is_anchored_and_no_schema_uses_prefix_items() -> None:
    # Schemathesis 4.32 reads prefixItems as a draft-4 list of items and calls it a schema
    # error (GET /logs had one); a pattern is searched, so each must say where it starts and ends.
    found = list(schema_keywords(document()))
    patterns = [value for key, value in found if key == "pattern"]
    assert len(patterns) >= 10
    for pattern in patterns:
        assert pattern.startswith("^") and pattern.endswith("$"), pattern
        re.compile(pattern)
    assert "prefixItems" not in {key for key, _ in found}


def test_the_character_classes_are_pythons_whitespace_and_control_characters() -> None:
    # The Basic Multilingual Plane holds every whitespace and control character there is.
    everything = [chr(code) for code in range(0x10000) if not 0xD800 <= code <= 0xDFFF]
    everything += ["\U0001F600", "\U00020000", "\U0010FFFF"]
    text = "".join(everything)
    space = {char for char in everything if char.isspace()}
    control = {char for char in everything if unicodedata.category(char) == "Cc"}
    assert set(re.findall(f"[{openapi.SPACE}]", text)) == space
    assert set(re.findall(openapi.VISIBLE, text)) == set(everything) - space - control
    assert set(re.findall(openapi.NAME_INNER, text)) == \
        set(everything) - (control - space)


def query_parameter(path: str, name: str, method: str = "get") -> dict[str, Any]:
    operation = document()["paths"][path][method]
    [parameter] = [p for p in parameters(operation) if p["in"] == "query" and p["name"] == name]
    return parameter


def query_fits(parameter: dict[str, Any], raw: str) -> bool:
    """Tell whether the document takes ``raw`` as the value of a query parameter."""
    if raw == "" and parameter.get("allowEmptyValue"):
        return True
    schema = parameter["schema"]
    if schema["type"] == "integer":
        return raw.isascii() and raw.isdigit() and fits(schema, int(raw))
    return fits(schema, raw)


def page_takes(query_string: str) -> bool:
    try:
        page_params(Request("GET", "/", "/", query_string, Headers()))
    except HTTPError as err:
        assert err.status == 400
        return False
    return True


LIST_ROUTES = ["/accounts", "/accounts/{username}/tweets", "/tweets", "/tweets/search",
               "/hashtags/{tag}/tweets"]
CURSORS = ["1", "7", "007", "0" * 18 + "1", "9" * 19, str(2 ** 63 - 1), str(2 ** 63), "",
           "0", "00", "1" * 20, "-1", "+1", "1e3", "1.0", " 1", "abc", "\u00b2", "\uff11"]


@pytest.mark.parametrize("path", LIST_ROUTES)
def test_the_documented_cursor_is_what_the_api_takes(path: str) -> None:
    # A schema that allows more than the API takes makes Schemathesis report ST202.
    cursor = query_parameter(path, "cursor")
    for raw in CURSORS:
        assert query_fits(cursor, raw) == page_takes(urlencode({"cursor": raw})), raw


@pytest.mark.parametrize("path", [*LIST_ROUTES, "/accounts/search", "/hashtags"])
def test_the_documented_limit_is_what_the_api_takes(path: str) -> None:
    limit = query_parameter(path, "limit")
    assert limit["allowEmptyValue"] is True  # limit= is taken, as if there were none
    for raw in ["", "1", "20", "100", "0", "101", "-1", "2.5", "abc", "1" * 20]:
        assert query_fits(limit, raw) == page_takes(urlencode({"limit": raw})), raw


def test_a_cursor_past_every_id_reads_from_the_newest(world: World) -> None:
    first = world.api.get_json("/tweets")
    for cursor in ["9" * 19, str(2 ** 63 - 1), str(2 ** 63)]:
        assert world.api.get_json(f"/tweets?cursor={cursor}") == first, cursor
        assert world.api.get(f"/accounts?cursor={cursor}").status == 200, cursor


def test_the_documented_logs_page_is_what_the_api_takes(world: World) -> None:
    # Both bounds are documented: limit 1 to 100000, after a whole number.
    for name, values in [("after", ["", "0", "5", "9" * 19, "-1", "1" * 20, "x"]),
                         ("limit", ["", "1", "100000", "0", "100001", "-3", "1" * 20])]:
        parameter = query_parameter("/logs", name)
        for raw in values:
            answer = world.api.get(f"/logs?{urlencode({name: raw})}")
            assert (answer.status == 200) == query_fits(parameter, raw), (name, raw)


TEXT_ALPHABET = ([chr(code) for code in range(0x110000) if chr(code).isspace()]
                 + [chr(code) for code in [*range(0x20), *range(0x7F, 0xA0)]]
                 + list("ab#_/\u00e9\u0130\U0001F600") + ["\r\n"] * 5)


def samples(seed: int, most: int, count: int = 1500) -> Iterator[str]:
    """Yield strings around ``most`` characters, full of whitespace and control characters."""
    rng = random.Random(seed)
    lengths = [0, 1, 2, 3, most - 2, most - 1, most, most + 1, most + 2, most + 8]
    for _ in range(count):
        yield "".join(rng.choice(TEXT_ALPHABET) if rng.random() < 0.3 else rng.choice("ab c ")
                      for _ in range(rng.choice(lengths)))


def takes(rule: Callable[..., Any], *args: Any) -> bool:
    try:
        rule(*args)
    except HTTPError as err:
        assert err.status == 400
        return False
    return True


def test_the_documented_tweet_text_is_what_the_api_takes() -> None:
    # The text is trimmed before it is counted, so "" and " " must not fit the schema.
    schema = ref_schema("TweetText")["properties"]["text"]
    assert schema["minLength"] == 1 and "trimm" in schema["description"]
    edges = ["", " ", "a", "x" * 280, "x" * 281, " x" + "y" * 279 + "\r\n", "a\r\nb" * 93,
             "a\u000bb", "a\tb", "a\rb", "\u000b a \u001f", "a\x00"]
    for text in [*edges, *samples(1, rules.MAX_TWEET)]:
        assert fits(schema, text) == takes(rules.clean_tweet_text, text), repr(text)


def test_the_documented_display_name_is_what_the_api_takes() -> None:
    # Control characters are refused, so the schema must refuse them too (ST202).
    schema = ref_schema("SignUp")["properties"]["display_name"]
    edges = [None, "", "   ", "\u00e9" * 50, "\u00e9" * 51, " " * 30 + "a" * 50 + "\t" * 9,
             "a" + " " * 48 + "b", "a" + " " * 49 + "b", "a\bb", "a\u001cb", "a\u0085b",
             "a\u0084b", "\u0007"]
    for name in [*edges, *samples(2, rules.MAX_DISPLAY_NAME)]:
        taken = takes(rules.clean_display_name, name or "", "alice")
        assert fits(schema, name) == taken, repr(name)


def test_a_display_name_is_counted_before_its_whitespace_is_collapsed() -> None:
    # What JSON Schema can count: the name as sent, less the whitespace at its ends.
    assert takes(rules.clean_display_name, "a" + " " * 48 + "b", "alice")
    assert not takes(rules.clean_display_name, "a" + " " * 49 + "b", "alice")


def hashtag_prefix_taken(world: World, q: str) -> bool:
    answer = world.api.get(f"/hashtags?{urlencode({'q': q})}")
    assert answer.status in (200, 400), (q, answer.body)
    return answer.status == 200


def test_the_documented_hashtag_prefix_is_what_the_api_takes(world: World) -> None:
    q = query_parameter("/hashtags", "q")
    edges = ["", "#", "  ##  ", "a" * 100, "a" * 101, "#" * 3 + "a" * 100, "# " + "a" * 99,
             "# " + "a" * 100, "\u3000" + "a" * 100 + "\t"]
    for value in [*edges, *list(samples(3, rules.MAX_TAG, 150))]:
        assert query_fits(q, value) == hashtag_prefix_taken(world, value), repr(value)


@pytest.mark.parametrize("path", ["/accounts/search", "/tweets/search"])
def test_the_documented_search_text_is_what_the_api_takes(world: World, path: str) -> None:
    q = query_parameter(path, "q")
    for value in ["", " ", "fox", "x" * 200, "x" * 201, "\u00e9" * 200, "\u00e9" * 201]:
        answer = world.api.get(f"{path}?{urlencode({'q': value})}")
        assert (answer.status == 200) == query_fits(q, value), (path, value)


def test_a_bad_limit_is_refused_by_an_account_search_for_nothing(world: World) -> None:
    # The limit is checked even when there is nothing to search for (ST201).
    for target in ["/accounts/search?limit=101", "/accounts/search?q=%20&limit=0"]:
        answer = world.api.get(target)
        assert (answer.status, error_code(answer)) == (400, "invalid_limit"), target


def path_schema(path: str, name: str) -> dict[str, Any]:
    operation = next(iter(document()["paths"][path].values()))
    [parameter] = [p for p in parameters(operation) if p["in"] == "path" and p["name"] == name]
    schema: dict[str, Any] = parameter["schema"]
    return schema


def test_the_documented_tweet_id_is_its_one_spelling(world: World) -> None:
    schema = path_schema("/tweets/{id}", "id")
    assert schema["pattern"] == "^[1-9][0-9]{0,18}$"
    tweet = world.tweets[0]["id"]
    for spelling in [str(tweet), f"0{tweet}", f"+{tweet}", "0", "9" * 19, "1" * 20]:
        found = world.api.get(f"/tweets/{quote(spelling)}").status == 200
        assert found == (spelling == str(tweet)), spelling
        assert fits(schema, spelling) == (spelling in (str(tweet), "9" * 19)), spelling


def test_the_documented_usernames_are_what_the_api_takes(world: World) -> None:
    signing_up = ref_schema("SignUp")["properties"]["username"]
    in_a_path = path_schema("/accounts/{username}", "username")
    for name in ["alice", "Bob_2", "abc", "a" * 30, "a" * 31, "ab", "a-b", "\u00e9t\u00e9",
                 "search", "SeArCh", "searches", "a b", ""]:
        assert fits(signing_up, name) == takes(rules.validate_username, name), name
        assert fits(in_a_path, name) == fits(signing_up, name), name
    assert fits(in_a_path, "alice") and not fits(in_a_path, "nobody!")
    assert world.api.get("/accounts/nobody!").status == 404


def test_a_tag_that_no_tweet_can_carry_is_a_404(world: World) -> None:
    # No tweet can carry these tags (the store could not name them in Surrogate-Key):
    # they are a 404, not a 502.
    for tag in ["a%0Eb", "a%20b", "c%2B%2B", "%C2%B2%0A"]:
        answer = world.api.get(f"/hashtags/{tag}/tweets")
        assert (answer.status, error_code(answer)) == (404, "not_found"), tag
    assert world.api.get(f"/hashtags/{quote(chr(0x130) * 100)}/tweets").status == 200


def test_each_operation_lists_the_database_errors_it_can_answer() -> None:
    no_database = {("GET", "/logs"), ("GET", "/stats"), ("GET", "/openapi.json"),
                   ("GET", "/healthz")}
    writes = {("POST", "/accounts"), ("POST", "/tweets"), ("PUT", "/tweets/{id}"),
              ("DELETE", "/tweets/{id}"), ("POST", "/tweets/{id}/like"),
              ("DELETE", "/sessions"), ("PUT", "/accounts/{username}/password")}
    for method, path, operation in operations():
        statuses = set(operation["responses"])
        needs_store = (method, path) not in no_database
        assert ({"502", "503", "504"} <= statuses) == needs_store, (method, path)
        assert ("507" in statuses) == ((method, path) in writes), (method, path)
    assert "503" in document()["paths"]["/healthz"]["get"]["responses"]


def ref_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document()["components"]["schemas"][name]
    return schema


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
    api.fetch("POST", "/accounts", {"username": "ALICE", "password": PASSWORD})
    api.fetch("POST", "/accounts", {"username": "x", "password": PASSWORD})
    api.request("POST", "/accounts", b"x" * (64 * 1024 + 1))
    api.fetch("POST", "/sessions", {"username": "alice", "password": "wrong password"})
    api.fetch("POST", "/sessions", {})
    tweet = post_tweet(api, alice, "hello #world")
    api.fetch("POST", "/tweets", {"text": ""}, alice.auth)
    api.fetch("POST", "/tweets", {"text": "no token"})
    for target in ["/accounts", "/accounts?limit=0", "/accounts/search?q=al",
                   "/accounts/search?q=" + "a" * 201, "/accounts/alice", "/accounts/nobody",
                   "/accounts/alice/tweets", "/accounts/alice/tweets?cursor=x",
                   "/accounts/nobody/tweets", "/tweets", "/tweets?limit=101",
                   "/tweets/search?q=hello", "/tweets/search?q=x&limit=0",
                   f"/tweets/{tweet['id']}", "/tweets/999", "/hashtags", "/hashtags?q=w",
                   "/hashtags?limit=abc", "/hashtags/world/tweets", "/hashtags/%23/tweets",
                   "/hashtags/world/tweets?limit=0", "/logs", "/logs?after=x", "/stats",
                   "/openapi.json", "/healthz", "/accounts/search?limit=101", "/logs?limit=0",
                   "/hashtags/a%0Eb/tweets", "/tweets?cursor=" + "9" * 19]:
        api.get(target)
    api.request("HEAD", "/tweets")
    like(api, tweet["id"])
    api.fetch("POST", "/tweets/999/like")
    keyed_story(api, alice, tweet["id"], post_tweet(api, bob, "another")["id"])
    api.fetch("PUT", f"/tweets/{tweet['id']}", {"text": "mine"}, bob.auth)
    api.fetch("PUT", f"/tweets/{tweet['id']}", {"text": " "}, alice.auth)
    api.fetch("PUT", "/tweets/999", {"text": "gone"}, alice.auth)
    api.fetch("PUT", f"/tweets/{tweet['id']}", {"text": "x"})
    edit_tweet(api, alice, tweet["id"], "edited #world")
    api.fetch("DELETE", f"/tweets/{tweet['id']}", headers=bob.auth)
    api.fetch("DELETE", f"/tweets/{tweet['id']}")
    delete_tweet(api, alice, tweet["id"])
    api.fetch("DELETE", f"/tweets/{tweet['id']}", headers=alice.auth)
    api.request("PATCH", "/tweets/1")
    session_story(api, alice, bob)


def session_story(api: Client, alice: User, bob: User) -> None:
    """Ask the session routes for their answers; alice and bob end logged out."""
    new = {"password": PASSWORD, "new_password": PASSWORD + "!"}
    api.get("/sessions", alice.auth)
    api.get("/sessions", bearer("forged.token"))
    api.fetch("PUT", "/accounts/alice/password", {**new, "password": "not it"}, alice.auth)
    api.fetch("PUT", "/accounts/alice/password", {"password": PASSWORD}, alice.auth)
    api.fetch("PUT", "/accounts/alice/password", {**new, "new_password": "short"}, alice.auth)
    api.fetch("PUT", "/accounts/alice/password", new, bob.auth)
    api.fetch("PUT", "/accounts/nobody/password", new, bob.auth)
    api.fetch("PUT", "/accounts/alice/password", new)
    api.fetch("PUT", "/accounts/bob/password", new, bob.auth)
    api.fetch("DELETE", "/sessions", headers=alice.auth)
    api.fetch("DELETE", "/sessions", headers=alice.auth)


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
        first = api.fetch("POST", path, payload, keyed(key, headers))
        again = api.fetch("POST", path, payload, keyed(f'"{key}"', headers))
        assert first.status // 100 == 2 and "idempotent-replayed" not in first.headers, path
        assert (again.status, again.body) == (first.status, first.body), path
        assert again.headers.get("idempotent-replayed") == "true", path
        reused = api.fetch("POST", other_path, other_payload, keyed(key, headers))
        assert (reused.status, reused.json()["error"]["code"]) == (
            422, "idempotency_key_reused"), path
        bad = api.fetch("POST", path, payload, keyed("not a key", headers))
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
        codes = example_codes(documented[str(answer.status)])
        if codes:  # the error codes an answer can carry are all shown
            assert answer.json()["error"]["code"] in codes, (method, target, answer.body)
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
    assert len(seen) >= 55
    assert {("PUT", "/accounts/{username}/password", status)
            for status in (200, 400, 401, 403, 404)} <= seen
    assert {("GET", "/sessions", 200), ("GET", "/sessions", 401),
            ("DELETE", "/sessions", 204), ("DELETE", "/sessions", 401)} <= seen


def test_a_live_api_allows_the_methods_the_document_names(api: Client) -> None:
    # Schemathesis' ST205 asked OPTIONS /sessions: Allow named GET and DELETE, undocumented.
    for path, item in document()["paths"].items():
        examples = {"{id}": "1", "{username}": "alice", "{tag}": "cats"}
        target = re.sub(r"\{\w+\}", lambda found: examples[found.group(0)], path)
        answer = api.request("OPTIONS", target)
        assert answer.status == 405, path
        documented = {method.upper() for method in item}
        allowed = set(answer.headers["allow"].split(", ")) - {"HEAD"}
        assert allowed == documented, path


def test_the_api_takes_and_refuses_the_keys_the_document_says(api: Client) -> None:
    pattern = document()["components"]["parameters"]["IdempotencyKey"]["schema"]["pattern"]
    tweet = post_tweet(api, join(api, "alice"), "like me")
    for key in KEYS_TAKEN + KEYS_REFUSED:
        answer = api.fetch("POST", f"/tweets/{tweet['id']}/like", headers=keyed(key))
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
    answer = api.fetch("POST", "/tweets", {"text": "who am I?"}, bearer(token))
    assert answer.status in (400, 401, 403, 404)
    documented = document()["paths"]["/tweets"]["post"]["responses"]
    assert str(answer.status) in documented
