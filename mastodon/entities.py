"""Our accounts and tweets as the Mastodon API's entities (docs.joinmastodon.org/entities).

Every field a client may read is there: what we have, mapped; what we do not have, as the
honest constant (no media, no follows, no reblogs: empty lists and zeros). Ids are strings, as
the spec says; an account's id is its username, which never changes and names it in every
route our API has, so no id needs looking up.
"""
from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

from web.render import text_parts

VERSION = "4.2.0 (compatible; First Price Twitter 1.0)"  # Mastodon.py reads the first numbers
MAX_CHARACTERS = 280
DESCRIPTION = (
    "A Twitter-like service with one timeline: there are no follows, so your home timeline "
    "is everyone's. Statuses are public, up to 280 characters (web addresses count in full); "
    "a favourite is an anonymous +1 that cannot be taken back; there are no media, polls, "
    "boosts, replies or notifications.")


class Site:
    """The addresses entities point to: the gateway's own, and the web pages of each thing."""

    def __init__(self, public_url: str, web_url: str) -> None:
        self.public_url = public_url.rstrip("/")
        self.web_url = web_url.rstrip("/")
        self.domain = self.public_url.split("://", 1)[-1].split("/", 1)[0]

    def avatar(self) -> str:
        return f"{self.public_url}/avatars/original/missing.png"

    def account(self, api_account: dict[str, Any]) -> dict[str, Any]:
        """Return an Account for the API's account (username, display name, ...)."""
        username = api_account["username"]
        url = f"{self.web_url}/accounts/{username}"
        return {
            "id": username, "username": username, "acct": username,
            "display_name": api_account.get("display_name") or username,
            "locked": False, "bot": False, "discoverable": True, "indexable": True,
            "group": False, "noindex": False, "suspended": False, "limited": False,
            "created_at": iso_millis(api_account["created_at"]),
            "note": "", "url": url, "uri": url,
            "avatar": self.avatar(), "avatar_static": self.avatar(),
            "header": self.avatar(), "header_static": self.avatar(),
            "followers_count": 0, "following_count": 0,
            "statuses_count": api_account.get("tweet_count", 0),
            "last_status_at": None, "emojis": [], "fields": [], "roles": [],
        }

    def credential_account(self, api_account: dict[str, Any]) -> dict[str, Any]:
        """Return the CredentialAccount of verify_credentials: an Account with its source."""
        return {**self.account(api_account), "source": {
            "privacy": "public", "sensitive": False, "language": None, "note": "",
            "fields": [], "follow_requests_count": 0}}

    def status(self, tweet: dict[str, Any], author: dict[str, Any],
               source: bool = False) -> dict[str, Any]:
        """Return a Status for the API's tweet written by ``author`` (an API account);
        ``source`` adds the plain text, as a delete answers it (for "delete and redraft")."""
        url = f"{self.web_url}/tweets/{tweet['id']}"
        return {
            "id": str(tweet["id"]), "uri": url, "url": url,
            "created_at": iso_millis(tweet["created_at"]),
            "edited_at": iso_millis(tweet["edited_at"]) if tweet["edited_at"] else None,
            "account": self.account(author), "content": self.content(tweet["text"]),
            "text": tweet["text"] if source else None,
            "visibility": "public", "sensitive": False, "spoiler_text": "", "language": None,
            "in_reply_to_id": None, "in_reply_to_account_id": None, "reblog": None,
            "application": None, "media_attachments": [], "mentions": [], "emojis": [],
            "tags": [self.tag(tag) for tag in tweet["hashtags"]],
            "reblogs_count": 0, "favourites_count": tweet["likes"], "replies_count": 0,
            "poll": None, "card": None, "filtered": [],
            # Favourites are anonymous: nobody knows whether they gave one.
            "favourited": None, "reblogged": False, "muted": False, "bookmarked": False,
            "pinned": False,
        }

    def tag(self, name: str) -> dict[str, Any]:
        return {"name": name, "url": f"{self.web_url}/tags/{quote(name)}", "history": [],
                "following": False}

    def content(self, text: str) -> str:
        """Render tweet text as the status HTML Mastodon clients expect: paragraphs in <p>,
        line breaks as <br>, hashtags, @usernames and web addresses as links."""
        paragraphs = [part for part in text.replace("\r\n", "\n").split("\n\n") if part.strip()]
        return "".join(f"<p>{self.linked(part.strip(chr(10)))}</p>" for part in paragraphs)

    def linked(self, text: str) -> str:
        out: list[str] = []
        for kind, value in text_parts(text):
            if kind == "tag":
                href = escape(f"{self.web_url}/tags/{quote(value.lower())}")
                out.append(f'<a href="{href}" class="mention hashtag" rel="tag">'
                           f'#<span>{escape(value)}</span></a>')
            elif kind == "user":
                href = escape(f"{self.web_url}/accounts/{value}")
                out.append(f'<span class="h-card"><a href="{href}" class="u-url mention">'
                           f'@<span>{value}</span></a></span>')
            elif kind == "url":
                out.append(f'<a href="{escape(value)}" rel="nofollow noopener noreferrer" '
                           f'target="_blank">{escape(value)}</a>')
            else:
                out.append(escape(value))
        return "".join(out).replace("\n", "<br>")


def escape(text: str) -> str:
    return html.escape(text, quote=True)


def iso_millis(moment: str) -> str:
    """Return an ISO 8601 UTC time as Mastodon writes it, with milliseconds."""
    return moment[:-1] + ".000Z" if moment.endswith("Z") and "." not in moment else moment


def relationship(account_id: str) -> dict[str, Any]:
    """Return the Relationship with an account: there are no follows, blocks or mutes."""
    return {"id": account_id, "following": False, "showing_reblogs": False,
            "notifying": False, "languages": None, "followed_by": False, "blocking": False,
            "blocked_by": False, "muting": False, "muting_notifications": False,
            "requested": False, "requested_by": False, "domain_blocking": False,
            "endorsed": False, "note": ""}


def instance_v1(site: Site, contact: str = "") -> dict[str, Any]:
    """Return the v1 Instance (toot reads it before logging in)."""
    return {
        "uri": site.domain, "title": "First Price Twitter",
        "short_description": DESCRIPTION, "description": DESCRIPTION, "email": contact,
        "version": VERSION,
        "urls": {"streaming_api": ""},  # no streaming: clients fall back to polling
        "stats": {"user_count": 0, "status_count": 0, "domain_count": 1},
        "thumbnail": None, "languages": ["en"], "registrations": False,
        "approval_required": False, "invites_enabled": False,
        "configuration": configuration(), "contact_account": None, "rules": [],
    }


def instance_v2(site: Site, contact: str = "") -> dict[str, Any]:
    """Return the v2 Instance (Mastodon.py reads it after logging in)."""
    return {
        "domain": site.domain, "title": "First Price Twitter", "version": VERSION,
        "source_url": "", "description": DESCRIPTION,
        "usage": {"users": {"active_month": 0}},
        "thumbnail": {"url": site.avatar()}, "languages": ["en"],
        "configuration": {**configuration(), "urls": {"streaming": ""},
                          "accounts": {"max_featured_tags": 0, "max_pinned_statuses": 0},
                          "translation": {"enabled": False}},
        "registrations": {"enabled": False, "approval_required": False,
                          "message": "Sign up on the web pages."},
        "contact": {"email": contact, "account": None}, "rules": [],
    }


def configuration() -> dict[str, Any]:
    return {
        "statuses": {"max_characters": MAX_CHARACTERS, "max_media_attachments": 0,
                     # Mastodon counts an address as 23 characters; we count it in full, and
                     # no value says so: clients that count may let a long address through.
                     "characters_reserved_per_url": 23},
        "media_attachments": {"supported_mime_types": [], "image_size_limit": 0,
                              "image_matrix_limit": 0, "video_size_limit": 0,
                              "video_frame_rate_limit": 0, "video_matrix_limit": 0},
        "polls": {"max_options": 0, "max_characters_per_option": 0, "min_expiration": 0,
                  "max_expiration": 0},
    }
