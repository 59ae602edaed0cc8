"""A fake cheques API (seed 003): open cheques that change over time.

A real aiohttp server on 127.0.0.1. Every call is `POST {root}/v1` (path and
method configurable) with the header `INTENT_OPERATION_TYPE`; `GET_CHEQUES`
answers a `ChequesResponse` with the whole list (empty `uuids`) or the chosen
cheques (resultCode 488 when one is missing); `AUTH` with a PIN returns the
token expected afterwards in `Auth-token`. Money and quantities are strings,
as in the seed, and items may come without name or code.

Tests and `kds demo` drive it from Python: `open_cheque`, `add_item`,
`set_quantity`, `remove_item`, `close_cheque`, or `step()` for random
traffic. Faults use the vocabulary every simulator shares
(`kds.simulators.faults`): `await sim.set_mode("error", times=1)` (HTTP 500),
`"garbage"`, `"html"`, `"hang"`, `"slow"`, `"drop"`, `"offline"`, and this API's
own ``result`` (HTTP 200 with resultCode `code`, 488 by default: "one or more
cheques not found"); `then_mode()` queues the next one.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from aiohttp import web

from .faults import FAULT, HTTP_MODES, HTTP_PARAMS, FaultSwitch, fault_middleware
from .server import FaultyServer, Listener
from .traffic import paced


@dataclass
class SimChequeItem:
    """One line of a cheque."""

    price: Decimal
    quantity: Decimal
    name: str | None = None
    code: int | None = None
    discount_percent: Decimal | None = None
    # Fields sent as given instead of computed: a till that sends what kds cannot read.
    raw: dict[str, Any] = field(default_factory=dict)

    def discount(self) -> Decimal:
        """The line's discount in money."""
        if not self.discount_percent:
            return Decimal(0)
        return (self.price * self.quantity * self.discount_percent / 100).quantize(Decimal("0.01"))

    def total(self) -> Decimal:
        """The line's total after its discount."""
        return self.price * self.quantity - self.discount()

    def to_json(self) -> dict[str, Any]:
        total = self.price * self.quantity
        data: dict[str, Any] = {}
        if self.code is not None:
            data["code"] = {"type": 0, "value": self.code}
        if self.name is not None:
            data["name"] = self.name
        data.update(price=_money(self.price), quantity=_money(self.quantity), sum=_money(total))
        if self.discount_percent:
            data["discount"] = {
                "isPercent": True,
                "value": _money(self.discount_percent),
                "sum": _money(self.discount()),
            }
        data["total"] = _money(self.total())
        data.update(self.raw)
        return data


@dataclass
class SimCheque:
    """An open cheque: a Postponed one or an Order at a table and place."""

    uuid: str
    name: str
    cheque_type: str = "Order"
    table: int | None = None
    place: int | None = None
    items: list[SimChequeItem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "uuid": self.uuid,
            "name": self.name,
            "chequeType": self.cheque_type,
        }
        if self.table is not None:
            info["table"] = self.table
        if self.place is not None:
            info["place"] = self.place
        items = [i.to_json() for i in self.items]
        sub = sum((i.total() for i in self.items), Decimal(0))
        return {
            "info": info,
            "currency": "BYN",
            "subTotal": _money(sub),
            "total": _money(sub),
            "items": items,
            "payments": [],
        }


def _money(value: Decimal) -> str:
    # The seed writes "5", "60.5", "3.03": no trailing zeros.
    return format(value.normalize(), "f")


#: HTTP 200 with `resultCode: 488`: the API's answer when a cheque asked for is missing.
NOT_FOUND = 488
_GARBAGE = b'{"resultCode": 200, "cheques": [{"info": 17'


def _error(status: int) -> web.Response:
    return web.Response(status=status, text=HTTPStatus(status).phrase)


class ChequesSimulator(FaultyServer):
    """A cheques API on 127.0.0.1 with a Python API to change its cheques."""

    name = "cheques-simulator"

    def __init__(
        self,
        *,
        path: str = "/v1",
        method: str = "POST",
        pin: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
    ) -> None:
        self.path = path
        self.method = method.upper()
        self.pin = pin
        self._host = host
        self._port = port
        self._rng = random.Random(seed)
        self.url = ""
        self.cheques: dict[str, SimCheque] = {}
        self._numbers = itertools.count(1)
        self.tokens: set[str] = set()
        self.faults = FaultSwitch((*HTTP_MODES, "result"), {**HTTP_PARAMS, "code": NOT_FOUND})
        self.requests: list[dict[str, Any]] = []
        self.request_seen = asyncio.Condition()
        self.menu: list[tuple[str | None, int | None, Decimal]] = []
        faults = fault_middleware(
            self.faults, applies=lambda r: r.path == self.path, error=_error, garbage=_GARBAGE
        )
        app = web.Application(middlewares=[self._record_middleware, faults])
        app.router.add_route(self.method, self.path, self._handle)
        app.add_routes(self.mode_routes())
        self._listener = Listener(app, host, port)

    async def start(self) -> None:
        """Serve the API on 127.0.0.1."""
        port = await self._listener.start()
        self.url = f"http://{self._host}:{port}"

    async def stop(self) -> None:
        """Close the server (releasing any hung request)."""
        self.faults.release()
        await self._listener.stop()

    @property
    def endpoint_url(self) -> str:
        """The full URL kds polls."""
        return f"{self.url}{self.path}"

    # ------------------------------------------------------------------ cheques

    def open_cheque(
        self,
        name: str | None = None,
        *,
        cheque_type: str = "Order",
        table: int | None = None,
        place: int | None = None,
        cheque_uuid: str | None = None,
    ) -> str:
        """Open a cheque (with the given uuid, else a new one); return its uuid."""
        cid = cheque_uuid or str(uuid.uuid4())
        self.cheques[cid] = SimCheque(
            cid, name or f"Чек {next(self._numbers)}", cheque_type, table, place
        )
        return cid

    def add_item(
        self,
        cheque: str,
        price: Decimal | str | float,
        quantity: Decimal | str | float = 1,
        *,
        name: str | None = None,
        code: int | None = None,
        discount_percent: Decimal | str | None = None,
    ) -> int:
        """Append a line to a cheque; return its position."""
        item = SimChequeItem(
            Decimal(str(price)),
            Decimal(str(quantity)),
            name,
            code,
            Decimal(str(discount_percent)) if discount_percent is not None else None,
        )
        self.cheques[cheque].items.append(item)
        return len(self.cheques[cheque].items) - 1

    def set_quantity(self, cheque: str, position: int, quantity: Decimal | str | float) -> None:
        """Change the quantity of a line."""
        self.cheques[cheque].items[position].quantity = Decimal(str(quantity))

    def set_price(self, cheque: str, position: int, price: Decimal | str | float) -> None:
        """Change the price of a line (a price correction, the dish is the same)."""
        self.cheques[cheque].items[position].price = Decimal(str(price))

    def set_raw(self, cheque: str, position: int, **fields: Any) -> None:
        """Send these fields of a line as given (e.g. `quantity="abc"`); no fields: back to normal."""
        item = self.cheques[cheque].items[position]
        item.raw = dict(fields) if fields else {}

    def remove_item(self, cheque: str, position: int) -> None:
        """Delete a line (later lines move up)."""
        del self.cheques[cheque].items[position]

    def close_cheque(self, cheque: str) -> None:
        """The cheque is paid: it disappears from the list."""
        del self.cheques[cheque]

    def seed_menu(
        self, menu: list[tuple[str | None, int | None, Decimal | str]] | None = None
    ) -> None:
        """The menu `step()` picks from: (name, code, price); by default some lines lack name or code, as in the seed."""
        if menu is not None:
            self.menu = [(name, code, Decimal(str(price))) for name, code, price in menu]
        if not self.menu:
            self.menu = [
                ("Борщ", 10, Decimal("6.5")),
                ("Драники", 11, Decimal("7.2")),
                ("Чай", None, Decimal("5")),
                ("Кофе", 13, Decimal("4.5")),
                ("Салат оливье", 14, Decimal("8")),
                (None, None, Decimal("5")),
            ]

    def step(self) -> str:
        """One random change (new cheque, more or fewer items, paid); returns what was done."""
        self.seed_menu()
        roll = self._rng.random()
        if not self.cheques or roll < 0.25:
            kind = self._rng.choice(["Order", "Order", "Postponed"])
            cid = self.open_cheque(
                cheque_type=kind,
                table=self._rng.randint(1, 12) if kind == "Order" else None,
                place=self._rng.randint(1, 4) if kind == "Order" else None,
            )
            self._add_random(cid)
            return "open"
        cid = self._rng.choice(list(self.cheques))
        cheque = self.cheques[cid]
        if roll < 0.6 or not cheque.items:
            self._add_random(cid)
            return "add"
        if roll < 0.72:
            pos = self._rng.randrange(len(cheque.items))
            self.set_quantity(cid, pos, cheque.items[pos].quantity + 1)
            return "more"
        if roll < 0.8:
            self.remove_item(cid, self._rng.randrange(len(cheque.items)))
            return "remove"
        self.close_cheque(cid)
        return "close"

    def _add_random(self, cid: str) -> None:
        name, code, price = self._rng.choice(self.menu)
        self.add_item(cid, price, self._rng.choice([1, 1, 2]), name=name, code=code)

    async def run_traffic(self, per_minute: float, stop: asyncio.Event) -> None:
        """Call `step()` about `per_minute` times a minute until `stop` is set."""
        await paced(self.step, per_minute, stop, self._rng)

    async def wait_requests(self, count: int, timeout: float = 5.0) -> None:
        """Wait until at least `count` requests were received in total."""

        async def enough() -> None:
            async with self.request_seen:
                await self.request_seen.wait_for(lambda: len(self.requests) >= count)

        await asyncio.wait_for(enough(), timeout)

    # ------------------------------------------------------------------ HTTP

    @web.middleware
    async def _record_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Record every API call, the faulty ones too."""
        if request.path != self.path:
            return await handler(request)
        raw = await request.read()
        record = {
            "intent": request.headers.get("INTENT_OPERATION_TYPE", ""),
            "token": request.headers.get("Auth-token"),
            "body": raw,
        }
        try:
            return await handler(request)
        finally:
            async with self.request_seen:
                self.requests.append(record)
                self.request_seen.notify_all()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        intent = request.headers.get("INTENT_OPERATION_TYPE", "")
        raw = await request.read()
        fault = request[FAULT]
        if fault is not None and fault.mode == "result":
            code = int(self.faults.param("code", fault))
            detail = "Один или несколько чеков не найдены" if code == NOT_FOUND else "Ошибка"
            return self._base(intent, code, "Ошибка", detail)
        return self._answer(intent, raw, request)

    def _answer(self, intent: str, raw: bytes, request: web.Request) -> web.Response:
        if intent == "AUTH":
            body = _json_or_empty(raw)
            if self.pin is not None and str(body.get("pin", "")) != self.pin:
                return self._base(intent, 401, "Ошибка", "Неверный PIN")
            token = secrets.token_hex(8)
            self.tokens.add(token)
            return web.json_response(
                {**self._base_body(intent, 200, "Успех", "Авторизация успешна"), "token": token}
            )
        if self.pin is not None and request.headers.get("Auth-token") not in self.tokens:
            return self._base(intent, 401, "Ошибка", "Требуется авторизация")
        if intent != "GET_CHEQUES":
            return self._base(intent, 400, "Ошибка", f"Неизвестная операция {intent!r}")
        wanted = _json_or_empty(raw).get("uuids") or []
        if wanted:
            if any(u not in self.cheques for u in wanted):
                return self._base(
                    intent, NOT_FOUND, "Ошибка", "Один или несколько чеков не найдены"
                )
            cheques = [self.cheques[u] for u in wanted]
        else:
            cheques = list(self.cheques.values())
        return web.json_response(
            {
                **self._base_body(intent, 200, "Успех", "Чеки успешно получены"),
                "cheques": [c.to_json() for c in cheques],
            }
        )

    @staticmethod
    def _base_body(intent: str, code: int, title: str, detail: str) -> dict[str, Any]:
        return {"messageDetail": detail, "messageTitle": title, "resultCode": code, "type": intent}

    def _base(self, intent: str, code: int, title: str, detail: str) -> web.Response:
        # The API answers its own errors with HTTP 200 and a resultCode (seed 003).
        return web.json_response(self._base_body(intent, code, title, detail))


def _json_or_empty(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
