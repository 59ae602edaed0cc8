"""Lowering a kitchen item's quantity, shared by the sources whose POS books returns as lines.

kds never edits a quantity in place (a printed ticket cannot be changed): a
return that takes part of a dish back voids the item (VOID where printed) and
sends what is left again as its own small kitchen order, under an external id
that makes a repeat of the same return a no-op.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from ..model import ItemEndpointIn, Order, OrderIn, OrderItem, OrderItemIn, Plu, Quantity

if TYPE_CHECKING:
    from ..service import KitchenService


async def resend_rest(
    service: KitchenService, order: Order, item: OrderItem, amount: Decimal, *, external_id: str, device_name: str | None, actor: str
) -> Order:
    """Send `amount` of an item (voided by the caller) again, to the same endpoints; idempotent by `external_id`."""
    copy = OrderItemIn(
        id=item.id,
        plu=Plu(name=item.plu.name, code=item.plu.code, group=item.plu.group, stock_name=item.plu.stock_name),
        quantity=Quantity(amount=amount, unit=item.quantity.unit),
        comment=item.comment,
        course_number=item.course_number,
        modifiers=list(item.modifiers),
        endpoints=[ItemEndpointIn(name=e.name) for e in item.endpoints],
    )
    order_in = OrderIn(
        id=external_id, source=order.source, device_name=device_name, user=order.user, ticket=order.ticket, items=[copy]
    )
    return (await service.ingest(order_in, actor=actor)).order
