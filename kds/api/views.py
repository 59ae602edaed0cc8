"""What a credential may see: the endpoints it is limited to, and orders without personal data.

A `viewer` token (pickup board, cashier board) sees orders without the
customer object (phone, address, e-mail of a delivery...). A kitchen token
may be limited to some endpoints (`[[security.tokens]] endpoints = [...]`):
its feed and order lists hold only orders routed there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..appkeys import ACTOR
from ..model import Order

#: The endpoints a limited token may use (absent: every endpoint).
SCOPE: web.RequestKey[frozenset[str]] = web.RequestKey("scope", frozenset)
#: Roles that see orders without personal data.
PRIVATE_ROLES = frozenset({"viewer"})
_CUSTOMER = '"customer":{'  # how a customer object appears in kds's compact JSON


@dataclass(frozen=True)
class View:
    """Which orders a caller sees (None: all) and whether personal data is left out."""

    endpoints: frozenset[str] | None = None
    private: bool = False

    def shows(self, order: Order) -> bool:
        """True when `order` is routed to one of the view's endpoints."""
        return self.endpoints is None or not self.endpoints.isdisjoint(order.endpoint_names())

    def shows_archived(self, order: dict[str, Any]) -> bool:
        """`shows` for an archived order's JSON."""
        if self.endpoints is None:
            return True
        names = {e.get("name") for i in order.get("items", []) for e in i.get("endpoints", [])}
        return not self.endpoints.isdisjoint(names)

    def order_json(self, order: Order) -> str:
        """The order's JSON as this view may see it."""
        text = order.wire_json(keep=False)
        return private_json(text) if self.private else text


def view_of(request: web.Request, endpoint: str | None = None) -> View:
    """The view of the request's caller, narrowed to `endpoint` when given."""
    scope = request.get(SCOPE)
    endpoints = (
        scope if endpoint is None else frozenset({endpoint}) & (scope or frozenset({endpoint}))
    )
    return View(endpoints, request.get(ACTOR) in PRIVATE_ROLES)


def strip_personal(order: dict[str, Any]) -> dict[str, Any]:
    """An order dict without the customer's personal data (in place)."""
    ticket = order.get("ticket")
    if isinstance(ticket, dict) and ticket.get("customer") is not None:
        ticket["customer"] = None
    return order


def private_json(text: str) -> str:
    """Order JSON without personal data; the text itself when it has no customer (the usual case)."""
    if _CUSTOMER not in text:
        return text
    return json.dumps(strip_personal(json.loads(text)), separators=(",", ":"), ensure_ascii=False)


def private_event(payload: bytes) -> bytes:
    """An event's JSON without personal data in its order."""
    if _CUSTOMER.encode() not in payload:
        return payload
    data = json.loads(payload)
    if isinstance(data.get("order"), dict):
        strip_personal(data["order"])
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
