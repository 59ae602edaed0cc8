"""Talking HTTP to one PORTOS server: auth on every request, paged order lists, metrics.

Failures are answered as every POS client answers them (`kds.sources.http`);
what PORTOS adds is auth: a 401 renews a token once and repeats the request
(`auth.TokenManager`), or every request is NWS4-signed (`auth.nws4_sign`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import structlog
from prometheus_client import CollectorRegistry, Counter
from yarl import URL

from ..base import SourceContext, SourceUnavailable
from ..http import PosClient
from .auth import AuthRejected, TokenManager, nws4_sign
from .config import Config

log = structlog.get_logger(__name__)

MAX_PAGES = 1000


class PortosMetrics:
    """Counters and gauges of PORTOS sources, one set per daemon."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "kds_portos_requests",
            "Requests to PORTOS by outcome",
            ["source", "outcome"],
            registry=registry,
        )
        self.orders = Counter(
            "kds_portos_orders",
            "PORTOS orders handled (ingested, cancelled, rejected)",
            ["source", "outcome"],
            registry=registry,
        )
        self.auth = Counter(
            "kds_portos_auth", "Logins and token refreshes", ["source", "kind"], registry=registry
        )

    @classmethod
    def of(cls, ctx: SourceContext) -> PortosMetrics:
        """The one PortosMetrics of the daemon `ctx` belongs to."""
        return ctx.shared(cls, lambda: cls(ctx.metrics))


def _query(params: Sequence[tuple[str, Any]]) -> str:
    # `$` and NData's `:` `;` `,` stay readable; the exact string is what NWS4 signs.
    return "&".join(f"{quote(k, safe='$')}={quote(str(v), safe=':;,')}" for k, v in params)


class PortosClient(PosClient):
    """Talks HTTP to one PORTOS server: auth, JSON, and errors sorted into retry or not."""

    pos = "PORTOS"

    def __init__(self, config: Config, metrics: PortosMetrics) -> None:
        super().__init__(timeout=config.request_timeout)
        self.config = config
        self._metrics = metrics
        self.last_auth_error: str | None = None
        credentials = config.username is not None
        self.tokens = TokenManager(
            static_token=config.token.get_secret_value() if config.token else None,
            login=self._login if credentials else None,
            refresh=self._refresh if credentials else None,
        )

    def count(self, outcome: str) -> None:
        """Count a request by outcome (`kds_portos_requests`)."""
        self._metrics.requests.labels(self.config.name, outcome).inc()

    def url(self, path: str, params: Sequence[tuple[str, Any]] = ()) -> str:
        """The full URL of `path` under base_url."""
        url = self.config.base_url + path
        return f"{url}?{_query(params)}" if params else url

    async def request(
        self, method: str, path: str, *, params: Sequence[tuple[str, Any]] = (), body: Any = None
    ) -> Any:
        """Send one API request and return its JSON.

        Raises SourceUnavailable when it should be retried later (down, timeout,
        5xx, 429, garbage, auth failing) and PosRejected for other 4xx.
        """
        url = self.url(path, params)
        data = (
            None
            if body is None
            else json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        )
        for attempt in (1, 2):
            headers = {"Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            token: str | None = None
            if self.config.client_id:
                assert self.config.client_secret is not None
                headers = nws4_sign(
                    method,
                    url,
                    headers,
                    data or b"",
                    self.config.client_id,
                    self.config.client_secret.get_secret_value(),
                )
            else:
                try:
                    token = await self.tokens.token()
                except AuthRejected as err:
                    self.last_auth_error = str(err)
                    raise SourceUnavailable(f"PORTOS login failed: {err}") from err
                headers["Authorization"] = f"Bearer {token}"
            # Sent exactly as signed: yarl must not re-quote the query.
            answer = await self.send(method, URL(url, encoded=True), data=data, headers=headers)
            if answer.status == 401 and attempt == 1 and self.tokens.can_renew:
                # Expired or revoked: renew once and repeat this same request.
                self.tokens.invalidate(token)
                continue
            break
        if answer.status == 401:
            self.last_auth_error = "PORTOS answered 401 Unauthorized"
        value = self.read(answer, f"{method} {path}")
        self.last_auth_error = None
        return value

    async def _auth_call(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        answer = await self.send(
            "POST",
            URL(self.url(path), encoded=True),
            data=json.dumps(body).encode(),
            headers=headers,
        )
        if answer.status == 429 or answer.status >= 500:
            raise SourceUnavailable(f"POST {path}: HTTP {answer.status}")
        try:
            return answer.status, json.loads(answer.body) if answer.body.strip() else None
        except ValueError as err:
            raise SourceUnavailable(f"POST {path}: malformed JSON in the answer") from err

    async def _login(self) -> dict[str, Any]:
        assert self.config.password is not None
        body = {
            "UserName": self.config.username,
            "Password": self.config.password.get_secret_value(),
            "DeviceName": self.config.device_name,
        }
        status, result = await self._auth_call(self.config.auth_path, body)
        if status != 200 or not isinstance(result, dict):
            raise AuthRejected(f"login as {self.config.username!r} refused (HTTP {status})")
        self._metrics.auth.labels(self.config.name, "login").inc()
        log.info("portos.logged_in", source=self.config.name, user=self.config.username)
        return result

    async def _refresh(self, refresh_token: str) -> dict[str, Any] | None:
        status, result = await self._auth_call(
            self.config.refresh_path, {"refreshToken": refresh_token}
        )
        if status != 200 or not isinstance(result, dict):
            log.info("portos.refresh_refused", source=self.config.name, http_status=status)
            return None  # refused: log in again
        self._metrics.auth.labels(self.config.name, "refresh").inc()
        return result

    async def fetch_orders(self, filters: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """Every order matching `filters`, page by page (deduplicated by id)."""
        take = self.config.page_size
        found: dict[str, dict[str, Any]] = {}
        skip = 0
        for _ in range(MAX_PAGES):
            page = await self.request(
                "GET",
                "/orders",
                params=[*filters, ("$sort", "number"), ("$skip", skip), ("$take", take)],
            )
            items, total = _query_result(page)
            for order in items:
                found.setdefault(str(order["id"]), order)
            skip += len(items)
            if len(items) < take or (total is not None and skip >= total):
                break
        return list(found.values())


def _query_result(page: Any) -> tuple[list[dict[str, Any]], int | None]:
    """Items and totalCount of a QueryResult; anything else is garbage."""
    if not isinstance(page, dict) or not isinstance(page.get("items"), list):
        raise SourceUnavailable("GET /orders: the answer is not a QueryResult")
    items = page["items"]
    if not all(isinstance(o, dict) and isinstance(o.get("id"), (str, int)) for o in items):
        raise SourceUnavailable("GET /orders: an order without an id in the answer")
    total = page.get("totalCount")
    return items, total if isinstance(total, int) and not isinstance(total, bool) else None
