"""Pairing a screen: `GET /pair?token=…&next=/screen/grill` stores the token in an HttpOnly cookie.

Two holes are closed here. `next` is only ever a path on this server (an open
redirect sent `next=/%09/host/` to `//host/`). And a link cannot silently
re-pair a screen: when the browser already holds a pairing, the GET answers a
page asking to confirm, and only its own form's POST (same origin, with a
one-time value from a SameSite=Strict cookie) replaces the pairing. The
SameSite=Strict token cookie is not sent on a cross-site click, so a Lax marker
cookie (`kds_paired`, no secret in it) tells that a pairing exists.
"""

from __future__ import annotations

import hmac
import html
import re
import secrets

from aiohttp import web

from ..errors import BadRequest, Forbidden, Unauthorized
from .auth import ACCESS, COOKIE, AccessControl
from .screens import PAGE_HEADERS

#: Set beside the token cookie; sent on cross-site navigations, so a re-pairing link is noticed.
PAIRED = "kds_paired"
#: The one-time value of the confirmation form (double submit).
CONFIRM = "kds_pair_confirm"
YEAR = 365 * 86400

#: A path on this server: one slash, then URL characters only (no control characters, spaces,
#: backslashes — browsers drop tabs and read "\\" as "/", which made "/\t/host" a foreign URL).
_LOCAL_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*")


def local_path(target: str) -> str:
    """`target` if it is a same-origin path, else BadRequest."""
    if not _LOCAL_PATH.fullmatch(target):
        raise BadRequest("next must be a path on this server, like /screen/grill")
    return target


def _known(access: AccessControl, token: str) -> tuple[str, str]:
    found = access.token_role(token) if token else None
    if found is None:
        raise Unauthorized("unknown pairing token")
    return found


def _paired(
    request: web.Request, token: str, target: str, access: AccessControl
) -> web.HTTPSeeOther:
    response = web.HTTPSeeOther(target)
    secure = access.config.secure_cookies
    response.set_cookie(
        COOKIE, token, max_age=YEAR, httponly=True, samesite="Strict", secure=secure, path="/"
    )
    response.set_cookie(
        PAIRED, "1", max_age=YEAR, httponly=True, samesite="Lax", secure=secure, path="/"
    )
    response.del_cookie(CONFIRM, path="/pair")
    return response


async def handle_pair(request: web.Request) -> web.StreamResponse:
    """Pair at once, or, when this browser is paired with another token, ask first."""
    access = request.app[ACCESS]
    token = request.query.get("token", "")
    name, role = _known(access, token)
    target = local_path(request.query.get("next", "/board"))
    current = request.cookies.get(COOKIE)
    if (current is None and PAIRED not in request.cookies) or current == token:
        raise _paired(request, token, target, access)
    nonce = secrets.token_urlsafe(24)
    response = web.Response(
        text=_confirm_page(token, target, name, role, nonce),
        content_type="text/html",
        charset="utf-8",
        headers=PAGE_HEADERS,
    )
    response.set_cookie(
        CONFIRM,
        nonce,
        max_age=600,
        httponly=True,
        samesite="Strict",
        secure=access.config.secure_cookies,
        path="/pair",
    )
    return response


async def handle_pair_confirm(request: web.Request) -> web.StreamResponse:
    """The confirmation form's POST: replace this browser's pairing (the Origin was checked already)."""
    access = request.app[ACCESS]
    form = await request.post()
    token, target, nonce = (str(form.get(k, "")) for k in ("token", "next", "confirm"))
    expected = request.cookies.get(CONFIRM, "")
    if not expected or not hmac.compare_digest(nonce.encode(), expected.encode()):
        raise Forbidden("confirm the pairing on the page kds shows for it")
    _known(access, token)
    raise _paired(request, token, local_path(target), access)


def _confirm_page(token: str, target: str, name: str, role: str, nonce: str) -> str:
    e = html.escape
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kds: replace pairing?</title>
<link rel="stylesheet" href="/static/css/kds.css"></head>
<body class="pair-confirm"><main class="view">
<h1>This screen is already paired</h1>
<p>Replace its pairing with the token <b>{e(name)}</b> (role {e(role)})?</p>
<form method="post" action="/pair">
<input type="hidden" name="token" value="{e(token)}">
<input type="hidden" name="next" value="{e(target)}">
<input type="hidden" name="confirm" value="{e(nonce)}">
<button type="submit" id="confirm-pairing">Replace pairing</button>
<a href="/">Keep the current pairing</a>
</form></main></body></html>
"""


def pairing_routes() -> list[web.RouteDef]:
    """GET and POST /pair."""
    return [web.get("/pair", handle_pair), web.post("/pair", handle_pair_confirm)]
