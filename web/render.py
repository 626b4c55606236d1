"""Templates: files with ``$name`` placeholders, every value HTML-escaped unless it is Markup.

A value is only inserted raw when the code wraps it in ``Markup`` on purpose — the output of
another ``render`` call, or HTML built here from escaped parts.
"""
from __future__ import annotations

import html
import re
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Any, Iterable
from urllib.parse import quote

TEMPLATES = Path(__file__).parent / "templates"

# The API's rule for hashtags (api.rules.HASHTAG; a test keeps the two equal), and @username.
MENTION_OR_TAG = re.compile(r"(?<!\w)#(\w+)|(?<![\w@])@([A-Za-z0-9_]{3,30})\b")


class Markup(str):
    """A string of HTML that is safe to insert as it is."""


def escape(value: Any) -> Markup:
    """Return ``value`` as HTML text: Markup as it is, anything else escaped."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


@lru_cache(maxsize=None)
def template(name: str) -> Template:
    """Load a template file once."""
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def render(name: str, **values: Any) -> Markup:
    """Fill a template; every value is escaped unless it is Markup."""
    return Markup(template(name).substitute({key: escape(v) for key, v in values.items()}))


def join(parts: Iterable[Markup]) -> Markup:
    """Join rendered fragments."""
    return Markup("".join(parts))


def tweet_text(text: str) -> Markup:
    """Render tweet text with #hashtags and @usernames linked to their pages."""
    out: list[str] = []
    position = 0
    for found in MENTION_OR_TAG.finditer(text):
        out.append(escape(text[position:found.start()]))
        tag, username = found.group(1), found.group(2)
        if tag:
            out.append(f'<a href="/tags/{quote(tag.lower())}">#{escape(tag)}</a>')
        else:
            out.append(f'<a href="/accounts/{username}">@{username}</a>')
        position = found.end()
    out.append(escape(text[position:]))
    return Markup("".join(out))


def path_part(value: str) -> str:
    """Percent-encode a value for use inside a URL path."""
    return quote(value, safe="")
