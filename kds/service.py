"""The application core: the only code that changes order state.

Sources, HTTP handlers, screens and printers call `KitchenService`; it routes
items, applies the state machine and hands the change to the store as one
`Batch` (rows, audit, outbox entries), and only after the commit updates the
live view (`kds.view`), publishes the event and hands out the side effects
(staged by `kds.effects`). Raw source events go through `kds.inbox`,
archiving through `kds.archive`; SQL lives only in `kds.store`.

Writes are serialised per order (a keyed lock), so a change is always planned
from committed state and two writes in one group commit never touch the same
row. Different orders commit together.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from .allergens import AllergenMatcher
from .archive import Archive
from .bus import EventBus
from .config import Settings
from .contracts import EventType, TicketKind
from .effects import Change, Effects
from .errors import ConflictError, Held, InvalidTransition, NotFound
from .ids import uuid7_hex
from .inbox import Inbox, InboxEntry
from .interning import shared, shared_plu, shared_quantity
from .locks import KeyedLocks
from .model import (
    Hold,
    HoldReason,
    ItemEndpoint,
    Order,
    OrderEvent,
    OrderIn,
    OrderItem,
    StatusChange,
    TicketInfo,
    trusted,
    utcnow,
)
from .numbers import LEGACY_NEXT_NUMBER_KEY, NUMBER_KEY, NumberReservations, PickupNumbers
from .outbox import Outbox, OutboxEntry
from .pacing.plan import Pacing, Pair
from .reports import ReportData, facts_of
from .routing import Router
from .states import FINAL, OrderStatus, TransitionError, apply_transition, path
from .store import Batch, NewEndpoint, OrderStore, StatusUpdate
from .view import OrderView, all_final

__all__ = ["NATIVE_SOURCE", "InboxEntry", "IngestResult", "KitchenService"]

log = structlog.get_logger(__name__)

S = OrderStatus


@dataclass(frozen=True)
class IngestResult:
    """The stored order and whether this call created it (False: a repeat)."""

    order: Order
    created: bool


#: The source of orders posted to the native API without one; and the label of unknown sources.
NATIVE_SOURCE = "native"
OTHER_SOURCE = "other"


class ServiceMetrics:
    """Prometheus metrics of the core."""

    def __init__(self, registry: CollectorRegistry, sources: Iterable[str] = ()) -> None:
        # Labels only for sources kds knows: a client-chosen `source` must not mint series.
        self.sources = frozenset(sources) | {NATIVE_SOURCE}
        self.ingested = Counter(
            "kds_orders_ingested", "Orders stored, by source", ["source"], registry=registry
        )
        self.repeats = Counter(
            "kds_orders_repeated",
            "Idempotent repeats of stored orders",
            ["source"],
            registry=registry,
        )
        self.changes = Counter(
            "kds_status_changes", "Item endpoint status changes", ["status"], registry=registry
        )
        self.open_orders = Gauge(
            "kds_open_orders", "Orders with an item endpoint not final", registry=registry
        )
        self._children: dict[tuple[str, str], Any] = {}

    def count(self, counter: str, label: str) -> None:
        """Increment `counter` for `label` (children cached: this runs per order)."""
        if counter != "changes" and label not in self.sources:
            label = OTHER_SOURCE
        child = self._children.get((counter, label))
        if child is None:
            child = self._children[(counter, label)] = getattr(self, counter).labels(label)
        child.inc()


class KitchenService:
    """Ingest, route and change the status of orders — durably, then live."""

    name = "service"

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
        self._reservations = NumberReservations(self.numbers)
        self.archive = Archive(settings.database, store, self.view, self._locks, self.numbers, bus)
        self.pacing = Pacing.from_settings(settings)
        self._watchers: list[Callable[[Order], None]] = []

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
        await self.view.load(self.store)
        for order in self.view.orders():
            self.numbers.holds(order)
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
                    self.numbers.holds(order)
                elif old is not None:
                    self.view.forget(old)
                    self.numbers.forget(old.id, old.number)

    # ----------------------------------------------------------------- ingest

    async def ingest(self, order_in: OrderIn, *, actor: str = "pos") -> IngestResult:
        """Store a new order (201) or recognise a repeat (200); other body, same id: 409."""
        external_id = order_in.id or uuid7_hex()
        key = (order_in.source, external_id)
        # The id is part of the key, so hashing the whole body compares the rest.
        body_hash = hashlib.sha256(order_in.model_dump_json().encode()).hexdigest()
        async with self._locks.hold(key):
            existing = await self._existing(key, body_hash)
            if existing is not None:
                # A repeat is acknowledged only once the original is durable.
                await self.store.barrier()
                self.metrics.count("repeats", order_in.source)
                return IngestResult(existing, created=False)
            order = self._build_order(order_in, external_id)
            changes = [
                Change(item.id, e.name, S.CREATED, e.status)
                for item in order.items
                for e in item.endpoints
                if e.status is not S.CREATED
            ]
            batch = Batch(new_orders=[(order, body_hash)])
            entries = self.effects.new_order(batch, order, changes)
            reservation = self._reservations.reserve(batch.meta)
            try:
                await self.store.commit(batch)
            except Exception:
                self.numbers.forget(order.id, order.number)
                self._reservations.failed(reservation)
                raise
            self._reservations.committed(reservation)
            self.view.remember(order, body_hash)
        self.metrics.count("ingested", order.source)
        for change in changes:
            self.metrics.count("changes", change.new.value)
        self._publish(EventType.ORDER_CREATED, order)
        self.outbox.published(entries)
        return IngestResult(order, created=True)

    async def _existing(self, key: tuple[str, str], body_hash: str) -> Order | None:
        order = self.view.find(*key)
        if order is not None:
            stored_hash = self.view.body_hash(order.id)
        elif not self.view.maybe_archived(*key):
            return None
        else:
            archived = await self.store.find_archived(*key)
            if archived is None:
                return None
            stored_hash, order = archived[0], Order.model_validate_json(archived[1])
        if stored_hash != body_hash:
            raise ConflictError(
                f"order {key[1]!r} from source {key[0]!r} was already stored with a different body",
                orderId=order.id,
            )
        return order

    def _build_order(self, order_in: OrderIn, external_id: str) -> Order:
        now = utcnow()
        order_id = uuid7_hex()
        items = []
        next_id = max((i.id for i in order_in.items if i.id is not None), default=0) + 1
        for item_in in order_in.items:
            if item_in.id is None:
                item_id, next_id = next_id, next_id + 1
            else:
                item_id = item_in.id
            endpoints = [self._initial_endpoint(name, now) for name in self.router.route(item_in)]
            plu = item_in.plu
            items.append(
                trusted(
                    OrderItem,
                    id=item_id,
                    plu=shared_plu(plu.name, plu.code, plu.stock_name, plu.group),
                    quantity=shared_quantity(str(item_in.quantity.amount), item_in.quantity.unit),
                    comment=shared(item_in.comment),
                    course_number=item_in.course_number,
                    modifiers=[shared(m) for m in item_in.modifiers if m],
                    endpoints=endpoints,
                    allergens=self.allergens.for_item(
                        [plu.name, *item_in.modifiers, item_in.comment], item_in.allergens
                    ),
                )
            )
        # order_in was validated; the rest kds makes itself, so nothing is validated twice.
        order = trusted(
            Order,
            id=order_id,
            number=self.numbers.take(order_id, now),
            pos_number=order_in.number,
            source=order_in.source,
            external_id=external_id,
            device_name=order_in.device_name,
            user=order_in.user,
            ticket=order_in.ticket,
            items=items,
            created_at=now,
            updated_at=now,
            version=1,
            rush=False,
            allergen_acks={},
            events=[],
            due_at=order_in.due_at,
            holds=[],
        )
        self._hold_back(order, now)
        return order

    def _hold_back(self, order: Order, now: datetime) -> None:
        """Hold the new order's items that must not reach their stations yet (kds.pacing)."""
        pairs = [
            (i.id, e.name)
            for i in order.items
            for e in i.endpoints
            if e.status is not S.PROCESS_SKIPPED
        ]
        order.holds = self.pacing.plan(order, pairs, now=now)
        for hold in order.holds:
            item = order.item(hold.item_id)
            assert item is not None
            item.endpoints = [
                ItemEndpoint.build(e.name, S.CREATED, [StatusChange(S.CREATED, now)])
                if e.name == hold.endpoint
                else e
                for e in item.endpoints
            ]

    def _initial_endpoint(self, name: str, now: datetime) -> ItemEndpoint:
        """created, then at once sent for screens (the live feed is the delivery)."""
        config = self._endpoints.get(name)
        if config is None:
            log.warning("routing.unknown_endpoint", endpoint=name)
        # Values kds makes itself: built without re-validation (this runs per item per order).
        history = [StatusChange(S.CREATED, now)]
        if config is not None and not config.is_active:
            history.append(StatusChange(S.PROCESS_SKIPPED, now, "endpoint inactive"))
        elif config is None or config.display:
            history.append(StatusChange(S.SENT, now))
        return ItemEndpoint.build(name, history[-1].status, history)

    # ----------------------------------------------------------------- status changes

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

    def _require(self, order_id: str) -> Order:
        order = self.view.get(order_id)
        if order is None:
            raise NotFound(f"no open order {order_id!r}")
        return order

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
        self.bus.publish(
            type_,
            data,
            encoded={"order": order.wire_json()},
            endpoints=frozenset(order.endpoint_names()),
        )
        self.view.keep_json(order)
        for watcher in list(self._watchers):
            watcher(order)

    def watch(self, watcher: Callable[[Order], None]) -> Callable[[], None]:
        """Call `watcher(order)` after every committed change of an order; returns an unwatch."""
        self._watchers.append(watcher)
        return lambda: self._watchers.remove(watcher) if watcher in self._watchers else None

    # ----------------------------------------------------------------- pacing (kds.pacing)

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

    def _header(self, order: Order, now: datetime, **update: Any) -> tuple[Order, str]:
        """The order's header with `update` applied, for `Batch.headers` (not yet live)."""
        updated = order.model_copy(update={**update, "updated_at": now})
        return updated, self.view.body_hash(order.id)

    # ----------------------------------------------------------------- kitchen workflow

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

    # ----------------------------------------------------------------- ticket changes

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

    # ----------------------------------------------------------------- inbox and archive

    async def receive_raw(self, source: str, dedupe_key: str, payload: bytes) -> int | None:
        """Durably keep a raw source event; None when its key was seen before."""
        return await self.inbox.receive(source, dedupe_key, payload)

    async def inbox_done(self, inbox_id: int, error: str | None = None) -> None:
        """Mark a raw event processed (with the reason when it could not be used)."""
        await self.inbox.done(inbox_id, error)

    async def pending_inbox(self, source: str) -> list[InboxEntry]:
        """Raw events of `source` not yet processed, oldest first."""
        return await self.inbox.pending(source)

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
