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
import socket
import time
from collections.abc import Callable
from typing import Any

from aiohttp import hdrs, web

from ..appkeys import ACTOR
from ..config import SecurityConfig, ServerConfig
from ..errors import Forbidden, KdsError, RateLimited, Unauthorized, UnsupportedMediaType
from .views import SCOPE

COOKIE = "kds_token"
ALL_ROLES = frozenset({"pos", "kitchen", "viewer", "admin"})
READ = ALL_ROLES
INGEST = frozenset({"pos", "admin"})
CHANGE = frozenset({"kitchen", "admin"})
CANCEL = frozenset({"pos", "kitchen", "admin"})
#: Host headers remembered as served (forgotten all at once beyond this).
KNOWN_HOSTS = 256

#: Paths anyone may reach (webhooks check their own secret in the path).
#: /readyz answers its status to anyone and its details only to a caller with a role (see health.py);
#: /metrics is a read like any other.
PUBLIC_PREFIXES = (
    "/healthz",
    "/readyz",
    "/api/v1/openapi.json",
    "/static/",
    "/pair",
    "/hooks/",
    "/favicon",
)


def hash_token(token: str) -> str:
    """The SHA-256 hex digest kept in config for `token`."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token."""
    return secrets.token_urlsafe(32)


def required_roles(request: web.Request) -> frozenset[str] | None:
    """Roles that may use this route; None for public routes."""
    return _required_roles(request.path, request.method)


def _required_roles(path: str, method: str) -> frozenset[str] | None:
    if path.startswith(PUBLIC_PREFIXES):
        return None
    if path.startswith(("/screen/", "/expo")):
        return CHANGE
    if path.startswith(("/board", "/pickup")) or path == "/":
        return READ
    if path == "/api/v1/orders" and method == "POST":
        return INGEST
    if path.startswith("/api/v1/orders/") and (
        method == "DELETE" or (method == "POST" and path.endswith("/rush"))
    ):
        return CANCEL  # a cashier (pos) may rush an order as well as cancel it
    if (
        path.startswith(("/api/v1/orders/", "/api/v1/printers/", "/api/v1/sources/"))
        and method == "POST"
    ):
        return CHANGE
    if method in ("GET", "HEAD", "OPTIONS"):
        return READ
    return frozenset({"admin"})


class TokenBucket:
    """Per-client token buckets: `rate` requests a second, bursts up to `burst`."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
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
    """Checks every request against the roles its route needs, and where it comes from."""

    def __init__(self, config: SecurityConfig, server: ServerConfig | None = None) -> None:
        self.config = config
        self._roles = {t.sha256: t.role for t in config.tokens}
        self._names = {t.sha256: t.name for t in config.tokens}
        self._scopes = {
            t.sha256: frozenset(t.endpoints) for t in config.tokens if t.endpoints is not None
        }
        self._ingest = TokenBucket(config.ingest_rate, config.ingest_burst)
        self._hosts = served_hosts(server or ServerConfig())
        #: Host headers found to name a host kds serves (only those: a refusal is checked again).
        self._served: set[str] = set()

    def token_role(self, token: str) -> tuple[str, str] | None:
        """(name, role) of a configured token, or None."""
        digest = hash_token(token)
        role = self._roles.get(digest)
        return None if role is None else (self._names[digest], role)

    def may_read(self, request: web.Request) -> bool:
        """True when the request carries a credential (or network trust) good for reading."""
        try:
            return self.role_of(request) in READ
        except KdsError:
            return False

    def role_of(self, request: web.Request) -> str | None:
        """The role of the request's credential; raises Unauthorized for a bad one.

        Without a credential, trust comes from the network (`open`, or `loopback`
        from this machine) — and only for a name kds serves: a browser on the kds
        box visiting a rebinding name (evil.example → 127.0.0.1) is no admin.
        """
        token = _bearer(request) or _cookie_token(request)
        if token:
            digest = hash_token(token)
            role = self._roles.get(digest)
            if role is None:
                raise Unauthorized("unknown token")
            if digest in self._scopes:
                request[SCOPE] = self._scopes[digest]
            return role
        if self.config.access == "open" or (
            self.config.access == "loopback" and _is_loopback(request.remote)
        ):
            self._check_host(request)
            return "admin"
        return None

    def check(self, request: web.Request) -> None:
        """Origins and media types of changes, roles, the ingest rate (raises KdsError)."""
        path, method = request.path, request.method
        if method not in SAFE_METHODS:
            self._check_origin(request)
            _check_json(request, path)
        needed = _required_roles(path, method)
        if needed is not None:
            role = self.role_of(request)
            if role is None:
                raise Unauthorized(
                    "this route needs a token: Authorization: Bearer <token>, or pair the screen"
                )
            if role not in needed:
                raise Forbidden(
                    f"role {role!r} may not do this (needs {' or '.join(sorted(needed))})"
                )
            request[ACTOR] = role
            # Only a scoped token sets SCOPE; without any, `in` on the request (a Mapping that
            # answers it by catching KeyError) would cost an exception on every request.
            if self._scopes and SCOPE in request:
                _check_scope(request, request[SCOPE])
        if self._ingest.rate > 0 and path == "/api/v1/orders" and method == "POST":
            wait = self._ingest.take(request.remote or "?")
            if wait:
                raise RateLimited("too many orders from this client; slow down", retry_after=wait)
        if path == "/api/v1/ws":
            self._check_origin(request)

    def _check_origin(self, request: web.Request) -> None:
        """A browser's request from another site (a page's fetch, form or websocket) is refused."""
        origin = request.headers.get("Origin")
        if origin is None:
            return  # not a browser (browsers send Origin on every change and websocket)
        own = f"{request.scheme}://{request.host}"
        if origin != own and origin not in self.config.allowed_origins:
            raise Forbidden(
                f"requests from origin {origin[:100]!r} are not allowed ([security] allowed_origins)"
            )

    def _check_host(self, request: web.Request) -> None:
        header = request.headers.get(hdrs.HOST)
        if header is None:
            return  # browsers always send Host; without it aiohttp would answer with this machine's FQDN
        if header in self._served:
            return  # the same Host header as before (a keep-alive client sends it every time)
        host = host_name(header)
        if host not in self._hosts and not _is_ip(host) and not host.endswith(".localhost"):
            raise Forbidden(
                f"this kds does not serve the name {host[:100]!r} (add it to [server] allowed_hosts)"
            )
        if len(self._served) >= KNOWN_HOSTS:
            self._served.clear()  # bounded: the header is the client's to choose
        self._served.add(header)


#: Methods that change nothing; every other one is a change and must come from this origin.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _check_scope(request: web.Request, scope: frozenset[str]) -> None:
    """A token limited to some endpoints uses their screens and routes only."""
    named = request.match_info.get("endpoint") or request.match_info.get("name")
    if request.path == "/api/v1/ws":
        named = request.query.get("endpoint") or None
    elif named is None and (request.path.startswith("/expo") or request.method not in SAFE_METHODS):
        # The expo and order-wide changes (all items, every endpoint, a cancel) reach past the limit.
        raise Forbidden(
            f"this token is limited to {', '.join(sorted(scope))}: use the routes of those endpoints"
        )
    if named is not None and named not in scope:
        raise Forbidden(f"this token is limited to {', '.join(sorted(scope))}, not {named[:64]!r}")


def _check_json(request: web.Request, path: str) -> None:
    """A body sent to the API must say it is JSON: a cross-site form or text/plain fetch is not."""
    if (
        path.startswith("/api/")
        and request.body_exists
        # Exactly this header is this media type: no need to parse it (aiohttp would, per request).
        and request.headers.get(hdrs.CONTENT_TYPE) != "application/json"
        and request.content_type != "application/json"
    ):
        raise UnsupportedMediaType(
            f"send the body as Content-Type: application/json, not {request.content_type!r}"
        )


def served_hosts(server: ServerConfig) -> frozenset[str]:
    """The names kds answers to where trust comes from the network (IP addresses always pass)."""
    names = {
        "localhost",
        socket.gethostname().lower(),
        *(h.lower().rstrip(".") for h in server.allowed_hosts),
    }
    names.add(f"{socket.gethostname().lower()}.local")
    host = server.host_port[0].lower()
    if host:
        names.add(host)
    return frozenset(names)


def host_name(host: str) -> str:
    """The name in a Host header, without port, brackets or trailing dot, lower-cased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    name, sep, port = host.rpartition(":")
    return (name if sep and port.isascii() and port.isdigit() else host).rstrip(".")


@functools.lru_cache(maxsize=256)
def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _cookie_token(request: web.Request) -> str | None:
    # Without a Cookie header there is no cookie: aiohttp would parse "" into an empty mapping.
    if hdrs.COOKIE not in request.headers:
        return None
    return request.cookies.get(COOKIE)


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


ACCESS: web.AppKey[AccessControl] = web.AppKey("access")


def token_config_snippet(name: str, role: str, token: str) -> dict[str, Any]:
    """What to paste into [[security.tokens]] for `token`."""
    return {"name": name, "role": role, "sha256": hash_token(token)}
