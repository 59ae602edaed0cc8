"""The HTTP client every POS client builds on: one session, one answer to every failure.

PORTOS, ready2order and the cheques API are spoken to by subclasses of
`PosClient`, so a POS that misbehaves is handled the same way whichever it is:

* unreachable, timed out, connection dropped → `SourceUnavailable` (try later);
* HTTP 429 and 5xx → `SourceUnavailable` (a client with a rate limiter reads
  `Retry-After` first);
* HTTP 401 → `SourceUnavailable` naming the credentials (a client that can renew
  its token repeats the request once before it gets here);
* any other non-2xx → `PosRejected`, a `SourceUnavailable` that also says the
  same request will not do better: a poll backs off, a write-back is refused;
* a body that is not JSON → `SourceUnavailable`; an empty body → None.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from ..tls import load_client_trust
from .base import SourceUnavailable


class PosRejected(SourceUnavailable):
    """The POS answered a 4xx other than 401/429: repeating the same request will not help."""

    def __init__(self, status: int, detail: str, where: str = "") -> None:
        super().__init__(
            f"{where}: HTTP {status}: {detail}" if where else f"HTTP {status}: {detail}"
        )
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Answer:
    """A POS's HTTP answer: status, body and headers."""

    status: int
    body: bytes
    headers: Mapping[str, str]


def error_detail(raw: bytes) -> str:
    """The reason in an error answer (its message/detail/error field, else the start of the body)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", "replace")
    if isinstance(data, dict):
        return str(data.get("message") or data.get("detail") or data.get("error") or data)[:200]
    return str(data)[:200]


class PosClient:
    """An aiohttp session to one POS with the shared mapping of failures to errors."""

    #: The POS's name in error messages.
    pos = "POS"

    def __init__(self, *, timeout: float) -> None:
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0

    async def start(self) -> None:
        """Open the connection pool (with the CA certificates a `kds run` start left out)."""
        load_client_trust()
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout), raise_for_status=False
        )

    async def stop(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def count(self, outcome: str) -> None:
        """Hook: one request ended with `outcome` (ok, unreachable, http_5xx, ...)."""

    async def send(
        self,
        method: str,
        url: str | URL,
        *,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Answer:
        """Send one request; SourceUnavailable when no answer came."""
        assert self._session is not None, "client not started"
        self.requests += 1
        try:
            async with self._session.request(
                method, url, data=data, headers=headers, params=params
            ) as resp:
                return Answer(resp.status, await resp.read(), resp.headers)
        except (TimeoutError, aiohttp.ClientError) as err:
            self.count("unreachable")
            reason = (
                "timed out" if isinstance(err, TimeoutError) else f"{type(err).__name__}: {err}"
            )
            raise SourceUnavailable(
                f"{self.pos} unreachable ({method} {URL(url).path}): {reason}"
            ) from err

    def check(self, answer: Answer, where: str) -> None:
        """Raise the shared error for a non-2xx answer (see the module docstring)."""
        status = answer.status
        if status == 401:
            self.count("unauthorized")
            raise SourceUnavailable(
                f"{where}: HTTP 401 Unauthorized (check the token or credentials)"
            )
        if status == 429 or status >= 500:
            self.count(f"http_{status // 100}xx")
            raise SourceUnavailable(f"{where}: HTTP {status}")
        if status >= 300 or status < 200:
            self.count(f"http_{status // 100}xx")
            raise PosRejected(status, error_detail(answer.body), where)

    def json(self, answer: Answer, where: str) -> Any:
        """The answer's JSON (None when empty); SourceUnavailable when it is not JSON."""
        if not answer.body.strip():
            self.count("ok")
            return None
        try:
            value = json.loads(answer.body)
        except ValueError as err:
            self.count("malformed")
            raise SourceUnavailable(f"{where}: malformed JSON in the answer") from err
        self.count("ok")
        return value

    def read(self, answer: Answer, where: str) -> Any:
        """`check` then `json`: the JSON of a successful answer."""
        self.check(answer, where)
        return self.json(answer, where)
