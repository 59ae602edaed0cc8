"""Lowering a kitchen item's quantity, shared by the sources whose POS books returns as lines.

kds never edits a quantity in place (a printed ticket cannot be changed): a
return that takes part of a dish back voids the item (VOID where printed) and
sends what is left again as its own small kitchen order, under an external id
that makes a repeat of the same return a no-op.

The void and the re-send are two steps: a stop between them leaves the void
recorded (its reason names the return) and no rest. `resume_rest` derives the
rest from the stored voided items, so each pass can finish what a stop cut off.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

from ..errors import ConflictError
from ..model import ItemEndpointIn, Order, OrderIn, OrderItem, OrderItemIn, Plu, Quantity

if TYPE_CHECKING:
    from .base import OrderService


async def resend_rest(
    service: OrderService,
    order: Order,
    item: OrderItem,
    amount: Decimal,
    *,
    external_id: str,
    device_name: str | None,
    actor: str,
) -> Order:
    """Send `amount` of an item (voided by the caller) again, to the same endpoints; idempotent by `external_id`."""
    copy = OrderItemIn(
        id=item.id,
        plu=Plu(
            name=item.plu.name,
            code=item.plu.code,
            group=item.plu.group,
            stock_name=item.plu.stock_name,
        ),
        quantity=Quantity(amount=amount, unit=item.quantity.unit),
        comment=item.comment,
        course_number=item.course_number,
        modifiers=list(item.modifiers),
        endpoints=[ItemEndpointIn(name=e.name) for e in item.endpoints],
    )
    order_in = OrderIn(
        id=external_id,
        source=order.source,
        device_name=device_name,
        user=order.user,
        ticket=order.ticket,
        items=[copy],
    )
    return (await service.ingest(order_in, actor=actor)).order


def voided_by(orders: Iterable[Order], reason: str) -> list[tuple[Order, OrderItem]]:
    """The items a void with exactly `reason` took off, in the given order of orders and items."""
    return [
        (order, item)
        for order in orders
        for item in order.items
        if any(c.reason == reason for e in item.endpoints for c in e.status_changes)
    ]


async def resume_rest(
    service: OrderService,
    voided: list[tuple[Order, OrderItem]],
    returned: Decimal,
    *,
    external_id: str,
    device_name: str | None,
    actor: str,
) -> Order | None:
    """Send the rest of a partly returned item if a stop came between its void and the re-send.

    `voided` is in the order the caller voided them, so the item only partly
    returned is the last; the rest is what was voided minus what was returned.
    """
    if not voided:
        return None
    order, item = voided[-1]
    rest = sum((Decimal(i.quantity.amount) for _, i in voided), Decimal(0)) - returned
    if rest <= 0 or service.find(order.source, external_id) is not None:
        return None
    try:
        return await resend_rest(
            service,
            order,
            item,
            rest,
            external_id=external_id,
            device_name=device_name,
            actor=actor,
        )
    except (
        ConflictError
    ):  # sent before and archived, stored in another spelling: the kitchen had it
        return None
