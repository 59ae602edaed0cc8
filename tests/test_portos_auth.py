"""PORTOS auth helpers: NWS4 signing (pinned to the vendor's published vector) and token bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kds.sources.portos.auth import TokenManager, jwt_expiry, nws4_sign, nws4_verify

PUBLIC = "d948ec22e47790caacce234b792a0f117d85c365"
SECRET = "5070adfb2bedf1c0c97d5c8cfa8c794d513249b802ea10596a175d88828abc19"
NOW = datetime(2023, 5, 30, 13, 17, 1, 992000, tzinfo=UTC)
URL = "http://example.com:8080/api/user?i=1$ref=1&validate"
BODY = b'{"name":"John"}'
#: The Authorization header ninedigit/nws4-php's test vector expects for URL, BODY at NOW.
AUTHORIZATION = (
    "NWS4-HMAC-SHA256 Credential%3Dd948ec22e47790caacce234b792a0f117d85c365%2CSignedHeaders%3Daccept%253B"
    "content-type%253Bhost%253Bx-nd-content-sha256%253Bx-nd-date%2CTimestamp%3D2023-05-30T13%253A17%253A01.992Z"
    "%2CSignature%3D87c7a2057285f0db8dc3b7c95c15fe5476f5ab44b73b3e15990d8b1a837d4ddb"
)


def test_nws4_matches_reference_client_vector() -> None:
    # The test vector of ninedigit/nws4-php (PORTOS's reference client library).
    headers = nws4_sign(
        "POST",
        URL,
        {"Content-Type": "application/json", "Accept": "application/json"},
        BODY,
        PUBLIC,
        SECRET,
        NOW,
    )
    assert headers["x-nd-date"] == "2023-05-30T13:17:01.992Z"
    assert (
        headers["x-nd-content-sha256"]
        == "f498513cc6d902a32254a1d795e2031636dea18dce65ba10e94e83189e50cbb8"
    )
    assert headers["host"] == "example.com:8080"
    assert headers["Authorization"] == AUTHORIZATION


def test_nws4_verify_accepts_only_the_signed_request() -> None:
    headers = nws4_sign("POST", URL, {"Accept": "application/json"}, BODY, PUBLIC, SECRET, NOW)
    assert nws4_verify("POST", URL, headers, BODY, {PUBLIC: SECRET}, now=NOW) == PUBLIC
    for method, url, body, secrets, now in [
        ("PUT", URL, BODY, {PUBLIC: SECRET}, NOW),
        ("POST", URL.replace("user", "users"), BODY, {PUBLIC: SECRET}, NOW),
        ("POST", URL, b"{}", {PUBLIC: SECRET}, NOW),
        ("POST", URL, BODY, {PUBLIC: "other"}, NOW),
        ("POST", URL, BODY, {}, NOW),
        ("POST", URL, BODY, {PUBLIC: SECRET}, NOW + timedelta(hours=1)),
    ]:
        with pytest.raises(ValueError):
            nws4_verify(method, url, headers, body, secrets, now=now)


def test_jwt_expiry_reads_exp_or_gives_none() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDB9.sig"  # {"exp": 1700000000}
    assert jwt_expiry(token) == 1700000000
    assert jwt_expiry("opaque-token") is None


async def test_token_manager_refreshes_near_expiry_and_after_401() -> None:
    # Near expiry the refresh token is used; a refused refresh falls back to login.
    clock = [1000.0]
    issued: list[str] = []

    def make(exp: float) -> dict[str, str]:
        import base64
        import json

        payload = (
            base64.urlsafe_b64encode(json.dumps({"exp": exp, "n": len(issued)}).encode())
            .decode()
            .rstrip("=")
        )
        token = f"h.{payload}.s"
        issued.append(token)
        return {"tokenId": token, "refreshToken": f"r{len(issued)}"}

    async def login() -> dict[str, str]:
        return make(clock[0] + 100)

    refused = {"r2"}

    async def refresh(rt: str) -> dict[str, str] | None:
        return None if rt in refused else make(clock[0] + 100)

    tm = TokenManager(
        static_token=None, login=login, refresh=refresh, leeway=10, wall_clock=lambda: clock[0]
    )
    first = await tm.token()
    assert tm.logins == 1 and await tm.token() == first
    clock[0] += 95  # inside the leeway: refresh
    second = await tm.token()
    assert second != first and tm.refreshes == 1
    tm.invalidate(second)  # a 401; r2 is refused, so log in again
    third = await tm.token()
    assert third not in (first, second) and tm.logins == 2
    tm.invalidate(first)  # a stale 401 does not throw away the current token
    assert await tm.token() == third


async def test_static_token_is_kept() -> None:
    tm = TokenManager(static_token="abc", login=None, refresh=None)
    tm.invalidate("abc")
    assert await tm.token() == "abc" and not tm.can_renew
