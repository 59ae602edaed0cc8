"""Errors as JSON `{error, detail}`, security headers, request ids in logs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from ..errors import KdsError
from .auth import AccessControl
from .screens import not_paired_page, wants_page

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


def request_middleware(
    access: AccessControl,
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """The one middleware: access control, then the handler; every failure as JSON.

    One layer rather than two because it wraps every request (each aiohttp
    middleware adds coroutine frames to the hot path). An unexpected failure is
    a logged 500, never a traceback to the client.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            access.check(request)
            return await handler(request)
        except KdsError as err:
            if err.status in (401, 403) and wants_page(request):
                return not_paired_page(request, err)  # a person at a screen, not an API client
            return web.json_response(err.to_json(), status=err.status, headers=err.headers)
        except web.HTTPRequestEntityTooLarge as err:
            return web.json_response(
                {"error": "payload_too_large", "detail": err.text or "body too large"}, status=413
            )
        except web.HTTPException as err:
            if err.status < 400:
                raise
            detail = (
                err.reason
                if err.text is None or err.text.startswith(f"{err.status}:")
                else err.text
            )
            return web.json_response(
                {"error": err.reason.lower().replace(" ", "_"), "detail": detail},
                status=err.status,
                headers={k: v for k, v in err.headers.items() if k.lower() == "allow"},
            )
        except RecursionError:
            # Deep input (a 10,000-level JSON body) in a parser that is not ours: bad input, not a crash.
            log.warning("http.too_deep", path=loggable_path(request.path), method=request.method)
            return web.json_response(
                {"error": "bad_request", "detail": "the input is nested too deeply"}, status=400
            )
        except Exception:
            log.exception("http.unhandled", path=loggable_path(request.path), method=request.method)
            return web.json_response(
                {"error": "internal", "detail": "internal error; see the daemon log"}, status=500
            )

    return middleware


def loggable_path(path: str) -> str:
    """`path` as it may appear in a log: webhook paths carry their secret, which is cut off."""
    if path.startswith("/hooks/"):
        head = "/".join(path.split("/", 3)[:3])  # "/hooks/<source>"
        return f"{head}/<redacted>" if len(head) < len(path) else head
    return path


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: security headers on every response (pages set a CSP of their own)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
