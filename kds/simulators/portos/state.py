"""The PORTOS simulator's state: catalogue, tickets, the orders they generate, statuses, tokens.

Faithful where the seeds speak (000 Tickets, 002 Orders, 004 models): tickets
are created and updated, a closed ticket cannot change, and after every ticket
update the items added since the last order become a new Order whose item
endpoints come from the PLU's `orderEndpointNames`, else the device's
`DefaultOrderEndpointName`. What is taken back — a `returned`/`correction`
ticket item (negative quantity), a lower quantity, a line deleted from the
ticket — becomes an Order line with a negative quantity (our inference: seed
004's OrderItem has no type, so the sign is what can carry it). Status changes
follow the seed's rules (`rules`, not kds's own table), all or nothing.

No HTTP here: `app` serves this state, `control` runs it and tells it what to do.
"""

from __future__ import annotations

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

from . import query as ndata
from .rules import FINAL, PROCESSABLE, STATUSES, StatusConflict, next_status

#: Ticket item types whose quantity is negative (seed 004 TicketItemType).
NEGATIVE_TYPES = frozenset({"returned", "correction"})


def now_iso() -> str:
    """Now, as PORTOS writes dates."""
    now = datetime.now(UTC)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


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


#: Told of every change: (event, order id) for a created or deleted order, (None, None) otherwise.
ChangeHook = Callable[[str | None, str | None], None]


class PortosState:
    """What a PORTOS back office holds, and the seed's rules for changing it."""

    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        static_tokens: Iterable[str] = (),
        api_keys: dict[str, str] | None = None,
        token_ttl: float = 3600.0,
        devices: dict[str, dict[str, Any]] | None = None,
        endpoints: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.users = dict(users if users is not None else {"kds": "kds"})
        self.static_tokens = set(static_tokens)
        self.api_keys = dict(api_keys or {})
        self.token_ttl = token_ttl
        self.devices: dict[str, dict[str, Any]] = devices or {
            "P01": {"DefaultOrderEndpointName": "kitchen"}
        }
        self.on_change: ChangeHook = lambda event, order_id: None
        self.order_endpoints: dict[str, dict[str, Any]] = {}
        for name in endpoints:
            self.add_endpoint(name)
        self.plus: dict[int, dict[str, Any]] = {}
        self.tickets: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.deleted_orders: set[str] = set()
        self.status_posts: list[StatusPost] = []
        self.last_changed: list[tuple[int, str, str]] = []  # what the last status change did
        self.requests = 0
        self.auth_logins = 0
        self.auth_refreshes = 0
        self.unauthorized = 0
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}  # tokenId -> (user, expires)
        self._refresh_tokens: dict[str, str] = {}  # refreshToken -> user
        self._numbers = itertools.count(1)
        self._secret = secrets.token_bytes(16)
        # ticket -> item id -> quantity already ordered
        self._ordered: dict[str, dict[int, float]] = {}
        # ticket -> item id -> the line last seen
        self._lines: dict[str, dict[int, dict[str, Any]]] = {}

    def changed(self, event: str | None = None, order_id: str | None = None) -> None:
        """Tell `on_change` (waiters, webhooks) that something changed."""
        self.on_change(event, order_id)

    # ------------------------------------------------------------------ catalogue and devices

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

    def load_demo_catalog(self) -> None:
        """Endpoints grill, bar, kitchen and six PLUs (`kds demo`)."""
        for endpoint in ("grill", "bar", "kitchen"):
            self.add_endpoint(endpoint)
        self.add_plu(101, "Burger", ["grill"], category="FOD", course_number=2)
        self.add_plu(102, "Hranolky", ["grill"], category="FOD", course_number=2)
        self.add_plu(103, "Kofola 0,5l", ["bar"], category="DRK", course_number=1)
        self.add_plu(104, "Pivo 0,5l", ["bar"], category="DRK", course_number=1)
        self.add_plu(105, "Cesnaková polievka", [], category="FOD", course_number=1)
        self.add_plu(106, "Steak s prílohou", ["grill", "kitchen"], category="FOD", course_number=2)

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
            "openDate": now_iso(),
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
        ticket["closeDate"] = now_iso()
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
            now = now_iso()
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
            "createdAt": now_iso(),
        }
        self.orders[order["id"]] = order
        self.changed("order.created", order["id"])
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
        order.setdefault("createdAt", now_iso())
        self.orders[order["id"]] = order
        self.changed()
        return order

    def delete_order(self, order_id: str) -> None:
        """Delete an order (DELETE /orders/{id})."""
        if self.orders.pop(order_id, None) is None:
            raise KeyError(order_id)
        self.deleted_orders.add(order_id)
        self.changed("order.deleted", order_id)

    def process_orders(self, ticket_ids: list[Any]) -> list[dict[str, Any]]:
        """POST /orders (ProcessOrdersContext): processable orders of those tickets become sent."""
        affected = []
        for order in list(self.orders.values()):
            if order["ticket"]["id"] in ticket_ids and self.is_processable(order):
                for item in order["items"]:
                    for e in item["endpoints"]:
                        if e["orderItemStatus"] in PROCESSABLE:
                            e["orderItemStatus"] = "sent"
                            e["statusChanges"].append({"status": "sent", "date": now_iso()})
                affected.append(self.order_view(order))
        self.changed()
        return affected

    def delete_ticket(self, ticket_id: str) -> None:
        """Delete an open ticket; KeyError when unknown, PermissionError when closed."""
        self._open_ticket(ticket_id)
        del self.tickets[ticket_id]

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

    def order_fields(self) -> dict[str, ndata.Member]:
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

    def ticket_fields(self) -> dict[str, ndata.Member]:
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
        now = now_iso()
        for _, e, new in planned:
            e["orderItemStatus"] = new
            e["statusChanges"].append({"status": new, "date": now})
        self.last_changed = [(item["id"], e["name"], new) for item, e, new in planned]
        self.changed()
        return self.order_view(order)

    # ------------------------------------------------------------------ auth

    def login(self, user: str, password: str) -> dict[str, Any] | None:
        """AuthResult's tokens for good credentials, else None."""
        if self.users.get(user) != password:
            return None
        self.auth_logins += 1
        return self.issue_tokens(user)

    def refresh(self, refresh_token: object) -> dict[str, Any] | None:
        """New tokens for a refresh token (each works once), else None."""
        if not isinstance(refresh_token, str):
            return None
        user = self._refresh_tokens.pop(refresh_token, None)
        if user is None:
            return None
        self.auth_refreshes += 1
        return self.issue_tokens(user)

    def token_valid(self, token: str) -> bool:
        """A static token, or an issued one that has not expired."""
        known = self._tokens.get(token)
        return token in self.static_tokens or (known is not None and known[1] > self._clock())

    def expire_tokens(self) -> None:
        """Every issued and static token stops working at once (refresh tokens still work)."""
        now = self._clock()
        self._tokens = {t: (user, min(exp, now - 1)) for t, (user, exp) in self._tokens.items()}
        self.static_tokens.clear()

    def issue_tokens(self, user: str) -> dict[str, Any]:
        """A new JWT and refresh token for `user` (AuthResult's tokenId and refreshToken)."""
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
