"""Orders as flat rows and back: the mapping every store backend shares.

An order is kept as a header (JSON of the order without items or derived
fields), one row per item and one per item endpoint, plus the audit rows of
its status changes. Rows read back were written by kds itself, so objects
are built without validation (`trusted`) and repeated text is shared.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..interning import shared, shared_plu, shared_quantity, shared_user
from ..model import (
    Hold,
    ItemEndpoint,
    Location,
    Order,
    OrderEvent,
    OrderItem,
    PurchaseType,
    TicketInfo,
    trusted,
)
from ..states import OrderStatus

_HEADER_EXCLUDE = {"items", "status", "endpoint_statuses", "is_processed", "is_processable"}
#: A stored status text → its OrderStatus (for loaders: a dict lookup, not the enum's __call__).
STATUS_BY_VALUE: dict[str, OrderStatus] = {s.value: s for s in OrderStatus}


def header_json(order: Order) -> str:
    """The order without its items (they have rows of their own) or derived fields."""
    return order.model_dump_json(exclude=_HEADER_EXCLUDE)


def item_row(order_id: str, position: int, item: OrderItem) -> tuple[Any, ...]:
    """An item as a row: order_id, item_id, position, plu_name, plu_code, plu_stock_name,
    plu_group, amount, unit, comment, course_number, modifiers, allergens (its endpoints
    have rows of their own)."""
    plu, quantity = item.plu, item.quantity
    return (
        order_id,
        item.id,
        position,
        plu.name,
        plu.code,
        plu.stock_name,
        plu.group,
        str(quantity.amount),
        quantity.unit,
        item.comment,
        item.course_number,
        _text_list(item.modifiers),
        _text_list(item.allergens),
    )


#: `json.dumps(..., ensure_ascii=False)` without building an encoder per call (two per item).
_encode = json.JSONEncoder(ensure_ascii=False).encode


def _text_list(values: list[str]) -> str:
    """A list of text as the JSON the items table holds (most are empty)."""
    return _encode(values) if values else "[]"


def item_from_row(row: Any, endpoints: list[ItemEndpoint]) -> OrderItem:
    """The inverse of `item_row` (a row without `position`), for rows kds wrote itself."""
    (
        _,
        item_id,
        name,
        code,
        stock_name,
        group,
        amount,
        unit,
        comment,
        course_number,
        modifiers,
        allergens,
    ) = row
    return trusted(
        OrderItem,
        id=item_id,
        plu=shared_plu(name, code, stock_name, group),
        quantity=shared_quantity(amount, unit),
        comment=shared(comment),
        course_number=course_number,
        modifiers=_texts(modifiers),
        endpoints=endpoints,
        allergens=_texts(allergens),
    )


def _texts(stored: str) -> list[str]:
    """A stored JSON list of text, shared; most lists are empty and need no parsing."""
    return [] if stored == "[]" else [shared(t) for t in json.loads(stored)]


def _date(text: str, dates: dict[str, datetime] | None) -> datetime:
    """`text` parsed, one object per instant in `dates` (an order's stamps repeat in its history)."""
    if dates is None:
        return datetime.fromisoformat(text)
    key = text[:-1] + "+00:00" if text.endswith("Z") else text  # the header's and the rows' form
    found = dates.get(key)
    if found is None:
        found = dates[key] = datetime.fromisoformat(text)
    return found


def order_from_header(
    data: dict[str, Any], items: list[OrderItem], dates: dict[str, datetime] | None = None
) -> Order:
    """The inverse of `header_json`, for rows kds wrote itself (`dates`: parsed stamps to share)."""
    ticket = data["ticket"]
    location = ticket["location"]
    return trusted(
        Order,
        id=data["id"],
        number=data["number"],
        pos_number=data.get("pos_number"),
        source=shared(data["source"]),
        external_id=data["external_id"],
        device_name=shared(data["device_name"]),
        user=shared_user(data["user"]),
        ticket=trusted(
            TicketInfo,
            id=ticket["id"],
            name=shared(ticket["name"]),
            location=None
            if location is None
            else trusted(
                Location,
                zone_name=shared(location["zone_name"]),
                table_name=shared(location["table_name"]),
            ),
            purchase_type=PurchaseType(ticket["purchase_type"]),
            customer=ticket["customer"],
            version=ticket["version"],
        ),
        items=items,
        created_at=_date(data["created_at"], dates),
        updated_at=_date(data["updated_at"], dates),
        version=data["version"],
        rush=data.get("rush", False),
        allergen_acks={
            name: datetime.fromisoformat(date)
            for name, date in data.get("allergen_acks", {}).items()
        },
        events=[OrderEvent.model_validate(e) for e in data.get("events", [])],
        due_at=None if data.get("due_at") is None else datetime.fromisoformat(data["due_at"]),
        holds=[Hold.model_validate(h) for h in data.get("holds") or ()],
    )
