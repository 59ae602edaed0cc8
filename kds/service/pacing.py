"""Pacing commands: fire a held course, release held items whose time has come (kds.pacing)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ..contracts import TicketKind
from ..effects import Change
from ..errors import NotFound
from ..model import Hold, HoldReason, Order, utcnow
from ..outbox import OutboxEntry
from ..states import OrderStatus
from ..store import Batch
from .core import ServiceCore

S = OrderStatus


class PacingCommands(ServiceCore):
    """Lift the holds kds.pacing put on items at ingest."""

    async def fire_course(
        self,
        order_id: str,
        course: int,
        *,
        endpoints: Sequence[str] | None = None,
        actor: str = "api",
    ) -> Order:
        """Fire a held course (at `endpoints`, default all): it reaches its stations and prints now.

        Firing a course that is not held (any more) changes nothing.
        """
        async with self._locks.hold(order_id):
            order = self._require(order_id)
            if not any(i.course_number == course for i in order.items):
                raise NotFound(f"order {order_id!r} has no course {course}")
            held = [
                h
                for h in order.holds
                if h.reason is HoldReason.COURSE
                and h.course == course
                and (endpoints is None or h.endpoint in endpoints)
            ]
            if not held:
                await self.store.barrier()
                return order
            changes, entries = await self._release(
                order, held, now=utcnow(), actor=actor, reason=f"course {course} fired"
            )
        self._after_changes(order, changes, entries)
        return order

    async def release_due(
        self, order_id: str, *, now: datetime | None = None, actor: str = "timer"
    ) -> Order:
        """Release the held items whose time has come (a scheduled order's window, a prep wait)."""
        now = now or utcnow()
        async with self._locks.hold(order_id):
            order = self._require(order_id)
            held = [h for h in order.holds if h.release_at is not None and h.release_at <= now]
            if not held:
                return order
            changes, entries = await self._release(
                order, held, now=now, actor=actor, reason="released"
            )
        self._after_changes(order, changes, entries)
        return order

    async def _release(
        self, order: Order, released: list[Hold], *, now: datetime, actor: str, reason: str
    ) -> tuple[list[Change], list[OutboxEntry]]:
        """Lift `released` holds: the next stage may hold some again, the rest go out now."""
        lifted = {(h.item_id, h.endpoint) for h in released}
        holds = [h for h in order.holds if (h.item_id, h.endpoint) not in lifted]
        for stage in HoldReason:
            pairs = [(h.item_id, h.endpoint) for h in released if h.reason is stage]
            if pairs:
                holds += self.pacing.plan(order, pairs, now=now, after=stage)
        still = {(h.item_id, h.endpoint) for h in holds}
        changes: list[Change] = []
        prints: dict[str, list[int]] = {}
        for hold in released:
            item, name = order.item(hold.item_id), hold.endpoint
            ep = item.endpoint(name) if item is not None else None
            if (hold.item_id, name) in still or ep is None or ep.status is not S.CREATED:
                continue
            config = self._endpoints.get(name)
            if config is None or config.display:
                changes.append(Change(hold.item_id, name, S.CREATED, S.SENT))
            if self.effects.has_printer(name):
                prints.setdefault(name, []).append(hold.item_id)
        batch = Batch(headers=[self._header(order, now, holds=holds)])
        entries = [
            self.effects.stage_print(batch, order, name, TicketKind.NEW, ids)
            for name, ids in prints.items()
        ]
        entries += self.effects.writebacks(batch, order, changes, reason=reason, date=now)
        await self._commit_changes(order, changes, batch, now=now, actor=actor, reason=reason)
        order.holds = holds
        order.changed()
        return changes, entries
