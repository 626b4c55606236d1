"""What the pages say: counts, times, and the sentences for refused forms.

The API's own messages are written for programmers ("text must not be empty"); the pages say
the same things in words for people, and count as the API does (code points, after trimming).
"""
from __future__ import annotations

from datetime import datetime, timezone

MAX_TWEET = 280  # api.rules.MAX_TWEET; a test keeps the two equal


def plural(count: int, word: str, many: str = "") -> str:
    """Return "1 tweet", "2 tweets", "1,024 likes"."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def moment(iso: str) -> datetime | None:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None


def absolute(iso: str) -> str:
    """Format an ISO 8601 UTC time in full: "02 Dec 2026, 00:57 UTC"."""
    found = moment(iso)
    return found.strftime("%d %b %Y, %H:%M UTC") if found else iso


def ago(iso: str, now: float) -> str:
    """Say how long ago a time was, as social sites do: "just now", "5m", "3h", "2 Dec"."""
    found = moment(iso)
    if found is None:
        return iso
    seconds = now - found.timestamp()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h ago"
    if seconds < 7 * 86400:
        return f"{int(seconds // 86400)}d ago"
    this_year = datetime.fromtimestamp(now, timezone.utc).year == found.year
    return f"{found.day} {found:%b}" + ("" if this_year else f" {found.year}")


def tweet_length(text: str) -> int:
    """Count a tweet as the API does: code points, once trimmed, CRLF as one."""
    return len(text.replace("\r\n", "\n").replace("\r", "\n").strip())


def tweet_problem(text: str) -> str:
    """Say what is wrong with a tweet's text before it is sent, or "" when nothing is."""
    length = tweet_length(text)
    if length == 0:
        return "Write something first: a tweet cannot be empty."
    if length > MAX_TWEET:
        return (f"That is {length:,} characters; a tweet can have at most {MAX_TWEET}. "
                f"Shorten it by {length - MAX_TWEET:,} and post again.")
    return ""


CONTROL_CHARACTERS = ("Tweets cannot hold control characters (invisible formatting codes). "
                      "Remove them and try again.")

# The API's error codes for a sign-up, said for people; another gets the API's own sentence.
SIGN_UP_CODES = {
    "invalid_username": "Usernames are 3 to 30 letters, digits or underscores, with no spaces.",
    "username_taken": "That username is taken. Please choose another.",
    "invalid_password": "Passwords need at least 8 characters (and at most 1,024).",
    "invalid_field": "Display names can have at most 50 characters and no control characters.",
}
RESERVED = "That username is a word this site uses for its own pages. Please choose another."


def sign_up_problem(code: str, message: str) -> str:
    """Return the sentence the sign-up page shows for the API's refusal."""
    if code == "invalid_username" and "reserved" in message:
        return RESERVED
    return SIGN_UP_CODES.get(code, message[:1].upper() + message[1:])
