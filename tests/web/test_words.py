"""Unit tests of what the pages say: counts, times, tweet lengths, and links in tweets."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from api import rules
from web import words
from web.render import tweet_text

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize("count, said", [(0, "0 tweets"), (1, "1 tweet"), (2, "2 tweets"),
                                         (1024, "1,024 tweets")])
def test_plural(count: int, said: str) -> None:
    assert words.plural(count, "tweet") == said


@pytest.mark.parametrize("iso, said", [
    ("2026-12-02T11:59:30Z", "just now"),
    ("2026-12-02T11:55:00Z", "5m ago"),
    ("2026-12-02T09:00:00Z", "3h ago"),
    ("2026-11-30T12:00:00Z", "2d ago"),
    ("2026-11-02T12:00:00Z", "2 Nov"),
    ("2025-12-02T12:00:00Z", "2 Dec 2025"),
    ("not a time", "not a time"),
])
def test_ago_says_how_long_ago_as_social_sites_do(iso: str, said: str) -> None:
    assert words.ago(iso, NOW) == said


def test_the_absolute_time_is_in_utc() -> None:
    assert words.absolute("2026-12-02T00:57:00+00:00") == "02 Dec 2026, 00:57 UTC"
    assert words.absolute("2026-12-02T01:57:00+01:00") == "02 Dec 2026, 00:57 UTC"


def test_tweets_are_counted_as_the_api_counts_them() -> None:
    assert words.MAX_TWEET == rules.MAX_TWEET
    for text in ["😀" * 150, "  padded\r\n  ", "a\r\nb", "é" * 280, "👩‍👩‍👧"]:
        assert words.tweet_length(text) == len(rules.clean_tweet_text(text))


def test_a_tweet_problem_is_said_in_our_words() -> None:
    assert words.tweet_problem("😀" * 280) == ""
    assert words.tweet_problem(" \n ") == "Write something first: a tweet cannot be empty."
    assert words.tweet_problem("😀" * 281) == (
        "That is 281 characters; a tweet can have at most 280. Shorten it by 1 and post again.")


def test_the_sign_up_problems_are_said_in_our_words() -> None:
    assert words.sign_up_problem("username_taken", "username taken") == (
        "That username is taken. Please choose another.")
    assert "uses for its own pages" in words.sign_up_problem(
        "invalid_username", "'search' is reserved; choose another username")
    assert words.sign_up_problem("something_new", "a new rule") == "A new rule"


# -- links in tweets -----------------------------------------------------------------------

def test_a_web_address_becomes_a_link_that_is_not_followed_for_ranking() -> None:
    shown = tweet_text("Read https://example.org/a?b=1&c=2 now")
    assert shown == ('Read <a href="https://example.org/a?b=1&amp;c=2" rel="nofollow noopener">'
                     'example.org/a?b=1&amp;c=2</a> now')


@pytest.mark.parametrize("text, url", [
    ("see https://example.org/a.", "https://example.org/a"),
    ("(http://example.org/x)", "http://example.org/x"),
    ("https://example.org/#top!", "https://example.org/#top"),
])
def test_punctuation_after_an_address_is_not_part_of_it(text: str, url: str) -> None:
    assert f'href="{url}"' in tweet_text(text)


@pytest.mark.parametrize("text", ['https://x.org/"onmouseover="alert(1)',
                                  "https://x.org/<script>alert(1)</script>",
                                  "https://x.org/'onclick='x"])
def test_an_address_cannot_break_out_of_its_attribute(text: str) -> None:
    shown = tweet_text(text)
    assert "<script" not in shown and '"onmouseover' not in shown and "'onclick" not in shown
    assert shown.count('href="') == 1


@pytest.mark.parametrize("text", ["javascript:alert(1)", "http://", "ftp://example.org/",
                                  "data:text/html,hi"])
def test_only_http_and_https_addresses_are_linked(text: str) -> None:
    assert "<a " not in tweet_text(text)


def test_a_long_address_is_shown_cut_but_linked_whole() -> None:
    url = "https://example.org/" + "a" * 100
    shown = tweet_text(url)
    assert f'href="{url}"' in shown and ">example.org/" + "a" * 27 + "…</a>" in shown


def test_a_hashtag_or_mention_inside_an_address_stays_part_of_the_address() -> None:
    shown = tweet_text("https://example.org/@alice/#tag and #real")
    assert 'href="/accounts/alice"' not in shown and 'href="/tags/tag"' not in shown
    assert 'href="/tags/real"' in shown
