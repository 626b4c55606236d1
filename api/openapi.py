"""The OpenAPI 3.1 document of the public API, served at GET /openapi.json.

A test walks the router's table and this document and fails if either has a route the
other lacks, so the two cannot drift apart silently.
"""
from __future__ import annotations

from typing import Any

JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def error(description: str, **examples: str) -> dict[str, Any]:
    """Describe an error answer; ``examples`` maps an error code to a message it comes with."""
    answer = body(ref("Error"), description)
    if examples:
        answer["content"][JSON]["examples"] = {
            code: {"value": {"error": {"code": code, "message": message}}}
            for code, message in examples.items()}
    return answer


def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


def path_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema}


LIMIT = query("limit", "Page size.",
              {"type": "integer", "minimum": 1, "maximum": 100, "default": 20})
CURSOR = query("cursor", "The `next` of the previous page.", {"type": "string"})
Q = query("q", "Search text.", {"type": "string", "maxLength": 200})
ID = path_param("id", "Tweet id.", {"type": "integer", "minimum": 1})
USERNAME = path_param("username", "Username (any case).", {"type": "string"})
TAG = path_param("tag", "Hashtag without '#', any case.", {"type": "string"})
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
BAD = error("Malformed JSON, wrong types or out-of-range values.")
NOT_FOUND = error("No such resource.")
UNAUTHORIZED = error("Missing, malformed, forged or expired token.")
UPSTREAM = {"502": error("The database is unavailable."),
            "504": error("The database did not answer in time.")}

# Idempotency-Key (draft-ietf-httpapi-idempotency-key-header) on the POSTs that change
# something or hand out a token; api/idempotency.py is the code that reads it.
IDEMPOTENCY_KEY = {"$ref": "#/components/parameters/IdempotencyKey"}
REPLAYED = {"Idempotent-Replayed": {"$ref": "#/components/headers/IdempotentReplayed"}}
BAD_KEY = ("Idempotency-Key must be a quoted string or a bare token of 1-255 visible ASCII "
           "characters")
REUSED = error("The Idempotency-Key was already used, within the window, in the same scope for "
               "a different request (code idempotency_key_reused). Nothing was done.",
               idempotency_key_reused="this Idempotency-Key was already used for a different "
               "request")
PARAMETERS: dict[str, Any] = {"IdempotencyKey": {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Makes the request safe to send again. The same key again within "
                   "IDEMPOTENCY_WINDOW_S (a day) gets the first answer again, with the same "
                   "status and body and `Idempotent-Replayed: true`, and changes nothing twice; "
                   "the same key with a different request is a 422. Only 2xx answers are "
                   "kept: after a 4xx or 5xx the same key runs the request again. A bare "
                   "token of 1-255 visible ASCII characters, or an RFC 8941 sf-string of 1-255 "
                   "printable ASCII characters in quotes (the quoted and the bare form of one "
                   "key are the same key); anything else is a 400 with code "
                   "invalid_idempotency_key.",
    # RFC 8941 section 3.3.3: an sf-string may hold spaces and escapes only \" and \\;
    # a value that starts with a quote must be one.
    "schema": {"type": "string",
               "pattern": r'^(?:[!#-~][!-~]{0,254}|"(?:[ !#-\[\]-~]|\\["\\]){1,255}")$'},
    "examples": {"bare": {"value": "4f1c9a3e2b7d4e0f8a6b5c3d2e1f0a9b"},
                 "sf-string": {"value": '"4f1c9a3e-2b7d-4e0f-8a6b-5c3d2e1f0a9b"'}}}}
HEADERS: dict[str, Any] = {"IdempotentReplayed": {
    "description": "`true` on an answer that repeats the first answer to the same "
                   "Idempotency-Key; absent on a first answer.",
    "schema": {"type": "string", "const": "true"}}}


def op(summary: str, responses: dict[str, Any], parameters: list[dict[str, Any]] | None = None,
       request: dict[str, Any] | None = None, secure: bool = False) -> dict[str, Any]:
    """Describe one operation."""
    operation: dict[str, Any] = {"summary": summary, "responses": {**responses, **UPSTREAM}}
    if parameters:
        operation["parameters"] = parameters
    if request:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": request}}}
        operation["responses"].setdefault("400", BAD)
        operation["responses"]["413"] = error("Body over 64 KiB.")
    if secure:
        operation["security"] = BEARER
        operation["responses"]["401"] = UNAUTHORIZED
    return operation


def idempotent(operation: dict[str, Any], scope: str) -> dict[str, Any]:
    """Let an operation take an Idempotency-Key whose scope ``scope`` names."""
    operation["description"] = f"Takes an Idempotency-Key, scoped {scope}."
    operation["parameters"] = [*operation.get("parameters", []), IDEMPOTENCY_KEY]
    responses = operation["responses"]
    for status, response in responses.items():
        if status.startswith("2"):
            responses[status] = {**response, "headers": {**response.get("headers", {}),
                                                         **REPLAYED}}
    before = responses["400"]["description"] + " Or a" if "400" in responses else "A"
    responses["400"] = error(f"{before} malformed Idempotency-Key (code "
                             "invalid_idempotency_key).", invalid_idempotency_key=BAD_KEY)
    responses["422"] = REUSED
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


SCHEMAS: dict[str, Any] = {
    "Error": obj(["error"], error=obj(["code", "message"], code={"type": "string"},
                                      message={"type": "string"})),
    "Account": obj(["id", "username", "display_name", "created_at", "tweet_count"],
                   id={"type": "integer"}, username={"type": "string"},
                   display_name={"type": "string"},
                   created_at={"type": "string", "format": "date-time"},
                   tweet_count={"type": "integer"}),
    "Tweet": obj(["id", "author", "text", "hashtags", "likes", "created_at", "edited_at"],
                 id={"type": "integer"}, author={"type": "string", "description": "username"},
                 text={"type": "string", "minLength": 1, "maxLength": 280},
                 hashtags={"type": "array", "items": {"type": "string"}},
                 likes={"type": "integer", "description": "stored plus pending likes"},
                 created_at={"type": "string", "format": "date-time"},
                 edited_at={"type": ["string", "null"], "format": "date-time"}),
    "AccountPage": obj(["accounts", "next"], accounts={"type": "array", "items": ref("Account")},
                       next={"type": ["string", "null"]}),
    "TweetPage": obj(["tweets", "next"], tweets={"type": "array", "items": ref("Tweet")},
                     next={"type": ["string", "null"]}),
    "TweetText": obj(["text"], text={"type": "string",
                                     "description": "1-280 characters after trimming"}),
}

TWEET = body(ref("Tweet"), "The tweet.")
TWEETS = body(ref("TweetPage"), "Tweets, newest first.")
PAGE = [LIMIT, CURSOR]


def paths() -> dict[str, Any]:
    """Return every route of the public API."""
    return {
        "/healthz": {"get": op("Health check", {
            "200": body(obj(["status"], status={"const": "ok"}), "Ready."),
            "503": error("The database is unreachable.")})},
        "/accounts": {
            "post": idempotent(op("Sign up", {
                "201": body(ref("Account"), "Created."),
                "409": error("The username is taken (ignoring case)."),
            }, request=obj(["username", "password"],
                           username={"type": "string", "pattern": "^[A-Za-z0-9_]{3,30}$"},
                           password={"type": "string", "minLength": 8},
                           display_name={"type": "string", "maxLength": 50})),
                "among all sign-ups"),
            "get": op("List accounts, newest first", {
                "200": body(ref("AccountPage"), "A page."), "400": BAD}, PAGE)},
        "/accounts/search": {"get": op(
            "Find accounts by username or display name, prefix matches first",
            {"200": body(obj(["accounts"], accounts={"type": "array", "items": ref("Account")}),
                         "Matches."), "400": BAD}, [Q, LIMIT])},
        "/accounts/{username}": {"get": op("One account", {
            "200": body(ref("Account"), "The account."), "404": NOT_FOUND}, [USERNAME])},
        "/accounts/{username}/tweets": {"get": op("An account's tweets, newest first", {
            "200": TWEETS, "400": BAD, "404": NOT_FOUND}, [USERNAME, *PAGE])},
        "/sessions": {"post": idempotent(op("Log in", {
            "201": body(obj(["token", "account"], token={"type": "string"},
                            account=ref("Account")), "A bearer token."),
            "401": error("Wrong username or password."),
        }, request=obj(["username", "password"], username={"type": "string"},
                       password={"type": "string"})), "per username")},
        "/tweets": {
            "post": idempotent(op("Post a tweet", {"201": TWEET}, request=ref("TweetText"),
                                  secure=True), "per author (the token's account)"),
            "get": op("Timeline, newest first", {"200": TWEETS, "400": BAD}, PAGE)},
        "/tweets/search": {"get": op(
            "Full-text search: every word must match, newest first",
            {"200": TWEETS, "400": BAD}, [Q, *PAGE])},
        "/tweets/{id}": {
            "get": op("One tweet", {"200": TWEET, "404": NOT_FOUND}, [ID]),
            "put": op("Edit a tweet (author only)", {
                "200": TWEET, "403": error("Not your tweet."), "404": NOT_FOUND},
                [ID], request=ref("TweetText"), secure=True),
            "delete": op("Delete a tweet (author only)", {
                "204": {"description": "Deleted."}, "403": error("Not your tweet."),
                "404": NOT_FOUND}, [ID], secure=True)},
        "/tweets/{id}/like": {"post": idempotent(op("Like a tweet (no account needed)", {
            "202": body(obj(["id", "likes"], id={"type": "integer"}, likes={"type": "integer"}),
                        "Accepted; likes counts pending ones."),
            "404": NOT_FOUND}, [ID]), "among all likes")},
        "/hashtags": {"get": op("Hashtags starting with q, most used first", {
            "200": body(obj(["hashtags"], hashtags={"type": "array", "items": obj(
                ["tag", "tweets"], tag={"type": "string"}, tweets={"type": "integer"})}),
                "Tags."), "400": BAD}, [query("q", "Tag prefix ('#' optional).",
                                              {"type": "string"}), LIMIT])},
        "/hashtags/{tag}/tweets": {"get": op("Tweets carrying #tag, newest first", {
            "200": TWEETS, "400": BAD, "404": NOT_FOUND}, [TAG, *PAGE])},
        "/logs": {"get": op("Every API call since start-up, in order", {
            "200": body(obj(["calls", "total", "db_accesses"],
                            calls={"type": "array", "items": {
                                "type": "array", "prefixItems": [{"type": "string"},
                                                                 {"type": "string"}]}},
                            total={"type": "integer"}, after={"type": "integer"},
                            next={"type": ["integer", "null"]},
                            db_accesses={"type": "integer"}), "The calls."),
            "400": BAD}, [query("after", "Skip this many calls.", {"type": "integer"}),
                          query("limit", "At most this many calls.",
                                {"type": "integer", "maximum": 100000, "default": 10000})])},
        "/stats": {"get": op("Counters: calls, database accesses, likes", {
            "200": body({"type": "object"}, "Counters.")})},
        "/openapi.json": {"get": op("This document", {
            "200": body({"type": "object"}, "OpenAPI 3.1.")})},
    }


def document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "First Price Twitter API", "version": "1.0.0",
                 "description": "Errors are {\"error\": {\"code\", \"message\"}}; 405 answers "
                                "carry Allow; list routes page with limit and cursor."},
        "paths": paths(),
        "components": {"schemas": SCHEMAS, "parameters": PARAMETERS, "headers": HEADERS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
