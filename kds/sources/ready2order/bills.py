"""What left a table's open list because it was paid for: reading bills.

An item kds sent that vanished from the open table orders was billed or
removed; the table's bills since the order (`GET /document/invoice?items=true`)
tell which. A dish on a bill was paid for; any other is voided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..coerce import as_bool, as_decimal, as_int, text

if TYPE_CHECKING:
    from .client import Ready2OrderClient

#: POS and kds clocks differ: bills this much before the order count.
BILL_SLACK = timedelta(minutes=10)
#: Invoices per page of `GET /document/invoice`.
PAGE = 255
#: Pages read at most.
MAX_PAGES = 200


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
            if not isinstance(item, dict) or as_bool(item.get("item_retour")):
                continue
            quantity = as_decimal(item.get("item_quantity")) or Decimal(1)
            lines.append(
                BilledLine(as_int(item.get("product_id")), text(item.get("item_name")), quantity)
            )
    return lines


def take_billed(lines: list[BilledLine], product_id: int | None, name: str) -> bool:
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


async def billed(client: Ready2OrderClient, table: int, since: datetime) -> list[BilledLine]:
    """The lines billed at `table` since `since` (`GET /document/invoice`, paged by offset)."""
    params: dict[str, Any] = {
        "tableId": table, "items": "true", "dateField": "bill",
        "dateFrom": since.strftime("%Y-%m-%dT%H:%M:%SZ"), "limit": PAGE,
    }  # fmt: skip
    lines: list[BilledLine] = []
    for page in range(MAX_PAGES):
        data = await client.get("/document/invoice", {**params, "offset": page * PAGE})
        lines += billed_lines(data)
        invoices = data.get("invoices") if isinstance(data, dict) else None
        count = as_int(data.get("count")) if isinstance(data, dict) else None
        if not isinstance(invoices, list) or count is None or (page + 1) * PAGE >= count:
            break
    return lines
