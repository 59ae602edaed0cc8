"""A fake ready2order account: the table-orders API and webhook delivery.

A real aiohttp server on 127.0.0.1 that speaks the parts of the ready2order
API v1 kds uses (seed 001): Bearer account-token auth (401 without, 403 for a
developer token), the developer-token → grantAccessToken flow, `GET/POST
/v1/orders`, `POST /v1/orders/transfer`, `GET /v1/products`, `GET
/v1/products/{id}`, `GET /v1/productgroups[/{id}]`, `GET /v1/tables[/{id}]`, `GET
/v1/document/invoice`, `PUT /v1/webhook` and `PUT /v1/webhook/events`, and the
documented limit of 60 requests a minute per account token (429 beyond it).

It returns only fields seed 001 shows for each resource (an order row has no
`productgroup_id`: kds must find an item's group through its product). Two
are inferred and marked where they are made: `productgroup_parent` on group
rows (the seed has it only in the create/update body) and `trainingMode` on
order rows (the seed's training-mode section, not its row example).

Waiters are driven from Python (`create_items`, `return_items`,
`cancel_items`, `set_order_status`, `transfer_items`, `bill_table`, or
`step()` for random traffic). Each change fires a webhook to the registered
URL; delivery retries on failure.

Faults use the vocabulary every simulator shares (`kds.simulators.faults`), on
two channels. The API: `await sim.set_mode("error", times=2, status=503)` (also
`slow`, `hang`, `drop`, `garbage`, `html`, `offline`), or `POST /_sim/mode` from
another process. The webhooks it sends: `sim.set_webhook_mode(mode, times=N)`
with ``drop`` (lost: never delivered, never retried), ``duplicate`` (delivered
twice) or ``hold`` (queued until `release()`, which can reorder them), so tests
can reproduce what a real webhook sender does on a bad day.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import random
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from .faults import HTTP_MODES, HTTP_PARAMS, ONLINE, FaultSwitch, fault_middleware
from .server import FaultyServer, Listener
from .traffic import paced

log = structlog.get_logger(__name__)

ORDER_ITEM_EVENTS = ("orderItem.created", "orderItem.cancelled", "orderItem.transferred")


@dataclass
class SimProduct:
    """A catalogue product with its product group."""

    id: int
    name: str
    group_id: int
    price: Decimal
    itemnumber: str | None = None


@dataclass
class SimGroup:
    """A product group, optionally inside a parent group."""

    id: int
    name: str
    parent: int | None = None


@dataclass
class WebhookDelivery:
    """One webhook as the simulator sent (or tried to send) it."""

    event: str
    body: bytes
    attempts: int = 0
    statuses: list[int | str] = field(default_factory=list)
    delivered: bool = False
    dropped: bool = False


#: What can happen to a webhook the simulator sends.
WEBHOOK_MODES = (ONLINE, "drop", "duplicate", "hold")


def _error(status: int) -> web.Response:
    return web.json_response({"error": True, "msg": "simulated failure"}, status=status)


class Ready2OrderSimulator(FaultyServer):
    """A ready2order account on 127.0.0.1 with a Python API to generate traffic."""

    name = "ready2order-simulator"

    def __init__(
        self,
        *,
        account_token: str = "r2o-account-token",
        developer_token: str = "r2o-developer-token",
        rate_limit: int = 60,
        rate_period: float = 60.0,
        retry_delays: Sequence[float] = (0.05, 0.2, 1.0, 5.0),
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
        seed: int | None = None,
    ) -> None:
        self.account_token = account_token
        self.developer_token = developer_token
        self.rate_limit = rate_limit
        self.rate_period = rate_period
        self.retry_delays = list(retry_delays)
        self._host = host
        self._port = port
        self._clock = clock
        self._rng = random.Random(seed)
        self._session: aiohttp.ClientSession | None = None
        self._sender: asyncio.Task[None] | None = None
        self.url = ""
        # catalogue and floor
        self.groups: dict[int, SimGroup] = {}
        self.products: dict[int, SimProduct] = {}
        self.tables: dict[int, str] = {}
        self.items: dict[int, dict[str, Any]] = {}  # open (unbilled, not cancelled) order items
        self.cancelled: dict[int, dict[str, Any]] = {}
        self.invoices: list[dict[str, Any]] = []
        self._invoice_ids = itertools.count(9001)
        self._ids = itertools.count(1001)
        self._group_ids = itertools.count(1)
        self._product_ids = itertools.count(501)
        self._table_ids = itertools.count(101)
        self._order_groups = itertools.count(1)
        self._order_numbers = itertools.count(1)
        # webhooks
        self.webhook_url: str | None = None
        self.webhook_events: set[str] = set()
        self.deliveries: list[WebhookDelivery] = []
        self._queue: collections.deque[WebhookDelivery] = collections.deque()
        self._queue_changed = asyncio.Event()
        self._held: list[WebhookDelivery] = []
        self.faults = FaultSwitch(HTTP_MODES, HTTP_PARAMS)  # on the API
        self.webhook_faults = FaultSwitch(WEBHOOK_MODES, {})  # on the webhooks it sends
        self._in_flight = 0
        self._delivering: set[asyncio.Task[None]] = set()
        self.payload_style = "resource"
        # grant-access flow
        self.grants: dict[str, dict[str, Any]] = {}
        # request log for rate-limit assertions: (time, token, path, status)
        self.requests: list[tuple[float, str, str, int]] = []
        self._windows: dict[str, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self._listener = Listener(self._build_app(), host, port)

    # ------------------------------------------------------------------ lifecycle

    def _build_app(self) -> web.Application:
        """The API routes behind the fault and auth middlewares."""
        faults = fault_middleware(
            self.faults, applies=lambda r: r.path.startswith("/v1/"), error=_error
        )
        app = web.Application(middlewares=[faults, self._auth_middleware])
        app.add_routes(
            [
                web.get("/v1/orders", self._handle_list_orders),
                web.post("/v1/orders", self._handle_create_orders),
                web.post("/v1/orders/transfer", self._handle_transfer),
                web.get("/v1/products", self._handle_products),
                web.get("/v1/products/{id}", self._handle_product),
                web.get("/v1/document/invoice", self._handle_invoices),
                web.get("/v1/productgroups", self._handle_productgroups),
                web.get("/v1/productgroups/{id}", self._handle_productgroup),
                web.get("/v1/tables", self._handle_tables),
                web.get("/v1/tables/{id}", self._handle_table),
                web.get("/v1/webhook", self._handle_get_webhook),
                web.put("/v1/webhook", self._handle_put_webhook),
                web.get("/v1/webhook/events", self._handle_get_webhook_events),
                web.put("/v1/webhook/events", self._handle_put_webhook_events),
                web.post("/v1/developerToken/grantAccessToken", self._handle_grant_create),
                web.get("/v1/developerToken/grantAccessToken/{token}", self._handle_grant_get),
                web.get("/grant/{token}", self._handle_grant_page),
                web.post("/grant/{token}", self._handle_grant_approve),
                *self.mode_routes(),
            ]
        )
        return app

    async def start(self) -> None:
        """Serve the API on 127.0.0.1 and start the webhook sender."""
        port = await self._listener.start()
        self.url = f"http://{self._host}:{port}"
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        self._sender = asyncio.create_task(self._send_loop(), name="r2o-sim-webhooks")

    async def stop(self) -> None:
        """Stop sending webhooks and close the server."""
        if self._sender is not None:
            self._sender.cancel()
            for task in list(self._delivering):
                task.cancel()
            await asyncio.gather(self._sender, *self._delivering, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        self.faults.release()
        await self._listener.stop()

    @property
    def api_url(self) -> str:
        """The API root kds is configured with (`.../v1`)."""
        return f"{self.url}/v1"

    # ------------------------------------------------------------------ catalogue and floor

    def add_group(self, name: str, parent: int | None = None) -> int:
        """Add a product group (inside `parent`); return its id."""
        gid = next(self._group_ids)
        self.groups[gid] = SimGroup(gid, name, parent)
        return gid

    def add_product(
        self,
        name: str,
        group: str | int,
        price: Decimal | str | float = "5.00",
        *,
        notify: bool = True,
    ) -> int:
        """Add a product to `group` (a name creates the group); return its id."""
        if isinstance(group, str):
            gid = next(
                (g for g, grp in self.groups.items() if grp.name == group), None
            ) or self.add_group(group)
        else:
            gid = group
        pid = next(self._product_ids)
        self.products[pid] = SimProduct(pid, name, gid, Decimal(str(price)), itemnumber=f"P{pid}")
        if notify:  # product events carry the full object (DESIGN §5)
            body = {
                "event": "product.created",
                "resource": [self._product_json(self.products[pid])],
            }
            self._enqueue("product.created", json.dumps(body).encode())
        return pid

    def add_table(self, name: str | int) -> int:
        """Add a table; return its id."""
        tid = next(self._table_ids)
        self.tables[tid] = str(name)
        return tid

    def create_items(
        self,
        table_id: int,
        lines: Iterable[
            tuple[int, float | int | str]
            | tuple[int, float | int | str, str | None]
            | dict[str, Any]
        ],
        *,
        order_group: int | None = None,
        training: bool = False,
        retour: bool = False,
        notify: bool = True,
    ) -> list[int]:
        """A waiter books items on a table; returns their order_ids and fires orderItem.created.

        Each line is `(product_id, quantity[, comment])` or a dict with
        `product_id, quantity, comment, course`. A negative quantity is a
        correction line; `retour=True` books return lines (`order_retour`).
        """
        group = order_group if order_group is not None else next(self._order_groups)
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        number = next(self._order_numbers)
        ids = []
        for line in lines:
            if isinstance(line, dict):
                pid, qty = line["product_id"], line.get("quantity", 1)
                comment, course = line.get("comment"), line.get("course")
            else:
                pid, qty = line[0], line[1]
                comment = line[2] if len(line) > 2 else None  # type: ignore[misc]
                course = None
            product = self.products[pid]
            oid = next(self._ids)
            qty_d = Decimal(str(qty))
            self.items[oid] = {
                "order_id": oid,
                "order_quantity": str(qty_d),
                "order_priceGross": str(product.price * qty_d * (-1 if retour else 1)),
                "order_product_priceGrossPerUnit": str(product.price),
                "order_retour": retour,
                "order_number": number,
                "order_group": group,
                "order_product_name": product.name,
                "order_product_itemnumber": product.itemnumber,
                "order_course": course,
                "order_status": 1,
                "order_comment": comment,
                "table_id": table_id,
                "product_id": pid,
                "user_id": 1,
                "productgroup_type_id": 2,
                "order_created_at": now,
                "trainingMode": training,  # inferred: the seed's training-mode section
            }
            ids.append(oid)
        if notify and ids:
            self._emit(
                "orderItem.created", {"ids": ids, "table_id": table_id, "training": training}
            )
        return ids

    def return_items(
        self, table_id: int, lines: Iterable[tuple[int, float | int | str]], *, notify: bool = True
    ) -> list[int]:
        """A waiter books returns (retour mode): rows with `order_retour` and a positive quantity."""
        return self.create_items(table_id, lines, retour=True, notify=notify)

    def set_order_status(self, ids: Iterable[int], status: int) -> None:
        """Change `order_status` of open items (no webhook: the seed documents none for it)."""
        for oid in ids:
            self.items[oid]["order_status"] = status

    def cancel_items(self, ids: Iterable[int], *, notify: bool = True) -> list[int]:
        """Void open items before billing; fires orderItem.cancelled."""
        done = []
        for oid in ids:
            item = self.items.pop(oid, None)
            if item is not None:
                self.cancelled[oid] = item
                done.append(oid)
        if notify and done:
            self._emit("orderItem.cancelled", {"ids": done})
        return done

    def transfer_items(
        self,
        source_table_id: int,
        target_table_id: int,
        ids: Iterable[int] | None = None,
        *,
        notify: bool = True,
    ) -> list[int]:
        """Move open items to another table; fires orderItem.transferred."""
        wanted = set(ids) if ids is not None else None
        moved = []
        group = next(self._order_groups)
        for oid, item in self.items.items():
            if item["table_id"] == source_table_id and (wanted is None or oid in wanted):
                item["table_id"] = target_table_id
                item["order_group"] = group
                moved.append(oid)
        if notify and moved:
            self._emit(
                "orderItem.transferred",
                {
                    "ids": moved,
                    "source_table_id": source_table_id,
                    "target_table_id": target_table_id,
                    "order_group": group,
                },
            )
        return moved

    def bill_table(self, table_id: int) -> list[int]:
        """The guests pay: the table's items leave the open list (no orderItem event) for an invoice."""
        billed = [oid for oid, item in self.items.items() if item["table_id"] == table_id]
        if not billed:
            return billed
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        invoice_id = next(self._invoice_ids)
        items = []
        training = False
        for oid in billed:
            row = self.items.pop(oid)
            training = training or bool(row.get("trainingMode"))
            items.append(
                {
                    "item_id": oid * 10,
                    "item_timestamp": now,
                    "item_quantity": row["order_quantity"],
                    "item_retour": row["order_retour"],
                    "item_name": row["order_product_name"],
                    "item_price": row["order_product_priceGrossPerUnit"],
                    "product_id": row["product_id"],
                    "invoice_id": invoice_id,
                    "table_id": table_id,
                    "table_name": self.tables.get(table_id),
                }
            )
        self.invoices.append(
            {
                "invoice_id": invoice_id,
                "invoice_timestamp": now,
                "invoice_numberFull": f"RG{invoice_id}",
                "invoice_testMode": training,
                "table_id": table_id,
                "items": items,
            }
        )
        return billed

    def seed_menu(
        self, menu: dict[str, list[tuple[str, str]]] | None = None, tables: int = 10
    ) -> None:
        """A menu (product group → [(name, price)]; default: grill, cold kitchen, drinks) and tables 1..n."""
        if self.products:
            return
        menu = menu or {
            "Grill": [
                ("Burger", "9.50"),
                ("Steak", "19.00"),
                ("Chicken wings", "7.80"),
                ("Grilled halloumi", "8.20"),
            ],
            "Cold kitchen": [("Caesar salad", "8.90"), ("Gazpacho", "5.50"), ("Tiramisu", "5.20")],
            "Drinks": [
                ("Lemonade", "3.50"),
                ("Espresso", "2.40"),
                ("Pilsner", "3.90"),
                ("Mineral water", "2.20"),
            ],
        }
        for group, products in menu.items():
            if group not in (g.name for g in self.groups.values()):
                self.add_group(group)
            for name, price in products:
                self.add_product(name, group, price)
        for n in range(1, tables + 1):
            self.add_table(n)

    def step(self) -> str:
        """One random waiter action (mostly new items); returns what was done."""
        self.seed_menu()
        roll = self._rng.random()
        if roll < 0.08 and self.items:
            self.cancel_items([self._rng.choice(list(self.items))])
            return "cancel"
        if roll < 0.13 and self.items:
            source = self._rng.choice([i["table_id"] for i in self.items.values()])
            target = self._rng.choice([t for t in self.tables if t != source] or [source])
            self.transfer_items(source, target)
            return "transfer"
        if roll < 0.18:
            busy = sorted({i["table_id"] for i in self.items.values()})
            if busy:
                self.bill_table(self._rng.choice(busy))
                return "bill"
        table = self._rng.choice(list(self.tables))
        lines = []
        for _ in range(self._rng.randint(1, 4)):
            comment = self._rng.choice([None, None, None, "no onion", "well done", "extra ice"])
            lines.append(
                (self._rng.choice(list(self.products)), self._rng.choice([1, 1, 1, 2, 3]), comment)
            )
        self.create_items(table, lines)
        return "create"

    async def run_traffic(self, per_minute: float, stop: asyncio.Event) -> None:
        """Call `step()` about `per_minute` times a minute until `stop` is set."""
        await paced(self.step, per_minute, stop, self._rng)

    # ------------------------------------------------------------------ webhook control

    def set_webhook_mode(self, mode: str, *, times: int | None = None) -> None:
        """What happens to the next `times` webhooks (None: until set again): drop, duplicate, hold."""
        self.webhook_faults.set(mode, times=times)

    def release(self, *, reverse: bool = False, shuffle: bool = False) -> None:
        """Send the held webhooks, optionally in reverse or shuffled order."""
        held, self._held = self._held, []
        if self.webhook_faults.mode == "hold":
            self.webhook_faults.set(ONLINE)
        if reverse:
            held.reverse()
        if shuffle:
            self._rng.shuffle(held)
        self._queue.extend(held)
        self._queue_changed.set()

    async def wait_delivered(self, timeout: float = 5.0) -> None:
        """Wait until every queued webhook was delivered (or given up on)."""

        async def idle() -> None:
            while self._queue or self._in_flight:
                self._queue_changed.clear()
                await self._queue_changed.wait()

        await asyncio.wait_for(idle(), timeout)

    def _payload(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        # The seed says only "Resource IDs" / "transfer metadata"; this is one
        # plausible shape (a `resource` array), with others selectable for tests.
        ids = data["ids"]
        if event == "orderItem.transferred":
            resource: Any = {
                "source_table_id": data["source_table_id"],
                "target_table_id": data["target_table_id"],
                "target_order_group_id": data["order_group"],
                "order_ids": ids,
            }
        else:
            resource = ids
        if self.payload_style == "ids":
            return {
                "event": event,
                "ids": ids,
                **({} if event != "orderItem.transferred" else resource),
            }
        if self.payload_style == "objects" and event == "orderItem.created":
            return {"event": event, "resource": [{"order_id": i} for i in ids]}
        return {
            "id": str(uuid.uuid4()),
            "event": event,
            "timestamp": int(time.time()),
            "resource": resource,
        }

    def _emit(self, event: str, data: dict[str, Any]) -> None:
        body = json.dumps(self._payload(event, data)).encode()
        self._enqueue(event, body)

    def emit_raw(self, event: str, body: bytes) -> None:
        """Send an arbitrary webhook body (for tests of odd payload shapes)."""
        self._enqueue(event, body)

    def _enqueue(self, event: str, body: bytes) -> None:
        if self.webhook_url is None or (self.webhook_events and event not in self.webhook_events):
            return
        fault = self.webhook_faults.take()
        mode = fault.mode if fault is not None else ONLINE
        if mode == "drop":
            self.deliveries.append(WebhookDelivery(event, body, dropped=True))
            return
        for _ in range(2 if mode == "duplicate" else 1):
            delivery = WebhookDelivery(event, body)
            self.deliveries.append(delivery)
            (self._held if mode == "hold" else self._queue).append(delivery)
        self._queue_changed.set()

    async def _send_loop(self) -> None:
        while True:
            while not self._queue:
                self._queue_changed.clear()
                await self._queue_changed.wait()
            delivery = self._queue.popleft()
            self._in_flight += 1
            task = asyncio.create_task(self._deliver(delivery))
            self._delivering.add(task)
            task.add_done_callback(self._delivering.discard)

    async def _deliver(self, delivery: WebhookDelivery) -> None:
        assert self._session is not None
        try:
            for delay in [0.0, *self.retry_delays]:
                if delay:
                    await asyncio.sleep(delay)  # retry backoff of the sender, not a test wait
                if self.webhook_url is None:
                    return
                delivery.attempts += 1
                try:
                    async with self._session.post(
                        self.webhook_url,
                        data=delivery.body,
                        headers={"Content-Type": "application/json"},
                    ) as resp:
                        delivery.statuses.append(resp.status)
                        if 200 <= resp.status < 300:
                            delivery.delivered = True
                            return
                except (TimeoutError, aiohttp.ClientError) as err:
                    delivery.statuses.append(type(err).__name__)
            log.warning(
                "r2o_sim.webhook_given_up", event=delivery.event, attempts=delivery.attempts
            )
        finally:
            self._in_flight -= 1
            self._queue_changed.set()

    # ------------------------------------------------------------------ HTTP

    @web.middleware
    async def _auth_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        path = request.path
        if path.startswith(("/grant/", "/_sim/")):
            return await handler(request)
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        dev_route = path.startswith("/v1/developerToken")
        expected = self.developer_token if dev_route else self.account_token
        if not token:
            status, resp = (
                401,
                web.json_response(
                    {"error": True, "msg": "Authorization header missing"}, status=401
                ),
            )
        elif token != expected:
            other = self.account_token if dev_route else self.developer_token
            status = 403 if token == other else 401
            resp = web.json_response(
                {"error": True, "msg": "wrong token type" if status == 403 else "invalid token"},
                status=status,
            )
        elif not self._admit(token):
            status = 429
            retry_after = self._retry_after(token)
            resp = web.json_response(
                {"error": True, "msg": "Rate limit exceeded"},
                status=429,
                headers={"Retry-After": str(retry_after)},
            )
        else:
            resp = await handler(request)
            status = resp.status
        self.requests.append((self._clock(), token, path, status))
        return resp

    def _admit(self, token: str) -> bool:
        """Sliding-window limit: at most `rate_limit` admitted requests per `rate_period`."""
        now = self._clock()
        window = self._windows[token]
        while window and now - window[0] >= self.rate_period:
            window.popleft()
        if len(window) >= self.rate_limit:
            return False
        window.append(now)
        return True

    def _retry_after(self, token: str) -> int:
        window = self._windows[token]
        wait = self.rate_period - (self._clock() - window[0]) if window else 1
        return max(1, int(wait + 0.999))

    @property
    def throttled(self) -> int:
        """How many requests were answered 429."""
        return sum(1 for r in self.requests if r[3] == 429)

    def max_admitted_in_period(self) -> int:
        """The most non-429 requests seen in any `rate_period` window."""
        times = [t for t, _, _, status in self.requests if status != 429]
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= self.rate_period:
                start += 1
            best = max(best, end - start + 1)
        return best

    @staticmethod
    def _page(request: web.Request, rows: list[Any]) -> list[Any]:
        try:
            limit = max(1, min(int(request.query.get("limit", "25")), 250))
            page = max(1, int(request.query.get("page", "1")))
        except ValueError:
            raise web.HTTPBadRequest(text="page and limit must be integers") from None
        return rows[(page - 1) * limit : page * limit]

    async def _handle_list_orders(self, request: web.Request) -> web.Response:
        training = request.query.get("trainingsMode", "false").lower() in ("1", "true")
        rows = [i for i in self.items.values() if bool(i.get("trainingMode")) == training]
        if "table_id" in request.query:
            rows = [i for i in rows if str(i["table_id"]) == request.query["table_id"]]
        return web.json_response(self._page(request, rows))

    async def _handle_create_orders(self, request: web.Request) -> web.Response:
        body = await request.json()
        lines = [
            {
                "product_id": it["product_id"],
                "quantity": it.get("item_quantity", 1),
                "comment": it.get("item_comment"),
                "course": it.get("item_course"),
            }
            for it in body.get("items", [])
        ]
        ids = self.create_items(
            int(body["table_id"]), lines, training=bool(body.get("training_mode"))
        )
        return web.json_response([self.items[i] for i in ids])

    async def _handle_transfer(self, request: web.Request) -> web.Response:
        body = await request.json()
        moved = self.transfer_items(
            int(body["source_table_id"]),
            int(body["target_table_id"]),
            body.get("order_ids") or None,
        )
        return web.json_response([self.items[i] for i in moved])

    def _group_json(self, g: SimGroup) -> dict[str, Any]:
        row: dict[str, Any] = {
            "productgroup_id": g.id,
            "productgroup_name": g.name,
            "productgroup_type_id": 2,
        }
        if g.parent is not None:
            row["productgroup_parent"] = (
                g.parent
            )  # inferred: the seed has it in the create/update body
        return row

    def _product_json(self, p: SimProduct) -> dict[str, Any]:
        grp = self.groups.get(p.group_id)
        group = {
            "productgroup_id": p.group_id,
            "productgroup_name": grp.name if grp else None,
            "productgroup_type_id": 2,
        }
        return {
            "product_id": p.id,
            "product_name": p.name,
            "product_itemnumber": p.itemnumber,
            "product_price": float(p.price),
            "productgroup_id": p.group_id,
            "productgroup": group,
        }

    async def _handle_products(self, request: web.Request) -> web.Response:
        return web.json_response(
            self._page(request, [self._product_json(p) for p in self.products.values()])
        )

    @staticmethod
    def _by_id(request: web.Request, rows: dict[int, Any], what: str) -> Any:
        """The row `{id}` names, or a 404 like the API's."""
        key = request.match_info["id"]
        row = rows.get(int(key)) if key.isascii() and key.isdigit() else None
        if row is None:
            raise web.HTTPNotFound(
                text=json.dumps({"error": True, "msg": f"{what} not found"}),
                content_type="application/json",
            )
        return row

    async def _handle_product(self, request: web.Request) -> web.Response:
        return web.json_response(self._product_json(self._by_id(request, self.products, "Product")))

    async def _handle_productgroup(self, request: web.Request) -> web.Response:
        return web.json_response(
            self._group_json(self._by_id(request, self.groups, "Productgroup"))
        )

    def _table_json(self, tid: int) -> dict[str, Any]:
        return {"table_id": tid, "table_name": self.tables[tid], "table_description": None}

    async def _handle_table(self, request: web.Request) -> web.Response:
        self._by_id(request, self.tables, "Table")
        return web.json_response(self._table_json(int(request.match_info["id"])))

    async def _handle_productgroups(self, request: web.Request) -> web.Response:
        return web.json_response(
            self._page(request, [self._group_json(g) for g in self.groups.values()])
        )

    async def _handle_invoices(self, request: web.Request) -> web.Response:
        """`GET /document/invoice` with the seed's filters kds uses: tableId, dateFrom (bill date), items."""
        rows = self.invoices
        if "tableId" in request.query:
            rows = [r for r in rows if str(r["table_id"]) == request.query["tableId"]]
        if "dateFrom" in request.query:
            since = _parse_date(request.query["dateFrom"])
            rows = [r for r in rows if _parse_date(r["invoice_timestamp"]) >= since]
        if request.query.get("items", "false").lower() not in ("1", "true"):
            rows = [{k: v for k, v in r.items() if k != "items"} for r in rows]
        try:
            offset = max(0, int(request.query.get("offset", "0")))
            limit = max(1, min(int(request.query.get("limit", "50")), 255))
        except ValueError:
            raise web.HTTPBadRequest(text="offset and limit must be integers") from None
        page = rows[offset : offset + limit]
        return web.json_response(
            {"invoices": page, "count": len(rows), "offset": offset, "limit": limit}
        )

    async def _handle_tables(self, request: web.Request) -> web.Response:
        rows = [self._table_json(t) for t in self.tables]
        return web.json_response(self._page(request, rows))

    async def _handle_get_webhook(self, request: web.Request) -> web.Response:
        return web.json_response({"webhookUrl": self.webhook_url})

    async def _handle_put_webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.webhook_url = body.get("webhookUrl") or None
        return web.json_response({"error": False, "success": True, "webhookUrl": self.webhook_url})

    async def _handle_get_webhook_events(self, request: web.Request) -> web.Response:
        return web.json_response(sorted(self.webhook_events))

    async def _handle_put_webhook_events(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("addEvent"):
            self.webhook_events.add(body["addEvent"])
        if body.get("removeEvent"):
            self.webhook_events.discard(body["removeEvent"])
        name = body.get("addEvent") or body.get("removeEvent")
        return web.json_response(
            {
                "error": False,
                "success": True,
                "msg": f"Your now receiving webhooks for the event {name}",
            }
        )

    async def _handle_grant_create(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        token = secrets.token_urlsafe(16)
        callback = body.get("callbackUri") or body.get("authorizationCallbackUri")
        self.grants[token] = {
            "status": "pending",
            "callback": callback,
            "expires": time.time() + 600,
        }
        return web.json_response(
            {
                "error": False,
                "success": True,
                "grantAccessToken": token,
                "grantAccessUri": f"{self.url}/grant/{token}",
                "status": "pending",
                "expiresAt": int(self.grants[token]["expires"]),
            },
            status=201,
        )

    async def _handle_grant_get(self, request: web.Request) -> web.Response:
        grant = self.grants.get(request.match_info["token"])
        if grant is None:
            return web.json_response({"error": True, "msg": "unknown grantAccessToken"}, status=404)
        body: dict[str, Any] = {
            "grantAccessToken": request.match_info["token"],
            "status": grant["status"],
        }
        if grant["status"] == "approved":
            body["accountToken"] = self.account_token
        return web.json_response(body)

    def approve(self, grant_token: str) -> None:
        """The account owner clicks Approve."""
        self.grants[grant_token]["status"] = "approved"

    async def _handle_grant_page(self, request: web.Request) -> web.Response:
        if request.match_info["token"] not in self.grants:
            raise web.HTTPNotFound()
        return web.Response(
            text='<form method="post"><button>Approve</button></form>', content_type="text/html"
        )

    async def _handle_grant_approve(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        grant = self.grants.get(token)
        if grant is None:
            raise web.HTTPNotFound()
        self.approve(token)
        if grant["callback"]:
            raise web.HTTPFound(
                f"{grant['callback']}?accountToken={self.account_token}&grantAccessToken={token}&status=approved"
            )
        return web.Response(text="approved")


def _parse_date(value: str) -> datetime:
    """A whole date or an ISO 8601 datetime (the seed's dateFrom), as aware UTC."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
