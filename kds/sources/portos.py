"""The PORTOS source: poll its orders, translate them, write every status back.

PORTOS generates an Order after each ticket update and names, per item, the
order endpoints (kitchen stations) that must make it. kds processes the
endpoints it owns (`Config.owns`: named in `endpoints`, else those that are kds
endpoints); lines elsewhere are left to PORTOS and the names reported.

* **poll** — `GET {base_url}/orders?isProcessable=true`, paged with
  `$skip/$take` (sorted by `number` so new orders append), every
  `poll_interval`. Each order not yet known is kept raw in the inbox, then
  translated to `OrderIn` (PORTOS ids, number, ticket, location, purchase type,
  customer, course numbers, comments) and ingested idempotently. A later order
  of the same ticket is its own kitchen order. An order that cannot be read is
  a source alert and is tried again on every poll. A negative line (a return,
  correction or storno) cancels the matching kitchen lines of the ticket; a
  part of a line is voided and the rest sent again (`returns.resend_rest`).
* **deletions** — PORTOS drops a deleted order from its lists. Every
  `reconcile_interval`, open kds orders of this source that are neither
  processable nor unprocessed in PORTOS any more are looked up one by one; a 404
  cancels them in kds.
* **write-back** — the service writes a `writeback` outbox row for each status
  change; the shared `WritebackConsumer` sends it with `PortosWriteback.send`
  (`POST /orders/{id}/endpoints/{name}/status`, or `/items/{itemId}/status`),
  per order strictly in order, retried while PORTOS is down, kept as refused on
  a 4xx, parked while a shared line cannot be said exactly.
* **auth** — a static bearer token, or credentials exchanged for a token that is
  refreshed before it expires and after a 401 (the request is then repeated;
  any failed refresh logs in again), or NWS4 request signing with an ApiKey
  (see `portos_auth`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import weakref
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from yarl import URL

from ..config import Duration
from ..errors import ConflictError, KdsError
from ..model import MAX_TEXT, Order, OrderIn, OrderItem, OrderStatus, PurchaseType
from ..outbox import OutboxEntry
from ..states import FINAL
from .base import HttpUrl, Poller, SourceContext, SourceMetrics, SourceUnavailable
from .portos_auth import AuthRejected, TokenManager, nws4_sign
from .returns import resend_rest, resume_rest, voided_by
from .writeback import WritebackConsumer, WritebackDeferred, WritebackRefused

log = structlog.get_logger(__name__)

WRITES_BACK = True
MAX_PAGES = 1000
ITEM_CACHE_SIZE = 5000
_FINAL_VALUES = frozenset(s.value for s in FINAL)
_STATUS_VALUES = frozenset(s.value for s in OrderStatus)
_PURCHASE_TYPES = frozenset(p.value for p in PurchaseType)


class Config(BaseModel):
    """[[sources]] type = "portos"."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["portos"] = "portos"
    name: str = Field(default="portos", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    base_url: HttpUrl
    # Auth: exactly one of a static token, credentials, or an ApiKey for NWS4 signing.
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    device_name: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    auth_path: str = "/auth"
    refresh_path: str = "/auth/refresh"
    # Polling.
    poll_interval: Duration = 1.0
    page_size: int = Field(default=100, ge=1, le=1000)
    request_timeout: Duration = 10.0
    max_backoff: Duration = 30.0
    reconcile_interval: Duration = 10.0
    # Which PORTOS endpoints this kds processes (empty: those named like a kds [[endpoints]]
    # entry, through endpoint_map), and renames to kds endpoints.
    endpoints: list[str] = Field(default_factory=list)
    endpoint_map: dict[str, str] = Field(default_factory=dict)
    # Optional PORTOS webhooks (X-PORTOS-WEBHOOK-SIGNATURE): each one triggers a poll at once.
    webhook_secret: SecretStr | None = None
    # Write-back.
    writeback_retry: Duration = 0.5
    writeback_max_backoff: Duration = 30.0
    writeback_concurrency: int = Field(default=4, ge=1, le=32)

    @model_validator(mode="after")
    def _one_auth(self) -> Config:
        schemes = [
            self.token is not None,
            self.username is not None or self.password is not None,
            self.client_id is not None or self.client_secret is not None,
        ]
        if sum(schemes) != 1:
            raise ValueError(
                "set exactly one of: token; username + password + device_name; client_id + client_secret"
            )
        if schemes[1] and not (self.username and self.password is not None and self.device_name):
            raise ValueError(
                "credentials need username, password and device_name (the PORTOS DeviceName)"
            )
        if schemes[2] and not (self.client_id and self.client_secret):
            raise ValueError("request signing needs both client_id and client_secret")
        targets = list(self.endpoint_map.values())
        if len(targets) != len(set(targets)):
            raise ValueError(
                "endpoint_map must not map two PORTOS endpoints to one kds endpoint (write-back would be ambiguous)"
            )
        return self

    def to_kds(self, portos_name: str) -> str:
        """The kds endpoint for a PORTOS endpoint name."""
        return self.endpoint_map.get(portos_name, portos_name)

    def to_portos(self, kds_name: str) -> str:
        """The PORTOS endpoint for a kds endpoint name."""
        return next((p for p, k in self.endpoint_map.items() if k == kds_name), kds_name)

    def owns(self, portos_name: str, kds_endpoints: Collection[str]) -> bool:
        """Whether kds processes this PORTOS endpoint (else it is left alone in PORTOS).

        Named in `endpoints`, or — when that list is empty — mapped to a kds
        endpoint by name or through `endpoint_map` (and written back to the same name).
        """
        if self.endpoints:
            return portos_name in self.endpoints
        kds_name = self.to_kds(portos_name)
        return kds_name in kds_endpoints and self.to_portos(kds_name) == portos_name


def check(config: Config, kds_endpoints: Collection[str]) -> list[str]:
    """Cross-checks against the whole config: each endpoint kds claims must be a kds endpoint."""
    errors = [
        f"endpoints: PORTOS endpoint {name!r} is not a kds endpoint (add an [[endpoints]] entry"
        f" named {config.to_kds(name)!r} or map it with endpoint_map)"
        for name in config.endpoints
        if config.to_kds(name) not in kds_endpoints
    ]
    for portos_name, kds_name in config.endpoint_map.items():
        if kds_name not in kds_endpoints:
            errors.append(
                f"endpoint_map: {portos_name!r} maps to {kds_name!r}, which is not a kds endpoint"
            )
    return errors


class PortosRejected(WritebackRefused):
    """PORTOS answered a 4xx other than 401/429: repeating the request will not help."""

    status: int


# --------------------------------------------------------------------------- metrics


class PortosMetrics:
    """Counters and gauges of PORTOS sources, one set per registry."""

    _by_registry: weakref.WeakKeyDictionary[CollectorRegistry, PortosMetrics] = (
        weakref.WeakKeyDictionary()
    )

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
    def for_registry(cls, registry: CollectorRegistry) -> PortosMetrics:
        """The one PortosMetrics of `registry`."""
        if registry not in cls._by_registry:
            cls._by_registry[registry] = cls(registry)
        return cls._by_registry[registry]


# --------------------------------------------------------------------------- HTTP client


def _query(params: Sequence[tuple[str, Any]]) -> str:
    # `$` and NData's `:` `;` `,` stay readable; the exact string is what NWS4 signs.
    return "&".join(f"{quote(k, safe='$')}={quote(str(v), safe=':;,')}" for k, v in params)


class PortosClient:
    """Talks HTTP to one PORTOS server: auth, JSON, and errors sorted into retry or not."""

    def __init__(self, config: Config, metrics: PortosMetrics) -> None:
        self.config = config
        self._metrics = metrics
        self._session: aiohttp.ClientSession | None = None
        self.last_auth_error: str | None = None
        credentials = config.username is not None
        self.tokens = TokenManager(
            static_token=config.token.get_secret_value() if config.token else None,
            login=self._login if credentials else None,
            refresh=self._refresh if credentials else None,
        )

    async def start(self) -> None:
        """Open the connection pool."""
        timeout = aiohttp.ClientTimeout(total=self.config.request_timeout)
        self._session = aiohttp.ClientSession(timeout=timeout, raise_for_status=False)

    async def stop(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def url(self, path: str, params: Sequence[tuple[str, Any]] = ()) -> str:
        """The full URL of `path` under base_url."""
        url = self.config.base_url + path
        return f"{url}?{_query(params)}" if params else url

    async def _send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        assert self._session is not None, "client not started"
        try:
            async with self._session.request(
                method, URL(url, encoded=True), data=body, headers=headers
            ) as resp:
                return resp.status, await resp.read()
        except (TimeoutError, aiohttp.ClientError) as err:
            self._metrics.requests.labels(self.config.name, "unreachable").inc()
            reason = (
                "timed out"
                if isinstance(err, asyncio.TimeoutError)
                else f"{type(err).__name__}: {err}"
            )
            raise SourceUnavailable(
                f"PORTOS unreachable ({method} {URL(url).path}): {reason}"
            ) from err

    async def request(
        self, method: str, path: str, *, params: Sequence[tuple[str, Any]] = (), body: Any = None
    ) -> Any:
        """Send one API request and return its JSON.

        Raises SourceUnavailable when it should be retried later (down, timeout,
        5xx, 429, garbage, auth failing) and PortosRejected for other 4xx.
        """
        url = self.url(path, params)
        data = (
            None
            if body is None
            else json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        )
        status, raw = 0, b""
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
            status, raw = await self._send(method, url, data, headers)
            if status == 401 and attempt == 1 and self.tokens.can_renew:
                # Expired or revoked: renew once and repeat this same request.
                self.tokens.invalidate(token)
                continue
            break
        return self._answer(method, path, status, raw)

    def _answer(self, method: str, path: str, status: int, raw: bytes) -> Any:
        name = self.config.name
        where = f"{method} {path}"
        if status == 401:
            self._metrics.requests.labels(name, "unauthorized").inc()
            self.last_auth_error = "PORTOS answered 401 Unauthorized"
            raise SourceUnavailable(f"{where}: 401 Unauthorized (check the token or credentials)")
        if status == 429 or status >= 500:
            self._metrics.requests.labels(name, f"http_{status // 100}xx").inc()
            raise SourceUnavailable(f"{where}: HTTP {status}")
        if status >= 400:
            self._metrics.requests.labels(name, "http_4xx").inc()
            raise PortosRejected(status, _error_detail(raw))
        self.last_auth_error = None
        if not raw.strip():
            self._metrics.requests.labels(name, "ok").inc()
            return None
        try:
            value = json.loads(raw)
        except ValueError as err:
            self._metrics.requests.labels(name, "malformed").inc()
            raise SourceUnavailable(f"{where}: malformed JSON in the answer") from err
        self._metrics.requests.labels(name, "ok").inc()
        return value

    async def _auth_call(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        data = json.dumps(body).encode()
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        status, raw = await self._send("POST", self.url(path), data, headers)
        if status == 429 or status >= 500:
            raise SourceUnavailable(f"POST {path}: HTTP {status}")
        try:
            return status, json.loads(raw) if raw.strip() else None
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


def _error_detail(raw: bytes) -> str:
    try:
        data = json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", "replace")
    if isinstance(data, dict):
        return str(data.get("message") or data.get("detail") or data.get("error") or data)[:200]
    return str(data)[:200]


def _query_result(page: Any) -> tuple[list[dict[str, Any]], int | None]:
    """Items and totalCount of a QueryResult; anything else is garbage."""
    if not isinstance(page, dict) or not isinstance(page.get("items"), list):
        raise SourceUnavailable("GET /orders: the answer is not a QueryResult")
    items = page["items"]
    if not all(isinstance(o, dict) and isinstance(o.get("id"), (str, int)) for o in items):
        raise SourceUnavailable("GET /orders: an order without an id in the answer")
    total = page.get("totalCount")
    return items, total if isinstance(total, int) and not isinstance(total, bool) else None


# --------------------------------------------------------------------------- translation


def _text(value: Any) -> str | None:
    # POS text is plain text; overlong text is cut, not a reason to lose the order.
    if value is None:
        return None
    return str(value)[:MAX_TEXT]


def foreign_endpoints(
    raw: dict[str, Any], config: Config, kds_endpoints: Collection[str]
) -> list[str]:
    """Names of open item endpoints in an Order that kds does not own, once each per item."""
    names = []
    for item in raw.get("items") or []:
        if not isinstance(item, dict):
            continue
        for ep in item.get("endpoints") or []:
            name = ep.get("name") if isinstance(ep, dict) else None
            status = ep.get("orderItemStatus") or ep.get("status") if isinstance(ep, dict) else None
            if name and status not in _FINAL_VALUES and not config.owns(str(name), kds_endpoints):
                names.append(str(name)[:64])
    return names


#: In the external id of the rest of a partly returned line: kds's own kitchen order, not PORTOS's
#: (no PORTOS id has a "/": they are path segments), so it is neither written back nor reconciled.
REST_MARK = "/rest-of-line-"


@dataclass(frozen=True)
class ReturnedLine:
    """An Order line with a negative quantity: a return, correction or storno of a dish."""

    id: int
    code: Any
    stock_name: str | None
    name: str
    amount: Decimal
    kds_endpoints: tuple[str, ...]
    acknowledge: bool  # every endpoint of the line is kds's: its item route may be set


def returned_lines(
    raw: dict[str, Any], config: Config, kds_endpoints: Collection[str]
) -> list[ReturnedLine]:
    """The negative lines of an Order at endpoints kds owns (PORTOS marks returns by the sign)."""
    lines = []
    for item in raw.get("items") or []:
        quantity = item.get("quantity") if isinstance(item, dict) else None
        amount = quantity.get("amount") if isinstance(quantity, dict) else quantity
        if not isinstance(amount, (int, float)) or isinstance(amount, bool) or amount >= 0:
            continue
        named = [e for e in item.get("endpoints") or [] if isinstance(e, dict) and e.get("name")]
        open_ = [
            str(e["name"])
            for e in named
            if (e.get("orderItemStatus") or e.get("status")) not in _FINAL_VALUES
        ]
        owned = [n for n in open_ if config.owns(n, kds_endpoints)]
        if not owned or not isinstance(item.get("id"), int):
            continue
        plu = item.get("plu") or {}
        lines.append(
            ReturnedLine(
                id=item["id"],
                code=plu.get("code"),
                stock_name=plu.get("stockName"),
                name=_text(plu.get("name")) or "",
                amount=Decimal(str(-amount)),
                kds_endpoints=tuple(config.to_kds(n) for n in owned),
                acknowledge=len(owned) == len(open_),
            )
        )
    return lines


def unreadable_reason(err: Exception) -> str:
    """A short reason for staff: the first few bad fields, not pydantic's essay."""
    if isinstance(err, ValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()[:3]]
        return "; ".join(parts)
    return (str(err) or type(err).__name__)[:300]


def portos_item_endpoints(raw: dict[str, Any]) -> dict[int, list[str]]:
    """PORTOS endpoint names of each item of an Order (by item id)."""
    result: dict[int, list[str]] = {}
    for item in raw.get("items") or []:
        if isinstance(item, dict) and isinstance(item.get("id"), int):
            result[item["id"]] = [
                e["name"]
                for e in item.get("endpoints") or []
                if isinstance(e, dict) and e.get("name")
            ]
    return result


def translate(
    raw: dict[str, Any], config: Config, kds_endpoints: Collection[str]
) -> OrderIn | None:
    """A PORTOS Order as kds's OrderIn; None when nothing in it is for this kds.

    Item endpoints already final in PORTOS (processed, refused, skipped) and
    endpoints kds does not own (`Config.owns`) are left out; an item left
    without endpoints is not ours. Lines with a quantity below zero (returns,
    corrections) are not new dishes: see `returned_lines`. Raises
    ValidationError/ValueError for an order that cannot be read.
    """
    items = []
    for item in raw.get("items") or []:
        if not isinstance(item, dict):
            raise ValueError("an order item is not an object")
        endpoints = []
        named = item.get("endpoints") or []
        for ep in named:
            name = ep.get("name") if isinstance(ep, dict) else None
            if not name:
                continue
            status = ep.get("orderItemStatus") or ep.get("status")
            if status in _FINAL_VALUES or not config.owns(str(name), kds_endpoints):
                continue
            endpoints.append(config.to_kds(str(name)))
        if named and not endpoints:
            continue
        plu = item.get("plu") or {}
        quantity = item.get("quantity")
        amount = quantity.get("amount") if isinstance(quantity, dict) else quantity
        if isinstance(amount, (int, float)) and not isinstance(amount, bool) and amount <= 0:
            continue  # a return or correction: handled as a VOID, never as a new dish
        items.append(
            {
                "id": item.get("id"),
                "plu": {
                    "name": _text(plu.get("name")) or "",
                    "code": plu.get("code"),
                    "stockName": _text(plu.get("stockName")),
                },
                "quantity": quantity if quantity is not None else 1,
                "comment": _text(item.get("comment")),
                "courseNumber": item.get("courseNumber"),
                "endpoints": endpoints,
            }
        )
    if not items:
        return None
    ticket = raw.get("ticket") or {}
    purchase = ticket.get("purchaseType")
    return OrderIn.model_validate(
        {
            "id": str(raw["id"]),
            "source": config.name,
            "number": raw.get("number"),
            "deviceName": _text(raw.get("deviceName")),
            "user": raw.get("user"),
            "ticket": {
                "id": _text(ticket.get("id")),
                "name": _text(ticket.get("name")),
                "location": ticket.get("location"),
                "purchaseType": purchase if purchase in _PURCHASE_TYPES else "unknown",
                "customer": ticket.get("customer"),
                "version": ticket.get("version"),
            },
            "items": items,
        }
    )


# --------------------------------------------------------------------------- write-back


class PortosWriteback:
    """Says each kds status change to PORTOS with a route that means exactly that change.

    PORTOS has three routes: the whole order, one item (at every endpoint of
    the item) and one endpoint (every item there). A change of every line at an
    endpoint, or of a line PORTOS routes to that endpoint only, maps directly.
    A line shared with other endpoints is said through the endpoint route or
    the item route only once the rest of what that route touches is at the same
    status or final in PORTOS (final lines are left alone); until then the
    change is deferred (`WritebackDeferred`), never dropped.
    """

    def __init__(self, source: PortosSource) -> None:
        self._source = source
        self._config = source.config

    async def send(self, entry: OutboxEntry) -> None:
        """Write one outbox `writeback` entry to PORTOS (raises to retry, defer or refuse)."""
        payload = entry.payload
        external_id = str(payload.get("externalId") or "")
        status = payload.get("status")
        kds_endpoint = payload.get("endpoint")
        if not external_id or status not in _STATUS_VALUES or not kds_endpoint:
            raise WritebackRefused("unusable", f"unusable writeback payload {payload!r}")
        if external_id in self._source.deleted or REST_MARK in external_id:
            reason = (
                "deleted in PORTOS"
                if external_id in self._source.deleted
                else "rest of a returned line"
            )
            log.info(
                "portos.writeback_skipped",
                source=self._config.name,
                order=external_id,
                reason=reason,
            )
            return
        client = self._source.client
        endpoint = self._config.to_portos(kds_endpoint)
        order_path = f"/orders/{quote(external_id, safe='')}"
        endpoint_path = f"{order_path}/endpoints/{quote(endpoint, safe='')}/status"
        body = {"status": status}
        if payload.get("allItems"):
            await client.request("POST", endpoint_path, body=body)
            return
        routed = await self._source.item_endpoints(external_id)
        item_ids = [i for i in payload.get("itemIds") or [] if isinstance(i, int)]
        shared = []
        for item_id in item_ids:
            if routed.get(item_id) == [endpoint]:
                await client.request("POST", f"{order_path}/items/{item_id}/status", body=body)
            else:
                shared.append(item_id)
        if shared:
            await self._send_shared(entry, external_id, endpoint, shared, status)

    async def _send_shared(
        self, entry: OutboxEntry, external_id: str, endpoint: str, items: list[int], status: str
    ) -> None:
        client = self._source.client
        order_path = f"/orders/{quote(external_id, safe='')}"
        raw = await client.request("GET", order_path)
        if not isinstance(raw, dict):
            raise SourceUnavailable(f"GET {order_path}: the answer is not an Order")
        now = _statuses(raw)
        remaining = []
        for item_id in items:
            current = now.get((item_id, endpoint))
            if current is None:
                raise WritebackRefused(
                    404, f"PORTOS has no item {item_id} at endpoint {endpoint!r}"
                )
            if current == status:
                continue
            if current in _FINAL_VALUES:
                raise WritebackRefused(
                    "conflict", f"item {item_id} at {endpoint} is already {current} in PORTOS"
                )
            remaining.append(item_id)
        if not remaining:
            return
        body = {"status": status}
        others = [s for (i, e), s in now.items() if e == endpoint and i not in remaining]
        if all(s == status or s in _FINAL_VALUES for s in others):
            await client.request(
                "POST", f"{order_path}/endpoints/{quote(endpoint, safe='')}/status", body=body
            )
            return
        waiting = []
        for item_id in remaining:
            elsewhere = [s for (i, e), s in now.items() if i == item_id and e != endpoint]
            if all(s == status or s in _FINAL_VALUES for s in elsewhere):
                await client.request("POST", f"{order_path}/items/{item_id}/status", body=body)
            else:
                waiting.append(item_id)
        if waiting:
            raise WritebackDeferred(
                f"{status} of item(s) {waiting} at {endpoint}: PORTOS has no route for one line at one of its"
                " endpoints; sent once the rest of the endpoint or the line's other endpoints catch up",
                can_wait=self._may_change(entry, waiting),
            )

    def _may_change(self, entry: OutboxEntry, items: list[int]) -> bool:
        """Whether kds may still change what blocks this write-back (else waiting is pointless)."""
        order = self._source.ctx.service.get(str(entry.order_id))
        if order is None:
            return False
        endpoint = entry.payload.get("endpoint")
        blocking = [
            e.status
            for i in order.items
            for e in i.endpoints
            if (e.name == endpoint and i.id not in items) or (i.id in items and e.name != endpoint)
        ]
        return any(s not in FINAL for s in blocking)


def _statuses(raw: dict[str, Any]) -> dict[tuple[int, str], str]:
    """(item id, PORTOS endpoint) → current status, from an Order."""
    found: dict[tuple[int, str], str] = {}
    for item in raw.get("items") or []:
        if not isinstance(item, dict) or not isinstance(item.get("id"), int):
            continue
        for ep in item.get("endpoints") or []:
            if isinstance(ep, dict) and ep.get("name"):
                found[(item["id"], str(ep["name"]))] = str(
                    ep.get("orderItemStatus") or ep.get("status")
                )
    return found


# --------------------------------------------------------------------------- the source


class PortosSource(Poller):
    """Polls PORTOS for processable orders and writes statuses back."""

    def __init__(self, config: Config, ctx: SourceContext) -> None:
        super().__init__(config.name, ctx, config.poll_interval, max_backoff=config.max_backoff)
        self.config = config
        self.metrics = PortosMetrics.for_registry(ctx.metrics)
        self.client = PortosClient(config, self.metrics)
        self.writeback = WritebackConsumer(
            config.name,
            ctx,
            PortosWriteback(self).send,
            retry=config.writeback_retry,
            max_backoff=config.writeback_max_backoff,
            concurrency=config.writeback_concurrency,
        )
        self.deleted: set[str] = set()
        self._skipped: set[str] = set()
        self._unreadable: dict[str, int | None] = {}  # PORTOS order id → its inbox entry
        self._unapplied: dict[
            str, str
        ] = {}  # alert key of a return kds could not apply → ticket id
        self.unknown_endpoints: set[str] = set()
        self._kds_endpoints = frozenset(e.name for e in ctx.settings.endpoints)
        self._source_metrics = SourceMetrics.for_registry(ctx.metrics)
        self._items: OrderedDict[str, dict[int, list[str]]] = OrderedDict()
        self._last_reconcile: float | None = None
        self.webhooks = 0
        if config.webhook_secret is not None:
            ctx.add_routes([web.post(self.webhook_path, self._handle_webhook)])

    @property
    def webhook_path(self) -> str:
        """Where PORTOS delivers webhooks for this source (configure it in PORTOS's back office)."""
        return f"/hooks/portos/{self.config.name}"

    async def _handle_webhook(self, request: web.Request) -> web.Response:
        """A signed PORTOS webhook: poll now (the poll stays the source of truth)."""
        assert self.config.webhook_secret is not None
        body = await request.read()
        given = request.headers.get("X-PORTOS-WEBHOOK-SIGNATURE", "").strip()
        digest = hmac.new(
            self.config.webhook_secret.get_secret_value().encode(), body, hashlib.sha256
        ).digest()
        # The encoding of the signature is not documented: accept hex or base64.
        if not given or not (
            hmac.compare_digest(given.lower(), digest.hex())
            or hmac.compare_digest(given, base64.b64encode(digest).decode())
        ):
            log.warning("portos.webhook_rejected", source=self.config.name, reason="bad signature")
            return web.json_response(
                {"error": "unauthorized", "detail": "bad webhook signature"}, status=401
            )
        self.webhooks += 1
        self.poll_now()
        return web.json_response({"status": "accepted"}, status=202)

    async def start(self) -> None:
        """Open the client, resume write-backs and unprocessed raw orders, start polling."""
        await self.client.start()
        self.writeback.start()
        for entry in await self.ctx.service.pending_inbox(self.config.name):
            try:
                raw = json.loads(entry.payload)
            except ValueError:
                await self.ctx.service.inbox_done(entry.id, error="not JSON")
                continue
            await self._ingest_raw(raw, entry.id)
        await super().start()

    async def stop(self) -> None:
        """Stop polling and sending; pending write-backs stay in the outbox."""
        await super().stop()
        await self.writeback.stop()
        await self.client.stop()

    def health(self) -> dict[str, Any]:
        """Poll reachability, the write-back backlog and refusals, and the source's alerts."""
        health = super().health()
        reachable = health["ok"]
        health.update(self.writeback.health())
        health.update(
            {
                "authError": self.client.last_auth_error,
                "unknownEndpoints": sorted(self.unknown_endpoints),
                "alerts": self.ctx.alerts.of(self.config.name),
            }
        )
        problems = [
            (not reachable, "unreachable"),
            (health["refusedWritebacks"] > 0, "writeback_refused"),
            (self.writeback.failures > 0, "writeback_failing"),
            (bool(health["alerts"]), "alert"),
        ]
        health["state"] = next((state for bad, state in problems if bad), "ok")
        health["ok"] = health["state"] == "ok"
        if not health["ok"]:
            details = {
                "unreachable": health["lastError"],
                "writeback_refused": f"{health['refusedWritebacks']} write-back(s) refused: {health['lastWritebackError']}",
                "writeback_failing": health["lastWritebackError"],
                "alert": "; ".join(a["message"] for a in health["alerts"][:3]),
            }
            health["reason"] = f"{health['state']}: {details[health['state']]}"
        return health

    # ------------------------------------------------------------------ polling

    async def poll(self) -> None:
        """Ingest new processable orders; now and then, cancel those deleted in PORTOS."""
        orders = await self.client.fetch_orders([("isProcessable", "true")])
        for raw in orders:
            await self._take(raw)
        listed = {str(o["id"]) for o in orders}
        # Forget what PORTOS no longer offers (memory stays bounded; a problem with it is over).
        self._skipped &= listed
        for gone in set(self._unreadable) - listed:
            self._unreadable.pop(gone)
        self.ctx.alerts.clear_where(
            self.config.name, "order_unreadable", {f"order:{i}" for i in self._unreadable}
        )
        self._clear_unapplied()
        now = self._clock()
        if (
            self._last_reconcile is None
            or now - self._last_reconcile >= self.config.reconcile_interval
        ):
            await self._reconcile(listed)
            self._last_reconcile = now
        if self.writeback.failures:
            self.writeback.wake()

    async def _take(self, raw: dict[str, Any]) -> None:
        external_id = str(raw["id"])
        if (
            external_id in self._skipped
            or self.ctx.service.find(self.config.name, external_id) is not None
        ):
            return
        payload = json.dumps(raw, ensure_ascii=False, sort_keys=True).encode()
        inbox_id = await self.ctx.service.receive_raw(
            self.config.name, f"order:{external_id}", payload
        )
        await self._ingest_raw(raw, inbox_id)

    async def _ingest_raw(self, raw: dict[str, Any], inbox_id: int | None) -> None:
        service = self.ctx.service
        external_id = str(raw.get("id"))
        if inbox_id is None:
            inbox_id = self._unreadable.get(external_id)
        if service.find(self.config.name, external_id) is not None:
            if inbox_id is not None:
                await service.inbox_done(inbox_id)
            return
        try:
            order_in = translate(raw, self.config, self._kds_endpoints)
        except (ValidationError, ValueError, TypeError, KeyError, AttributeError) as err:
            # Kept pending in the inbox and shown to staff; tried again on every poll.
            self._unreadable_order(raw, inbox_id, err)
            return
        self._readable(external_id)
        self._note_foreign(raw)
        returns = returned_lines(raw, self.config, self._kds_endpoints)
        if returns and not await self._apply_returns(raw, returns):
            return  # PORTOS did not take the acknowledgement: again on the next poll
        if order_in is None:
            self._skipped.add(external_id)
            if inbox_id is not None:
                await service.inbox_done(inbox_id, error="no items for this kds's endpoints")
            return
        self._remember_items(external_id, portos_item_endpoints(raw))
        try:
            result = await service.ingest(order_in, actor="portos")
        except ConflictError as err:
            # An archived order came back with other content: keep what was cooked.
            self._skipped.add(external_id)
            log.warning(
                "portos.order_conflict",
                source=self.config.name,
                order=external_id,
                error=err.detail,
            )
        else:
            if result.created:
                self.metrics.orders.labels(self.config.name, "ingested").inc()
                log.info(
                    "portos.order_ingested",
                    source=self.config.name,
                    order=external_id,
                    number=result.order.number,
                )
        if inbox_id is not None:
            await service.inbox_done(inbox_id)

    async def _apply_returns(self, raw: dict[str, Any], lines: list[ReturnedLine]) -> bool:
        """Cancel the kitchen lines a return takes back (VOID where printed); acknowledge it in PORTOS."""
        external_id = str(raw.get("id"))
        ticket_id = str((raw.get("ticket") or {}).get("id"))
        acknowledged = True
        for line in lines:
            tag = f"returned in PORTOS order {external_id} line {line.id}"
            earlier = [
                o
                for o in self.ctx.service.orders()
                if o.source == self.config.name
                and o.ticket.id == ticket_id
                and o.external_id != external_id
            ]
            voided = voided_by(reversed(earlier), tag)
            if not voided:
                await self._void_returned(raw, line, earlier, tag)
            else:  # applied before; a stop may have come between the void and the rest
                voided.sort(
                    key=lambda m: m[1].id != line.id
                )  # the order _void_returned voided them in
                await resume_rest(self.ctx.service, voided, line.amount, external_id=self._rest_id(raw, line),
                                  device_name=voided[-1][0].device_name, actor="portos")  # fmt: skip
            if line.acknowledge:
                path = f"/orders/{quote(external_id, safe='')}/items/{line.id}/status"
                try:
                    await self.client.request(
                        "POST", path, body={"status": OrderStatus.PROCESS_SKIPPED.value}
                    )
                except (SourceUnavailable, PortosRejected) as err:
                    log.info(
                        "portos.return_ack_failed",
                        source=self.config.name,
                        order=external_id,
                        error=str(err),
                    )
                    acknowledged = False
        return acknowledged

    @staticmethod
    def _rest_id(raw: dict[str, Any], line: ReturnedLine) -> str:
        """The external id of the rest of a partly returned line: the same on every pass."""
        return f"{raw.get('id')}{REST_MARK}{line.id}"

    async def _void_returned(
        self, raw: dict[str, Any], line: ReturnedLine, earlier: list[Order], tag: str
    ) -> None:
        matches = [
            (order, item)
            for order in reversed(earlier)  # the newest kitchen order first
            for item in order.items
            if item.plu.code == line.code
            and (line.stock_name is None or item.plu.stock_name in (None, line.stock_name))
            and any(e.name in line.kds_endpoints and e.status not in FINAL for e in item.endpoints)
        ]
        matches.sort(key=lambda m: m[1].id != line.id)  # the same PORTOS line first (a storno)
        remaining = line.amount
        voids: dict[str, list[int]] = {}
        partial: tuple[Order, OrderItem, Decimal] | None = None
        for order, item in matches:
            voids.setdefault(order.id, []).append(item.id)
            if item.quantity.amount > remaining:
                partial = (
                    order,
                    item,
                    item.quantity.amount - remaining,
                )  # VOID, then the rest again
            remaining -= min(item.quantity.amount, remaining)
            if remaining <= 0:
                break
        for order_id, item_ids in voids.items():
            await self.ctx.service.cancel(order_id, item_ids=item_ids, reason=tag, actor="portos")
            log.info(
                "portos.return_voided",
                source=self.config.name,
                order=order_id,
                items=item_ids,
                reason=tag,
            )
        if partial is not None:
            order, item, rest = partial
            await resend_rest(self.ctx.service, order, item, rest, external_id=self._rest_id(raw, line),
                              device_name=order.device_name, actor="portos")  # fmt: skip
        if remaining > 0:
            # Nothing left to take it from (sold before kds ran, or already cooked): say so.
            number = raw.get("number")
            left = f"{remaining.normalize():f}"
            self._unapplied[f"return:{raw.get('id')}:{line.id}"] = str(
                (raw.get("ticket") or {}).get("id")
            )
            self.ctx.alerts.raise_alert(
                self.config.name,
                f"return:{raw.get('id')}:{line.id}",
                "line_unapplied",
                f"PORTOS order #{number} takes back {left} × {line.name}: kds found no open kitchen line of it"
                " — tell the kitchen",
                order=str(raw.get("id")),
            )

    def _clear_unapplied(self) -> None:
        """A return alert stays until no kitchen order of its ticket is open any more."""
        open_tickets = {
            o.ticket.id
            for o in self.ctx.service.orders()
            if o.source == self.config.name
            and not all(e.status in FINAL for e in o.item_endpoints())
        }
        for key, ticket_id in list(self._unapplied.items()):
            if ticket_id not in open_tickets:
                del self._unapplied[key]
                self.ctx.alerts.clear(self.config.name, key)

    def _unreadable_order(self, raw: dict[str, Any], inbox_id: int | None, err: Exception) -> None:
        external_id = str(raw.get("id"))
        if external_id not in self._unreadable:
            self.metrics.orders.labels(self.config.name, "rejected").inc()
        self._unreadable[external_id] = inbox_id
        number = raw.get("number")
        label = f"#{number} ({external_id})" if isinstance(number, int) else external_id
        self.ctx.alerts.raise_alert(
            self.config.name,
            f"order:{external_id}",
            "order_unreadable",
            f"PORTOS order {label} cannot be read: {unreadable_reason(err)}",
            order=external_id,
        )

    def _readable(self, external_id: str) -> None:
        self._unreadable.pop(external_id, None)
        self.ctx.alerts.clear(self.config.name, f"order:{external_id}")

    def _note_foreign(self, raw: dict[str, Any]) -> None:
        """Report endpoints kds does not own: counted per item, logged once per name."""
        for name in foreign_endpoints(raw, self.config, self._kds_endpoints):
            self._source_metrics.unknown_endpoints.labels(self.config.name, name).inc()
            if name not in self.unknown_endpoints and len(self.unknown_endpoints) < 100:
                self.unknown_endpoints.add(name)
                log.warning(
                    "portos.unknown_endpoint",
                    source=self.config.name,
                    endpoint=name,
                    detail="not a kds endpoint (or not in `endpoints`): its items are left to PORTOS, never acknowledged",
                )

    def _remember_items(self, external_id: str, routed: dict[int, list[str]]) -> None:
        self._items[external_id] = routed
        self._items.move_to_end(external_id)
        while len(self._items) > ITEM_CACHE_SIZE:
            self._items.popitem(last=False)

    async def item_endpoints(self, external_id: str) -> dict[int, list[str]]:
        """PORTOS endpoint names per item of an order (cached; fetched after a restart)."""
        routed = self._items.get(external_id)
        if routed is None:
            raw = await self.client.request("GET", f"/orders/{quote(external_id, safe='')}")
            if not isinstance(raw, dict):
                raise SourceUnavailable("GET /orders/{id}: the answer is not an Order")
            routed = portos_item_endpoints(raw)
            self._remember_items(external_id, routed)
        return routed

    async def _reconcile(self, processable: set[str]) -> None:
        """Cancel open orders that PORTOS no longer has."""
        candidates = [
            o
            for o in self.ctx.service.orders()
            if o.source == self.config.name
            and o.external_id not in processable
            and o.external_id not in self.deleted
            and REST_MARK not in o.external_id
            and not all(e.status in FINAL for e in o.item_endpoints())
        ]
        if not candidates:
            return
        alive = {str(o["id"]) for o in await self.client.fetch_orders([("isProcessed", "false")])}
        for order in candidates:
            if order.external_id in alive:
                continue
            try:
                await self.client.request("GET", f"/orders/{quote(order.external_id, safe='')}")
            except PortosRejected as err:
                if err.status != 404:
                    raise SourceUnavailable(
                        f"GET /orders/{order.external_id}: HTTP {err.status}"
                    ) from err
            else:
                continue  # finished in PORTOS by someone else; the cooks still see it
            self.deleted.add(order.external_id)
            try:
                await self.ctx.service.cancel(order.id, reason="deleted in PORTOS", actor="portos")
            except KdsError as err:  # archived meanwhile: nothing left to cancel
                log.info(
                    "portos.cancel_skipped",
                    source=self.config.name,
                    order=order.external_id,
                    reason=err.detail,
                )
                continue
            self.metrics.orders.labels(self.config.name, "cancelled").inc()
            log.info(
                "portos.order_deleted",
                source=self.config.name,
                order=order.external_id,
                kds_order=order.id,
            )


def create(config: Config, ctx: SourceContext) -> PortosSource:
    """The PORTOS source component."""
    return PortosSource(config, ctx)
