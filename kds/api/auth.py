"""Access control: roles, bearer tokens, paired screens, websocket origins, ingest rate.

Roles: `pos` (ingest, cancel), `kitchen` (status changes, station and expo
screens), `viewer` (board, pickup, reading), `admin` (everything). A token is
sent as `Authorization: Bearer …` or, for a paired screen, as the HttpOnly
`kds_token` cookie set by `GET /pair?token=…&next=/screen/grill`. Only the
token's SHA-256 lives in config. Tokens are never logged.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import secrets
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..appkeys import ACTOR
from ..config import SecurityConfig
from ..errors import BadRequest, Forbidden, RateLimited, Unauthorized

COOKIE = "kds_token"
ALL_ROLES = frozenset({"pos", "kitchen", "viewer", "admin"})
READ = ALL_ROLES
INGEST = frozenset({"pos", "admin"})
CHANGE = frozenset({"kitchen", "admin"})
CANCEL = frozenset({"pos", "kitchen", "admin"})

#: Paths anyone may reach (webhooks check their own secret in the path).
PUBLIC_PREFIXES = ("/healthz", "/readyz", "/metrics", "/api/v1/openapi.json", "/static/", "/pair", "/hooks/", "/favicon")

def hash_token(token: str) -> str:
    """The SHA-256 hex digest kept in config for `token`."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token."""
    return secrets.token_urlsafe(32)


def required_roles(request: web.Request) -> frozenset[str] | None:
    """Roles that may use this route; None for public routes."""
    path, method = request.path, request.method
    if path.startswith(PUBLIC_PREFIXES):
        return None
    if path.startswith(("/screen/", "/expo")):
        return CHANGE
    if path.startswith(("/board", "/pickup")) or path == "/":
        return READ
    if path == "/api/v1/orders" and method == "POST":
        return INGEST
    if path.startswith("/api/v1/orders/") and method == "DELETE":
        return CANCEL
    if path.startswith(("/api/v1/orders/", "/api/v1/printers/")) and method == "POST":
        return CHANGE
    if method in ("GET", "HEAD", "OPTIONS"):
        return READ
    return frozenset({"admin"})


class TokenBucket:
    """Per-client token buckets: `rate` requests a second, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        """Spend one token of `key`'s bucket: 0.0, or the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if len(self._buckets) > 10_000:  # forget idle clients rather than grow without bound
            self._buckets.clear()
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate
        self._buckets[key] = (tokens - 1, now)
        return 0.0


class AccessControl:
    """Checks every request against the roles its route needs."""

    def __init__(self, config: SecurityConfig) -> None:
        self.config = config
        self._roles = {t.sha256: t.role for t in config.tokens}
        self._ingest = TokenBucket(config.ingest_rate, config.ingest_burst)

    def role_of(self, request: web.Request) -> str | None:
        """The role of the request's credential; raises Unauthorized for a bad one."""
        token = _bearer(request) or request.cookies.get(COOKIE)
        if token:
            role = self._roles.get(hash_token(token))
            if role is None:
                raise Unauthorized("unknown token")
            return role
        if self.config.access == "open" or (self.config.access == "loopback" and _is_loopback(request.remote)):
            return "admin"
        return None

    def check(self, request: web.Request) -> None:
        """Authenticate, authorise, rate-limit ingest, check websocket origins (raises KdsError)."""
        needed = required_roles(request)
        if needed is not None:
            role = self.role_of(request)
            if role is None:
                raise Unauthorized("this route needs a token: Authorization: Bearer <token>, or pair the screen")
            if role not in needed:
                raise Forbidden(f"role {role!r} may not do this (needs {' or '.join(sorted(needed))})")
            request[ACTOR] = role
        if request.path == "/api/v1/orders" and request.method == "POST":
            wait = self._ingest.take(request.remote or "?")
            if wait:
                raise RateLimited("too many orders from this client; slow down", retry_after=wait)
        if request.path == "/api/v1/ws":
            self._check_origin(request)

    def _check_origin(self, request: web.Request) -> None:
        origin = request.headers.get("Origin")
        if origin is None:
            return  # not a browser: the token check above is what counts
        own = f"{request.scheme}://{request.host}"
        if origin != own and origin not in self.config.allowed_origins:
            raise Forbidden(f"websocket origin {origin!r} is not allowed")


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@functools.lru_cache(maxsize=256)
def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


async def handle_pair(request: web.Request) -> web.StreamResponse:
    """`/pair?token=…&next=/screen/grill`: remember the token in an HttpOnly cookie."""
    access: AccessControl = request.app[ACCESS]
    token = request.query.get("token", "")
    if not token or access._roles.get(hash_token(token)) is None:
        raise Unauthorized("unknown pairing token")
    target = request.query.get("next", "/board")
    if not target.startswith("/") or target.startswith("//"):
        raise BadRequest("next must be a path on this server")
    response = web.HTTPSeeOther(target)
    response.set_cookie(
        COOKIE, token, max_age=365 * 86400, httponly=True, samesite="Strict",
        secure=access.config.secure_cookies, path="/",
    )
    raise response


ACCESS: web.AppKey[AccessControl] = web.AppKey("access")


def token_config_snippet(name: str, role: str, token: str) -> dict[str, Any]:
    """What to paste into [[security.tokens]] for `token`."""
    return {"name": name, "role": role, "sha256": hash_token(token)}
