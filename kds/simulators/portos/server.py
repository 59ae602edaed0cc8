"""A PORTOS server on 127.0.0.1: the part of its API kds uses, plus fault injection.

Faithful where the seeds speak (000 Tickets, 002 Orders, 004 models): tickets
are created and updated, a closed ticket answers 403, and after every ticket
update the items added since the last order become a new Order whose item
endpoints come from the PLU's `orderEndpointNames`, else the device's
`DefaultOrderEndpointName`. What is taken back — a `returned`/`correction`
ticket item (negative quantity), a lower quantity, a line deleted from the
ticket — becomes an Order line with a negative quantity (our inference: seed
004's OrderItem has no type, so the sign is what can carry it). `GET /orders` takes the seed-002 NData filters and
`$skip/$take/$sort/$count`, answering QueryResult (or CountQueryResult). The
three status routes apply the seed's status rules (`rules`, not kds's own
table), all or nothing. Auth is JWT bearer (`POST /auth` → AuthResult, tokens expire, 401)
or NWS4 signing with an ApiKey.

Everything lives under `{url}` (= `http://127.0.0.1:PORT/api`). Tests drive it
through the Python API (`add_plu`, `create_ticket`, `add_items`, `close_ticket`,
`delete_order`, `fail`, `delay`, `malformed`, `drop`, `expire_tokens`,
`go_down`/`come_up`) or over HTTP under `/_sim/` (for another process or
`kds demo`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from . import query as ndata
from .nws4 import verify as nws4_verify
from .rules import FINAL, PROCESSABLE, STATUSES, StatusConflict, next_status

log = structlog.get_logger(__name__)

API_PREFIX = "/api"
#: Ticket item types whose quantity is negative (seed 004 TicketItemType).
NEGATIVE_TYPES = frozenset({"returned", "correction"})
JSON = "application/json"


def _now_iso() -> str:
    now = datetime.now(UTC)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _error(status: int, message: str) -> web.Response:
    # PORTOS answers errors as JSON; the exact error model is not in our seeds.
    return web.json_response({"status": status, "message": message}, status=status)


@dataclass
class Faults:
    """What the simulator is currently told to get wrong."""

    fail_count: int = 0
    fail_status: int = 500
    fail_path: str | None = None
    delay: float = 0.0
    malformed_count: int = 0
    drop_count: int = 0
    #: How POST /auth/refresh fails: text404, empty404, 401, garbage, drop (None: it works).
    refresh: str | None = None

    def clear(self) -> None:
        """Behave again."""
        self.fail_count = self.malformed_count = self.drop_count = 0
        self.delay = 0.0
        self.fail_path = None
        self.refresh = None


@dataclass
class StatusPost:
    """One status request the simulator received, and how it answered."""

    order_id: str
    route: str  # "order" | "item" | "endpoint"
    status: str
    answer: int
    item_id: int | None = None
    endpoint: str | None = None
    changed: list[tuple[int, str, str]] = field(default_factory=list)  # (item, endpoint, status)


class PortosSimulator:
    """A fake PORTOS API server with a Python control surface."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: dict[str, str] | None = None,
        static_tokens: Iterable[str] = (),
        api_keys: dict[str, str] | None = None,
        token_ttl: float = 3600.0,
        devices: dict[str, dict[str, Any]] | None = None,
        endpoints: Iterable[str] = (),
        demo_catalog: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self.port = port
        self.users = dict(users if users is not None else {"kds": "kds"})
        self.static_tokens = set(static_tokens)
        self.api_keys = dict(api_keys or {})
        self.token_ttl = token_ttl
        self.devices: dict[str, dict[str, Any]] = devices or {
            "P01": {"DefaultOrderEndpointName": "kitchen"}
        }
        self.order_endpoints: dict[str, dict[str, Any]] = {}
        for name in endpoints:
            self.add_endpoint(name)
        self.plus: dict[int, dict[str, Any]] = {}
        self.tickets: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.deleted_orders: set[str] = set()
        self.status_posts: list[StatusPost] = []
        self.faults = Faults()
        self.requests = 0
        self.auth_logins = 0
        self.auth_refreshes = 0
        self.refresh_failures = 0
        self.unauthorized = 0
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}  # tokenId -> (user, expires)
        self._refresh_tokens: dict[str, str] = {}  # refreshToken -> user
        self._numbers = itertools.count(1)
        self._secret = secrets.token_bytes(16)
        self._ordered: dict[
            str, dict[int, float]
        ] = {}  # ticket -> item id -> quantity already ordered
        self._lines: dict[
            str, dict[int, dict[str, Any]]
        ] = {}  # ticket -> item id -> the line last seen
        self._changed = asyncio.Condition()
        self._last_changed: list[tuple[int, str, str]] = []
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.webhook_url: str | None = None
        self.webhook_secret: str = ""
        self.webhooks_sent: list[tuple[str, int]] = []  # (event, HTTP status or 0 when unreachable)
        self._webhook_tasks: set[asyncio.Task[None]] = set()
        self.app = self._build_app()
        if demo_catalog:
            self._load_demo_catalog()

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """The API base URL (what kds's `base_url` points at)."""
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    @property
    def root(self) -> str:
        """The server root (the `/_sim/` control routes live here)."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen on host:port (port 0 picks a free one)."""
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await self._listen()

    def set_webhook(self, url: str | None, secret: str = "") -> None:
        """Deliver order webhooks (signed with X-PORTOS-WEBHOOK-SIGNATURE) to `url`."""
        self.webhook_url, self.webhook_secret = url, secret

    def _fire_webhook(self, event: str, order_id: str) -> None:
        if self.webhook_url is None:
            return
        try:
            task = asyncio.get_running_loop().create_task(self._send_webhook(event, order_id))
        except RuntimeError:
            return
        self._webhook_tasks.add(task)
        task.add_done_callback(self._webhook_tasks.discard)

    async def _send_webhook(self, event: str, order_id: str) -> None:
        body = json.dumps({"event": event, "data": {"id": order_id}, "date": _now_iso()}).encode()
        signature = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": JSON, "X-PORTOS-WEBHOOK-SIGNATURE": signature}
        status = 0
        try:
            async with aiohttp.ClientSession() as session:
                async with session.post(self.webhook_url or "", data=body, headers=headers) as resp:
                    status = resp.status
        except (TimeoutError, aiohttp.ClientError):
            pass  # PORTOS does not retry here either; the poll is the net
        self.webhooks_sent.append((event, status))
        await self._notify()

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        for task in list(self._webhook_tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        if self.port == 0:
            self.port = self._site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def go_down(self) -> None:
        """Stop accepting connections (clients see 'connection refused'); state is kept."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        # Stopping the listener leaves keep-alive connections open; a dead server has none.
        if self._runner is not None and self._runner.server is not None:
            for connection in list(self._runner.server.connections):
                connection.force_close()

    async def come_up(self) -> None:
        """Accept connections again on the same port."""
        if self._site is None and self._runner is not None:
            await self._listen()

    # ------------------------------------------------------------------ waiting (for tests)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait (bounded) until `predicate()` holds; it is re-checked on every change."""

        async def _wait() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(_wait(), timeout)

    # ------------------------------------------------------------------ faults

    def fail(self, count: int = 1, status: int = 500, path: str | None = None) -> None:
        """Answer the next `count` API requests (under `path`, if given) with `status`."""
        self.faults.fail_count, self.faults.fail_status, self.faults.fail_path = count, status, path

    def delay(self, seconds: float) -> None:
        """Answer every API request `seconds` late (0 to stop)."""
        self.faults.delay = seconds

    def malformed(self, count: int = 1) -> None:
        """Answer the next `count` API requests with 200 and a truncated JSON body."""
        self.faults.malformed_count = count

    def drop(self, count: int = 1) -> None:
        """Close the connection without an answer for the next `count` API requests."""
        self.faults.drop_count = count

    def expire_tokens(self) -> None:
        """Every issued and static token stops working at once (refresh tokens still work)."""
        now = self._clock()
        self._tokens = {t: (user, min(exp, now - 1)) for t, (user, exp) in self._tokens.items()}
        self.static_tokens.clear()

    def clear_faults(self) -> None:
        """Behave again."""
        self.faults.clear()

    # ------------------------------------------------------------------ catalog and devices

    def add_endpoint(
        self, name: str, *, is_active: bool = True, type: str = "kds"
    ) -> dict[str, Any]:
        """Declare an OrderEndpoint."""
        endpoint = {
            "name": name,
            "isActive": is_active,
            "address": None,
            "type": type,
            "settings": {},
        }
        self.order_endpoints[name] = endpoint
        return endpoint

    def set_endpoint_active(self, name: str, active: bool) -> None:
        """Activate or deactivate an order endpoint (status changes there answer 403)."""
        self.order_endpoints.setdefault(name, self.add_endpoint(name))["isActive"] = active

    def add_plu(
        self,
        code: int,
        name: str,
        endpoints: Iterable[str] = (),
        *,
        stock_name: str = "Main",
        category: str = "FOD",
        course_number: int | None = None,
        unit: str = "pcs",
    ) -> dict[str, Any]:
        """Add a product; `endpoints` is its `orderEndpointNames`."""
        plu = {
            "id": uuid.uuid4().hex[:24],
            "code": code,
            "name": name,
            "stockName": stock_name,
            "articleCategoryLabel": category,
            "orderEndpointNames": list(endpoints),
            "courseNumber": course_number,
            "unit": unit,
            "isActive": True,
        }
        for endpoint in plu["orderEndpointNames"]:
            self.order_endpoints.setdefault(endpoint, self.add_endpoint(endpoint))
        self.plus[code] = plu
        return plu

    def _load_demo_catalog(self) -> None:
        for endpoint in ("grill", "bar", "kitchen"):
            self.add_endpoint(endpoint)
        self.add_plu(101, "Burger", ["grill"], category="FOD", course_number=2)
        self.add_plu(102, "Hranolky", ["grill"], category="FOD", course_number=2)
        self.add_plu(103, "Kofola 0,5l", ["bar"], category="DRK", course_number=1)
        self.add_plu(104, "Pivo 0,5l", ["bar"], category="DRK", course_number=1)
        self.add_plu(105, "Cesnaková polievka", [], category="FOD", course_number=1)
        self.add_plu(106, "Steak s prílohou", ["grill", "kitchen"], category="FOD", course_number=2)

    async def feed(self, every: float, *, seed: int | None = None, max_open: int = 6) -> None:
        """Act like a busy till (for `kds demo`): open tickets, add rounds, close tickets, forever."""
        import random

        rng = random.Random(seed)
        if not self.plus:
            self._load_demo_catalog()
        codes = sorted(self.plus)
        tables = [("Sála", str(n)) for n in range(1, 9)] + [("Terasa", str(n)) for n in range(1, 5)]
        comments = [
            None,
            None,
            None,
            "bez cibule",
            "extra pikantné",
            "alergia: orechy",
            "medium rare",
        ]
        while True:
            await asyncio.sleep(every)
            open_ = [t for t in self.tickets.values() if t["state"] == "open"]
            roll = rng.random()
            items = [
                {
                    "pluCode": rng.choice(codes),
                    "quantity": rng.choice([1, 1, 1, 2, 3]),
                    "comment": rng.choice(comments),
                }
                for _ in range(rng.randint(1, 4))
            ]
            if open_ and (len(open_) >= max_open or roll < 0.25):
                self.close_ticket(rng.choice(open_)["id"])
            elif open_ and roll < 0.5:
                self.add_items(rng.choice(open_)["id"], items)
            else:
                takeaway = rng.random() < 0.3
                zone, table = rng.choice(tables)
                self.create_ticket(
                    items,
                    name=f"Objednávka {len(self.tickets) + 1}" if takeaway else f"Stôl {table}",
                    location=None if takeaway else {"zoneName": zone, "tableName": table},
                    purchase_type="takeAway" if takeaway else "walkIn",
                )

    # ------------------------------------------------------------------ tickets → orders

    def _ticket_item(self, raw: dict[str, Any], used_ids: set[int]) -> dict[str, Any]:
        plu_in = raw.get("plu") or {}
        code = plu_in.get("code", raw.get("pluCode"))
        if not isinstance(code, int) or isinstance(code, bool):
            raise ValueError("item.plu.code must be an integer")
        catalog = self.plus.get(code)
        if catalog is None and "name" not in plu_in:
            raise ValueError(f"unknown PLU code {code}")
        plu = {
            "name": plu_in.get("name") or catalog["name"],  # type: ignore[index]
            "code": code,
            "stockName": plu_in.get("stockName") or (catalog or {}).get("stockName", "Main"),
            "articleCategoryLabel": plu_in.get("articleCategoryLabel")
            or (catalog or {}).get("articleCategoryLabel", ""),
            "orderEndpointNames": list(
                plu_in.get("orderEndpointNames") or (catalog or {}).get("orderEndpointNames") or []
            ),
        }
        quantity = raw.get("quantity", 1)
        if not isinstance(quantity, dict):
            quantity = {"amount": quantity, "unit": (catalog or {}).get("unit", "pcs")}
        amount = quantity.get("amount")
        kind = raw.get("type", "positive")
        # TicketItemType: returns and corrections take back what was sold (negative quantity).
        negative = kind in NEGATIVE_TYPES
        if (
            not isinstance(amount, (int, float))
            or isinstance(amount, bool)
            or amount == 0
            or (amount < 0) != negative
        ):
            raise ValueError(
                f"item.quantity.amount must be a {'negative' if negative else 'positive'} number for type {kind}"
            )
        item_id = raw.get("id")
        if item_id is None:
            item_id = max(used_ids, default=0) + 1
        if not isinstance(item_id, int) or item_id in used_ids:
            raise ValueError(f"bad or repeated item id {item_id!r}")
        used_ids.add(item_id)
        course = raw.get("courseNumber", (catalog or {}).get("courseNumber"))
        return {
            "id": item_id,
            "externalId": raw.get("externalId"),
            "type": raw.get("type", "positive"),
            "plu": plu,
            "comment": raw.get("comment"),
            "quantity": {"amount": amount, "unit": quantity.get("unit", "pcs")},
            "unitPrice": raw.get("unitPrice") or {"amount": 0, "currencyLabel": "EUR"},
            "discountRate": raw.get("discountRate", 0),
            "courseNumber": course,
        }

    def _build_items(
        self, raws: list[dict[str, Any]], existing: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        items = list(existing or [])
        used = {i["id"] for i in items}
        for raw in raws:
            items.append(self._ticket_item(raw, used))
        return items

    def create_ticket(
        self,
        items: list[dict[str, Any]],
        *,
        name: str | None = None,
        location: dict[str, str] | None = None,
        purchase_type: str = "walkIn",
        customer: dict[str, Any] | None = None,
        device: str = "P01",
        user: str = "kds",
        ticket_id: str | None = None,
    ) -> dict[str, Any]:
        """Open a ticket with `items` (`{"plu": {"code": 101}, "quantity": 2, ...}` or
        `{"pluCode": 101}`); returns the ticket. Its order is generated at once."""
        ticket_id = ticket_id or uuid.uuid4().hex[:24]
        if ticket_id in self.tickets:
            raise ValueError(f"ticket {ticket_id} exists")
        ticket = {
            "id": ticket_id,
            "externalId": None,
            "state": "open",
            "type": "cashRegister",
            "name": name or f"Ticket {len(self.tickets) + 1}",
            "openDate": _now_iso(),
            "closeDate": None,
            "closeInfo": None,
            "purchaseType": purchase_type,
            "location": location,
            "customer": customer,
            "originDeviceName": device,
            "employee": {"userName": user, "name": user},
            "items": self._build_items(items),
            "payments": [],
            "currencyLabel": "EUR",
            "discountRate": 0,
            "_v": 1,
        }
        self.tickets[ticket_id] = ticket
        self._generate_order(ticket, device=device, user=user)
        return ticket

    def update_ticket(
        self, ticket_id: str, items: list[dict[str, Any]], **changes: Any
    ) -> dict[str, Any] | None:
        """Replace a ticket's items (PUT); returns the order generated, if any. 403 semantics: raises PermissionError."""
        ticket = self._open_ticket(ticket_id)
        ticket["items"] = self._build_items(items)
        for key in ("name", "location", "purchaseType", "customer"):
            if key in changes:
                ticket[key] = changes[key]
        ticket["_v"] += 1
        return self._generate_order(
            ticket, device=ticket["originDeviceName"], user=ticket["employee"]["userName"]
        )

    def add_items(self, ticket_id: str, items: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Append items to an open ticket; returns the order generated for them."""
        ticket = self._open_ticket(ticket_id)
        ticket["items"] = self._build_items(items, ticket["items"])
        ticket["_v"] += 1
        return self._generate_order(
            ticket, device=ticket["originDeviceName"], user=ticket["employee"]["userName"]
        )

    def close_ticket(self, ticket_id: str) -> dict[str, Any]:
        """Close (fiscalize) a ticket; afterwards it cannot change (403)."""
        ticket = self._open_ticket(ticket_id)
        ticket["state"] = "closed"
        ticket["closeDate"] = _now_iso()
        ticket["closeInfo"] = {
            "deviceName": ticket["originDeviceName"],
            "number": len(self.tickets),
            "fiscalName": "eKasa",
        }
        ticket["_v"] += 1
        return ticket

    def _open_ticket(self, ticket_id: str) -> dict[str, Any]:
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            raise KeyError(ticket_id)
        if ticket["state"] != "open":
            raise PermissionError("ticket is closed")
        return ticket

    def _generate_order(
        self, ticket: dict[str, Any], *, device: str, user: str
    ) -> dict[str, Any] | None:
        """The items added since the last order (by quantity) become a new order."""
        ordered = self._ordered.setdefault(ticket["id"], {})
        default = (self.devices.get(device) or {}).get("DefaultOrderEndpointName") or None
        known = self._lines.setdefault(ticket["id"], {})
        present = {i["id"] for i in ticket["items"]}
        # A line deleted from the ticket (storno) takes back everything ordered of it.
        removed = [
            {**line, "quantity": {**line["quantity"], "amount": 0}}
            for line_id, line in known.items()
            if line_id not in present
        ]
        items = []
        for item in [*ticket["items"], *removed]:
            known[item["id"]] = item
            kind = item.get("type", "positive")
            if kind != "positive" and kind not in NEGATIVE_TYPES:
                continue  # discounts, vouchers, containers: nothing for a kitchen
            # What changed since the last order: more of a line, less of it (a storno shows as a
            # negative line), or a return/correction line (negative from the start).
            delta = round(float(item["quantity"]["amount"]) - ordered.get(item["id"], 0.0), 3)
            if delta == 0:
                continue
            ordered[item["id"]] = float(item["quantity"]["amount"])
            names = item["plu"]["orderEndpointNames"] or ([default] if default else [])
            now = _now_iso()
            items.append(
                {
                    "id": item["id"],
                    "plu": {k: item["plu"][k] for k in ("name", "code", "stockName")},
                    "quantity": {
                        "amount": int(delta) if delta == int(delta) else delta,
                        "unit": item["quantity"]["unit"],
                    },
                    "comment": item.get("comment"),
                    "courseNumber": item.get("courseNumber"),
                    "endpoints": [
                        {
                            "name": n,
                            "orderItemStatus": "created",
                            "statusChanges": [{"status": "created", "date": now}],
                        }
                        for n in names
                    ],
                }
            )
        if not items:
            return None
        order = {
            "id": uuid.uuid4().hex[:24],
            "number": next(self._numbers),
            "deviceName": device,
            "user": {"userName": user, "name": user},
            "ticket": {
                "id": ticket["id"],
                "name": ticket["name"],
                "location": ticket["location"],
                "purchaseType": ticket["purchaseType"],
                "customer": ticket["customer"],
                "version": ticket["_v"],
            },
            "items": items,
            "createdAt": _now_iso(),
        }
        self.orders[order["id"]] = order
        self._schedule_notify()
        self._fire_webhook("order.created", order["id"])
        return order

    def put_order(self, order: dict[str, Any]) -> dict[str, Any]:
        """Store an Order as given (tests of odd payloads); id and number are filled in if missing."""
        order.setdefault("id", uuid.uuid4().hex[:24])
        order.setdefault("number", next(self._numbers))
        order.setdefault("deviceName", "P01")
        order.setdefault(
            "ticket",
            {
                "id": uuid.uuid4().hex[:24],
                "name": "Odd",
                "location": None,
                "purchaseType": "walkIn",
                "customer": None,
                "version": 1,
            },
        )
        order.setdefault("createdAt", _now_iso())
        self.orders[order["id"]] = order
        self._schedule_notify()
        return order

    def delete_order(self, order_id: str) -> None:
        """Delete an order (DELETE /orders/{id})."""
        if self.orders.pop(order_id, None) is None:
            raise KeyError(order_id)
        self.deleted_orders.add(order_id)
        self._schedule_notify()
        self._fire_webhook("order.deleted", order_id)

    def _schedule_notify(self) -> None:
        try:
            asyncio.get_running_loop().create_task(self._notify())
        except RuntimeError:
            pass  # not running in a loop (setup before start): nobody is waiting

    # ------------------------------------------------------------------ order views

    @staticmethod
    def _endpoint_view(endpoint: dict[str, Any]) -> dict[str, Any]:
        status = endpoint["orderItemStatus"]
        return {
            "name": endpoint["name"],
            "statusChanges": list(endpoint["statusChanges"]),
            "orderItemStatus": status,
            "isProcessed": status == "processed",
            "isProcessable": status in PROCESSABLE,
        }

    def order_view(self, order: dict[str, Any]) -> dict[str, Any]:
        """The Order JSON as GET answers it."""
        view = {k: v for k, v in order.items() if k != "items"}
        view["items"] = [
            {
                **{k: v for k, v in item.items() if k != "endpoints"},
                "endpoints": [self._endpoint_view(e) for e in item["endpoints"]],
            }
            for item in order["items"]
        ]
        return view

    @staticmethod
    def _statuses(order: dict[str, Any]) -> list[str]:
        return [e["orderItemStatus"] for i in order["items"] for e in i["endpoints"]]

    def is_processed(self, order: dict[str, Any]) -> bool:
        """Every item at every endpoint is final."""
        return all(s in FINAL for s in self._statuses(order))

    def is_processable(self, order: dict[str, Any]) -> bool:
        """Some item at some endpoint is created or failed."""
        return any(s in PROCESSABLE for s in self._statuses(order))

    def status_of(self, order_id: str, endpoint: str, item_id: int | None = None) -> list[str]:
        """Current statuses at `endpoint` (of one item, or of every item there)."""
        order = self.orders[order_id]
        return [
            e["orderItemStatus"]
            for i in order["items"]
            if item_id is None or i["id"] == item_id
            for e in i["endpoints"]
            if e["name"] == endpoint
        ]

    def history(self, order_id: str, item_id: int, endpoint: str) -> list[str]:
        """The statuses an item went through at an endpoint, in order."""
        order = self.orders[order_id]
        item = next(i for i in order["items"] if i["id"] == item_id)
        ep = next(e for e in item["endpoints"] if e["name"] == endpoint)
        return [c["status"] for c in ep["statusChanges"]]

    def _order_fields(self) -> dict[str, ndata.Member]:
        # The filters seed 002 documents for GET /orders (plus createdAt for sorting).
        return {
            "deviceName": ndata.Member(lambda o: o.get("deviceName")),
            "id": ndata.Member(lambda o: o["id"]),
            "number": ndata.Member(lambda o: o.get("number"), ndata.integer),
            "ticketId": ndata.Member(lambda o: (o.get("ticket") or {}).get("id")),
            "ticketName": ndata.Member(lambda o: (o.get("ticket") or {}).get("name")),
            "userUserName": ndata.Member(lambda o: (o.get("user") or {}).get("userName")),
            "isProcessed": ndata.Member(self.is_processed, ndata.boolean),
            "isProcessable": ndata.Member(self.is_processable, ndata.boolean),
            "createdAt": ndata.Member(lambda o: o.get("createdAt")),
        }

    # ------------------------------------------------------------------ status changes

    def apply_status(
        self, order_id: str, status: str, *, item_id: int | None = None, endpoint: str | None = None
    ) -> dict[str, Any]:
        """Change statuses all or nothing by the seed's rules (`rules`).

        A route that touches several item endpoints (order, endpoint, an item
        at several endpoints) leaves final ones alone; when none can change it
        is a conflict. Raises KeyError (404), PermissionError (403: inactive
        endpoint), StatusConflict (409) or ValueError (400: unknown status).
        """
        order = self.orders.get(order_id)
        if order is None:
            raise KeyError("order")
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        if item_id is not None and not any(i["id"] == item_id for i in order["items"]):
            raise KeyError("item")
        targets = [
            (item, e)
            for item in order["items"]
            if item_id is None or item["id"] == item_id
            for e in item["endpoints"]
            if endpoint is None or e["name"] == endpoint
        ]
        if endpoint is not None and not targets:
            raise KeyError("endpoint")
        for _, e in targets:
            if not self.order_endpoints.get(e["name"], {"isActive": True})["isActive"]:
                raise PermissionError(f"order endpoint {e['name']} is inactive")
        planned, conflicts = [], []
        for item, e in targets:
            try:
                new = next_status(e["orderItemStatus"], status)
            except StatusConflict as err:
                conflicts.append(err)
                continue
            if new is not None:
                planned.append((item, e, new))
        if conflicts and (len(targets) == 1 or len(conflicts) == len(targets)):
            raise conflicts[0]
        now = _now_iso()
        for _, e, new in planned:
            e["orderItemStatus"] = new
            e["statusChanges"].append({"status": new, "date": now})
        self._last_changed = [(item["id"], e["name"], new) for item, e, new in planned]
        self._schedule_notify()
        return self.order_view(order)

    # ------------------------------------------------------------------ HTTP app

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._faults_middleware, self._auth_middleware])
        api = API_PREFIX
        app.router.add_post(f"{api}/auth", self._handle_login)
        app.router.add_post(f"{api}/auth/refresh", self._handle_refresh)
        app.router.add_get(f"{api}/orders", self._handle_list_orders)
        app.router.add_post(f"{api}/orders", self._handle_process_orders)
        app.router.add_get(f"{api}/orders/{{id}}", self._handle_get_order)
        app.router.add_delete(f"{api}/orders/{{id}}", self._handle_delete_order)
        app.router.add_post(f"{api}/orders/{{id}}/status", self._handle_order_status)
        app.router.add_post(
            f"{api}/orders/{{id}}/items/{{itemId}}/status", self._handle_item_status
        )
        app.router.add_post(
            f"{api}/orders/{{id}}/endpoints/{{name}}/status", self._handle_endpoint_status
        )
        app.router.add_get(f"{api}/orderendpoints", self._handle_list_endpoints)
        app.router.add_get(f"{api}/tickets", self._handle_list_tickets)
        app.router.add_post(f"{api}/tickets", self._handle_create_ticket)
        app.router.add_get(f"{api}/tickets/{{id}}", self._handle_get_ticket)
        app.router.add_put(f"{api}/tickets/{{id}}", self._handle_put_ticket)
        app.router.add_delete(f"{api}/tickets/{{id}}", self._handle_delete_ticket)
        app.router.add_post(f"{api}/tickets/{{id}}/close", self._handle_close_ticket)
        app.router.add_get(f"{api}/plus", self._handle_list_plus)
        # control routes (no auth, no faults)
        app.router.add_post("/_sim/plus", self._handle_sim_plu)
        app.router.add_post("/_sim/tickets", self._handle_sim_ticket)
        app.router.add_post("/_sim/tickets/{id}/items", self._handle_sim_items)
        app.router.add_post("/_sim/tickets/{id}/close", self._handle_sim_close)
        app.router.add_post("/_sim/orders", self._handle_sim_put_order)
        app.router.add_delete("/_sim/orders/{id}", self._handle_sim_delete)
        app.router.add_post("/_sim/endpoints/{name}", self._handle_sim_endpoint)
        app.router.add_post("/_sim/faults", self._handle_sim_faults)
        app.router.add_delete("/_sim/faults", self._handle_sim_clear_faults)
        app.router.add_get("/_sim/state", self._handle_sim_state)
        return app

    @web.middleware
    async def _faults_middleware(
        self, request: web.Request, handler: Callable[..., Any]
    ) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX + "/"):
            return await handler(request)
        self.requests += 1
        f = self.faults
        if f.delay:
            await asyncio.sleep(f.delay)
        if f.drop_count > 0:
            f.drop_count -= 1
            # Close the socket mid-request: the client sees a disconnect, not an answer.
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError()
        if f.fail_count > 0 and (
            f.fail_path is None or request.path.startswith(API_PREFIX + f.fail_path)
        ):
            f.fail_count -= 1
            return _error(f.fail_status, "simulated failure")
        if f.malformed_count > 0:
            f.malformed_count -= 1
            await request.read()
            return web.Response(text='{"items": [{"id": "trunc', content_type=JSON)
        return await handler(request)

    @web.middleware
    async def _auth_middleware(
        self, request: web.Request, handler: Callable[..., Any]
    ) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX + "/") or request.path.startswith(
            f"{API_PREFIX}/auth"
        ):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            token = header[7:]
            known = self._tokens.get(token)
            if token in self.static_tokens or (known is not None and known[1] > self._clock()):
                return await handler(request)
        elif header.startswith("NWS4-HMAC-SHA256 ") and self.api_keys:
            body = await request.read()
            url = f"{request.scheme}://{request.host}{request.raw_path}"
            try:
                nws4_verify(request.method, url, request.headers, body, self.api_keys)
            except ValueError as err:
                self.unauthorized += 1
                return _error(401, f"bad signature: {err}")
            return await handler(request)
        self.unauthorized += 1
        return _error(401, "missing, unknown or expired token")

    def _issue_tokens(self, user: str) -> dict[str, Any]:
        expires = self._clock() + self.token_ttl
        claims = {"sub": user, "exp": int(expires), "jti": uuid.uuid4().hex}
        unsigned = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(claims)}"
        signature = (
            base64.urlsafe_b64encode(
                hmac.new(self._secret, unsigned.encode(), hashlib.sha256).digest()
            )
            .rstrip(b"=")
            .decode()
        )
        token = f"{unsigned}.{signature}"
        refresh = secrets.token_urlsafe(24)
        self._tokens[token] = (user, expires)
        self._refresh_tokens[refresh] = user
        return {"tokenId": token, "refreshToken": refresh}

    async def _json_body(self, request: web.Request) -> Any:
        try:
            return await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise web.HTTPBadRequest(
                text=json.dumps({"status": 400, "message": "body is not JSON"}), content_type=JSON
            ) from exc

    async def _handle_login(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        # PORTOS documents PascalCase keys; accept camelCase too.
        get = lambda k: body.get(k) if isinstance(body, dict) else None  # noqa: E731
        user = get("UserName") or get("userName")
        password = get("Password") or get("password") or ""
        device = get("DeviceName") or get("deviceName")
        if not user or not device:
            return _error(400, "UserName and DeviceName are required")
        if self.users.get(user) != password:
            return _error(401, "bad credentials")
        self.auth_logins += 1
        result = self._issue_tokens(user)
        result["user"] = {
            "id": user,
            "isVirtual": False,
            "name": user,
            "userName": user,
            "rights": ["OrderUpdate", "OrderDelete", "OrderProcess"],
            "device": {
                "name": device,
                "envName": "CashRegister",
                "settings": self.devices.get(device, {}),
            },
        }
        return web.json_response(result)

    async def _handle_refresh(self, request: web.Request) -> web.Response:
        fault = self.faults.refresh
        if fault is not None:
            await request.read()
            if fault == "drop":
                if request.transport is not None:
                    request.transport.abort()
                raise asyncio.CancelledError()
            self.refresh_failures += 1
            return {
                "text404": web.Response(status=404, text="Not Found", content_type="text/plain"),
                "empty404": web.Response(status=404),
                "401": _error(401, "refresh token rejected"),
                "garbage": web.Response(
                    status=200, text="<html>proxy error</html>", content_type="text/html"
                ),
            }[fault]
        body = await self._json_body(request)
        refresh = body.get("refreshToken") if isinstance(body, dict) else None
        user = self._refresh_tokens.pop(refresh, None) if isinstance(refresh, str) else None
        if user is None:
            return _error(401, "unknown refresh token")
        self.auth_refreshes += 1
        return web.json_response(self._issue_tokens(user))

    async def _handle_list_orders(self, request: web.Request) -> web.Response:
        fields = self._order_fields()
        try:
            query = ndata.parse(request.query, fields)
            if not query.sort:
                query.sort = [(fields["number"].get, False)]
            page, matched = query.run(list(self.orders.values()))
        except ndata.QueryError as err:
            return _error(400, str(err))
        if query.count_only:
            return web.json_response({"count": matched, "totalCount": matched})
        items = [self.order_view(o) for o in page]
        return web.json_response({"items": items, "count": len(items), "totalCount": matched})

    async def _handle_get_order(self, request: web.Request) -> web.Response:
        order = self.orders.get(request.match_info["id"])
        if order is None:
            return _error(404, "order not found")
        return web.json_response(self.order_view(order))

    async def _handle_delete_order(self, request: web.Request) -> web.Response:
        try:
            self.delete_order(request.match_info["id"])
        except KeyError:
            return _error(404, "order not found")
        return web.Response(status=204)

    async def _handle_process_orders(self, request: web.Request) -> web.Response:
        # ProcessOrdersContext {ticketIds}: processable orders of those tickets are "sent".
        body = await self._json_body(request)
        ticket_ids = body.get("ticketIds") if isinstance(body, dict) else None
        if not isinstance(ticket_ids, list):
            return _error(400, "ticketIds is required")
        affected = []
        for order in list(self.orders.values()):
            if order["ticket"]["id"] in ticket_ids and self.is_processable(order):
                for item in order["items"]:
                    for e in item["endpoints"]:
                        if e["orderItemStatus"] in PROCESSABLE:
                            e["orderItemStatus"] = "sent"
                            e["statusChanges"].append({"status": "sent", "date": _now_iso()})
                affected.append(self.order_view(order))
        self._schedule_notify()
        return web.json_response(affected)

    async def _status_route(
        self,
        request: web.Request,
        route: str,
        *,
        item_id: int | None = None,
        endpoint: str | None = None,
    ) -> web.Response:
        order_id = request.match_info["id"]
        body = await self._json_body(request)
        status = body.get("status") if isinstance(body, dict) else None
        post = StatusPost(order_id, route, str(status), 0, item_id=item_id, endpoint=endpoint)
        self.status_posts.append(post)
        self._last_changed = []
        try:
            if status not in STATUSES:
                raise ValueError(f"unknown status {status!r}")
            view = self.apply_status(order_id, str(status), item_id=item_id, endpoint=endpoint)
        except StatusConflict as err:
            post.answer = 409
            response = _error(409, str(err))
        except ValueError as err:
            post.answer = 400
            response = _error(400, str(err))
        except KeyError as err:
            post.answer = 404
            response = _error(404, f"{err.args[0]} not found")
        except PermissionError as err:
            post.answer = 403
            response = _error(403, str(err))
        else:
            post.answer = 200
            post.changed = self._last_changed
            response = web.json_response(view)
        self._schedule_notify()
        return response

    async def _handle_order_status(self, request: web.Request) -> web.Response:
        return await self._status_route(request, "order")

    async def _handle_item_status(self, request: web.Request) -> web.Response:
        try:
            item_id = int(request.match_info["itemId"])
        except ValueError:
            return _error(400, "itemId must be an integer")
        return await self._status_route(request, "item", item_id=item_id)

    async def _handle_endpoint_status(self, request: web.Request) -> web.Response:
        return await self._status_route(request, "endpoint", endpoint=request.match_info["name"])

    async def _handle_list_endpoints(self, request: web.Request) -> web.Response:
        items = list(self.order_endpoints.values())
        return web.json_response({"items": items, "count": len(items), "totalCount": len(items)})

    async def _handle_list_plus(self, request: web.Request) -> web.Response:
        items = list(self.plus.values())
        return web.json_response({"items": items, "count": len(items), "totalCount": len(items)})

    def _ticket_fields(self) -> dict[str, ndata.Member]:
        # A few of the filters seed 000 documents for GET /tickets.
        return {
            "isClosed": ndata.Member(lambda t: t["state"] == "closed", ndata.boolean),
            "id": ndata.Member(lambda t: t["id"]),
            "name": ndata.Member(lambda t: t["name"]),
            "originDeviceName": ndata.Member(lambda t: t["originDeviceName"]),
            "purchaseType": ndata.Member(lambda t: t["purchaseType"]),
            "openDate": ndata.Member(lambda t: t["openDate"]),
            "locationTableName": ndata.Member(lambda t: (t["location"] or {}).get("tableName")),
            "locationZoneName": ndata.Member(lambda t: (t["location"] or {}).get("zoneName")),
        }

    async def _handle_list_tickets(self, request: web.Request) -> web.Response:
        fields = self._ticket_fields()
        try:
            query = ndata.parse(request.query, fields)
            page, matched = query.run(list(self.tickets.values()))
        except ndata.QueryError as err:
            return _error(400, str(err))
        if query.count_only:
            return web.json_response({"count": matched, "totalCount": matched})
        return web.json_response({"items": page, "count": len(page), "totalCount": matched})

    async def _handle_get_ticket(self, request: web.Request) -> web.Response:
        ticket = self.tickets.get(request.match_info["id"])
        if ticket is None:
            return _error(404, "ticket not found")
        return web.json_response(ticket)

    def _ticket_args(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": body.get("name"),
            "location": body.get("location"),
            "purchase_type": body.get("purchaseType", "walkIn"),
            "customer": body.get("customer"),
            "device": body.get("originDeviceName") or body.get("deviceName") or "P01",
        }

    async def _handle_create_ticket(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("items", []), list):
            return _error(400, "a Ticket object is required")
        try:
            ticket = self.create_ticket(
                body.get("items", []), ticket_id=body.get("id"), **self._ticket_args(body)
            )
        except ValueError as err:
            return _error(400, str(err))
        return web.json_response(ticket, status=201)

    async def _handle_put_ticket(self, request: web.Request) -> web.Response:
        ticket_id = request.match_info["id"]
        body = await self._json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("items", []), list):
            return _error(400, "a Ticket object is required")
        try:
            if ticket_id not in self.tickets:
                ticket = self.create_ticket(
                    body.get("items", []), ticket_id=ticket_id, **self._ticket_args(body)
                )
                return web.json_response(ticket, status=201)
            changes = {
                k: body[k] for k in ("name", "location", "purchaseType", "customer") if k in body
            }
            self.update_ticket(ticket_id, body.get("items", []), **changes)
        except PermissionError as err:
            return _error(403, str(err))
        except ValueError as err:
            return _error(400, str(err))
        return web.json_response(self.tickets[ticket_id])

    async def _handle_delete_ticket(self, request: web.Request) -> web.Response:
        ticket = self.tickets.get(request.match_info["id"])
        if ticket is None:
            return _error(404, "ticket not found")
        if ticket["state"] != "open":
            return _error(403, "ticket is closed")
        del self.tickets[ticket["id"]]
        return web.Response(status=204)

    async def _handle_close_ticket(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(self.close_ticket(request.match_info["id"]))
        except KeyError:
            return _error(404, "ticket not found")
        except PermissionError as err:
            return _error(403, str(err))

    # ------------------------------------------------------------------ /_sim/ control routes

    async def _handle_sim_plu(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        plu = self.add_plu(
            int(body["code"]),
            str(body["name"]),
            body.get("orderEndpointNames", []),
            course_number=body.get("courseNumber"),
            category=body.get("articleCategoryLabel", "FOD"),
        )
        return web.json_response(plu)

    async def _handle_sim_ticket(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        try:
            ticket = self.create_ticket(body.get("items", []), **self._ticket_args(body))
        except ValueError as err:
            return _error(400, str(err))
        orders = [o for o in self.orders.values() if o["ticket"]["id"] == ticket["id"]]
        return web.json_response({"ticket": ticket, "order": orders[-1] if orders else None})

    async def _handle_sim_items(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        try:
            order = self.add_items(request.match_info["id"], body.get("items", []))
        except KeyError:
            return _error(404, "ticket not found")
        except PermissionError as err:
            return _error(403, str(err))
        except ValueError as err:
            return _error(400, str(err))
        return web.json_response({"order": order})

    async def _handle_sim_close(self, request: web.Request) -> web.Response:
        return await self._handle_close_ticket(request)

    async def _handle_sim_put_order(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if not isinstance(body, dict):
            return _error(400, "an Order object is required")
        return web.json_response(self.put_order(body))

    async def _handle_sim_delete(self, request: web.Request) -> web.Response:
        return await self._handle_delete_order(request)

    async def _handle_sim_endpoint(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        self.set_endpoint_active(request.match_info["name"], bool(body.get("isActive", True)))
        return web.json_response(self.order_endpoints[request.match_info["name"]])

    async def _handle_sim_faults(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        if "fail" in body:
            spec = body["fail"]
            self.fail(int(spec.get("count", 1)), int(spec.get("status", 500)), spec.get("path"))
        if "delay" in body:
            self.delay(float(body["delay"]))
        if "malformed" in body:
            self.malformed(int(body["malformed"]))
        if "drop" in body:
            self.drop(int(body["drop"]))
        if body.get("expireTokens"):
            self.expire_tokens()
        return web.json_response(self.faults.__dict__)

    async def _handle_sim_clear_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response(self.faults.__dict__)

    async def _handle_sim_state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "orders": [self.order_view(o) for o in self.orders.values()],
                "tickets": list(self.tickets.values()),
                "deletedOrders": sorted(self.deleted_orders),
                "statusPosts": [p.__dict__ for p in self.status_posts],
                "requests": self.requests,
            }
        )


# --------------------------------------------------------------------------- CLI


def register(subparsers: Any) -> None:
    """Add `kds portos-sim` to the CLI."""
    parser = subparsers.add_parser(
        "portos-sim", help="run a simulated PORTOS server (for demos and tests)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--user", default="kds:kds", help="USER:PASSWORD accepted by POST /api/auth"
    )
    parser.add_argument(
        "--token", action="append", default=[], help="a static bearer token to accept (repeatable)"
    )
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        help="CLIENT_ID:SECRET for NWS4 signing (repeatable)",
    )
    parser.add_argument(
        "--token-ttl", type=float, default=3600.0, help="seconds an issued token is valid"
    )
    parser.add_argument(
        "--default-endpoint", default="kitchen", help="DefaultOrderEndpointName of device P01"
    )
    parser.add_argument(
        "--no-demo-catalog", action="store_true", help="start without the demo PLUs"
    )
    parser.add_argument(
        "--feed",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="act like a busy till: a ticket change every SECONDS (0: off)",
    )
    parser.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    user, _, password = args.user.partition(":")
    keys = dict(k.split(":", 1) for k in args.api_key if ":" in k)
    sim = PortosSimulator(
        host=args.host,
        port=args.port,
        users={user: password},
        static_tokens=args.token,
        api_keys=keys,
        token_ttl=args.token_ttl,
        devices={"P01": {"DefaultOrderEndpointName": args.default_endpoint}},
        demo_catalog=not args.no_demo_catalog,
    )

    async def _main() -> None:
        await sim.start()
        print(f"PORTOS simulator at {sim.url} (control routes under {sim.root}/_sim/)", flush=True)
        try:
            await (sim.feed(args.feed) if args.feed > 0 else asyncio.Event().wait())
        finally:
            await sim.stop()

    try:
        asyncio.run(_main())
    except KeyboardInterrupt:
        pass
    return 0
