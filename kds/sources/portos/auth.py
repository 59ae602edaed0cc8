"""PORTOS authentication: JWT bearer tokens (static or from credentials) and NWS4 signing.

PORTOS documents two schemes. *JWT Bearer*: `POST {base}/auth` with
`{UserName, Password, DeviceName}` answers an AuthResult `{tokenId,
refreshToken, user}`; requests carry `Authorization: Bearer {tokenId}`. The
refresh route is not in our seeds; we use `POST {base}/auth/refresh` with
`{refreshToken}` answering a RefreshTokenResult, and fall back to a fresh login
when the refresh fails in any way (refused, 404, garbage, unreachable). *HMAC* ("NWS4", SigV4-like, from PORTOS's public
client libraries): every request is signed with an ApiKey's clientId/clientSecret.
`nws4_sign` reproduces the reference PHP client byte for byte (pinned by its
published test vector in our tests); `nws4_verify` is what the simulator checks.

Only this module and `kds.sources.portos` know these details.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import structlog

log = structlog.get_logger(__name__)

NWS4_ALGORITHM = "NWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_WHITESPACE = re.compile(r"\s+")


# --------------------------------------------------------------------------- NWS4 signing


def _rawurlencode(text: str) -> str:
    """PHP's rawurlencode: RFC 3986, only A-Z a-z 0-9 - _ . ~ left as is."""
    return quote(text, safe="~")


def _host_header(url: str) -> str:
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError("NWS4 signing needs an absolute URL")
    host = parts.hostname
    if parts.port and parts.port not in (80, 443):
        host += f":{parts.port}"
    return host


def _canonical_path(path: str) -> str:
    if not path:
        return "/"
    return "/" + _rawurlencode(path.lstrip("/")).replace("%2F", "/")


def _canonical_query(query: str) -> str:
    if not query:
        return ""
    params: dict[str, str] = {}
    for part in query.split("&"):
        pieces = part.split("=")
        # The reference client keeps only the text between the first and second '='.
        params[pieces[0]] = pieces[1] if len(pieces) > 1 else ""
    return "&".join(f"{_rawurlencode(k)}={_rawurlencode(v)}" for k, v in sorted(params.items()))


def _canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    names = ";".join(sorted((k.lower() for k in headers), key=str.upper))
    lowered = {k.lower(): v for k, v in headers.items()}
    lines = "\n".join(f"{k}:{_WHITESPACE.sub(' ', lowered[k]).strip()}" for k in sorted(lowered))
    return names, lines


def _signature(secret: str, timestamp: str, client_id: str, canonical_request: str) -> str:
    string_to_sign = "\n".join(
        [
            NWS4_ALGORITHM,
            timestamp,
            client_id,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    signing_key = hmac.new(
        ("NWS4" + secret).encode(), timestamp[:10].encode(), hashlib.sha256
    ).digest()
    return hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def _canonical_request(
    method: str, url: str, headers: Mapping[str, str], body_hash: str
) -> tuple[str, str]:
    parts = urlsplit(url)
    names, lines = _canonical_headers(headers)
    canonical = "\n".join(
        [
            method.upper(),
            _canonical_path(parts.path),
            _canonical_query(parts.query),
            lines,
            names,
            body_hash,
        ]
    )
    return names, canonical


def format_timestamp(now: datetime) -> str:
    """`2023-05-30T13:17:01.992Z`: UTC with milliseconds."""
    now = now.astimezone(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def nws4_sign(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    client_id: str,
    client_secret: str,
    now: datetime | None = None,
) -> dict[str, str]:
    """Return `headers` plus x-nd-date, x-nd-content-sha256, host and Authorization.

    `url` must be the exact (already encoded) URL that is sent; every header in
    the result except Authorization is signed.
    """
    timestamp = format_timestamp(now or datetime.now(UTC))
    body_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    signed = dict(headers)
    signed["x-nd-date"] = timestamp
    signed["x-nd-content-sha256"] = body_hash
    signed["host"] = _host_header(url)
    names, canonical = _canonical_request(method, url, signed, body_hash)
    signature = _signature(client_secret, timestamp, client_id, canonical)
    credential = ",".join(
        [
            f"Credential={client_id}",
            f"SignedHeaders={_rawurlencode(names)}",
            f"Timestamp={_rawurlencode(timestamp)}",
            f"Signature={signature}",
        ]
    )
    signed["Authorization"] = f"{NWS4_ALGORITHM} {_rawurlencode(credential)}"
    return signed


def nws4_verify(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Mapping[str, str],
    *,
    now: datetime | None = None,
    max_skew: timedelta = timedelta(minutes=5),
) -> str:
    """Check a signed request; return its clientId or raise ValueError saying why."""
    authorization = headers.get("Authorization", "")
    prefix = NWS4_ALGORITHM + " "
    if not authorization.startswith(prefix):
        raise ValueError("not an NWS4 Authorization header")
    fields = dict(
        part.split("=", 1)
        for part in unquote(authorization[len(prefix) :]).split(",")
        if "=" in part
    )
    client_id = fields.get("Credential", "")
    if client_id not in secrets:
        raise ValueError("unknown clientId")
    names = unquote(fields.get("SignedHeaders", "")).split(";")
    timestamp = unquote(fields.get("Timestamp", ""))
    lower = {k.lower(): v for k, v in headers.items()}
    if lower.get("x-nd-date") != timestamp:
        raise ValueError("x-nd-date does not match the signed timestamp")
    try:
        when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("bad timestamp") from None
    if abs((now or datetime.now(UTC)) - when) > max_skew:
        raise ValueError("timestamp outside the allowed clock skew")
    body_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    if lower.get("x-nd-content-sha256") != body_hash:
        raise ValueError("body hash mismatch")
    missing = [n for n in ("host", "x-nd-date", "x-nd-content-sha256") if n not in names]
    if missing or any(n not in lower for n in names):
        raise ValueError("required headers are not signed")
    _, canonical = _canonical_request(method, url, {n: lower[n] for n in names}, body_hash)
    expected = _signature(secrets[client_id], timestamp, client_id, canonical)
    if not hmac.compare_digest(expected, fields.get("Signature", "")):
        raise ValueError("signature mismatch")
    return client_id


# --------------------------------------------------------------------------- JWT tokens


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim (epoch seconds) of a JWT, or None if it has none or is opaque."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = claims.get("exp")
        return float(exp) if isinstance(exp, (int, float)) else None
    except (IndexError, ValueError, AttributeError):
        return None


class AuthRejected(Exception):
    """PORTOS refused our credentials (bad user/password, inactive key): retrying will not help soon."""


class TokenManager:
    """Holds the current bearer token: static, or logged in and refreshed from credentials.

    `token()` returns a valid token (logging in or refreshing first when the
    known expiry is near); `invalidate(token)` after a 401 makes the next call
    refresh. One lock makes concurrent requests share a single refresh.
    """

    def __init__(
        self,
        *,
        static_token: str | None,
        login: Callable[[], Awaitable[dict[str, Any]]] | None,
        refresh: Callable[[str], Awaitable[dict[str, Any] | None]] | None,
        leeway: float = 30.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._static = static_token
        self._login = login
        self._refresh = refresh
        self._leeway = leeway
        self._now = wall_clock
        self._token: str | None = static_token
        self._refresh_token: str | None = None
        self._expires: float | None = None
        self._lock = asyncio.Lock()
        self.logins = 0
        self.refreshes = 0

    @property
    def can_renew(self) -> bool:
        """True when a 401 can be answered by logging in again."""
        return self._login is not None

    def _fresh(self) -> bool:
        if self._token is None:
            return False
        return self._expires is None or self._now() < self._expires - self._leeway

    async def token(self) -> str | None:
        """A token to send now (None when no bearer auth is configured)."""
        if self._login is None or self._fresh():
            return self._token
        async with self._lock:
            if not self._fresh():
                await self._renew()
            return self._token

    def invalidate(self, token: str | None) -> None:
        """The server answered 401 to `token`: forget it (unless already replaced)."""
        if self._login is not None and token == self._token:
            self._token = None

    async def _renew(self) -> None:
        result: dict[str, Any] | None = None
        if self._refresh is not None and self._refresh_token:
            refresh_token, self._refresh_token = (
                self._refresh_token,
                None,
            )  # used once, whatever happens
            try:
                result = await self._refresh(refresh_token)
            except Exception as err:
                log.info("portos.refresh_failed", error=str(err) or type(err).__name__)
                result = None
            if (
                isinstance(result, dict)
                and isinstance(result.get("tokenId"), str)
                and result["tokenId"]
            ):
                self.refreshes += 1
            else:
                result = None
        if result is None:
            assert self._login is not None
            result = await self._login()
            self.logins += 1
        token = result.get("tokenId")
        if not isinstance(token, str) or not token:
            raise AuthRejected("PORTOS auth answered without a tokenId")
        self._token = token
        self._refresh_token = result.get("refreshToken") or None
        self._expires = jwt_expiry(token)
