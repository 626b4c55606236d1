"""Service tests of the public API, finding tweets: search by words (hostile strings and
FTS operators matched as plain words, results paged newest first) and by hashtag (the tags
most used first, counts that follow edits and deletes, any case)."""
from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.api.conftest import WORLD_TWEETS, World
from tests.api.helpers import (Client, User, delete_tweet, edit_tweet, error_code, page_through,
                               post_tweet, texts, timeline)


# --- search ------------------------------------------------------------------------------------

@pytest.mark.parametrize("q, expected", [
    ("quick", ["Quick thinking saves the DAY", "The quick brown fox"]),
    ("QUICK", ["Quick thinking saves the DAY", "The quick brown fox"]),
    ("quick fox", ["The quick brown fox"]),
    ("fox quick", ["The quick brown fox"]),
    ("  the   DAY ", ["Quick thinking saves the DAY"]),
    ("quick dog", []),
    ("ecole", ["école d'été"]),
    ("zebra", []),
])
def test_search_finds_tweets_holding_every_word_ignoring_case(world: World, q: str,
                                                              expected: list[str]) -> None:
    assert texts(world.api.get_json(f"/tweets/search?q={quote(q)}")) == expected


@pytest.mark.parametrize("q", ['"', '"quick', "*", "quick*", "NEAR(", "NEAR(quick fox)", "AND",
                               "quick AND", "OR", "NOT quick", "' OR 1=1 --", "'; drop table "
                               "tweets; --", "^quick", "text:quick", "(", ")", "-", "{}", "\\",
                               "%", "_", "\x00", "\ufffd"])
def test_hostile_search_strings_are_answered_200(world: World, q: str) -> None:
    answer = world.api.get(f"/tweets/search?q={quote(q)}")
    assert answer.status == 200, answer.body
    assert isinstance(answer.json()["tweets"], list)
    assert texts({"tweets": timeline(world.api)}) == WORLD_TWEETS[::-1]  # nothing was harmed


def test_search_words_that_are_fts_operators_match_as_words(world: World) -> None:
    syntax = [WORLD_TWEETS[-1]]
    assert texts(world.api.get_json(f"/tweets/search?q={quote('NEAR( AND OR')}")) == syntax
    assert texts(world.api.get_json(f"/tweets/search?q={quote('syntax NOT')}")) == []


def test_empty_search_finds_nothing(world: World) -> None:
    for q in ["", "%20", "%22%22"]:
        assert world.api.get_json(f"/tweets/search?q={q}")["tweets"] == []


def test_search_results_page_newest_first(api: Client, alice: User) -> None:
    posted = [post_tweet(api, alice, f"match number {n}")["id"] for n in range(5)]
    post_tweet(api, alice, "something else")
    pages = page_through(api, "/tweets/search?q=match", "tweets", limit=2)
    assert [t["id"] for page in pages for t in page] == posted[::-1]


# --- hashtags ----------------------------------------------------------------------------------

def tag_counts(api: Client, q: str = "") -> list[tuple[str, int]]:
    tags = api.get_json(f"/hashtags?q={quote(q)}")["hashtags"]
    return [(tag["tag"], tag["tweets"]) for tag in tags]


def test_hashtags_are_listed_most_used_first(api: Client, alice: User) -> None:
    post_tweet(api, alice, "#python #pytest")
    post_tweet(api, alice, "#Python #rust")
    post_tweet(api, alice, "#PYTHON #pytest #python")
    post_tweet(api, alice, "#Ünïcode")
    assert tag_counts(api) == [("python", 3), ("pytest", 2), ("rust", 1), ("ünïcode", 1)]
    assert tag_counts(api, "py") == [("python", 3), ("pytest", 2)]
    assert tag_counts(api, "#PyTe") == [("pytest", 2)]
    assert tag_counts(api, "ÜN") == [("ünïcode", 1)]
    assert tag_counts(api, "java") == []
    assert [tag["tag"] for tag in api.get_json("/hashtags?limit=1")["hashtags"]] == ["python"]


def test_tag_counts_follow_edits_and_deletes(api: Client, alice: User) -> None:
    first = post_tweet(api, alice, "#a #b")
    second = post_tweet(api, alice, "#a #c")
    assert tag_counts(api) == [("a", 2), ("b", 1), ("c", 1)]
    edit_tweet(api, alice, first["id"], "#a #d")  # keeps a, drops b, adds d
    assert tag_counts(api) == [("a", 2), ("c", 1), ("d", 1)]
    edit_tweet(api, alice, first["id"], "no tags now")
    assert tag_counts(api) == [("a", 1), ("c", 1)]
    delete_tweet(api, alice, second["id"])
    assert tag_counts(api) == []
    assert api.get_json("/hashtags/a/tweets")["tweets"] == []


def test_an_overlong_tag_prefix_is_a_400(api: Client) -> None:
    assert api.get(f"/hashtags?q={'a' * 100}").status == 200
    answer = api.get(f"/hashtags?q={'a' * 101}")
    assert answer.status == 400 and error_code(answer) == "invalid_query"
    assert api.get("/hashtags?limit=0").status == 400


def test_a_tags_tweets_are_found_ignoring_case(api: Client, alice: User, bob: User) -> None:
    one = post_tweet(api, alice, "#Python is nice")
    post_tweet(api, bob, "no tag here, python")
    two = post_tweet(api, bob, "me too #PYTHON")
    cafe = post_tweet(api, bob, "un #Café")
    for tag in ["python", "Python", "PYTHON", "%23python"]:
        page = api.get_json(f"/hashtags/{tag}/tweets")
        assert [t["id"] for t in page["tweets"]] == [two["id"], one["id"]], tag
    for tag in ["caf%C3%A9", "CAF%C3%89"]:
        assert [t["id"] for t in api.get_json(f"/hashtags/{tag}/tweets")["tweets"]] == \
            [cafe["id"]]
    assert api.get_json("/hashtags/nothing/tweets") == {"tweets": [], "next": None, "prev": None,
                                                        "authors": {}}
    pages = page_through(api, "/hashtags/python/tweets", "tweets", limit=1)
    assert [t["id"] for page in pages for t in page] == [two["id"], one["id"]]


@pytest.mark.parametrize("tag", ["%23", "%23%23", "a" * 101])
def test_a_tag_that_cannot_exist_is_a_404(world: World, tag: str) -> None:
    answer = world.api.get(f"/hashtags/{tag}/tweets")
    assert answer.status == 404 and error_code(answer) == "not_found"
