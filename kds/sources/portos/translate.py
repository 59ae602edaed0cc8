"""Where a PORTOS Order becomes a kds order: translation, returned lines, foreign endpoints.

Pure functions of the raw Order JSON and the source's config: no I/O. The
source (`source.py`) calls `translate` for new dishes and `returned_lines` for
negative lines (returns, corrections, stornos), which cancel kitchen lines.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from ...model import OrderIn, OrderStatus, PurchaseType
from ...states import FINAL
from ..coerce import text
from .config import Config

#: Status values final in PORTOS (a line there is done and left alone).
FINAL_VALUES = frozenset(s.value for s in FINAL)
STATUS_VALUES = frozenset(s.value for s in OrderStatus)
_PURCHASE_TYPES = frozenset(p.value for p in PurchaseType)


def _text(value: Any) -> str | None:
    # POS text is plain text, kept as sent; overlong text is cut, not a reason to lose the order.
    return text(value, strip=False)


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
            if name and status not in FINAL_VALUES and not config.owns(str(name), kds_endpoints):
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
    """The negative lines of an Order at endpoints kds owns (PORTOS marks returns by the sign).

    Raises ValueError for a line kds cannot match to a dish (a plu that is not an object, an
    amount that is not a finite number): cancelling a guess could take back the wrong dish.
    """
    lines = []
    for item in raw.get("items") or []:
        quantity = item.get("quantity") if isinstance(item, dict) else None
        amount = quantity.get("amount") if isinstance(quantity, dict) else quantity
        number = isinstance(amount, (int, float)) and not isinstance(amount, bool)
        if not number or not (amount < 0 or math.isnan(amount)):
            continue  # not a return (NaN is neither sign: read, and refused, below)
        named = [e for e in item.get("endpoints") or [] if isinstance(e, dict) and e.get("name")]
        open_ = [
            str(e["name"])
            for e in named
            if (e.get("orderItemStatus") or e.get("status")) not in FINAL_VALUES
        ]
        owned = [n for n in open_ if config.owns(n, kds_endpoints)]
        if not owned or not isinstance(item.get("id"), int):
            continue
        lines.append(_returned_line(item, amount, owned, len(owned) == len(open_), config))
    if lines:
        ticket_of(raw)  # the voids look up the ticket's earlier kitchen orders
    return lines


def _returned_line(
    item: dict[str, Any], amount: float, owned: list[str], acknowledge: bool, config: Config
) -> ReturnedLine:
    plu = item.get("plu") or {}
    if not isinstance(plu, dict):
        raise ValueError(f"returned line {item['id']}: its plu is not an object")
    if not math.isfinite(amount):
        raise ValueError(f"returned line {item['id']}: its quantity is not a number")
    return ReturnedLine(
        id=item["id"],
        code=plu.get("code"),
        stock_name=plu.get("stockName"),
        name=_text(plu.get("name")) or "",
        amount=Decimal(str(-amount)),
        kds_endpoints=tuple(config.to_kds(n) for n in owned),
        acknowledge=acknowledge,
    )


def ticket_of(raw: dict[str, Any]) -> dict[str, Any]:
    """The Order's ticket object ({} when it has none); ValueError when it is something else."""
    ticket = raw.get("ticket") or {}
    if not isinstance(ticket, dict):
        raise ValueError("the order's ticket is not an object")
    return ticket


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
            if status in FINAL_VALUES or not config.owns(str(name), kds_endpoints):
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
    ticket = ticket_of(raw)
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
