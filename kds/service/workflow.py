"""Kitchen workflow: rush an order, acknowledge its allergens, move a ticket to another station."""

from __future__ import annotations

from datetime import datetime

from ..contracts import EventType
from ..effects import Change
from ..errors import ConflictError, NotFound
from ..model import Order, OrderEvent, utcnow
from ..states import FINAL, OrderStatus
from ..store import Batch, NewEndpoint
from ..view import all_final
from .core import ServiceCore

S = OrderStatus


class WorkflowCommands(ServiceCore):
    """Rush, allergen acknowledgement and moving tickets between stations."""

    async def rush(self, order_id: str, *, actor: str = "api") -> Order:
        """Rush the order: first on every station, RUSH on screens; a RUSH slip where printed."""
        async with self._locks.hold(order_id):
            order = self._require_open(order_id)
            if order.rush:
                await self.store.barrier()
                return order
            now = utcnow()
            updated = self._with_event(order, OrderEvent(type="rush", date=now, actor=actor), now)
            updated.rush = True
            batch = self._header_batch(updated)
            entries = await self.effects.rush_slips(batch, order, updated)
            await self.store.commit(batch)
            self._adopt_header(order, updated)
        self._publish(EventType.ORDER_UPDATED, order, changes=[])
        self.outbox.published(entries)
        return order

    async def ack_allergens(self, order_id: str, endpoint: str, *, actor: str = "api") -> Order:
        """The cook at `endpoint` saw the order's allergens: its ticket may be accepted now."""
        async with self._locks.hold(order_id):
            order = self._require(order_id)
            if endpoint not in order.endpoint_names():
                raise NotFound(f"order {order.id!r} has no items at endpoint {endpoint!r}")
            if endpoint in order.allergen_acks:
                await self.store.barrier()
                return order
            now = utcnow()
            event = OrderEvent(
                type="allergensAcknowledged", date=now, actor=actor, endpoint=endpoint
            )
            updated = self._with_event(order, event, now)
            updated.allergen_acks = {**order.allergen_acks, endpoint: now}
            await self.store.commit(self._header_batch(updated))
            self._adopt_header(order, updated)
        self._publish(EventType.ORDER_UPDATED, order, changes=[])
        return order

    async def move(self, order_id: str, source: str, target: str, *, actor: str = "api") -> Order:
        """Move the open items at `source` to `target`: skipped here, new there; TRANSFER on paper."""
        config = self._endpoints.get(target)
        if config is None:
            raise NotFound(f"to: {target!r} is not an endpoint of this kds")
        if target == source:
            raise ConflictError(f"to: the ticket is at {source!r} already")
        if not config.is_active:
            raise ConflictError(f"to: endpoint {target!r} is not active")
        async with self._locks.hold(order_id):
            order = self._require(order_id)
            if source not in order.endpoint_names():
                raise NotFound(f"order {order.id!r} has no items at endpoint {source!r}")
            moving = [
                (item, ep)
                for item in order.items
                if (ep := item.endpoint(source)) is not None and ep.status not in FINAL
            ]
            if not moving:
                raise ConflictError(
                    f"order #{order.number} has no open items at {source!r} to move"
                )
            now = utcnow()
            reason = f"moved to {target}"
            changes = [Change(i.id, source, ep.status, S.PROCESS_SKIPPED) for i, ep in moving]
            arriving = {
                item.id: (item, self._initial_endpoint(target, now))
                for item, _ in moving
                if item.endpoint(target) is None
            }
            event = OrderEvent(type="moved", date=now, actor=actor, endpoint=source, to=target)
            updated = self._with_event(order, event, now)
            if order.holds:  # moved items arrive released at the other station
                moved = {(item.id, source) for item, _ in moving}
                updated.holds = [h for h in order.holds if (h.item_id, h.endpoint) not in moved]
            batch = self._header_batch(updated)
            batch.new_endpoints += [
                NewEndpoint(order.id, item_id, len(item.endpoints), ep, actor)
                for item_id, (item, ep) in arriving.items()
            ]
            entries = await self.effects.moves(
                batch, order, updated, changes, source, target, list(arriving)
            )
            await self._commit_changes(order, changes, batch, now=now, actor=actor, reason=reason)
            self._adopt_header(order, updated)
            for item, ep in arriving.values():
                item.endpoints.append(ep)
            order.changed()
            self.numbers.changed(order)
        added = [
            Change(item_id, target, S.CREATED, ep.status).to_wire()
            for item_id, (_, ep) in arriving.items()
        ]
        for change in changes:
            self.metrics.count("changes", change.new.value)
        self._publish(
            EventType.ORDER_UPDATED, order, changes=[c.to_wire() for c in changes] + added
        )
        self.outbox.published(entries)
        return order

    def _require_open(self, order_id: str) -> Order:
        order = self._require(order_id)
        if all_final(order):
            raise ConflictError(f"order #{order.number} is finished: nothing left to rush")
        return order

    @staticmethod
    def _with_event(order: Order, event: OrderEvent, now: datetime) -> Order:
        """A copy of the order's header with `event` recorded and the version raised."""
        return order.model_copy(
            update={
                "events": [*order.events, event],
                "version": order.version + 1,
                "updated_at": now,
            }
        )

    def _header_batch(self, updated: Order) -> Batch:
        """A batch writing the order's changed header."""
        return Batch(headers=[(updated, self.view.body_hash(updated.id))])

    @staticmethod
    def _adopt_header(order: Order, updated: Order) -> None:
        """Take the committed header fields into the live order (its items are shared)."""
        for name in ("rush", "allergen_acks", "events", "holds", "version", "updated_at"):
            setattr(order, name, getattr(updated, name))
        order.changed()
