"""Where ready2order order rows become a kds order: products, groups, tables, quantities.

Pure functions of the rows (seed 001: `order_id`, `product_id`, `table_id`,
`order_quantity`, ...) and what the catalogue knows: an item's name and item
number, its product group and the groups that group is inside (which is what
routing rules match), the table's name. Rows that are returns or training are
recognised here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from ...model import (
    MAX_COURSE,
    ItemEndpointIn,
    Location,
    OrderIn,
    OrderItemIn,
    Plu,
    PurchaseType,
    Quantity,
    TicketInfo,
)
from ...routing import Router
from ..coerce import as_bool, as_decimal, as_int, text, three_places
from .catalog import Catalogue

#: Keys a row may flag training mode with (the seed does not fix one).
_TRAINING_KEYS = (
    "trainingMode",
    "training_mode",
    "trainingsMode",
    "order_trainingMode",
    "order_training",
)


def is_training(row: dict[str, Any]) -> bool:
    """A row booked in training mode."""
    return any(as_bool(row.get(key)) for key in _TRAINING_KEYS)


def is_return(row: dict[str, Any]) -> bool:
    """A return or correction row: booked in retour mode, or a negative quantity."""
    quantity = as_decimal(row.get("order_quantity"))
    return as_bool(row.get("order_retour")) or (quantity is not None and quantity < 0)


def returned_quantity(row: dict[str, Any]) -> Decimal:
    """How much of a dish a return row takes back."""
    return abs(as_decimal(row.get("order_quantity")) or Decimal(1))


def groups_of(row: dict[str, Any], catalog: Catalogue) -> list[str]:
    """The row's product group and the groups it is inside, innermost first."""
    product = catalog.products.get(as_int(row.get("product_id")) or -1)
    return catalog.group_chain(product.group_id if product else None)


def plu_of(row: dict[str, Any], catalog: Catalogue) -> Plu:
    """The kds product of an order row: its name, item number and product group."""
    product = catalog.products.get(as_int(row.get("product_id")) or -1)
    groups = groups_of(row, catalog)
    code = (
        text(row.get("order_product_itemnumber"))
        or text(product and product.itemnumber)
        or text(row.get("product_id"))
    )
    return Plu(
        name=text(row.get("order_product_name"))
        or text(product and product.name)
        or f"Product {row.get('product_id')}",
        code=code[:64] if code else None,
        group=groups[0] if groups else None,
    )


def plu_identity(row: dict[str, Any], catalog: Catalogue) -> tuple[str, str | None]:
    """The name and code an item of this row gets in kds (what a return is matched by)."""
    plu = plu_of(row, catalog)
    return plu.name, (str(plu.code) if plu.code is not None else None)


def ticket_name(table_name: str, *, training: bool) -> str:
    """The ticket's name: the table, marked when booked in training mode."""
    name = f"Table {table_name}"
    return f"TRAINING · {name}" if training else name


def order_in(
    source: str,
    table: int | None,
    rows: Sequence[dict[str, Any]],
    catalog: Catalogue,
    router: Router,
) -> OrderIn:
    """One kitchen ticket of a table's new rows, each item routed by its product group tree."""
    training = any(is_training(r) for r in rows)
    table_name = catalog.table_name(table)
    items = []
    for row in sorted(rows, key=lambda r: as_int(r.get("order_id")) or 0):
        quantity = as_decimal(row.get("order_quantity")) or Decimal(1)
        course = as_int(row.get("order_course"))
        item = OrderItemIn(
            id=as_int(row["order_id"]),
            plu=plu_of(row, catalog),
            quantity=Quantity(amount=three_places(quantity)),
            comment=text(row.get("order_comment")),
            # As given; a value the model cannot hold never drops the dish.
            course_number=course if course is not None and 0 <= course <= MAX_COURSE else None,
        )
        # Routed here, where the group tree is known: a rule on a parent group matches its children.
        groups = groups_of(row, catalog)
        item.endpoints = [ItemEndpointIn(name=e) for e in router.route(item, groups)]
        items.append(item)
    return OrderIn(
        source=source,
        device_name="ready2order",
        user=text(rows[0].get("user_id")),
        ticket=TicketInfo(
            id=str(table) if table is not None else None,
            name=ticket_name(table_name, training=training),
            location=Location(table_name=table_name),
            purchase_type=PurchaseType.WALK_IN,
        ),
        items=items,
    )
