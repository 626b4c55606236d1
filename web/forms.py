"""The form handlers: posts, likes, edits, deletes, sign-up, log-in and -out, passwords.

Forms use POST-redirect-GET (303), also when a form is refused: the page after the redirect
says why and holds what was typed (``web.session``'s flash cookie), so reloading it never sends
the form again. Every state-changing form carries the browser's CSRF token (``web.session``):
it does not change when someone logs in or out in another tab, so open forms keep working.
Each rendered form that creates something (sign up, log in, post, like) also carries a fresh
key, sent on to the API as ``Idempotency-Key``: the same form sent twice (a double click,
Back, a retry) acts once.
"""
from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Callable
from urllib.parse import parse_qs

from httpkit import HTTPError, Request, Response, UpstreamError, UpstreamResponse, json_response
from httpkit.messages import path_id
from web import session, words
from web.api import api_code, api_message, check, problem_of
from web.context import DRAFT, RequestContext
from web.pages import Pages, like_label, new_key
from web.render import path_part, render
from web.session import Flash

LOG = logging.getLogger(__name__)
# Each idem field is autocomplete="off": Firefox may otherwise put a used key back into a
# reloaded page (Mozilla bug 520561), and the next post from it would not be a new one.
IDEM_FIELD = "idem"
# The keys new_key() makes. Anything else in the field did not come from our page, and a key
# the API refuses would fail the form: it is dropped and the form sent without one.
OUR_KEY = re.compile(r"[A-Za-z0-9_-]{16,255}\Z")
NOT_LOGGED_IN = ("You are not logged in (perhaps you logged out in another tab), so that was "
                 "not posted. Log in and your text will be waiting for you.")
NOT_CHECKED = ("We could not check that this form came from our page (perhaps this site's "
               "cookies were cleared since it was opened). Check it and send it again.")


class Shown(HTTPError):
    """A page that answers a request at once, raised from deep in a form's handling."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status, "shown")
        self.response = response


class Forms(Pages):
    """The handlers of the forms, on top of the pages they come from and go back to."""

    def post_tweet(self, request: Request) -> Response:
        context, form = self.form(request, self.compose_page)
        text = form.get("text", "")
        if not context.session.logged_in:
            return self.log_in_first(context, text)
        problem = words.tweet_problem(text)
        if problem:
            return self.again(context, "/", Flash(error=problem, fields={DRAFT: text}),
                              self.timeline_page)
        try:
            answer = self.api.submit(context, "POST", "/tweets", {"text": text}, form_key(form))
        except HTTPError as err:  # the API is down: the text is kept on the page
            return self.not_sent(context, err, {DRAFT: text}, self.compose_page)
        if answer.status == HTTPStatus.UNAUTHORIZED:
            return self.log_in_first(context, text)
        if answer.status == HTTPStatus.BAD_REQUEST:
            return self.again(context, "/", Flash(error=words.CONTROL_CHARACTERS, fields={
                DRAFT: text}), self.timeline_page)
        failure = problem_of(answer)
        if failure is not None:
            return self.not_sent(context, failure, {DRAFT: text}, self.compose_page)
        context.flash = None  # posted: no draft waits on
        return self.redirect(context, "/", Flash(notice="Posted."))

    def like(self, request: Request) -> Response:
        context, form = self.form(request)
        tweet = path_id(request)
        answer = self.api.submit(context, "POST", f"/tweets/{tweet}/like", None, form_key(form))
        check(answer, "This tweet does not exist any more: it was deleted.")
        if "application/json" in request.headers.get("accept", ""):  # /static/app.js
            likes = int(answer.json()["likes"])
            answer_js = json_response({"id": tweet, "likes": likes, "idem": new_key(),
                                       "label": like_label(likes)},
                                      headers=[("Cache-Control", "no-store")])
            return self.with_cookies(context, answer_js, fresh=True)  # a reload shows the like
        here = local_path(form.get("next", ""), f"/tweets/{tweet}")
        return self.redirect(context, f"{here}#tweet-{tweet}")

    def edit(self, request: Request) -> Response:
        context, form = self.form(request)
        tweet = path_id(request)
        text = form.get("text", "")
        fields = {"edit_id": str(tweet), "edit_text": text}
        problem = words.tweet_problem(text)
        if problem:
            return self.again(context, f"/tweets/{tweet}", Flash(error=problem, fields=fields),
                              self.tweet_view)
        answer = self.api.submit(context, "PUT", f"/tweets/{tweet}", {"text": text})
        if answer.status == HTTPStatus.BAD_REQUEST:
            return self.again(context, f"/tweets/{tweet}", Flash(
                error=words.CONTROL_CHARACTERS, fields=fields), self.tweet_view)
        if answer.status == HTTPStatus.UNAUTHORIZED:
            return self.logged_out(context)
        check(answer, "This tweet does not exist any more: it was deleted.")
        return self.redirect(context, f"/tweets/{tweet}", Flash(notice="Saved."))

    def delete(self, request: Request) -> Response:
        context, _ = self.form(request)
        answer = self.api.submit(context, "DELETE", f"/tweets/{path_id(request)}", None)
        if answer.status == HTTPStatus.UNAUTHORIZED:
            return self.logged_out(context)
        check(answer, "This tweet does not exist any more: it was deleted already.")
        return self.redirect(context, "/", Flash(notice="Deleted."))

    def signup(self, request: Request) -> Response:
        context, form = self.form(request)
        username, display_name = form.get("username", "").strip(), form.get("display_name", "")
        password, key = form.get("password", ""), form_key(form)
        answer = self.api.submit(context, "POST", "/accounts", {
            "username": username, "password": password, "display_name": display_name}, key)
        if answer.status in (HTTPStatus.BAD_REQUEST, HTTPStatus.CONFLICT):
            problem = words.sign_up_problem(api_code(answer), api_message(answer))
            return self.again(context, "/signup", Flash(error=problem, fields={
                "username": username, "display_name": display_name}), self.signup_view)
        check(answer)
        # The same key again: log-ins are keyed apart from sign-ups, and a sign-up sent twice
        # then gets the first log-in's answer too rather than a second session.
        return self.start_session(context, username, password, key,
                                  f"Welcome, @{username}! Your account is ready.")

    def login(self, request: Request) -> Response:
        context, form = self.form(request)
        username, password = form.get("username", "").strip(), form.get("password", "")
        return self.start_session(context, username, password, form_key(form),
                                  f"Logged in as @{username}.")

    def logout(self, request: Request) -> Response:
        context, _ = self.form(request)
        if context.session.token:
            try:  # ends the token for every copy of the cookie; cleared here whatever it says
                self.api.upstream.fetch("DELETE", "/sessions", None,
                                        {"authorization": f"Bearer {context.session.token}"})
            except UpstreamError as err:
                LOG.warning("could not end the session at the API: %s", err)
        context.session = session.Session()
        return self.redirect(context, "/", Flash(notice="Logged out."))

    def change_password(self, request: Request) -> Response:
        context, form = self.form(request)
        user = context.session.user
        if user is None or not context.session.logged_in:
            return self.redirect(context, "/login")
        new = form.get("new_password", "")
        if new != form.get("new_password_again", ""):
            return self.password_again(context, "The two new passwords are not the same.")
        answer = self.api.submit(context, "PUT", f"/accounts/{path_part(user)}/password",
                                 {"password": form.get("password", ""), "new_password": new})
        if answer.status in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED):
            return self.password_refused(context, answer)
        check(answer)
        data = answer.json()  # a token of the new generation: this session goes on
        context.session = session.Session(token=data["token"], user=data["account"]["username"])
        return self.redirect(context, "/password", Flash(
            notice="Your password is changed, and every other session of your account is "
                   "logged out."))

    def password_refused(self, context: RequestContext, answer: UpstreamResponse) -> Response:
        """Say why the API refused a new password, or log out if it refused the session."""
        code = api_code(answer)
        if code == "wrong_password":
            return self.password_again(context, "That is not your current password.")
        if answer.status == HTTPStatus.UNAUTHORIZED:
            return self.logged_out(context)
        if code == "invalid_password":
            return self.password_again(context, "The new password must be at least 8 characters "
                                       "long (and at most 1,024).")
        return self.password_again(context, api_message(answer))

    def password_again(self, context: RequestContext, error: str) -> Response:
        return self.again(context, "/password", Flash(error=error), self.password_view)

    def start_session(self, context: RequestContext, username: str, password: str, key: str | None,
                      welcome: str) -> Response:
        """Log in through the API and keep the token in a new session."""
        credentials = {"username": username, "password": password}
        answer = self.api.submit(context, "POST", "/sessions", credentials, key)
        if answer.status in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED):
            return self.again(context, "/login", Flash(error="Wrong username or password.",
                                                       fields={"username": username}),
                              self.login_view)
        check(answer)
        data = answer.json()
        context.session = session.Session(token=data["token"], user=data["account"]["username"])
        return self.redirect(context, "/", Flash(notice=welcome))

    def logged_out(self, context: RequestContext) -> Response:
        """The API refused our token (expired, or the session was ended): forget it and ask
        to log in again."""
        context.session = session.Session()
        return self.redirect(context, "/login", Flash(notice="You were logged out. Please log in "
                                                      "again."))

    def log_in_first(self, context: RequestContext, text: str) -> Response:
        """Someone not logged in (any more) posted: keep the text until they are."""
        context.session = session.Session()
        return self.again(context, "/login", Flash(notice=NOT_LOGGED_IN, fields={DRAFT: text}),
                          self.compose_page)

    def again(self, context: RequestContext, location: str, flash: Flash,
              show: Callable[[RequestContext], Response]) -> Response:
        """Send the visitor back to a form's page to say what was wrong, the form filled in
        as it was sent, so that reloading that page sends nothing. When that is too much for
        a cookie, ``show`` the form here at once instead, so nothing typed is lost."""
        if session.flash_cookie(self.key, flash) is not None:
            return self.redirect(context, location, flash)
        context.flash, context.status = flash, HTTPStatus.BAD_REQUEST
        return show(context)

    def not_sent(self, context: RequestContext, failure: HTTPError, fields: dict[str, str],
                 show: Callable[[RequestContext], Response]) -> Response:
        """Show the form again at once with what was typed and why it was not sent."""
        context.flash = Flash(error=failure.message, fields=fields)
        context.status = failure.status
        return show(context)

    def form(self, request: Request, show: Callable[[RequestContext], Response] | None = None
             ) -> tuple[RequestContext, dict[str, str]]:
        """Parse a form post and check its CSRF token against the browser's. A form refused
        is answered at once: a page that says cookies are needed when the browser sent none,
        else the form's page (``show``) again with what was typed, or a 403 page."""
        context = RequestContext(request, self.key)
        try:
            fields = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "The form could not be read.") from None
        form = {name: values[0] for name, values in fields.items()}
        if context.checkable and session.same(form.get("csrf_token", ""), context.csrf):
            return context, form
        context.status = HTTPStatus.FORBIDDEN
        kept = {DRAFT: form["text"]} if "text" in form and show is not None else {}
        if context.cookieless:
            raise Shown(self.html(context, "Cookies are needed", render(
                "cookies.html", kept=render("kept.html", text=form["text"]) if kept else "")))
        if show is None:
            raise HTTPError(HTTPStatus.FORBIDDEN, NOT_CHECKED + " Reload the page first.", "csrf")
        context.flash = Flash(error=NOT_CHECKED, fields=kept)
        raise Shown(show(context))


def form_key(form: dict[str, str]) -> str | None:
    """Return the form's idempotency key, or None when it has none of ours (send no header)."""
    key = form.get(IDEM_FIELD, "")
    return key if OUR_KEY.match(key) else None


# A path on this site: one "/", then no second "/" or "\\" at once (that would name another
# host), and nothing but visible characters: no whitespace or control characters, which
# browsers strip (turning "/\t/evil" into "//evil") or which would break the header.
LOCAL_PATH = re.compile(r"/(?![/\\])[!-~\u00a0-\U0010ffff]*\Z")


def local_path(candidate: str, default: str) -> str:
    """Return ``candidate`` if it is a path on this site (no open redirects), else default."""
    return candidate if LOCAL_PATH.match(candidate) and "\\" not in candidate else default
