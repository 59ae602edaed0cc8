"""Effects staging: which outbox rows (tickets, write-backs) a change produces.

The service decides *what* changes; this module decides what the kitchen and
the POS must be told about it, as effects (`kds.contracts`) staged in the same
batch as the change. Printing rules live here: a new order prints a ticket at
each printer endpoint, a cancel prints VOID where a ticket may be on paper, a
table move prints TRANSFER there; a POS that takes write-backs gets one per
endpoint and status.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .config import EndpointConfig
from .contracts import OutboxEntry, PrintEffect, TicketKind, WritebackEffect
from .model import ItemEndpoint, Order, OrderItem
from .outbox import Outbox
from .states import FINAL, PROCESSABLE, OrderStatus
from .store import Batch, OrderStore

S = OrderStatus
#: Statuses at which a printer endpoint has (probably) printed the ticket already.
PRINTED = frozenset({S.SENT, S.DELIVERED, S.ACCEPTED, S.PROCESSED, S.REFUSED})


@dataclass(frozen=True)
class Change:
    """One planned status change of one item at one endpoint."""

    item_id: int
    endpoint: str
    old: OrderStatus
    new: OrderStatus

    def to_wire(self) -> dict[str, Any]:
        """The change as the `changes` of an `order.updated` event."""
        return {
            "itemId": self.item_id,
            "endpoint": self.endpoint,
            "status": self.new.value,
            "from": self.old.value,
        }


@dataclass(frozen=True)
class PrintRecord:
    """What the outbox knows of an order's tickets: (endpoint, item id) pairs."""

    voided: frozenset[tuple[str, int]] = frozenset()  # a VOID ticket was queued
    # On a new ticket whose bytes may have reached the printer (its entry was attempted):
    # a stalled or dropped job left the item `failed`, but it may well be on paper.
    possibly_printed: frozenset[tuple[str, int]] = frozenset()

    def printed(self, endpoint: str, item_id: int, status: OrderStatus) -> bool:
        """Whether the kitchen may hold a ticket with this item (a cancel or move must tell it)."""
        return status in PRINTED or (
            status in PROCESSABLE and (endpoint, item_id) in self.possibly_printed
        )


class Effects:
    """Stages the outbox entries of ingests, status changes and ticket moves."""

    def __init__(
        self,
        endpoints: Iterable[EndpointConfig],
        store: OrderStore,
        outbox: Outbox,
        writeback_sources: Iterable[str] = (),
    ) -> None:
        self._endpoints = {e.name: e for e in endpoints}
        #: Whether any endpoint prints (a kitchen of screens only: no ticket to plan per order).
        self._prints = any(e.printer is not None for e in self._endpoints.values())
        self._store = store
        self._outbox = outbox
        self.writeback_sources = frozenset(writeback_sources)

    def _printer(self, endpoint: str) -> EndpointConfig | None:
        config = self._endpoints.get(endpoint)
        return config if config is not None and config.printer is not None else None

    def stage_print(
        self,
        batch: Batch,
        order: Order,
        endpoint: str,
        ticket: TicketKind,
        item_ids: list[int],
        *,
        moved_to: str | None = None,
        moved_from: str | None = None,
    ) -> OutboxEntry:
        """A ticket of `ticket` kind with `item_ids` at `endpoint`'s printer."""
        effect = PrintEffect(order.id, ticket, tuple(item_ids), order.version, moved_to, moved_from)
        return self._outbox.stage(batch, effect, endpoint, order.id)

    def has_printer(self, endpoint: str) -> bool:
        """Whether `endpoint` prints tickets."""
        return self._printer(endpoint) is not None

    async def rush_slips(self, batch: Batch, order: Order, rushed: Order) -> list[OutboxEntry]:
        """RUSH slips of `rushed` where a ticket of the order's open items may be on paper."""
        record = await self.print_record(order)
        open_items = [
            Change(i.id, e.name, e.status, e.status)
            for i in order.items
            for e in i.endpoints
            if e.status not in FINAL
        ]
        return [
            self.stage_print(batch, rushed, name, TicketKind.RUSH, ids)
            for name, ids in self._printed_items(order, record, open_items).items()
        ]

    async def moves(
        self,
        batch: Batch,
        order: Order,
        moved: Order,
        changes: list[Change],
        source: str,
        target: str,
        arriving: list[int],
    ) -> list[OutboxEntry]:
        """TRANSFER where the moved items were printed; a new ticket at `target`'s printer."""
        record = await self.print_record(order)
        entries = [
            self.stage_print(batch, moved, name, TicketKind.TRANSFER, ids, moved_to=target)
            for name, ids in self._printed_items(order, record, changes).items()
        ]
        if self.has_printer(target) and arriving:
            entries.append(
                self.stage_print(batch, moved, target, TicketKind.NEW, arriving, moved_from=source)
            )
        return entries

    def new_order(self, batch: Batch, order: Order, changes: list[Change]) -> list[OutboxEntry]:
        """A new ticket at each printer endpoint with items to make, and the write-backs."""
        entries = []
        for name in order.endpoint_names() if self._prints else ():
            if self._printer(name) is None:
                continue  # a screen-only endpoint prints nothing (most are: skip the item scan)
            item_ids = [
                i.id
                for i in order.items
                if (e := i.endpoint(name))
                and e.status is not S.PROCESS_SKIPPED
                and order.hold(i.id, name) is None  # held back: printed when released
            ]
            if item_ids:
                entries.append(self.stage_print(batch, order, name, TicketKind.NEW, item_ids))
        entries += self.writebacks(batch, order, changes, reason=None, date=order.created_at)
        return entries

    async def transfers(self, batch: Batch, order: Order, moved: Order) -> list[OutboxEntry]:
        """TRANSFER tickets of `moved` (the order after a table move) where it was printed."""
        record = await self.print_record(order)
        return [
            self.stage_print(batch, moved, name, TicketKind.TRANSFER, item_ids)
            for name, item_ids in self._printed_items(order, record).items()
        ]

    async def print_record(self, order: Order) -> PrintRecord:
        """Which items had a VOID queued, and which a new ticket that may have printed."""
        voided: set[tuple[str, int]] = set()
        possibly_printed: set[tuple[str, int]] = set()
        for entry in await self._store.print_entries(order.id):
            try:
                effect = PrintEffect.from_dict(entry.payload, entry.order_id)
            except ValueError:
                continue  # an unknown ticket kind printed nothing the kitchen could void
            target = entry.target
            item_ids = effect.item_ids
            if item_ids is None:  # every item of the endpoint
                item_ids = tuple(i.id for i in order.items if i.endpoint(target) is not None)
            if effect.ticket is TicketKind.VOID:
                voided.update((target, item_id) for item_id in item_ids)
            elif effect.ticket is TicketKind.NEW and entry.attempts > 0:
                # `attempted()` is committed right before the first byte is written.
                possibly_printed.update((target, item_id) for item_id in item_ids)
        return PrintRecord(frozenset(voided), frozenset(possibly_printed))

    def _printed_items(
        self, order: Order, record: PrintRecord, changes: list[Change] | None = None
    ) -> dict[str, list[int]]:
        """Per printer endpoint, the items whose ticket was (possibly) printed."""
        printed: dict[str, list[int]] = defaultdict(list)
        pairs = (
            [(c.item_id, c.endpoint, c.old) for c in changes]
            if changes is not None
            else [(i.id, e.name, e.status) for i in order.items for e in i.endpoints]
        )
        for item_id, endpoint, status in pairs:
            if self._printer(endpoint) is not None and record.printed(endpoint, item_id, status):
                printed[endpoint].append(item_id)
        return printed

    def voids(
        self,
        batch: Batch,
        order: Order,
        changes: list[Change],
        targets: list[tuple[OrderItem, ItemEndpoint]],
        record: PrintRecord,
    ) -> list[OutboxEntry]:
        """VOID tickets for cancelled items a printer (possibly) printed already.

        Printer-only endpoints process their items as soon as the ticket printed,
        so a cancelled drink there is `processed`, not open: the bar still needs a
        VOID (the status stays, it is final).
        """
        printed = self._printed_items(order, record, changes)
        for item, ep in targets:
            config = self._printer(ep.name)
            if (
                ep.status is S.PROCESSED
                and config is not None
                and config.auto_process
                and not config.display
                and item.id not in printed.get(ep.name, [])
                and (ep.name, item.id) not in record.voided
            ):
                printed.setdefault(ep.name, []).append(item.id)
        return [
            self.stage_print(batch, order, name, TicketKind.VOID, ids)
            for name, ids in printed.items()
        ]

    def writebacks(
        self,
        batch: Batch,
        order: Order,
        changes: list[Change],
        *,
        reason: str | None,
        date: datetime,
    ) -> list[OutboxEntry]:
        """One write-back per (endpoint, new status) when the order's POS takes them."""
        if order.source not in self.writeback_sources or not changes:
            return []
        grouped: dict[tuple[str, OrderStatus], list[int]] = defaultdict(list)
        for change in changes:
            grouped[(change.endpoint, change.new)].append(change.item_id)
        entries = []
        for (endpoint, status), item_ids in grouped.items():
            at_endpoint = {i.id for i in order.items if i.endpoint(endpoint) is not None}
            effect = WritebackEffect(
                order_id=order.id,
                external_id=order.external_id,
                endpoint=endpoint,
                item_ids=tuple(item_ids),
                all_items=set(item_ids) == at_endpoint,
                status=status.value,
                date=date.isoformat(),
                reason=reason,
            )
            entries.append(self._outbox.stage(batch, effect, order.source, order.id))
        return entries
