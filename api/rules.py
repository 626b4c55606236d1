"""The public API's input rules: usernames, passwords, tweet text and hashtags.

Pure functions that raise ``HTTPError(400)`` with a sentence a user can act on.
"""
from __future__ import annotations

import re
import unicodedata
from http import HTTPStatus

from httpkit import HTTPError

USERNAME = re.compile(r"[A-Za-z0-9_]{3,30}\Z", re.ASCII)
# Path words that a username must not shadow: /accounts/search is a route.
RESERVED_USERNAMES = frozenset({"search"})
# A hashtag: '#' not glued to a preceding word, then Unicode letters, digits or '_'.
HASHTAG = re.compile(r"(?<!\w)#(\w+)")
TAG = re.compile(r"\w+")  # what can follow the '#': fullmatch it
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # bounds the cost of hashing
MAX_DISPLAY_NAME = 50
MAX_TWEET = 280
MAX_TAG = 100


def bad(message: str, code: str = "invalid_field") -> HTTPError:
    """Return a 400 error."""
    return HTTPError(HTTPStatus.BAD_REQUEST, message, code)


def validate_username(username: str) -> str:
    """Return a valid username, or raise 400."""
    if not USERNAME.match(username):
        raise bad("username must be 3-30 letters, digits or underscores", "invalid_username")
    if username.lower() in RESERVED_USERNAMES:
        raise bad(f"'{username}' is reserved; choose another username", "invalid_username")
    return username


def validate_password(password: str) -> str:
    """Return an acceptable password, or raise 400."""
    if len(password) < MIN_PASSWORD:
        raise bad(f"password must be at least {MIN_PASSWORD} characters", "invalid_password")
    if len(password) > MAX_PASSWORD:
        raise bad(f"password must be at most {MAX_PASSWORD} characters", "invalid_password")
    return password


def clean_display_name(name: str, username: str) -> str:
    """Return a trimmed display name (the username when blank), or raise 400."""
    # Counted once trimmed but before its runs of whitespace become one space: what the
    # user typed is what is counted, as for tweet text, and JSON Schema can say so exactly.
    name = name.strip()
    if len(name) > MAX_DISPLAY_NAME:
        raise bad(f"display_name must be at most {MAX_DISPLAY_NAME} characters")
    name = " ".join(name.split())
    if has_control(name):
        raise bad("display_name must not contain control characters")
    return name or username


def clean_tweet_text(text: str) -> str:
    """Return the trimmed tweet text if it is 1-280 characters, or raise 400."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()  # forms send CRLF
    if not text:
        raise bad("text must not be empty", "invalid_text")
    if len(text) > MAX_TWEET:
        raise bad(f"text must be at most {MAX_TWEET} characters (it has {len(text)})",
                  "invalid_text")
    if has_control(text.replace("\n", "").replace("\t", "")):
        raise bad("text must not contain control characters", "invalid_text")
    return text


def hashtags(text: str) -> list[str]:
    """Return the text's hashtags, lower-cased, de-duplicated, in order of appearance."""
    tags = (tag.lower() for tag in HASHTAG.findall(text) if len(tag) <= MAX_TAG)
    return list(dict.fromkeys(tags))


def has_control(text: str) -> bool:
    """Tell whether the text holds control characters (category Cc)."""
    return any(unicodedata.category(char) == "Cc" for char in text)
