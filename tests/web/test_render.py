"""Unit tests of the templates helper: every value escaped unless it is Markup on purpose, and
tweet text with #hashtags and @usernames linked and everything else escaped."""
from __future__ import annotations

import re
from string import Template

import pytest

from api import rules
from web.render import (MENTION_OR_TAG, Markup, escape, fill, join, parse, path_part, render,
                        tweet_text)

NASTY = '<script>alert("x")</script> & \'quoted\''
NASTY_ESCAPED = ("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "
                 "&#x27;quoted&#x27;")


def test_escape_escapes_markup_characters_and_quotes() -> None:
    assert escape(NASTY) == NASTY_ESCAPED
    assert isinstance(escape(NASTY), Markup)


def test_escape_renders_none_and_numbers_as_text() -> None:
    assert escape(None) == ""
    assert escape(42) == "42"


def test_a_template_is_filled_as_string_template_would_fill_it() -> None:
    text = "<p title=\"$title\">${who}s pay $$5 for $item</p>$item"
    values = {"title": NASTY, "who": Markup("<b>cat</b>"), "item": 7, "unused": "<x>"}
    filled = fill(parse(text), values)
    assert isinstance(filled, Markup)
    assert filled == Template(text).substitute(
        {key: value if isinstance(value, Markup) else escape(value)
         for key, value in values.items()})
    assert filled == f'<p title="{NASTY_ESCAPED}"><b>cat</b>s pay $5 for 7</p>7'


def test_a_template_with_a_value_missing_or_a_lone_dollar_fails_loudly() -> None:
    with pytest.raises(KeyError):
        fill(parse("hello $name"), {})
    with pytest.raises(ValueError):
        parse("costs $ 5")


def test_markup_passes_through_unchanged() -> None:
    assert escape(Markup("<b>bold</b>")) == "<b>bold</b>"


def test_render_escapes_every_value_by_default() -> None:
    page = render("empty.html", message=NASTY)
    assert "<script>" not in page
    assert NASTY_ESCAPED in page


def test_render_escapes_values_inside_attributes() -> None:
    page = render("tab.html", href='/x" onclick="evil()', css="a", label="b", current="")
    assert 'href="/x&quot; onclick=&quot;evil()"' in page
    assert '" onclick="' not in page


def test_render_inserts_markup_raw_only_when_the_code_says_so() -> None:
    raw = render("empty.html", message=Markup("<em>hi</em>"))
    text = render("empty.html", message="<em>hi</em>")
    assert "<em>hi</em>" in raw
    assert "<em>" not in text and "&lt;em&gt;hi&lt;/em&gt;" in text


def test_render_output_is_markup_so_nested_templates_are_not_escaped_twice() -> None:
    inner = render("empty.html", message="a & b")
    outer = render("chart.html", title="t", sentence="s", svg=inner)
    assert isinstance(inner, Markup)
    assert "a &amp; b" in outer and "&amp;amp;" not in outer


def test_join_keeps_markup() -> None:
    joined = join([Markup("<li>1</li>"), Markup("<li>2</li>")])
    assert isinstance(joined, Markup) and joined == "<li>1</li><li>2</li>"


def test_render_refuses_a_missing_value() -> None:
    with pytest.raises(KeyError):
        render("empty.html")


def test_tweet_text_links_hashtags_and_mentions() -> None:
    html = tweet_text("Hello #World from @alice_1")
    assert html == ('Hello <a href="/tags/world">#World</a> from '
                    '<a href="/accounts/alice_1">@alice_1</a>')
    assert isinstance(html, Markup)


def test_tweet_text_escapes_everything_else() -> None:
    html = tweet_text(NASTY + " #tag")
    assert html == NASTY_ESCAPED + ' <a href="/tags/tag">#tag</a>'


def test_tweet_text_escapes_text_glued_to_a_link() -> None:
    html = tweet_text('#a<b>"c"</b> @bob<i>')
    assert "<b>" not in html and "<i>" not in html
    assert '<a href="/tags/a">#a</a>&lt;b&gt;&quot;c&quot;&lt;/b&gt;' in html
    assert '<a href="/accounts/bob">@bob</a>&lt;i&gt;' in html


def test_tweet_text_percent_encodes_unicode_tags_in_links() -> None:
    html = tweet_text("#Café")
    assert html == '<a href="/tags/caf%C3%A9">#Café</a>'


@pytest.mark.parametrize("text", ["mail me at bob@example.com", "a#notatag", "@ab is too short",
                                  "@" + "x" * 31 + " is too long", "a lone # and @"])
def test_tweet_text_does_not_link_what_is_not_a_tag_or_username(text: str) -> None:
    assert "<a " not in tweet_text(text)


def test_path_part_encodes_slashes_and_specials() -> None:
    assert path_part("a/b?c#d é") == "a%2Fb%3Fc%23d%20%C3%A9"


UNICODE_SAMPLES = [
    "Hello #World and #world again",
    "#café #CAFÉ #Straße #日本語 #ОДИН",
    "arabic digits #٣٤ and greek #Αθήνα",
    "glued a#b, _#c, 1#d but (#e) and ,#f and @#g",
    "#tag_with_underscore #tag-with-dash #tag.dot",
    "combining marks #nai\u0308ve and #e\u0301te",
    "emoji #🙂 #ok🙂 zero-width #a\u200bb",
    "@bob#not but #yes@bob and ##double",
    "#" + "x" * 100 + " #" + "y" * 101,
]


@pytest.mark.parametrize("text", UNICODE_SAMPLES)
def test_mention_or_tag_finds_the_same_hashtags_as_the_api(text: str) -> None:
    found = [match.group(1) for match in MENTION_OR_TAG.finditer(text) if match.group(1)]
    web_tags = list(dict.fromkeys(tag.lower() for tag in found if len(tag) <= rules.MAX_TAG))
    assert web_tags == rules.hashtags(text)


def test_mention_or_tag_hashtag_part_is_the_api_rule() -> None:
    # The alternation's first branch is the API's HASHTAG, character for character.
    assert MENTION_OR_TAG.pattern.split("|")[0] == rules.HASHTAG.pattern
    assert MENTION_OR_TAG.flags & re.UNICODE and rules.HASHTAG.flags & re.UNICODE
