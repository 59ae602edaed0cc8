"""Status changes: set_status / cancel (where a bump is handled) and ticket updates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog

from ..contracts import EventType
from ..effects import Change
from ..errors import ConflictError, Held, InvalidTransition, NotFound
from ..model import Hold, HoldReason, ItemEndpoint, Order, OrderItem, TicketInfo, utcnow
from ..outbox import OutboxEntry
from ..pacing.plan import Pair
from ..states import FINAL, OrderStatus, TransitionError, apply_transition, path
from ..store import Batch
from .core import ServiceCore

log = structlog.get_logger(__name__)

S = OrderStatus


class StatusCommands(ServiceCore):
    """Change item endpoint statuses (bump, accept, recall, cancel) and the ticket."""

    async def set_status(
        self,
        order_id: str,
        status: OrderStatus,
        *,
        endpoint: str | None = None,
        item_ids: Sequence[int] | None = None,
        reason: str | None = None,
        recall: bool = False,
        actor: str = "api",
        strict: bool = True,
        walk: bool = False,
    ) -> Order:
        """Change the status of the order's item endpoints (all, one endpoint, some items).

        With `walk`, a status further on is reached through the statuses between
        (`states.path`: sent → accepted passes delivered), each step audited and
        written back like a change of its own, all in one transaction.
        """
        async with self._locks.hold(order_id):
            order = self._require(order_id)
            targets = self._targets(order, endpoint, item_ids)
            if status is not S.PROCESS_SKIPPED:
                targets = _released(order, targets)  # a held item is cancelled, nothing else
            now = utcnow()
            changes = self._plan(
                targets, status, recall=recall, strict=strict, walk=walk and not recall, now=now
            )
            if actor != "printer":
                self._check_allergens_acknowledged(order, changes)
            batch = Batch()
            entries: list[OutboxEntry] = []
            holds = None
            if status is S.PROCESS_SKIPPED:
                record = await self.effects.print_record(order)
                entries += self.effects.voids(batch, order, changes, targets, record)
                if (holds := _unheld(order, changes)) is not None:  # cancelled: no longer held
                    batch.headers.append(self._header(order, now, holds=holds))
            if not changes:
                if batch:
                    await self.store.commit(batch)
                    self.outbox.published(entries)
                else:
                    await self.store.barrier()
                return order
            if not recall:
                entries += self.effects.writebacks(batch, order, changes, reason=reason, date=now)
            await self._commit_changes(order, changes, batch, now=now, actor=actor, reason=reason)
            if holds is not None:
                order.holds = holds
                order.changed()
        self._after_changes(order, changes, entries)
        return order

    async def cancel(
        self,
        order_id: str,
        *,
        item_ids: Sequence[int] | None = None,
        reason: str | None = None,
        actor: str = "api",
    ) -> Order:
        """Cancel the order (or some items): non-final → processSkipped, VOID where printed."""
        return await self.set_status(
            order_id,
            S.PROCESS_SKIPPED,
            item_ids=item_ids,
            reason=reason or "cancelled",
            actor=actor,
            strict=False,
        )

    def _targets(
        self, order: Order, endpoint: str | None, item_ids: Sequence[int] | None
    ) -> list[tuple[OrderItem, ItemEndpoint]]:
        if item_ids is not None:
            missing = [i for i in item_ids if order.item(i) is None]
            if missing:
                raise NotFound(f"order {order.id!r} has no item {missing[0]}")
        if endpoint is not None and endpoint not in order.endpoint_names():
            raise NotFound(f"order {order.id!r} has no items at endpoint {endpoint!r}")
        wanted = None if item_ids is None else set(item_ids)
        targets = [
            (item, e)
            for item in order.items
            if wanted is None or item.id in wanted
            for e in item.endpoints
            if endpoint is None or e.name == endpoint
        ]
        if not targets:
            raise NotFound(f"order {order.id!r} has no such item at endpoint {endpoint!r}")
        return targets

    def _plan(
        self,
        targets: list[tuple[OrderItem, ItemEndpoint]],
        status: OrderStatus,
        *,
        recall: bool,
        strict: bool,
        walk: bool,
        now: datetime,
    ) -> list[Change]:
        """The changes to make, in step order; all-or-nothing when strict.

        Changing a whole order or endpoint leaves items that are already final
        alone (a bumped ticket with a cancelled item is still bumped); one item
        (or one item endpoint) gets the full check.
        """
        single = len(targets) == 1
        walks: list[list[Change]] = []
        errors = []
        for item, ep in targets:
            if recall and ep.status is S.PROCESSED and not self._within_recall_window(ep, now):
                errors.append(
                    InvalidTransition(
                        f"item {item.id} at {ep.name} was processed more than "
                        f"{int(self.settings.ui.recall_window)}s ago and can no longer be recalled",
                        allowed=[],
                    )
                )
                continue
            try:
                if walk:
                    steps = path(ep.status, status)
                else:
                    new = apply_transition(ep.status, status, recall=recall)
                    steps = [] if new is None else [new]
            except TransitionError as err:
                # Whole order/endpoint: items already final stay as they are (a recall
                # brings back what was processed, not what was refused or cancelled).
                if not single and ep.status in FINAL and not (recall and ep.status is S.PROCESSED):
                    continue
                errors.append(
                    InvalidTransition(
                        str(err),
                        current=ep.status.value,
                        allowed=sorted(s.value for s in err.allowed),
                    )
                )
                continue
            froms = [ep.status, *steps[:-1]]
            walks.append([Change(item.id, ep.name, old, new) for old, new in zip(froms, steps)])
        # Step by step across items: every first step, then every second, … (write-backs
        # then reach the POS in an order it accepts).
        changes = [
            w[i] for i in range(max(map(len, walks), default=0)) for w in walks if i < len(w)
        ]
        if errors and strict:
            raise errors[0]
        if errors:
            log.debug("status.skipped", target=status.value, reasons=[e.detail for e in errors])
        return changes

    def _check_allergens_acknowledged(self, order: Order, changes: list[Change]) -> None:
        """409 when a cook would start (or bump) an allergen ticket not acknowledged at its station."""
        started = (S.ACCEPTED, S.PROCESSED)
        for change in changes:
            if change.new not in started or change.old in started:
                continue
            config = self._endpoints.get(change.endpoint)
            item = order.item(change.item_id)
            if (
                item is not None
                and item.allergens
                and change.endpoint not in order.allergen_acks
                and (config is None or config.display)
            ):
                raise ConflictError(
                    f"order #{order.number} has allergens ({', '.join(item.allergens)}) at "
                    f"{change.endpoint}: acknowledge them first (POST /api/v1/orders/{order.id}"
                    f"/endpoints/{change.endpoint}/allergens/ack)",
                    allergens=item.allergens,
                    endpoint=change.endpoint,
                )

    def _within_recall_window(self, ep: ItemEndpoint, now: datetime) -> bool:
        processed_at = next(
            (c.date for c in reversed(ep.status_changes) if c.status is S.PROCESSED), None
        )
        window = timedelta(seconds=self.settings.ui.recall_window)
        return processed_at is not None and now - processed_at <= window

    async def update_ticket(
        self, order_id: str, ticket: TicketInfo, *, actor: str = "pos"
    ) -> Order:
        """Move the order to another table (or change its ticket); TRANSFER where printed."""
        async with self._locks.hold(order_id):
            order = self._require(order_id)
            if ticket == order.ticket:
                return order
            now = utcnow()
            updated = order.model_copy(
                update={"ticket": ticket, "version": order.version + 1, "updated_at": now}
            )
            batch = Batch(headers=[(updated, self.view.body_hash(order.id))])
            entries = await self.effects.transfers(batch, order, updated)
            await self.store.commit(batch)
            order.ticket, order.version, order.updated_at = ticket, updated.version, now
            order.changed()
        self._publish(EventType.ORDER_UPDATED, order, changes=[])
        self.outbox.published(entries)
        return order


def _released(
    order: Order, targets: list[tuple[OrderItem, ItemEndpoint]]
) -> list[tuple[OrderItem, ItemEndpoint]]:
    """`targets` without held items; 409 when every one of them is held."""
    if not order.holds:
        return targets
    released = [(i, e) for i, e in targets if order.hold(i.id, e.name) is None]
    if not released:
        item, ep = targets[0]
        hold = order.hold(item.id, ep.name)
        assert hold is not None
        raise Held(
            f"item {item.id} at {ep.name} is held ({_hold_text(hold)}); it can change once released",
            reason=hold.reason.value,
        )
    return released


def _hold_text(hold: Hold) -> str:
    if hold.reason is HoldReason.COURSE:
        return f"course {hold.course} not fired yet"
    if hold.reason is HoldReason.SCHEDULED:
        return f"scheduled, reaches the station at {hold.release_at:%H:%M} UTC"
    return f"waits for its prep time, starts at {hold.release_at:%H:%M:%S} UTC"


def _unheld(order: Order, changes: list[Change]) -> list[Hold] | None:
    """The order's holds without those of `changes` (cancelled items); None: unchanged."""
    if not order.holds:
        return None
    changed: set[Pair] = {(c.item_id, c.endpoint) for c in changes}
    holds = [h for h in order.holds if (h.item_id, h.endpoint) not in changed]
    return holds if len(holds) != len(order.holds) else None
