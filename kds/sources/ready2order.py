"""The ready2order source: table-order webhooks, a safety-net poll, 60 requests a minute.

ready2order (seed 001) pushes `orderItem.created / cancelled / transferred`
webhooks that carry only resource ids; item details come from the table-orders
API (`GET /v1/orders`). How kds handles them:

* **webhook** — `POST /hooks/ready2order/{secret}`: a wrong secret is a 404 and
  nothing is stored; otherwise the raw body goes to the durable inbox (dedupe
  key: the event id, else a hash of the body, so a retried delivery is kept
  once) and the answer is 202 at once. A worker processes inbox entries in
  order; entries left from before a crash are processed on start.
* **created** — the ids wait for the next fetch. One fetch of the open table
  orders (paged) serves every pending webhook at once, which is what keeps a
  burst of 200 webhooks to a handful of requests. New items of one table are
  held for `group_window` and become one kitchen ticket (items of one order
  group, or created within the window of each other, stay together).
* **cancelled** — known items go to processSkipped (VOID where printed); an
  item still held is dropped; an id not seen yet is remembered, so a cancel
  that overtakes its create still ends with nothing on the screens.
* **transferred** — the kds order gets the new table (TRANSFER where printed).
* **returns** — a row booked in retour mode (`order_retour`) or with a
  negative quantity takes that much of the same dish (name and item number)
  off the table's kitchen items, newest first: whole items are voided, a part
  is voided and the rest sent again (VOID, then the lower quantity). It is
  never a new dish; applied once (its inbox key `return:{order_id}` survives
  restarts); a return kds cannot match is logged and listed in `/readyz`.
* **order_status** — `open_statuses` (default 1, the seed's value on an open
  item) are made, `void_statuses` are voided (or never sent); any other value
  is made, logged and listed in `/readyz` until it is mapped in the config.
* **vanished items** — an item kds sent that has been missing from the open
  list for `missing_fetches` polls was billed or removed: the table's bills
  since the order (`GET /document/invoice?tableId=…&items=true`) tell which;
  an item on no bill is voided ("removed in ready2order"), so a lost
  `orderItem.cancelled` webhook never leaves a dish on the screens.
* **product / productGroup events** — update the catalogue kds routes by
  (`r2o_catalog`): an item is routed by its product's group and the groups
  that group is inside; a product, group or table kds has not seen is looked
  up by id before its item is routed.
* **poll** — every `poll_interval` the same fetch runs as a safety net: items a
  lost webhook never announced are picked up, table changes and order_status
  are applied, vanished items are checked against the bills.
* **rate limit** — every request takes a token from one bucket per account
  token (60 a minute); a 429 blocks the bucket for `Retry-After`. The
  catalogue is read in the background at low priority: order fetches first.

Webhook payloads are not fixed by the seed, so the reader accepts the
plausible shapes (`resource` arrays of ids or objects, `ids`, `order_ids`,
nested `data`) and logs — never drops — what it cannot read: the raw event
stays in the inbox with the reason, and a poll runs at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import aiohttp
import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ..config import Duration
from ..errors import ConflictError, KdsError, NotFound, Unavailable
from ..model import (
    MAX_COURSE,
    MAX_TEXT,
    ItemEndpointIn,
    Location,
    Order,
    OrderIn,
    OrderItem,
    OrderItemIn,
    OrderStatus,
    Plu,
    PurchaseType,
    Quantity,
    TicketInfo,
)  # fmt: skip
from ..routing import Router
from ..states import FINAL
from .base import HttpUrl, Poller, SourceContext, SourceUnavailable
from .r2o_catalog import Catalogue
from .r2o_catalog import as_int as _as_int
from .ratelimit import TokenBucket, parse_retry_after
from .returns import resend_rest, resume_rest, voided_by

log = structlog.get_logger(__name__)

WRITES_BACK = False
MAX_PAGES = 200
TOMBSTONES = 10_000
RETURN_EVENT = "kds.return"  # an inbox entry kds writes itself: one return row, applied once
BILL_SLACK = timedelta(
    minutes=10
)  # POS and kds clocks differ: bills this much before the order count
ITEM_EVENTS = ("orderItem.created", "orderItem.cancelled", "orderItem.transferred")
CATALOG_EVENTS = (
    "product.created", "product.updated", "product.deleted",
    "productGroup.created", "productGroup.updated", "productGroup.deleted",
)  # fmt: skip


class Config(BaseModel):
    """[[sources]] type = "ready2order"."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["ready2order"] = "ready2order"
    name: str = Field(default="ready2order", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    base_url: HttpUrl = "https://api.ready2order.com/v1"
    # The account token (Bearer), or a file holding it (written by `kds ready2order connect`).
    account_token: SecretStr | None = None
    account_token_file: str | None = None
    # The secret part of the webhook URL: /hooks/ready2order/{webhook_secret}.
    webhook_secret: SecretStr
    group_window: Duration = 3.0
    poll_interval: Duration = 30.0
    catalog_refresh: Duration = 900.0
    rate_limit: int = Field(default=60, ge=1)
    rate_period: Duration = 60.0
    page_size: int = Field(default=100, ge=1, le=250)
    request_timeout: Duration = 10.0
    max_backoff: Duration = 60.0
    # Training-mode orders: "ignore" them, or "mark" them on the ticket.
    training: Literal["ignore", "mark"] = "ignore"
    # How many fetches an announced item may be missing from before its webhook is closed,
    # and how soon to fetch again while one is missing.
    missing_fetches: int = Field(default=3, ge=1)
    refetch_delay: Duration = 2.0
    # `order_status` (undocumented; the seed shows 1 on an open item): values to make, values that void.
    open_statuses: list[int] = Field(default_factory=lambda: [1])
    void_statuses: list[int] = Field(default_factory=list)

    @field_validator("webhook_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if len(secret) < 16 or not all(c.isalnum() or c in "-_.~" for c in secret):
            raise ValueError(
                "must be at least 16 URL-safe characters (letters, digits, - _ . ~); `kds ready2order connect` makes one"
            )
        return value

    @model_validator(mode="after")
    def _statuses_apart(self) -> Config:
        both = sorted(set(self.open_statuses) & set(self.void_statuses))
        if both:
            raise ValueError(f"order_status {both} is in both open_statuses and void_statuses")
        return self

    @model_validator(mode="after")
    def _one_token(self) -> Config:
        if (self.account_token is None) == (self.account_token_file is None):
            raise ValueError(
                "set exactly one of account_token or account_token_file (see `kds ready2order connect`)"
            )
        return self

    def token(self) -> str:
        """The account token (read from its file when configured so)."""
        if self.account_token is not None:
            return self.account_token.get_secret_value()
        try:
            text = Path(self.account_token_file or "").read_text(encoding="utf-8").strip()
        except OSError as err:
            raise SourceUnavailable(f"cannot read account_token_file: {err}") from err
        if not text:
            raise SourceUnavailable("account_token_file is empty")
        return text

    @property
    def hook_path(self) -> str:
        """The webhook route (one per source name)."""
        base = "ready2order" if self.name == "ready2order" else self.name
        return f"/hooks/{base}/{{secret}}"


# --------------------------------------------------------------------------- the API client


class Ready2OrderClient:
    """Bearer-authenticated, rate-limited calls to the ready2order API."""

    def __init__(self, config: Config, bucket: TokenBucket) -> None:
        self.config = config
        self.bucket = bucket
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0

    async def start(self) -> None:
        """Open the HTTP session."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.request_timeout)
        )

    async def stop(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        attempts: int = 4,
        background: bool = False,
    ) -> Any:
        """GET `path` as JSON; waits for the bucket (`background`: after order fetches), honours 429."""
        assert self._session is not None, "client not started"
        url = f"{self.config.base_url}{path}"
        headers = {"Authorization": f"Bearer {self.config.token()}", "Accept": "application/json"}
        for _ in range(attempts):
            await self.bucket.acquire(background=background)
            self.requests += 1
            try:
                async with self._session.get(url, params=params, headers=headers) as resp:
                    raw = await resp.read()
                    status = resp.status
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            except (TimeoutError, aiohttp.ClientError) as err:
                raise SourceUnavailable(
                    f"ready2order unreachable: {type(err).__name__} {err}"
                ) from err
            if status == 429:
                wait = self.bucket.penalize(retry_after)
                log.warning("ready2order.throttled", path=path, retry_after=wait)
                continue
            self.bucket.succeeded()
            if status in (401, 403):
                raise SourceUnavailable(f"ready2order rejected the account token (HTTP {status})")
            if status >= 300:
                raise SourceUnavailable(f"ready2order answered HTTP {status} for {path}")
            try:
                return json.loads(raw)
            except ValueError as err:
                raise SourceUnavailable(f"ready2order sent invalid JSON for {path}") from err
        raise SourceUnavailable(f"ready2order kept answering 429 for {path}")

    async def get_pages(
        self, path: str, params: dict[str, Any] | None = None, *, background: bool = False
    ) -> list[dict[str, Any]]:
        """Every row of a paged list (`page`, `limit`)."""
        rows: list[dict[str, Any]] = []
        limit = self.config.page_size
        for page in range(1, MAX_PAGES + 1):
            data = await self.get(
                path, {**(params or {}), "page": page, "limit": limit}, background=background
            )
            if isinstance(data, dict):  # some lists come wrapped
                data = next((v for v in data.values() if isinstance(v, list)), [])
            if not isinstance(data, list):
                raise SourceUnavailable(
                    f"ready2order sent a {type(data).__name__} for {path}, expected a list"
                )
            rows.extend(r for r in data if isinstance(r, dict))
            if len(data) < limit:
                break
        return rows


# --------------------------------------------------------------------------- webhook payloads

_EVENT_KEYS = (
    "event",
    "eventName",
    "event_name",
    "webhookEvent",
    "type",
    "topic",
    "name",
    "action",
)
_ID_KEYS = (
    "order_ids", "orderIds", "orderItemIds", "order_item_ids", "resourceIds", "resource_ids",
    "ids", "resource", "resources", "data", "items", "orderItems", "payload",
)  # fmt: skip
_EVENT_ID_KEYS = ("id", "eventId", "event_id", "webhookId", "webhook_id", "uuid", "deliveryId")


@dataclass
class WebhookEvent:
    """What kds could read from one webhook body."""

    name: str | None
    ids: list[int] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)
    source_table: int | None = None
    target_table: int | None = None
    problems: list[str] = field(default_factory=list)


def _find_key(data: dict[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        if key in data:
            return data[key]
    return None


def dedupe_key(body: bytes) -> str:
    """The inbox key of a webhook: its event id when it has one, else a hash of the body."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        event_id = _find_key(data, _EVENT_ID_KEYS)
        if isinstance(event_id, (str, int)) and not isinstance(event_id, bool) and str(event_id):
            # `id` may also be a resource id (`{"id": 5}`): keep the event name in the key.
            key = f"event:{_find_key(data, _EVENT_KEYS)}:{event_id}"
            if (
                key.encode("utf-8", "replace").decode() == key
            ):  # a lone surrogate cannot be stored as text
                return key
    return "sha256:" + hashlib.sha256(body).hexdigest()


def read_webhook(data: Any) -> WebhookEvent:
    """Read the event name, item ids, full objects and tables from a webhook body."""
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, dict):
        return WebhookEvent(None, problems=[f"body is a {type(data).__name__}, expected an object"])
    name = _find_key(data, _EVENT_KEYS)
    if isinstance(name, dict):  # {"event": {"name": ..., ...}}
        name = _find_key(name, ("name", "type"))
    event = WebhookEvent(name if isinstance(name, str) else None)
    if event.name is None:
        event.problems.append("no event name")
    _collect(data, event, depth=0, top=True)
    event.ids = list(dict.fromkeys(event.ids))
    return event


def _collect(value: Any, event: WebhookEvent, *, depth: int, top: bool = False) -> None:
    """Gather ids, objects and tables from wherever the sender put them."""
    if depth > 4:
        return
    if isinstance(value, list):
        for element in value:
            if (i := _as_int(element)) is not None:
                event.ids.append(i)
            else:
                _collect(element, event, depth=depth + 1)
        return
    if not isinstance(value, dict):
        if (i := _as_int(value)) is not None and not top:
            event.ids.append(i)
        return
    for key in ("source_table_id", "sourceTableId", "from_table_id", "fromTableId"):
        if (t := _as_int(value.get(key))) is not None:
            event.source_table = t
    for key in ("target_table_id", "targetTableId", "to_table_id", "toTableId"):
        if (t := _as_int(value.get(key))) is not None:
            event.target_table = t
    if (oid := _as_int(value.get("order_id"))) is not None:
        event.ids.append(oid)
        if any(k.startswith(("order_", "product", "table_")) and k != "order_id" for k in value):
            event.objects.append(value)
        return
    if any(k.startswith(("product_", "productgroup_")) for k in value):
        event.objects.append(value)  # a catalogue object
        return
    found = False
    for key in _ID_KEYS:
        if key in value:
            found = True
            _collect(value[key], event, depth=depth + 1)
    if not found and not top and (i := _as_int(value.get("id"))) is not None:
        event.ids.append(i)


# --------------------------------------------------------------------------- grouping


@dataclass
class HeldItem:
    """A new item waiting for the rest of its table's order."""

    data: dict[str, Any]
    since: float
    inbox_ids: set[int] = field(default_factory=set)


def _created_at(item: dict[str, Any]) -> datetime | None:
    value = item.get("order_created_at")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def group_items(items: list[dict[str, Any]], window: float) -> list[list[dict[str, Any]]]:
    """Split one table's new items into kitchen tickets.

    Items stay together when they share an order group or were created within
    `window` seconds of each other (transitively); items without a creation
    time join the first ticket.
    """
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        parent[find(a)] = find(b)

    by_group: dict[Any, int] = {}
    for i, item in enumerate(items):
        group = item.get("order_group")
        if group is not None:
            if group in by_group:
                union(i, by_group[group])
            else:
                by_group[group] = i
    timed = sorted((t, i) for i, item in enumerate(items) if (t := _created_at(item)) is not None)
    for (t1, a), (t2, b) in itertools.pairwise(timed):
        if (t2 - t1).total_seconds() <= window:
            union(a, b)
    untimed = [i for i, item in enumerate(items) if _created_at(item) is None]
    for i in untimed[1:]:
        union(i, untimed[0])
    if untimed and timed:
        union(untimed[0], timed[0][1])
    clusters: dict[int, list[dict[str, Any]]] = {}
    for i, item in enumerate(items):
        clusters.setdefault(find(i), []).append(item)
    return sorted(clusters.values(), key=lambda c: min(_as_int(i.get("order_id")) or 0 for i in c))


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        result = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def _returned_quantity(row: dict[str, Any]) -> Decimal:
    """How much of a dish a return row takes back."""
    return abs(_decimal(row.get("order_quantity")) or Decimal(1))


def _return_reason(return_id: int) -> str:
    """The reason of a return's voids: it marks the return as applied (see `_return_applied`)."""
    return f"returned in ready2order (line {return_id})"


def _rest_id(order: Order, return_id: int) -> str:
    """The external id of what a return left of an item: the same on every pass."""
    return f"{order.external_id}-r{return_id}"


def _was_final(item: OrderItem, reason: str) -> bool:
    """Whether every station had finished the item before the void with `reason`."""
    before = []
    for endpoint in item.endpoints:
        changes = endpoint.status_changes
        at = next((n for n, c in enumerate(changes) if c.reason == reason), 0)
        before.append(changes[at - 1].status if at > 0 else endpoint.status)
    return all(status in FINAL for status in before)


def _three_places(value: Decimal) -> Decimal:
    """At most three decimals, as the canonical Quantity allows."""
    exponent = value.as_tuple().exponent
    return (
        value.quantize(Decimal("0.001")) if isinstance(exponent, int) and exponent < -3 else value
    )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text[:MAX_TEXT] or None


def _is_return(row: dict[str, Any]) -> bool:
    """A return or correction row: booked in retour mode, or a negative quantity."""
    quantity = _decimal(row.get("order_quantity"))
    return row.get("order_retour") in (True, 1, "1", "true") or (
        quantity is not None and quantity < 0
    )


@dataclass
class BilledLine:
    """A line of a bill: what left the open list because it was paid for."""

    product_id: int | None
    name: str | None
    quantity: Decimal


def billed_lines(data: Any) -> list[BilledLine]:
    """The sold (not returned) lines of a `GET /document/invoice?items=true` answer."""
    invoices = data.get("invoices") if isinstance(data, dict) else None
    lines = []
    for invoice in invoices if isinstance(invoices, list) else []:
        items = invoice.get("items") if isinstance(invoice, dict) else None
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or item.get("item_retour") in (True, 1, "1", "true"):
                continue
            quantity = _decimal(item.get("item_quantity")) or Decimal(1)
            lines.append(
                BilledLine(_as_int(item.get("product_id")), _text(item.get("item_name")), quantity)
            )
    return lines


def _take_billed(lines: list[BilledLine], product_id: int | None, name: str) -> bool:
    """True (and that line used up) when a bill line covers the item: same product, else same name."""
    for line in lines:
        same = (
            line.product_id == product_id
            if product_id is not None and line.product_id is not None
            else line.name == name
        )
        if same and line.quantity > 0:
            line.quantity -= 1  # one unit is enough: a dish on a bill was paid for, not removed
            return True
    return False


def _is_training(item: dict[str, Any]) -> bool:
    for key in (
        "trainingMode",
        "training_mode",
        "trainingsMode",
        "order_trainingMode",
        "order_training",
    ):
        value = item.get(key)
        if value in (True, 1, "1", "true", "True"):
            return True
    return False


# --------------------------------------------------------------------------- the source


class Ready2OrderSource(Poller):
    """Webhooks in, table orders fetched, kitchen tickets out."""

    def __init__(
        self, config: Config, ctx: SourceContext, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(
            config.name, ctx, config.poll_interval, max_backoff=config.max_backoff, clock=clock
        )
        self.config = config
        # One bucket per account (API root + token), shared by every source using it.
        secret = (
            config.account_token.get_secret_value()
            if config.account_token
            else f"file:{config.account_token_file}"
        )
        token_key = hashlib.sha256(f"{config.base_url}|{secret}".encode()).hexdigest()
        self.bucket = TokenBucket.shared(
            token_key, limit=config.rate_limit, period=config.rate_period
        )
        self.client = Ready2OrderClient(config, self.bucket)
        self._queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self._queued: set[int] = set()
        self._known: dict[
            int, tuple[str, int | None]
        ] = {}  # r2o order_id -> (kds order id, table id)
        # kds orders with items the last poll still listed as open (None: no poll yet).
        self._open_orders: set[str] | None = None
        self._held: dict[int, HeldItem] = {}
        self._held_changed = asyncio.Event()
        self._tombstones: OrderedDict[int, None] = OrderedDict()
        self._awaiting: dict[int, set[int]] = {}  # r2o order_id -> inbox ids announcing it
        self._inbox_refs: dict[int, int] = {}  # inbox id -> ids still unresolved
        self._misses: dict[int, int] = {}
        self.catalog = Catalogue(self.client)
        self._router = Router(ctx.settings.routing)
        self._lock = asyncio.Lock()  # one writer of the adapter's maps at a time
        self.idle = asyncio.Condition()
        self.unreadable = 0
        self._refetch: asyncio.TimerHandle | None = None
        self._attempts: dict[int, int] = {}
        self._returns: dict[int, dict[str, Any]] = {}  # return rows waiting to be applied
        self._unmatched: deque[dict[str, Any]] = deque(maxlen=20)
        self._unknown_status: dict[str, int] = {}  # open items with an unmapped order_status
        self._products_of: dict[int, int] = {}  # known item -> product_id (to match bills)
        self._gone: dict[
            int, int
        ] = {}  # known item -> polls it has been missing from the open list
        self._settled: set[int] = set()  # known items that left the open list and were handled
        ctx.add_routes([web.post(config.hook_path, self._handle_webhook)])

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Rebuild what kds already has, requeue unprocessed webhooks, start the workers."""
        await self.client.start()
        for order in self.ctx.service.orders():
            if order.source == self.name:
                self._remember_order(
                    order.id, _as_int(order.ticket.id), [i.id for i in order.items]
                )
        for entry in await self.ctx.service.pending_inbox(self.name):
            self._enqueue(entry.id, entry.payload)
        # An order with items still open at the till stays live however old: archived,
        # those items would look new to the next poll and go to the kitchen again.
        self.ctx.service.hold_while(self._has_open_items)
        self.ctx.supervisor.spawn(f"source:{self.name}:events", self._event_loop())
        self.ctx.supervisor.spawn(f"source:{self.name}:tickets", self._ticket_loop())
        self.ctx.supervisor.spawn(f"source:{self.name}:catalog", self._catalog_loop())
        await super().start()

    async def stop(self) -> None:
        """Stop the workers; unprocessed webhooks stay in the inbox for the next start."""
        await super().stop()
        if self._refetch is not None:
            self._refetch.cancel()
        await self.ctx.supervisor.cancel(f"source:{self.name}:events")
        await self.ctx.supervisor.cancel(f"source:{self.name}:tickets")
        await self.ctx.supervisor.cancel(f"source:{self.name}:catalog")
        await self.client.stop()

    def health(self) -> dict[str, Any]:
        """Poll health plus the rate-limit bucket, the backlog and what kds could not map."""
        health = super().health()
        return {
            **health,
            "ok": health["ok"] and not self._unknown_status,
            "unknownOrderStatus": dict(self._unknown_status),
            "unmatchedReturns": list(self._unmatched),
            "rateLimit": self.bucket.health(),
            "queuedWebhooks": self._queue.qsize(),
            "heldItems": len(self._held),
            "awaitingItems": len(self._awaiting),
            "requests": self.client.requests,
        }

    @property
    def busy(self) -> bool:
        """True while webhooks, held items or announced items are outstanding."""
        return bool(self._queue.qsize() or self._queued or self._held or self._awaiting)

    async def _notify_idle(self) -> None:
        async with self.idle:
            self.idle.notify_all()

    # ------------------------------------------------------------------ webhook intake

    async def _handle_webhook(self, request: web.Request) -> web.Response:
        """Store the raw event and answer 202 at once; a wrong secret is a 404."""
        given = request.match_info["secret"].encode()
        if not hmac.compare_digest(given, self.config.webhook_secret.get_secret_value().encode()):
            return web.json_response(
                {"error": "not_found", "detail": "no such webhook"}, status=404
            )
        body = await request.read()
        try:
            inbox_id = await self.ctx.service.receive_raw(self.name, dedupe_key(body), body)
        except KdsError as err:
            return web.json_response(err.to_json(), status=err.status)
        if inbox_id is not None:
            self._enqueue(inbox_id, body)
        return web.json_response({"accepted": True, "duplicate": inbox_id is None}, status=202)

    def _enqueue(self, inbox_id: int, body: bytes) -> None:
        if inbox_id not in self._queued:
            self._queued.add(inbox_id)
            self._queue.put_nowait((inbox_id, body))

    async def _event_loop(self) -> None:
        while True:
            inbox_id, body = await self._queue.get()
            retrying = False
            try:
                async with self._lock:
                    await self._process(inbox_id, body)
            except Exception as err:
                retrying = await self._failed(inbox_id, body, err)
            finally:
                if not retrying:
                    self._queued.discard(inbox_id)  # outstanding until processed or given up
                await self._notify_idle()

    async def _failed(self, inbox_id: int, body: bytes, err: Exception) -> bool:
        """Retry an event whose processing failed (store down, ...); True when a retry is scheduled."""
        attempts = self._attempts[inbox_id] = self._attempts.get(inbox_id, 0) + 1
        log.error("ready2order.event_failed", inbox_id=inbox_id, attempt=attempts, exc_info=err)
        if attempts < 5:
            asyncio.get_running_loop().call_later(attempts, self._requeue, inbox_id, body)
            return True
        self._attempts.pop(inbox_id, None)
        try:
            await self.ctx.service.inbox_done(inbox_id, error=f"failed {attempts} times: {err}")
        except KdsError:
            pass  # still pending in the inbox: processed again on the next start
        return False

    def _requeue(self, inbox_id: int, body: bytes) -> None:
        self._queue.put_nowait((inbox_id, body))  # still in `_queued` since it failed

    async def _process(self, inbox_id: int, body: bytes) -> None:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
            event = WebhookEvent(None, problems=["body is not JSON"])
        else:
            event = read_webhook(data)
        name = event.name or ""
        if name == RETURN_EVENT:  # left pending by a stop between storing and applying it
            for row in event.objects:
                if not self._return_applied(_as_int(row.get("order_id")) or 0):
                    await self._apply_return(row)
                else:
                    await self._resume_return(row)
            await self.ctx.service.inbox_done(inbox_id)
            return
        if name in CATALOG_EVENTS:
            self.catalog.apply_event(name, event.objects, event.ids)
            await self.ctx.service.inbox_done(inbox_id)
            return
        if name not in ITEM_EVENTS or (
            not event.ids and not event.objects and event.source_table is None
        ):
            # Unreadable or unexpected: keep it (with the reason) and let a fetch find what it meant.
            self.unreadable += 1
            reason = "; ".join(event.problems) or f"no item ids in {name or 'event'}"
            if name and name not in ITEM_EVENTS:
                reason = f"event {name!r} not used"
            log.warning(
                "ready2order.webhook_unreadable",
                inbox_id=inbox_id,
                reason=reason,
                body=body[:300].decode("utf-8", "replace"),
            )
            await self.ctx.service.inbox_done(inbox_id, error=reason)
            if not name or name in ITEM_EVENTS:
                self.poll_now()
            return
        if name == "orderItem.created":
            await self._on_created(inbox_id, event)
        elif name == "orderItem.cancelled":
            await self._on_cancelled(event)
            await self.ctx.service.inbox_done(inbox_id)
        else:
            await self._on_transferred(event)
            await self.ctx.service.inbox_done(inbox_id)

    async def _on_created(self, inbox_id: int, event: WebhookEvent) -> None:
        full = [
            o
            for o in event.objects
            if o.get("order_product_name") is not None and o.get("table_id") is not None
        ]
        for item in full:
            self._consider(item, inbox_id=None)
        await self._apply_returns()  # full objects: a return needs no fetch
        # Held items count too: the webhook is closed once they are on a ticket.
        pending = [i for i in event.ids if i not in self._known and i not in self._tombstones]
        if not pending:
            await self.ctx.service.inbox_done(inbox_id)
            return
        for oid in pending:
            self._awaiting.setdefault(oid, set()).add(inbox_id)
        self._inbox_refs[inbox_id] = len(pending)
        self.poll_now()

    async def _on_cancelled(self, event: WebhookEvent) -> None:
        by_order: dict[str, list[int]] = {}
        for oid in event.ids:
            if oid in self._known:
                by_order.setdefault(self._known[oid][0], []).append(oid)
            else:
                # Not ingested yet: drop it if held, and make sure a late create is ignored.
                held = self._held.pop(oid, None)
                self._tombstone(oid)
                await self._resolve(oid, done=True)
                if held is not None:
                    log.info("ready2order.cancelled_before_ticket", order_id=oid)
        for kds_id, item_ids in by_order.items():
            await self._cancel(kds_id, item_ids)

    async def _cancel(
        self, kds_id: str, item_ids: list[int], reason: str = "cancelled in ready2order"
    ) -> None:
        try:
            await self.ctx.service.cancel(kds_id, item_ids=item_ids, reason=reason, actor=self.name)
        except NotFound:
            log.info("ready2order.cancel_of_archived_order", order=kds_id, items=item_ids)

    async def _on_transferred(self, event: WebhookEvent) -> None:
        ids = list(event.ids)
        if not ids and event.source_table is not None:
            # "omit order_ids to transfer every unbilled item on the source table"
            ids = [oid for oid, (_, table) in self._known.items() if table == event.source_table]
            ids += [
                oid
                for oid, held in self._held.items()
                if held.data.get("table_id") == event.source_table
            ]
        if event.target_table is None:
            self.poll_now()  # the fetch will show where the items went
            return
        for oid in ids:
            if oid in self._held:
                self._held[oid].data["table_id"] = event.target_table
        await self._move({oid: event.target_table for oid in ids if oid in self._known})

    async def _move(self, moves: dict[int, int]) -> None:
        """Apply table changes of known items to their kds orders."""
        by_order: dict[str, dict[int, int]] = {}
        for oid, table in moves.items():
            kds_id, old = self._known[oid]
            if old != table:
                by_order.setdefault(kds_id, {})[oid] = table
        for kds_id, moved in by_order.items():
            order = self.ctx.service.get(kds_id)
            for oid, table in moved.items():
                self._known[oid] = (kds_id, table)
            if order is None:
                continue
            await self.catalog.ensure((), moved.values())
            # The ticket's table: where its still-open items are now (all items when none is open).
            open_items = [
                i.id for i in order.items if any(e.status not in FINAL for e in i.endpoints)
            ]
            tables = {
                self._known[i][1]
                for i in open_items or [i.id for i in order.items]
                if i in self._known
            }
            names = [self.catalog.table_name(t) for t in sorted(t for t in tables if t is not None)]
            table_name = " + ".join(names) if names else None
            if order.ticket.location and order.ticket.location.table_name == table_name:
                continue
            single = next(iter(tables)) if len(tables) == 1 else None
            ticket = order.ticket.model_copy(
                update={
                    "id": str(single) if single is not None else order.ticket.id,
                    "name": self._ticket_name(
                        table_name or "?", training=(order.ticket.name or "").startswith("TRAINING")
                    ),
                    "location": Location(table_name=table_name),
                }
            )
            try:
                await self.ctx.service.update_ticket(kds_id, ticket, actor=self.name)
            except NotFound:
                pass
            log.info("ready2order.transferred", order=kds_id, items=sorted(moved), table=table_name)

    # ------------------------------------------------------------------ catalogue

    async def _catalog_loop(self) -> None:
        """Read the whole catalogue now and every `catalog_refresh` (sooner again after a failure)."""
        while True:
            try:
                await self.catalog.refresh()
            except SourceUnavailable as err:
                log.warning("ready2order.catalog_unavailable", error=str(err))
                await asyncio.sleep(min(self.config.catalog_refresh, self.config.max_backoff))
                continue
            await asyncio.sleep(self.config.catalog_refresh)

    def _ticket_name(self, table_name: str, *, training: bool) -> str:
        name = f"Table {table_name}"
        return f"TRAINING · {name}" if training else name

    # ------------------------------------------------------------------ fetch (webhook follow-up and safety net)

    async def poll(self) -> None:
        """Fetch the open table orders; hold new items, apply table changes, close announced webhooks."""
        rows = await self.client.get_pages("/orders", {"trainingsMode": "false"})
        training_rows: list[dict[str, Any]] = []
        if self.config.training == "mark":
            training_rows = await self.client.get_pages("/orders", {"trainingsMode": "true"})
            for row in training_rows:
                row["trainingMode"] = True
        async with self._lock:
            seen: set[int] = set()
            moves: dict[int, int] = {}
            voided: dict[str, list[int]] = {}
            unknown: Counter[str] = Counter()
            for row in [*rows, *training_rows]:
                oid = _as_int(row.get("order_id"))
                if oid is None:
                    continue
                seen.add(oid)
                table = _as_int(row.get("table_id"))
                status = self._status_kind(row)
                if status is None:
                    unknown[str(row.get("order_status"))] += 1
                if oid in self._known:
                    if table is not None and self._known[oid][1] != table:
                        moves[oid] = table
                    if status == "void":
                        voided.setdefault(self._known[oid][0], []).append(oid)
                    await self._resolve(oid, done=True)
                    continue
                self._consider(row, inbox_id=None)
                if oid in self._tombstones:  # not for the kitchen (training, void status, a return)
                    await self._resolve(oid, done=True)
            self._note_unknown_statuses(unknown)
            if moves:
                await self._move(moves)
            for kds_id, item_ids in voided.items():
                await self._cancel(kds_id, item_ids, reason="voided in ready2order (order_status)")
            await self._apply_returns()
            await self._check_vanished(seen)
            self._open_orders = {self._known[oid][0] for oid in seen if oid in self._known}
            for oid in list(self._awaiting):
                if oid in seen:
                    continue
                self._misses[oid] = self._misses.get(oid, 0) + 1
                if self._misses[oid] >= self.config.missing_fetches:
                    log.info("ready2order.announced_item_not_found", order_id=oid)
                    await self._resolve(
                        oid, done=True, error="not in the open table orders (cancelled or billed)"
                    )
            self._forget_archived()
            if self._awaiting and self._refetch is None:
                # Announced but not listed yet (or gone): look again soon, not at the next interval.
                self._refetch = asyncio.get_running_loop().call_later(
                    self.config.refetch_delay, self._refetch_now
                )
        await self._notify_idle()

    def _refetch_now(self) -> None:
        self._refetch = None
        self.poll_now()

    def _consider(self, row: dict[str, Any], *, inbox_id: int | None) -> None:
        """Hold a new item for its table's ticket (unless known, cancelled, ignored or a return)."""
        oid = _as_int(row.get("order_id"))
        if oid is None or oid in self._known or oid in self._tombstones:
            return
        if _is_training(row) and self.config.training == "ignore":
            self._tombstone(oid)
            return
        if _is_return(row):
            self._returns[oid] = dict(row)  # applied by the poll, once
            self._tombstone(oid)
            return
        if self._status_kind(row) == "void" or _decimal(row.get("order_quantity")) == 0:
            log.info(
                "ready2order.not_for_the_kitchen",
                order_id=oid,
                status=row.get("order_status"),
                quantity=row.get("order_quantity"),
            )
            self._tombstone(oid)
            return
        held = self._held.get(oid)
        if held is None:
            self._held[oid] = HeldItem(dict(row), self._clock())
            self._held_changed.set()
        else:
            held.data.update(row)

    async def _ticket_loop(self) -> None:
        """Turn held items into kitchen tickets once their table's window closed."""
        while True:
            self._held_changed.clear()
            now = self._clock()
            tables: dict[int | None, list[HeldItem]] = {}
            for held in self._held.values():
                tables.setdefault(_as_int(held.data.get("table_id")), []).append(held)
            due = {
                t: hs
                for t, hs in tables.items()
                if now - min(h.since for h in hs) >= self.config.group_window
            }
            if due:
                try:
                    async with self._lock:
                        await self._flush(due)
                except Exception:
                    log.exception("ready2order.flush_failed")
                    await asyncio.sleep(1.0)  # back off a failing store instead of spinning
                await self._notify_idle()
                continue
            waits = [
                self.config.group_window - (now - min(h.since for h in hs))
                for hs in tables.values()
            ]
            try:
                await asyncio.wait_for(self._held_changed.wait(), min(waits) if waits else None)
            except TimeoutError:
                pass

    async def _flush(self, due: dict[int | None, list[HeldItem]]) -> None:
        # A product kds has not seen (no product webhook, catalogue not read yet): its group decides the station.
        await self.catalog.ensure(
            (_as_int(h.data.get("product_id")) for hs in due.values() for h in hs), due
        )
        for table, helds in due.items():
            rows = [h.data for h in helds if _as_int(h.data.get("order_id")) in self._held]
            for group in group_items(rows, self.config.group_window):
                await self._ingest(table, group)

    async def _ingest(self, table: int | None, rows: list[dict[str, Any]]) -> None:
        ids = sorted(_as_int(r["order_id"]) or 0 for r in rows)
        order_in = self._order_in(table, rows)
        external = f"{table}-{ids[0]}"
        try:
            try:
                result = await self.ctx.service.ingest(
                    order_in.model_copy(update={"id": external}), actor=self.name
                )
            except ConflictError:
                # Same first item, other items (regrouped after a restart): a distinct ticket id.
                suffix = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:8]
                result = await self.ctx.service.ingest(
                    order_in.model_copy(update={"id": f"{external}-{suffix}"}), actor=self.name
                )
        except Unavailable:
            raise  # the store is down: keep the items held and try again
        except KdsError as err:
            log.error("ready2order.ingest_rejected", table=table, items=ids, error=err.detail)
            for oid in ids:
                self._held.pop(oid, None)
                self._tombstone(oid)
                await self._resolve(oid, done=True, error=f"rejected: {err.detail}")
            return
        self._remember_order(result.order.id, table, ids)
        for row in rows:
            if (pid := _as_int(row.get("product_id"))) is not None:
                self._products_of[_as_int(row["order_id"]) or 0] = pid
        for oid in ids:
            self._held.pop(oid, None)
            await self._resolve(oid, done=True)
        log.info(
            "ready2order.ticket",
            order=result.order.id,
            table=table,
            items=ids,
            created=result.created,
        )

    def _groups_of(self, row: dict[str, Any]) -> list[str]:
        """The row's product group and the groups it is inside, innermost first."""
        product = self.catalog.products.get(_as_int(row.get("product_id")) or -1)
        return self.catalog.group_chain(product.group_id if product else None)

    def _plu(self, row: dict[str, Any]) -> Plu:
        """The kds product of an order row: its name, item number and product group."""
        product = self.catalog.products.get(_as_int(row.get("product_id")) or -1)
        groups = self._groups_of(row)
        code = (
            _text(row.get("order_product_itemnumber"))
            or _text(product and product.itemnumber)
            or _text(row.get("product_id"))
        )
        return Plu(
            name=_text(row.get("order_product_name"))
            or _text(product and product.name)
            or f"Product {row.get('product_id')}",
            code=code[:64] if code else None,
            group=groups[0] if groups else None,
        )

    def _order_in(self, table: int | None, rows: list[dict[str, Any]]) -> OrderIn:
        training = any(_is_training(r) for r in rows)
        table_name = self.catalog.table_name(table)
        items = []
        for row in sorted(rows, key=lambda r: _as_int(r.get("order_id")) or 0):
            quantity = _decimal(row.get("order_quantity")) or Decimal(1)
            course = _as_int(row.get("order_course"))
            plu = self._plu(row)
            groups = self._groups_of(row)
            item = OrderItemIn(
                id=_as_int(row["order_id"]),
                plu=plu,
                quantity=Quantity(amount=_three_places(quantity)),
                comment=_text(row.get("order_comment")),
                # As given; a value the model cannot hold never drops the dish.
                course_number=course if course is not None and 0 <= course <= MAX_COURSE else None,
            )
            # Routed here, where the group tree is known: a rule on a parent group matches its children.
            item.endpoints = [ItemEndpointIn(name=e) for e in self._router.route(item, groups)]
            items.append(item)
        return OrderIn(
            source=self.name,
            device_name="ready2order",
            user=_text(rows[0].get("user_id")),
            ticket=TicketInfo(
                id=str(table) if table is not None else None,
                name=self._ticket_name(table_name, training=training),
                location=Location(table_name=table_name),
                purchase_type=PurchaseType.WALK_IN,
            ),
            items=items,
        )

    # ------------------------------------------------------------------ order_status, returns, vanished items

    def _status_kind(self, row: dict[str, Any]) -> Literal["open", "void"] | None:
        """What `order_status` means by the config: open, void, or None when it is not mapped."""
        status = _as_int(row.get("order_status"))
        if row.get("order_status") is None or status in self.config.open_statuses:
            return "open"
        if status in self.config.void_statuses:
            return "void"
        return None

    def _note_unknown_statuses(self, unknown: Counter[str]) -> None:
        for status in sorted(set(unknown) - set(self._unknown_status)):
            log.warning("ready2order.unknown_order_status", order_status=status, items=unknown[status],
                        hint="map it with open_statuses or void_statuses; until then such items are made")  # fmt: skip
        self._unknown_status = dict(unknown)

    async def _apply_returns(self) -> None:
        """Apply each new return row once: its inbox key makes a repeat (later polls, restarts) a no-op."""
        for oid, row in list(self._returns.items()):
            body = json.dumps({"event": RETURN_EVENT, "resource": [row]}).encode()
            inbox_id = await self.ctx.service.receive_raw(self.name, f"return:{oid}", body)
            del self._returns[oid]
            if inbox_id is not None:
                await self._apply_return(row)
                await self.ctx.service.inbox_done(inbox_id)
            await self._resolve(oid, done=True)

    def _return_applied(self, return_id: int) -> bool:
        """True when an earlier run already applied this return (a stop between apply and inbox_done)."""
        mark = f"(line {return_id})"
        return any(
            o.source == self.name and (o.external_id.endswith(f"-r{return_id}") or any(
                mark in (c.reason or "") for i in o.items for e in i.endpoints for c in e.status_changes
            ))
            for o in self.ctx.service.orders()
        )  # fmt: skip

    async def _apply_return(self, row: dict[str, Any]) -> None:
        """Take the returned quantity of the dish off the table's kitchen items, newest first."""
        return_id = _as_int(row.get("order_id")) or 0
        table = _as_int(row.get("table_id"))
        remaining = _returned_quantity(row)
        name, code = self._plu_identity(row)
        candidates = []
        for oid, (kds_id, item_table) in self._known.items():
            order = self.ctx.service.get(kds_id)
            item = order.item(oid) if order is not None and item_table == table else None
            if item is None or all(e.status is OrderStatus.PROCESS_SKIPPED for e in item.endpoints):
                continue
            if (item.plu.name, item.plu.code) == (name, code):
                candidates.append((order, item))
        # Dishes the kitchen can still stop first, then the newest.
        candidates.sort(key=lambda c: (all(e.status in FINAL for e in c[1].endpoints), -c[1].id))
        reason = _return_reason(return_id)
        for order, item in candidates:
            if remaining <= 0:
                break
            amount = Decimal(item.quantity.amount)
            await self._cancel(order.id, [item.id], reason=reason)
            if amount > remaining:
                await self._resend(order, item, amount - remaining, return_id)
            remaining -= min(amount, remaining)
        log.info(
            "ready2order.return",
            return_id=return_id,
            table=table,
            product=name,
            unmatched=str(remaining),
        )
        if remaining > 0:
            await self.catalog.ensure((), [table])  # the report names the table as staff know it
            log.warning(
                "ready2order.return_unmatched",
                return_id=return_id,
                table=table,
                product=name,
                quantity=str(remaining),
            )
            self._unmatched.append(
                {
                    "returnId": return_id,
                    "table": self.catalog.table_name(table),
                    "product": name,
                    "quantity": str(remaining),
                }
            )

    async def _resend(self, order: Order, item: Any, amount: Decimal, return_id: int) -> None:
        """Send the part of an item a return left (the item itself was voided)."""
        rest_id = _rest_id(order, return_id)
        sent = await resend_rest(self.ctx.service, order, item, _three_places(amount), external_id=rest_id,
                                 device_name="ready2order", actor=self.name)  # fmt: skip
        self._known[item.id] = (sent.id, _as_int(order.ticket.id))

    async def _resume_return(self, row: dict[str, Any]) -> None:
        """Send the rest of an applied return if a stop came between its void and the re-send."""
        return_id = _as_int(row.get("order_id")) or 0
        reason = _return_reason(return_id)
        voided = voided_by((o for o in self.ctx.service.orders() if o.source == self.name), reason)
        voided.sort(
            key=lambda m: (_was_final(m[1], reason), -m[1].id)
        )  # the order _apply_return voided them in
        if not voided:
            return
        order, item = voided[-1]
        rest_id = _rest_id(order, return_id)
        sent = await resume_rest(self.ctx.service, voided, _returned_quantity(row), external_id=rest_id,
                                 device_name="ready2order", actor=self.name)  # fmt: skip
        if sent is not None:
            self._known[item.id] = (sent.id, _as_int(order.ticket.id))

    async def _check_vanished(self, seen: set[int]) -> None:
        """Items kds sent that left the open list: billed ones stay, the others are voided."""
        gone: dict[int | None, list[tuple[Order, Any]]] = {}
        for oid, (kds_id, table) in self._known.items():
            if oid in seen:
                self._gone.pop(oid, None)
                self._settled.discard(oid)
                continue
            if oid in self._settled:
                continue
            self._gone[oid] = self._gone.get(oid, 0) + 1
            if self._gone[oid] < self.config.missing_fetches:
                continue
            order = self.ctx.service.get(kds_id)
            item = order.item(oid) if order is not None else None
            if order is None or item is None or all(e.status in FINAL for e in item.endpoints):
                self._settled.add(oid)  # nothing the kitchen could still stop
                continue
            gone.setdefault(table, []).append((order, item))
        for table, entries in gone.items():
            since = min(order.created_at for order, _ in entries) - BILL_SLACK
            lines = await self._billed(table, since) if table is not None else []
            voids: dict[str, list[int]] = {}
            for order, item in entries:
                if not _take_billed(lines, self._products_of.get(item.id), item.plu.name):
                    voids.setdefault(order.id, []).append(item.id)
                self._settled.add(item.id)
            for kds_id, item_ids in voids.items():
                log.info("ready2order.vanished_voided", order=kds_id, items=item_ids, table=table)
                await self._cancel(kds_id, item_ids, reason="removed in ready2order")

    async def _billed(self, table: int, since: datetime) -> list[BilledLine]:
        """The lines billed at `table` since `since` (`GET /document/invoice`, paged by offset)."""
        params: dict[str, Any] = {
            "tableId": table, "items": "true", "dateField": "bill",
            "dateFrom": since.strftime("%Y-%m-%dT%H:%M:%SZ"), "limit": 255,
        }  # fmt: skip
        lines: list[BilledLine] = []
        for page in range(MAX_PAGES):
            data = await self.client.get("/document/invoice", {**params, "offset": page * 255})
            lines += billed_lines(data)
            invoices = data.get("invoices") if isinstance(data, dict) else None
            count = _as_int(data.get("count")) if isinstance(data, dict) else None
            if not isinstance(invoices, list) or count is None or (page + 1) * 255 >= count:
                break
        return lines

    def _plu_identity(self, row: dict[str, Any]) -> tuple[str, str | None]:
        """The name and code an item of this row gets in kds (what a return is matched by)."""
        plu = self._plu(row)
        return plu.name, (str(plu.code) if plu.code is not None else None)

    # ------------------------------------------------------------------ bookkeeping

    def _remember_order(self, kds_id: str, table: int | None, item_ids: Iterable[int]) -> None:
        for oid in item_ids:
            self._known[oid] = (kds_id, table)

    def _has_open_items(self, order: Order) -> bool:
        return order.source == self.name and (
            self._open_orders is None or order.id in self._open_orders
        )

    def _forget_archived(self) -> None:
        """Drop items of orders that left the live view (bounded memory)."""
        live = {o.id for o in self.ctx.service.orders()}
        for oid in [oid for oid, (kds_id, _) in self._known.items() if kds_id not in live]:
            del self._known[oid]
            self._products_of.pop(oid, None)
            self._gone.pop(oid, None)
            self._settled.discard(oid)

    def _tombstone(self, oid: int) -> None:
        self._tombstones[oid] = None
        self._tombstones.move_to_end(oid)
        while len(self._tombstones) > TOMBSTONES:
            self._tombstones.popitem(last=False)

    async def _resolve(self, oid: int, *, done: bool, error: str | None = None) -> None:
        """An announced item was handled: close each webhook whose items are all handled."""
        inbox_ids = self._awaiting.pop(oid, None)
        self._misses.pop(oid, None)
        if not inbox_ids or not done:
            return
        for inbox_id in inbox_ids:
            self._inbox_refs[inbox_id] = self._inbox_refs.get(inbox_id, 1) - 1
            if self._inbox_refs[inbox_id] <= 0:
                del self._inbox_refs[inbox_id]
                await self.ctx.service.inbox_done(inbox_id, error=error)


def create(config: Config, ctx: SourceContext) -> Ready2OrderSource:
    """The ready2order source component."""
    return Ready2OrderSource(config, ctx)
