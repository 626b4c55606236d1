"""The two HTML pages of the OAuth authorization-code flow: the log-in form at
/oauth/authorize and the page that shows the code (for apps that asked for it out of band)."""
from __future__ import annotations

import html
from typing import Any

from httpkit import Response

HTML = "text/html; charset=utf-8"
# Nothing but our own inline style, and never inside another site's frame (clickjacking).
HEADERS = [("Content-Type", HTML), ("Cache-Control", "no-store"),
           ("Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
           ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"),
           ("X-Content-Type-Options", "nosniff")]
STYLE = """body{font:16px/1.5 system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;
color:#1f2933}h1{font-size:1.4rem}label{display:block;margin-top:1rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #7b8794;border-radius:4px;
font:inherit}button{margin-top:1.25rem;padding:.55rem 1.2rem;font:inherit;font-weight:600;
background:#1d4ed8;color:#fff;border:0;border-radius:4px}.error{color:#9b1c1c;font-weight:600}
code{display:block;font-size:1.1rem;padding:.75rem;background:#f1f5f9;border-radius:4px;
word-break:break-all;user-select:all}"""


def page(title: str, body: str, status: int = 200) -> Response:
    document = (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{esc(title)} · First Price Twitter</title><style>{STYLE}</style>"
                f"</head><body><main>{body}</main></body></html>")
    return Response(status, document.encode(), list(HEADERS))


def login_form(app_name: str, scope: str, hidden: dict[str, str], username: str = "",
               error: str = "", status: int = 200) -> Response:
    fields = "".join(f'<input type="hidden" name="{esc(name)}" value="{esc(value)}">'
                     for name, value in hidden.items())
    problem = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    body = (f"<h1>Log in to use First Price Twitter from {esc(app_name)}</h1>"
            f"<p>{esc(app_name)} asks to <strong>{esc(scope)}</strong> as you. Log in to let "
            f"it; it gets a token of its own, which logging out ends.</p>{problem}"
            f'<form method="post" action="/oauth/authorize">{fields}'
            f'<label for="username">Username</label>'
            f'<input id="username" name="username" value="{esc(username)}" '
            f'autocomplete="username" required autofocus>'
            f'<label for="password">Password</label>'
            f'<input id="password" name="password" type="password" '
            f'autocomplete="current-password" required>'
            f"<button>Log in and allow</button></form>")
    return page("Log in", body, status)


def code_page(app_name: str, code: str) -> Response:
    body = (f"<h1>{esc(app_name)} may now use your account</h1>"
            f"<p>Copy this code into {esc(app_name)}:</p><code>{esc(code)}</code>"
            f"<p>It works once, within ten minutes.</p>")
    return page("Authorization code", body)


def problem_page(message: str, status: int) -> Response:
    return page("Cannot authorize", f"<h1>This app cannot be authorized</h1><p>{esc(message)}"
                                    f"</p>", status)


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)
