"""The OpenAPI 3.1 document of the public API, served at GET /openapi.json.

It says exactly what the API takes and answers: every input rule of ``api.rules`` and
``httpkit.messages`` that JSON Schema can say is a schema keyword (text trimmed before it is
counted is a pattern), and every status an operation can answer is listed with its error
codes. Tests hold it to that: one walks the router's table and this document and fails if
either has a route the other lacks; others compare each pattern with the code that applies
the rule; a Schemathesis run (tests/api/test_schemathesis.py) sends it a live API's way.

Lengths are counted in Unicode code points, as JSON Schema and the API both count them.
"""
from __future__ import annotations

from typing import Any

from api import rules

JSON = "application/json"

# Character classes, for patterns that say what ``str.strip()`` takes away and which control
# characters (Unicode category Cc) the rules refuse. test_openapi checks them against Python
# over every code point.
SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
VISIBLE = r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"  # no space,
# no control character
# Inside a tweet, tabs and line ends (CR LF and CR become LF) are the only control characters.
TEXT_INNER = r"(?:\r\n|\r(?!\n)|[^\x00-\x08\x0b-\x1f\x7f-\x9f])"
# Inside a display name, whitespace of any kind becomes one space; other controls are refused.
NAME_INNER = r"[^\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]"


def trimmed(first_last: str, inner: str, most: int, blank: bool = False) -> str:
    """Return a pattern for text of 1 to ``most`` characters once whitespace is trimmed from
    both ends (0 to ``most`` if ``blank``): ``first_last`` at its ends, ``inner`` between."""
    core = f"(?:{first_last}{inner}{{0,{most - 2}}}{first_last}|{first_last})"
    return f"^[{SPACE}]*{core}{'?' if blank else ''}[{SPACE}]*$"


def either_case(word: str) -> str:
    """``search`` -> ``[Ss][Ee][Aa][Rr][Cc][Hh]`` (ECMA-262 patterns have no (?i))."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.upper() != c.lower() else c for c in word)


TWEET_TEXT = trimmed(VISIBLE, TEXT_INNER, rules.MAX_TWEET)
DISPLAY_NAME = trimmed(VISIBLE, NAME_INNER, rules.MAX_DISPLAY_NAME, blank=True)
# /hashtags?q: at most MAX_TAG characters once trimmed and any leading '#'s are dropped.
TAG_PREFIX = (rf"^[{SPACE}]*#*(?:[^#{SPACE}]|[^#][\s\S]{{0,{rules.MAX_TAG - 2}}}[^{SPACE}])?"
              rf"[{SPACE}]*$")
USERNAME = r"^[A-Za-z0-9_]{3,30}$"
RESERVED = "^(?:" + "|".join(either_case(word) for word in sorted(rules.RESERVED_USERNAMES)) + ")$"
# An id, and a cursor, as the API writes them: 1 to 2**63 - 1 without a leading zero.
CANONICAL_ID = r"^[1-9][0-9]{0,18}$"
MAX_SEARCH = 200


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def error(description: str, **examples: str) -> dict[str, Any]:
    """Describe an error answer; ``examples`` maps each error code it can carry to a message
    it comes with."""
    answer = body(ref("Error"), description)
    if examples:
        answer["content"][JSON]["examples"] = {
            code: {"value": {"error": {"code": code, "message": message}}}
            for code, message in examples.items()}
    return answer


def query(name: str, description: str, schema: dict[str, Any],
          empty: bool = False) -> dict[str, Any]:
    """Describe a query parameter; ``empty``: ``name=`` is taken, as if it were absent."""
    parameter = {"name": name, "in": "query", "required": False, "description": description,
                 "schema": schema}
    if empty:
        parameter["allowEmptyValue"] = True
    return parameter


def path_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema}


LIMIT = query("limit", "Page size. Empty is the same as none.",
              {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}, empty=True)
CURSOR = query("cursor", "The `next` of the previous page: the page holds what is older than "
               "it. A positive whole number of 1-19 ASCII digits (leading zeros are taken); "
               "one past every id (2**63 - 1 and up) reads from the newest. Empty is the same "
               "as none.", {"type": "string", "pattern": "^0*[1-9][0-9]*$", "maxLength": 19},
               empty=True)
AFTER = query("after", "The `prev` of a page: this page holds what is just newer than it "
              "(the oldest `limit` of those), newest first. Digits as for `cursor`; with a "
              "`cursor` too, the page holds what lies between the two, newest first.",
              {"type": "string", "pattern": "^0*[1-9][0-9]*$", "maxLength": 19}, empty=True)
Q = query("q", f"Search text, at most {MAX_SEARCH} characters; blank finds nothing.",
          {"type": "string", "maxLength": MAX_SEARCH})
ID = path_param("id", "Tweet id: 1 to 2**63 - 1, written without leading zeros. Any other "
                "spelling (`0304`, `+5`, a number past 2**63 - 1) names no tweet: 404.",
                {"type": "string", "pattern": CANONICAL_ID})
USERNAME_PATH = path_param("username", "Username, in any case. Anything but 3-30 letters, "
                           "digits or underscores names no account (404), nor does a route "
                           "word (`search`: /accounts/search is the search).",
                           {"type": "string", "pattern": USERNAME, "not": {"pattern": RESERVED}})
TAG = path_param("tag", "Hashtag, in any case, with or without leading '#'s: after them 1-"
                 f"{rules.MAX_TAG} Unicode letters, digits or underscores (anything else is no "
                 "hashtag: 404). A tag no tweet carries has an empty page.",
                 {"type": "string", "pattern": f"^#*[^#/][^/]{{0,{rules.MAX_TAG - 1}}}$"})
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
NOT_A_PAGE = {"invalid_limit": "limit must be a whole number from 1 to 100",
              "invalid_cursor": "cursor must be the 'next' of a previous page (after its 'prev')"}
BAD_PAGE = error("A limit, cursor or after out of range.", **NOT_A_PAGE)
BAD_JSON = {"malformed_json": "the body is not valid JSON",
            "invalid_field": "'text' must be a string"}
UNAUTHORIZED = error("Missing, malformed, forged or expired token, a session that has ended, "
                     "or one of an account that no longer exists.",
                     unauthorized="log in first: send Authorization: Bearer <token>")
NO_TWEET = error("No such tweet.", not_found="no such tweet")
NO_ACCOUNT = error("No such account.", not_found="no such account")
UPSTREAM = {
    "502": error("The database is unreachable or failed.",
                 upstream_unavailable="the database is unavailable: cannot connect",
                 upstream_error="the database failed to answer"),
    "503": error("The database looks down or overloaded: answered at once, with Retry-After.",
                 upstream_unavailable="the database is unavailable",
                 store_unavailable="the database is unavailable"),
    "504": error("The database did not answer in time (a write may yet be done).",
                 upstream_timeout="the database did not answer in time",
                 store_timeout="the database did not answer in time")}
FULL = error("The database's disk is full: nothing was saved.",
             storage_full="the server's disk is full, so nothing was saved; try again later")

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
       request: dict[str, Any] | None = None, secure: bool = False, store: bool = True,
       writes: bool = False) -> dict[str, Any]:
    """Describe one operation: ``store`` if it needs the database (so it can answer 502, 503
    and 504), ``writes`` if it writes there (507 when the disk is full)."""
    operation: dict[str, Any] = {"summary": summary, "responses": dict(responses)}
    if store:
        operation["responses"].update(UPSTREAM)
    if writes:
        operation["responses"]["507"] = FULL
    if parameters:
        operation["parameters"] = parameters
    if request:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": request}}}
        operation["responses"].setdefault("400", error(
            "Malformed JSON, a missing field or one of the wrong type.", **BAD_JSON))
        operation["responses"]["413"] = error("Body over 64 KiB.",
                                              body_too_large="body too large")
    if secure:
        operation["security"] = BEARER
        operation["responses"].setdefault("401", UNAUTHORIZED)
    operation["responses"] = dict(sorted(operation["responses"].items()))
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
    before = responses.get("400", {"description": ""})
    codes = {code: example["value"]["error"]["message"] for code, example in
             before.get("content", {}).get(JSON, {}).get("examples", {}).items()}
    described = before["description"] + " Or a" if before["description"] else "A"
    responses["400"] = error(f"{described} malformed Idempotency-Key (code "
                             "invalid_idempotency_key).", **codes,
                             invalid_idempotency_key=BAD_KEY)
    responses["422"] = REUSED
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


NEXT = {"type": ["string", "null"], "pattern": CANONICAL_ID,
        "description": "The cursor of the next (older) page; null on the last one."}
PREV = {"type": ["string", "null"], "pattern": CANONICAL_ID,
        "description": "The `after` of the page just newer; null on the first (newest) page."}
SCHEMAS: dict[str, Any] = {
    "Error": obj(["error"], error=obj(["code", "message"], code={"type": "string"},
                                      message={"type": "string"})),
    "Account": obj(["id", "username", "display_name", "created_at", "tweet_count"],
                   id={"type": "integer", "minimum": 1},
                   username={"type": "string", "pattern": USERNAME},
                   display_name={"type": "string", "minLength": 1,
                                 "maxLength": rules.MAX_DISPLAY_NAME},
                   created_at={"type": "string", "format": "date-time"},
                   tweet_count={"type": "integer", "minimum": 0}),
    "Tweet": obj(["id", "author", "text", "hashtags", "likes", "created_at", "edited_at"],
                 id={"type": "integer", "minimum": 1},
                 author={"type": "string", "description": "username"},
                 text={"type": "string", "minLength": 1, "maxLength": rules.MAX_TWEET},
                 hashtags={"type": "array", "items": {"type": "string"},
                           "description": "lower-cased, in order of appearance, no repeats"},
                 likes={"type": "integer", "minimum": 0,
                        "description": "stored plus pending likes"},
                 created_at={"type": "string", "format": "date-time"},
                 edited_at={"type": ["string", "null"], "format": "date-time"}),
    "AccountPage": obj(["accounts", "next", "prev"],
                       accounts={"type": "array", "items": ref("Account")}, next=NEXT, prev=PREV),
    "TweetPage": obj(["tweets", "next", "prev", "authors"],
                     tweets={"type": "array", "items": ref("Tweet")}, next=NEXT, prev=PREV,
                     authors={"type": "object", "additionalProperties": {"type": "string"},
                              "description": "username -> display name, for every author "
                                             "on the page"}),
    "TweetText": obj(["text"], text={
        "type": "string", "minLength": 1, "pattern": TWEET_TEXT,
        "description": f"1-{rules.MAX_TWEET} characters once whitespace is trimmed from both "
                       "ends and CR LF or CR made LF (so it may be sent longer); no control "
                       "characters but tabs and line ends."}),
    "Session": obj(["token", "account"], token={"type": "string"}, account=ref("Account")),
    "SignUp": obj(
        ["username", "password"],
        username={"type": "string", "pattern": USERNAME, "not": {"pattern": RESERVED},
                  "description": "3-30 letters, digits or underscores, unique ignoring case; "
                                 "a route word (`search`) is refused."},
        password={"type": "string", "minLength": rules.MIN_PASSWORD,
                  "maxLength": rules.MAX_PASSWORD},
        display_name={"type": ["string", "null"], "pattern": DISPLAY_NAME, "description":
                      f"At most {rules.MAX_DISPLAY_NAME} characters once whitespace is trimmed "
                      "from both ends; runs of whitespace are then made one space; no other "
                      "control characters. Blank, null or absent: the username."}),
}

TWEET = body(ref("Tweet"), "The tweet.")
TWEETS = body(ref("TweetPage"), "Tweets, newest first.")
PAGE = [LIMIT, CURSOR, AFTER]
BAD_Q = f"q must be at most {MAX_SEARCH} characters"
NOT_YOURS = error("Not your tweet.", not_author="only the author may change this tweet")


def account_paths() -> dict[str, Any]:
    """Return the routes of accounts and sessions."""
    bad_sign_up = error("Malformed JSON, a missing field or one of the wrong type, or a "
                        "username, password or display name the rules refuse.", **BAD_JSON,
                        invalid_username="username must be 3-30 letters, digits or underscores",
                        invalid_password="password must be at least 8 characters")
    return {
        "/accounts": {
            "post": idempotent(op("Sign up", {
                "201": body(ref("Account"), "Created."), "400": bad_sign_up,
                "409": error("The username is taken (ignoring case).",
                             username_taken="that username is taken"),
            }, request=ref("SignUp"), writes=True), "among all sign-ups"),
            "get": op("List accounts, newest first", {
                "200": body(ref("AccountPage"), "A page."), "400": BAD_PAGE}, PAGE)},
        "/accounts/search": {"get": op(
            "Find accounts by username or display name, prefix matches first",
            {"200": body(obj(["accounts"], accounts={"type": "array", "items": ref("Account")}),
                         "Matches."),
             "400": error("q too long, or a limit out of range.", invalid_query=BAD_Q,
                          **NOT_A_PAGE)}, [Q, LIMIT])},
        "/accounts/{username}": {"get": op("One account", {
            "200": body(ref("Account"), "The account."), "404": NO_ACCOUNT}, [USERNAME_PATH])},
        "/accounts/{username}/tweets": {"get": op("An account's tweets, newest first", {
            "200": TWEETS, "400": BAD_PAGE, "404": NO_ACCOUNT}, [USERNAME_PATH, *PAGE])},
        "/accounts/{username}/password": {"put": op(
            "Change your password: ends every older session of the account", {
                "200": body(ref("Session"), "A token of a new session; every token issued "
                            "before it stops working."),
                "400": error("Malformed JSON, a missing field or one of the wrong type, or "
                             "a new password the rules refuse.", **BAD_JSON,
                             invalid_password="password must be at least 8 characters"),
                "401": error("A bad token (as on every secured route), or a wrong current "
                             "password.", unauthorized="the token is not valid",
                             wrong_password="the current password is wrong"),
                "403": error("Not your account.",
                             not_owner="you can change only your own password"),
                "404": NO_ACCOUNT},
            [USERNAME_PATH], request=obj(["password", "new_password"], password={
                "type": "string", "description": "the current password"},
                new_password={"type": "string", "minLength": rules.MIN_PASSWORD,
                              "maxLength": rules.MAX_PASSWORD}),
            secure=True, writes=True)},
        "/sessions": {
            "post": idempotent(op("Log in", {
                "201": body(ref("Session"), "A bearer token of a new session."),
                "401": error("Wrong username or password.",
                             unauthorized="wrong username or password"),
            }, request=obj(["username", "password"], username={"type": "string"},
                           password={"type": "string"})), "per username"),
            "get": op("The session of the token sent", {
                "200": body(obj(["account_id", "username", "expires_at"],
                                account_id={"type": "integer", "minimum": 1},
                                username={"type": "string"},
                                expires_at={"type": "string", "format": "date-time"}),
                            "Whose it is (who am I) and when it ends.")}, secure=True),
            "delete": op("Log out: end the session of the token sent", {
                "204": {"description": "Ended: the token no longer works; the account's other "
                                       "sessions go on (a token issued before sessions had "
                                       "numbers ends with all of them)."},
                "404": NO_ACCOUNT}, secure=True, writes=True)},
    }


def tweet_paths() -> dict[str, Any]:
    """Return the routes of tweets."""
    bad_text = error("Malformed JSON, a missing field or one of the wrong type, or text the "
                     "rules refuse.", **BAD_JSON, invalid_text="text must not be empty")
    return {
        "/tweets": {
            "post": idempotent(op("Post a tweet", {"201": TWEET, "400": bad_text},
                                  request=ref("TweetText"), secure=True, writes=True),
                               "per author (the token's account)"),
            "get": op("Timeline, newest first", {"200": TWEETS, "400": BAD_PAGE}, PAGE)},
        "/tweets/search": {"get": op(
            "Full-text search: every word must match, newest first",
            {"200": TWEETS, "400": error("q too long, or a limit or cursor out of range.",
                                         invalid_query=BAD_Q, **NOT_A_PAGE)}, [Q, *PAGE])},
        "/tweets/{id}": {
            "get": op("One tweet", {"200": TWEET, "404": NO_TWEET}, [ID]),
            "put": op("Edit a tweet (author only)", {
                "200": TWEET, "400": bad_text, "403": NOT_YOURS, "404": NO_TWEET},
                [ID], request=ref("TweetText"), secure=True, writes=True),
            "delete": op("Delete a tweet (author only)", {
                "204": {"description": "Deleted."},
                "200": body(ref("Tweet"), "Deleted; the tweet as it was, for a request with "
                                          "`Prefer: return=representation` (RFC 7240)."),
                "403": NOT_YOURS, "404": NO_TWEET},
                [ID], secure=True, writes=True)},
        "/tweets/{id}/like": {"post": idempotent(op(
            "Like a tweet (no account needed)", {
                "202": body(obj(["id", "likes"], id={"type": "integer", "minimum": 1},
                                likes={"type": "integer", "minimum": 1}),
                            "Accepted; likes counts pending ones."),
                "404": NO_TWEET}, [ID], writes=True), "among all likes")},
    }


def other_paths() -> dict[str, Any]:
    """Return the routes of hashtags and of what the API itself did."""
    return {
        "/hashtags": {"get": op("Hashtags starting with q, most used first", {
            "200": body(obj(["hashtags"], hashtags={"type": "array", "items": obj(
                ["tag", "tweets"], tag={"type": "string"}, tweets={"type": "integer"})}),
                "Tags."),
            "400": error("q too long, or a limit out of range.", **NOT_A_PAGE,
                         invalid_query=f"q must be at most {rules.MAX_TAG} characters")},
            [query("q", f"Tag prefix, any case: at most {rules.MAX_TAG} characters once "
                   "trimmed and any leading '#'s are dropped; blank gives every tag.",
                   {"type": "string", "pattern": TAG_PREFIX}), LIMIT])},
        "/hashtags/{tag}/tweets": {"get": op("Tweets carrying #tag, newest first", {
            "200": TWEETS, "400": BAD_PAGE,
            "404": error("What cannot be a hashtag.", not_found="no such hashtag")},
            [TAG, *PAGE])},
        "/logs": {"get": op("Every API call since start-up, in order", {
            "200": body(ref("CallPage"), "The calls."),
            "400": error("after or limit out of range.", invalid_query="after must be a "
                         "whole number, limit 1 to 100000")},
            [query("after", "Skip this many calls. Empty is the same as none.",
                   {"type": "integer", "minimum": 0, "maximum": 10 ** 19 - 1, "default": 0},
                   empty=True),
             query("limit", "At most this many calls (a page also stops at about 1 MiB). "
                   "Empty is the same as none.",
                   {"type": "integer", "minimum": 1, "maximum": 100_000, "default": 10_000},
                   empty=True)], store=False)},
        "/stats": {"get": op("Counters: calls, database accesses, likes", {
            "200": body({"type": "object"}, "Counters.")}, store=False)},
        "/openapi.json": {"get": op("This document", {
            "200": body({"type": "object"}, "OpenAPI 3.1.")}, store=False)},
        "/healthz": {"get": op("Health check", {
            "200": body(obj(["status"], status={"const": "ok"}), "Ready."),
            "503": error("The database is unreachable or not ready.",
                         store_unavailable="the database is not ready")}, store=False)},
    }


SCHEMAS["CallPage"] = obj(
    ["calls", "total", "after", "next", "missing", "db_accesses"],
    # Each call as a pair of strings rather than prefixItems: Schemathesis 4.32 reads a 3.1
    # document's prefixItems as a draft-4 list of items, which it then finds invalid.
    calls={"type": "array", "description": "[method, path] of each call, in arrival order; a "
           "path over 512 bytes is cut, with a marker",
           "items": {"type": "array", "items": {"type": "string"}, "minItems": 2,
                     "maxItems": 2}},
    total={"type": "integer", "minimum": 0, "description": "calls since start-up"},
    after={"type": "integer", "minimum": 0},
    next={"type": ["integer", "null"], "minimum": 0,
          "description": "`after` of the next page; null at the end"},
    missing={"oneOf": [{"type": "null"}, obj(
        ["after", "next", "reason"], after={"type": "integer", "minimum": 0},
        next={"type": "integer", "minimum": 1}, reason={"type": "string"})],
        "description": "Calls after+1 to next were counted but are not kept, for reason "
                       "(the file for old calls could not be written); null when none are lost."},
    db_accesses={"type": "integer", "minimum": 0})


def paths() -> dict[str, Any]:
    """Return every route of the public API."""
    return {**account_paths(), **tweet_paths(), **other_paths()}


INFO = ("Errors are {\"error\": {\"code\", \"message\"}}. Besides what each operation lists, "
        "any request can be answered: 404 (code not_found) for a path no route has; 405 "
        "(method_not_allowed) with Allow for a method the path does not take; 413 "
        "(body_too_large) for a body over 64 KiB; 431 for headers too large; 400 for a "
        "malformed HTTP request; 505 for an HTTP version other than 1.0 and 1.1. HEAD is "
        "answered wherever GET is. List routes page with limit and cursor. Lengths are "
        "counted in Unicode code points.")


def document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "First Price Twitter API", "version": "1.0.0", "description": INFO},
        "paths": paths(),
        "components": {"schemas": SCHEMAS, "parameters": PARAMETERS, "headers": HEADERS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
