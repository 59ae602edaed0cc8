"""NWS4 request signatures, checked the way the PORTOS API checks them.

The seeds do not describe NWS4; this follows PORTOS's public client library
(ninedigit/nws4-php): an `Authorization: NWS4-HMAC-SHA256 <url-encoded
Credential=…,SignedHeaders=…,Timestamp=…,Signature=…>` header over a
canonical request (method, path, sorted query, the signed headers lower-cased,
their names, the SHA-256 of the body), a string to sign (algorithm, timestamp,
clientId, SHA-256 of the canonical request) and a key HMAC("NWS4"+secret,
date). Written separately from kds's signer so the two check each other;
`tests/test_portos_sim.py` pins it to that library's published test vector.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote, urlsplit

PREFIX = "NWS4-HMAC-SHA256 "
MAX_SKEW = timedelta(minutes=5)
_SPACES = re.compile(r"\s+")


def _enc(text: str) -> str:
    # RFC 3986 unreserved characters stay; everything else is %XX (like PHP's rawurlencode).
    return quote(text, safe="-_.~")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(
    method: str, url: str, headers: Mapping[str, str], names: list[str], body_hash: str
) -> str:
    parts = urlsplit(url)
    path = (
        "/" + "/".join(_enc(segment) for segment in parts.path.lstrip("/").split("/"))
        if parts.path
        else "/"
    )
    pairs: dict[str, str] = {}
    for chunk in parts.query.split("&") if parts.query else []:
        key, _, rest = chunk.partition("=")
        pairs[key] = rest.split("=")[0]  # as the reference client: the text up to a second '='
    query = "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(pairs.items()))
    lines = "\n".join(f"{n}:{_SPACES.sub(' ', headers[n]).strip()}" for n in sorted(names))
    signed = ";".join(sorted(names, key=str.upper))
    return "\n".join([method.upper(), path, query, lines, signed, body_hash])


def verify(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    keys: Mapping[str, str],
    *,
    now: datetime | None = None,
) -> str:
    """The clientId of a correctly signed request; ValueError saying why not."""
    given = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    if not given.startswith(PREFIX):
        raise ValueError("not an NWS4 Authorization header")
    fields = {}
    for part in unquote(given[len(PREFIX) :]).split(","):
        key, sep, value = part.partition("=")
        if sep:
            fields[key.strip()] = unquote(value)
    client_id = fields.get("Credential", "")
    if client_id not in keys:
        raise ValueError("unknown clientId")
    timestamp = fields.get("Timestamp", "")
    lower = {k.lower(): v for k, v in headers.items()}
    names = [n for n in fields.get("SignedHeaders", "").split(";") if n]
    for required in ("host", "x-nd-date", "x-nd-content-sha256"):
        if required not in names:
            raise ValueError(f"{required} is not signed")
    if any(n not in lower for n in names):
        raise ValueError("a signed header is missing")
    if lower["x-nd-date"] != timestamp:
        raise ValueError("x-nd-date differs from the signed timestamp")
    try:
        when = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError("timestamp is not yyyy-MM-ddTHH:mm:ss.fffZ") from None
    if abs((now or datetime.now(UTC)) - when) > MAX_SKEW:
        raise ValueError("timestamp too far from the server's clock")
    body_hash = _sha256(body)
    if lower["x-nd-content-sha256"] != body_hash:
        raise ValueError("body does not match x-nd-content-sha256")
    canonical = _canonical(method, url, lower, names, body_hash)
    to_sign = "\n".join(["NWS4-HMAC-SHA256", timestamp, client_id, _sha256(canonical.encode())])
    key = hmac.new(
        f"NWS4{keys[client_id]}".encode(), timestamp[:10].encode(), hashlib.sha256
    ).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields.get("Signature", "")):
        raise ValueError("signature mismatch")
    return client_id
