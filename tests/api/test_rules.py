"""Unit tests, no sockets: the input rules (rules.py), passwords and tokens (auth.py) and the
call log (calllog.py). Token expiry runs on a fake clock."""
from __future__ import annotations

import sys
import tracemalloc

import pytest

from api import auth, rules
from api.calllog import CallLog
from httpkit import HTTPError
from tests.fakes import FakeClock

FAST_N = 2 ** 4


def refused(call: object, *args: str) -> HTTPError:
    """Call ``call(*args)`` expecting an HTTPError; return it."""
    assert callable(call)
    with pytest.raises(HTTPError) as caught:
        call(*args)
    return caught.value


# --- usernames, passwords, display names ------------------------------------------------------

@pytest.mark.parametrize("username", ["abc", "a" * 30, "Alice_99", "___", "007", "searcher"])
def test_a_username_of_3_to_30_letters_digits_or_underscores_is_accepted(username: str) -> None:
    assert rules.validate_username(username) == username


@pytest.mark.parametrize("username", [
    "", "ab", "a" * 31, "al-ice", "al ice", "alice!", "élise", "ali\u0441e",  # Cyrillic с
    "alice\n", "\nalice", "１２３", "alice/x",
])
def test_other_usernames_are_refused_with_400(username: str) -> None:
    err = refused(rules.validate_username, username)
    assert err.status == 400 and err.code == "invalid_username"


@pytest.mark.parametrize("username", ["search", "Search", "SEARCH"])
def test_a_username_that_is_a_route_word_is_refused(username: str) -> None:
    err = refused(rules.validate_username, username)
    assert err.status == 400 and "reserved" in err.message


@pytest.mark.parametrize("password", ["12345678", "x" * 1024, "pässwörd", "        "])
def test_a_password_of_8_to_1024_characters_is_accepted(password: str) -> None:
    assert rules.validate_password(password) == password


@pytest.mark.parametrize("password", ["", "1234567", "😀" * 7, "x" * 1025])
def test_a_password_too_short_or_too_long_is_refused(password: str) -> None:
    err = refused(rules.validate_password, password)
    assert err.status == 400 and err.code == "invalid_password"


def test_a_display_name_is_trimmed_and_its_whitespace_collapsed() -> None:
    assert rules.clean_display_name("  Alice \t  Liddell ", "alice") == "Alice Liddell"


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_a_blank_display_name_becomes_the_username(blank: str) -> None:
    assert rules.clean_display_name(blank, "alice") == "alice"


@pytest.mark.parametrize("name", ["x" * 51, "bell\x07", "nul\x00name"])
def test_a_long_display_name_or_one_with_control_characters_is_refused(name: str) -> None:
    assert refused(rules.clean_display_name, name, "alice").status == 400


def test_a_display_name_of_50_characters_is_accepted() -> None:
    assert rules.clean_display_name("é" * 50, "alice") == "é" * 50


# --- tweet text --------------------------------------------------------------------------------

def test_tweet_text_is_trimmed_and_line_endings_made_plain() -> None:
    assert rules.clean_tweet_text("  \r\n hello\r\nworld\rbye \t ") == "hello\nworld\nbye"


@pytest.mark.parametrize("text", ["", "   ", "\n\t\r\n", "\u3000\u00a0"])
def test_empty_or_whitespace_text_is_refused(text: str) -> None:
    err = refused(rules.clean_tweet_text, text)
    assert err.status == 400 and err.code == "invalid_text"


@pytest.mark.parametrize("text", ["😀" * 280, "a" * 280, "é" * 280, " " * 10 + "a" * 280 + "\n"])
def test_280_characters_after_trimming_are_accepted(text: str) -> None:
    assert len(rules.clean_tweet_text(text)) == 280


@pytest.mark.parametrize("text", ["a" * 281, "😀" * 281, "a" + " " * 279 + "b"])
def test_281_characters_are_refused(text: str) -> None:
    err = refused(rules.clean_tweet_text, text)
    assert err.status == 400 and "281" in err.message


def test_tabs_and_newlines_are_allowed_but_other_control_characters_are_not() -> None:
    assert rules.clean_tweet_text("a\tb\nc") == "a\tb\nc"
    for control in ["\x00", "\x1b[31m", "\x7f", "\x85"]:
        assert refused(rules.clean_tweet_text, f"a{control}b").status == 400


# --- hashtags ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, tags", [
    ("no tags here", []),
    ("#python is fun", ["python"]),
    ("#Python #PYTHON #python", ["python"]),
    ("#b then #a then #B", ["b", "a"]),
    ("Unicode: #Café #日本語 #Ünïcödé #straße", ["café", "日本語", "ünïcödé", "straße"]),
    ("digits and underscores: #2024 #snake_case #_x", ["2024", "snake_case", "_x"]),
    ("punctuation ends a tag: #end. #comma, (#paren) #excl!", ["end", "comma", "paren", "excl"]),
    ("glued to a word is not a tag: a#b mail@x#y", []),
    ("a lone # or #! is not a tag", []),
    ("##double and #a#b", ["double", "a"]),
    ("line\n#start", ["start"]),
])
def test_hashtags_are_parsed_lower_cased_and_deduplicated_in_order(text: str,
                                                                   tags: list[str]) -> None:
    assert rules.hashtags(text) == tags


def test_a_hashtag_over_100_characters_is_not_a_tag() -> None:
    assert rules.hashtags(f"#{'a' * 100} #{'b' * 101}") == ["a" * 100]


# --- passwords ---------------------------------------------------------------------------------

def test_a_password_hash_verifies_only_its_own_password() -> None:
    stored = auth.hash_password("correct horse", FAST_N)
    assert auth.verify_password("correct horse", stored)
    assert not auth.verify_password("correct horsE", stored)
    assert not auth.verify_password("", stored)


def test_a_hash_is_salted_and_never_holds_the_password() -> None:
    first, second = (auth.hash_password("correct horse", FAST_N) for _ in range(2))
    assert first != second
    assert first.startswith(f"scrypt${FAST_N}$8$1$")
    assert "correct" not in first


def test_the_default_cost_hashes_and_verifies() -> None:
    stored = auth.hash_password("correct horse")
    assert stored.startswith("scrypt$16384$8$1$")
    assert auth.verify_password("correct horse", stored)
    assert not auth.verify_password("wrong horse", stored)


@pytest.mark.parametrize("stored", [
    "", "plain", "bcrypt$16$8$1$c2FsdA==$aGFzaA==", "scrypt$x$8$1$c2FsdA==$aGFzaA==",
    "scrypt$16$8$1$not base64!$aGFzaA==", "scrypt$16$8$1$c2FsdA==",
])
def test_a_malformed_stored_hash_never_matches(stored: str) -> None:
    assert not auth.verify_password("anything", stored)


def test_wasting_time_like_a_check_returns_quietly() -> None:
    auth.waste_time_like_a_check("whatever", FAST_N)


# --- tokens ------------------------------------------------------------------------------------

@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def tokens(clock: FakeClock) -> auth.Tokens:
    return auth.Tokens(b"k" * 32, 3600.0, clock)


def test_a_token_names_its_account_and_generation(tokens: auth.Tokens) -> None:
    token = tokens.issue(42, 3)
    assert tokens.check(f"Bearer {token}") == auth.Claims(42, 3, 1_700_003_600)
    assert tokens.check(f"bearer {token}").account_id == 42  # the scheme ignores case


def test_a_token_expires_after_its_ttl(tokens: auth.Tokens, clock: FakeClock) -> None:
    header = f"Bearer {tokens.issue(7, 0)}"
    clock.advance(3599)
    assert tokens.check(header).account_id == 7
    clock.advance(1)
    err = refused(tokens.check, header)
    assert err.status == 401 and "expired" in err.message


def test_a_token_signed_with_another_key_is_refused(tokens: auth.Tokens,
                                                    clock: FakeClock) -> None:
    forged = auth.Tokens(b"another key", 3600.0, clock).issue(7, 0)
    assert refused(tokens.check, f"Bearer {forged}").status == 401


def test_a_token_with_a_changed_account_generation_or_expiry_is_refused(
        tokens: auth.Tokens) -> None:
    account, generation, expiry, signature = tokens.issue(7, 2).split(".")
    for changed in [f"8.{generation}.{expiry}.{signature}",
                    f"{account}.3.{expiry}.{signature}", f"{account}.02.{expiry}.{signature}",
                    f"{account}.{generation}.{int(expiry) + 10**6}.{signature}",
                    f"{account}.{generation}.{expiry}.{signature[:-1]}0",
                    f"{account}.{generation}.{expiry}.", f"{account}.{expiry}.{signature}"]:
        assert refused(tokens.check, f"Bearer {changed}").status == 401


@pytest.mark.parametrize("header", [
    None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token a.b.c", "Bearer a.b",
    "Bearer a.b.c.d", "Bearer ...", "Bearer 1.2.3",
])
def test_a_malformed_authorization_is_refused_with_a_challenge(tokens: auth.Tokens,
                                                               header: str | None) -> None:
    with pytest.raises(HTTPError) as caught:
        tokens.check(header)
    assert caught.value.status == 401 and caught.value.code == "unauthorized"
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("header", "says"), [
    ("Basic dXNlcjpwYXNz", "must be 'Bearer <token>'"), ("Bearer ", "must be 'Bearer <token>'"),
    ("Bearer garbage", "token is not valid"), ("Bearer a.b.c.d", "token is not valid"),
])
def test_a_refusal_says_whether_the_header_or_the_token_is_wrong(tokens: auth.Tokens,
                                                                 header: str, says: str) -> None:
    assert says in refused(tokens.check, header).message


def test_a_token_with_non_ascii_characters_is_refused_with_401(tokens: auth.Tokens) -> None:
    assert refused(tokens.check, "Bearer 1.2.\u00e9").status == 401
    assert refused(tokens.check, "Bearer 1.2.3.\u00e9").status == 401


# --- the call log ------------------------------------------------------------------------------

def test_the_call_log_keeps_calls_in_order() -> None:
    log = CallLog()
    calls = [("GET", "/tweets/7"), ("POST", "/accounts"), ("DELETE", "/tweets/1"),
             ("PUT", "/tweets/1"), ("HEAD", "/"), ("OPTIONS", "*"), ("PATCH", "/tweets/9")]
    for method, path in calls:
        log.append(method, path)
    assert len(log) == len(calls)
    assert log.page(0, 100) == [list(call) for call in calls]


def test_the_call_log_pages_after_a_count() -> None:
    log = CallLog()
    for n in range(10):
        log.append("GET", f"/tweets/{n}")
    assert log.page(0, 3) == [["GET", "/tweets/0"], ["GET", "/tweets/1"], ["GET", "/tweets/2"]]
    assert log.page(8, 100) == [["GET", "/tweets/8"], ["GET", "/tweets/9"]]
    assert log.page(10, 100) == [] and log.page(10**9, 5) == []
    assert CallLog().page(0, 10) == []


def test_the_call_log_keeps_unusual_methods_and_paths_exactly() -> None:
    log = CallLog()
    odd = [("BREW", "/pot"), ("M-SEARCH", "/a b"), ("GET", "/hashtags/日本語/tweets"),
           ("GET", "/a b/ c "), ("GET", ""), ("PROPFIND", "")]
    for method, path in odd:
        log.append(method, path)
    assert log.page(0, 10) == [list(call) for call in odd]


def fill(log: CallLog, calls: int) -> None:
    """Log ``calls`` realistic calls: GET and POST of /tweets/<six or seven digits>."""
    for n in range(calls):
        log.append("GET" if n % 3 else "POST", f"/tweets/{123_456 + n}")


def test_the_call_log_costs_at_most_100_bytes_per_call() -> None:
    calls = 200_000
    log = CallLog()
    fill(log, calls)
    raw = len(log._data) + log._ends.itemsize * len(log._ends)
    allocated = sys.getsizeof(log._data) + sys.getsizeof(log._ends)
    print(f"\nCallLog, {calls:,} calls like GET /tweets/123456: {raw / calls:.1f} bytes/call "
          f"stored, {allocated / calls:.1f} bytes/call allocated")
    assert len(log) == calls
    assert log.page(calls - 1, 1) == [["GET", f"/tweets/{123_455 + calls}"]]
    assert raw / calls <= 100
    assert allocated / calls <= 100


def test_the_call_log_holds_no_hidden_objects_per_call() -> None:
    calls = 20_000  # tracemalloc slows appends tenfold; the cost per call does not depend on it
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        log = CallLog()
        fill(log, calls)
        traced = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    print(f"\nCallLog, {calls:,} calls under tracemalloc: {traced / calls:.1f} bytes/call")
    assert len(log) == calls
    assert traced / calls <= 100
