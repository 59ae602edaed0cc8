"""What every command group shares: the service's parts, its reads and the one commit pipeline.

Writes are serialised per order (a keyed lock), so a change is always planned
from committed state and two writes in one group commit never touch the same
row. Different orders commit together. A command commits one `Batch`
(`_commit_changes`) and only then updates the live view, publishes the event and
hands out the side effects (`_after_changes`, `_publish`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator
from datetime import datetime
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from ..allergens import AllergenMatcher
from ..archive import Archive
from ..bus import EventBus
from ..config import Settings
from ..contracts import EventType
from ..effects import Change, Effects
from ..errors import NotFound
from ..inbox import Inbox
from ..locks import KeyedLocks
from ..model import ItemEndpoint, Order, Plu, StatusChange
from ..numbers import (
    LEGACY_NEXT_NUMBER_KEY,
    NUMBER_KEY,
    NumberReservations,
    PickupNumbers,
    Reservations,
    SharedNumbers,
)
from ..outbox import Outbox, OutboxEntry
from ..pacing.plan import Pacing
from ..reports import ReportData, facts_of
from ..routing import Router
from ..states import OrderStatus
from ..store import Batch, OrderStore, StatusUpdate
from ..store.rows import Steps, creation_history, shared_creation_history
from ..view import OrderView, all_final
from .metrics import ServiceMetrics

log = structlog.get_logger(__name__)

S = OrderStatus


class ServiceCore:
    """The service's parts, lifecycle, reads and commit pipeline (the command groups build on it)."""

    def __init__(
        self,
        settings: Settings,
        store: OrderStore,
        bus: EventBus,
        outbox: Outbox,
        registry: CollectorRegistry,
        *,
        writeback_sources: Iterable[str] = (),
    ) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.outbox = outbox
        self.router = Router(settings.routing)
        self.allergens = AllergenMatcher(settings.allergens)
        self._endpoints = {e.name: e for e in settings.endpoints}
        self._initial_statuses: dict[str, OrderStatus] = {}  # by endpoint name (config is fixed)
        self._products: dict[tuple[object, ...], tuple[Plu, tuple[str, ...]]] = {}  # ingest's
        self.view = OrderView()
        self.effects = Effects(settings.endpoints, store, outbox, writeback_sources)
        self.inbox = Inbox(store)
        self.metrics = ServiceMetrics(registry, (c.name for c in settings.sources))
        self.metrics.open_orders.set_function(self.view.count_open)
        self._locks = KeyedLocks()
        ui = settings.ui
        self.numbers = PickupNumbers(
            ui.max_pickup_number,
            max(ui.pickup_ready_time, ui.recall_window),
            self.view.get,
            all_final,
        )
        self._reservations: Reservations = NumberReservations(self.numbers)
        self.archive = Archive(settings.database, store, self.view, self._locks, self.numbers, bus)
        self.pacing = Pacing.from_settings(settings)
        self._watchers: list[Callable[[Order], None]] = []

    def share_numbers(self, claim: Callable[[int], Awaitable[int]]) -> None:
        """Pickup numbers from a cursor several nodes share in the database (kds.cluster)."""
        self._reservations = SharedNumbers(self.numbers, claim)

    @property
    def writeback_sources(self) -> frozenset[str]:
        """Sources whose POS gets status changes written back."""
        return self.effects.writeback_sources

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Rebuild the in-memory view from the store."""
        self._reservations.resume(
            await self.store.meta(NUMBER_KEY), await self.store.meta(LEGACY_NEXT_NUMBER_KEY)
        )
        await self.inbox.load()
        await self.view.load(self.store, self.numbers.holds)
        log.info("service.loaded", orders=len(self.view))

    async def stop(self) -> None:
        """Wait for writes in flight."""
        await self.store.barrier()

    def health(self) -> dict[str, Any]:
        """Orders in the live view, and how many are open."""
        return {"ok": True, "orders": len(self.view), "open": self.view.count_open()}

    # ----------------------------------------------------------------- reads

    def get(self, order_id: str) -> Order | None:
        """An order of the live view (open or recently finished)."""
        return self.view.get(order_id)

    def find(self, source: str, external_id: str) -> Order | None:
        """The live order a POS knows as `external_id`."""
        return self.view.find(source, external_id)

    def orders(self) -> Iterator[Order]:
        """Every order of the live view, oldest first."""
        return self.view.orders()

    async def get_archived(self, order_id: str) -> dict[str, Any] | None:
        """The wire JSON of an archived order."""
        return await self.archive.get(order_id)

    async def refresh(self, order_ids: Collection[str]) -> None:
        """Read orders another node changed back into the view (gone ones leave it).

        Several nodes share one PostgreSQL database; each keeps its own view. Their
        locks are held while reading, so no change of this node slips in between.
        """
        async with contextlib.AsyncExitStack() as held:
            for order_id in sorted(order_ids):  # one order of locking: no deadlock
                await held.enter_async_context(self._locks.hold(order_id))
            loaded = {o.id: (o, h) for o, h in await self.store.load_orders_by_id(order_ids)}
            for order_id in order_ids:
                old = self.view.get(order_id)
                if order_id in loaded:
                    order, body_hash = loaded[order_id]
                    self.view.remember(order, body_hash)
                    self.numbers.holds(order, all_final(order))
                elif old is not None:
                    self.view.forget(old)
                    self.numbers.forget(old.id, old.number)

    async def report_facts(
        self, start: datetime, end: datetime, endpoint: str | None = None
    ) -> ReportData:
        """What a report of orders that arrived in [start, end) is built from: the live
        orders' facts one by one, the archived ones as the store summed them."""
        data = await self.store.report_facts(start, end, endpoint)
        for order in self.view.orders():
            if order.created_at >= end:
                continue
            tickets, products = facts_of(order)
            data.tickets += [
                f for f in tickets if start <= f.arrived_at < end and endpoint in (None, f.endpoint)
            ]
            data.products += [
                f
                for f in products
                if f.arrived_at is not None
                and start <= f.arrived_at < end
                and endpoint in (None, f.endpoint)
            ]
        return data

    # ----------------------------------------------------------------- commit pipeline

    async def _commit_changes(
        self,
        order: Order,
        changes: list[Change],
        batch: Batch,
        *,
        now: datetime,
        actor: str,
        reason: str | None,
    ) -> None:
        batch.statuses += [
            StatusUpdate(order.id, c.item_id, c.endpoint, c.new, now, actor, reason)
            for c in changes
        ]
        await self.store.commit(batch)
        # Committed: now the live view may change.
        for change in changes:
            ep = _endpoint_of(order, change)
            ep.set_status(change.new)
            ep.status_changes.append(StatusChange(status=change.new, date=now, reason=reason))
        order.updated_at = now
        order.changed()
        self.numbers.changed(order)

    def _after_changes(
        self, order: Order, changes: list[Change], entries: list[OutboxEntry]
    ) -> None:
        for change in changes:
            self.metrics.count("changes", change.new.value)
        self._publish(EventType.ORDER_UPDATED, order, changes=[c.to_wire() for c in changes])
        self.outbox.published(entries)

    def _publish(self, type_: str, order: Order, **data: Any) -> None:
        encoded, endpoints = order.wire_event()
        self.bus.publish(type_, data, encoded={"order": encoded}, endpoints=endpoints)
        self.view.keep_json(order)
        for watcher in list(self._watchers):
            watcher(order)

    def announce(self, order_ids: Collection[str]) -> None:
        """Publish orders as they are now: another node changed them and died before its event
        (kds.cluster); the view has the change from the store already."""
        for order_id in order_ids:
            order = self.view.get(order_id)
            if order is None:
                self.bus.publish(EventType.ORDER_REMOVED, {"orderId": order_id})
            else:
                self._publish(EventType.ORDER_UPDATED, order, changes=[])

    def watch(self, watcher: Callable[[Order], None]) -> Callable[[], None]:
        """Call `watcher(order)` after every committed change of an order; returns an unwatch."""
        self._watchers.append(watcher)
        return lambda: self._watchers.remove(watcher) if watcher in self._watchers else None

    # ----------------------------------------------------------------- shared helpers

    def _require(self, order_id: str) -> Order:
        order = self.view.get(order_id)
        if order is None:
            raise NotFound(f"no open order {order_id!r}")
        return order

    def _header(self, order: Order, now: datetime, **update: Any) -> tuple[Order, str]:
        """The order's header with `update` applied, for `Batch.headers` (not yet live)."""
        updated = order.model_copy(update={**update, "updated_at": now})
        return updated, self.view.body_hash(order.id)

    def _initial_endpoint(
        self, name: str, now: datetime, steps: Steps | None = None
    ) -> ItemEndpoint:
        """created, then at once sent for screens (the live feed is the delivery).

        `steps`: creation paths shared by the item endpoints of one new order."""
        status = self._initial_status(name)
        history = (
            creation_history(status, now)
            if steps is None
            else shared_creation_history(status, now, steps)
        )
        # Values kds makes itself: built without re-validation.
        return ItemEndpoint.build(name, status, history)

    def _initial_status(self, name: str) -> OrderStatus:
        """The status a new item endpoint at `name` starts in: sent for a screen (the live
        feed is the delivery), created for a printer, skipped at an inactive endpoint."""
        status = self._initial_statuses.get(name)
        if status is None:
            config = self._endpoints.get(name)
            if config is None:
                log.warning("routing.unknown_endpoint", endpoint=name)
                return S.SENT  # not remembered: warned about on every order routed there
            if not config.is_active:
                status = S.PROCESS_SKIPPED
            elif config.display:
                status = S.SENT
            else:
                status = S.CREATED
            self._initial_statuses[name] = status
        return status

    # ----------------------------------------------------------------- archive

    def hold_while(self, holds: Callable[[Order], bool]) -> None:
        """Keep finished orders for which `holds(order)` is true in the live view.

        A source whose POS still shows an order as open (a cheque not yet paid, an
        unbilled table item) needs it there: it diffs what the POS lists against the
        live view, and an archived order would look like lines never sent.
        """
        self.archive.hold_while(holds)

    async def archive_finished(self, now: datetime | None = None) -> int:
        """Move orders finished longer than `archive_after` out of the live tables."""
        return await self.archive.archive_finished(now)


def _endpoint_of(order: Order, change: Change) -> ItemEndpoint:
    """The item endpoint a planned change is for (planned from this order: it exists)."""
    item = order.item(change.item_id)
    ep = None if item is None else item.endpoint(change.endpoint)
    if ep is None:
        raise NotFound(f"order {order.id!r} has no item {change.item_id} at {change.endpoint!r}")
    return ep
