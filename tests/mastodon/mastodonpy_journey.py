"""Drive the Mastodon.py library (2.3, unmodified) through a Mastodon user's journeys and print what
it returns, one JSON object per line; tests/mastodon/test_mastodonpy.py runs it and checks.

It runs in its own process, started with ``python -P`` outside the repository, because this
repository's gateway package is called ``mastodon`` too: here ``mastodon`` must be the library.

    python -P mastodonpy_journey.py BASE_URL USERNAME PASSWORD password|code
"""
from __future__ import annotations

import importlib
import json
import sys
from typing import Any


def say(step: str, value: Any) -> None:
    print(json.dumps({"step": step, "value": value}, default=str), flush=True)


def ids(items: Any) -> list[str]:
    return [str(item.id) for item in items]


def main() -> None:
    base, username, password, flow = sys.argv[1:5]
    library = importlib.import_module("mastodon")
    client_id, secret = library.Mastodon.create_app("journey", api_base_url=base)
    m = library.Mastodon(client_id=client_id, client_secret=secret, api_base_url=base)
    if flow == "code":
        say("login_url", m.auth_request_url())
        code = sys.stdin.readline().strip()
        m.log_in(code=code)
    else:
        m.log_in(username, password)
    me = m.account_verify_credentials()
    say("me", {"username": me.username, "display_name": me.display_name, "id": str(me.id)})
    if flow == "code":
        return
    say("version", m.instance().version)
    say("instance_v2", m.instance_v2().title)
    first = m.status_post(f"From Mastodon.py #mpy{username}\nsee https://example.org/a.")
    say("posted", {"id": str(first.id), "content": first.content,
                   "tags": [tag.name for tag in first.tags], "url": first.url})
    later = [m.status_post(f"number {n} #mpy{username}") for n in range(4)]
    edited = m.status_update(later[0].id, f"number 0, edited #mpy{username}")
    say("edited", {"content": edited.content, "edited": edited.edited_at is not None})
    liked = m.status_favourite(first.id)
    say("favourited", {"count": liked.favourites_count, "favourited": liked.favourited})
    say("read", {"count": m.status(first.id).favourites_count,
                 "favourited": m.status(first.id).favourited})
    page = m.account_statuses(me.id, limit=2)
    say("page1", ids(page))
    older = m.fetch_next(page)
    say("page2", ids(older))
    say("page3", ids(m.fetch_next(older)))
    say("newer_than_page2", ids(m.fetch_previous(older)))
    say("home", ids(m.timeline_home(limit=3)))
    say("public", ids(m.timeline_public(limit=3)))
    say("tag", ids(m.timeline_hashtag(f"mpy{username}")))
    found = m.search_v2(f"mpy{username}")
    say("search", {"statuses": ids(found.statuses),
                   "hashtags": [tag.name for tag in found.hashtags]})
    say("search_accounts", [a.acct for a in m.search_v2(username, result_type="accounts")
                            .accounts])
    say("lookup", m.account_lookup(username).display_name)
    say("context", {"ancestors": list(m.status_context(first.id).ancestors),
                    "descendants": list(m.status_context(first.id).descendants)})
    gone = m.status_delete(later[3].id)
    say("deleted", {"id": str(gone.id), "text": gone.text})
    say("notifications", list(m.notifications()))
    for name, call in [("unfavourite", lambda: m.status_unfavourite(first.id)),
                       ("reblog", lambda: m.status_reblog(first.id)),
                       ("private", lambda: m.status_post("hidden", visibility="private")),
                       ("read_deleted", lambda: m.status(later[3].id))]:
        try:
            call()
            say(name, "no error")
        except library.MastodonAPIError as err:
            say(name, [err.args[1], err.args[3]])


if __name__ == "__main__":
    main()
