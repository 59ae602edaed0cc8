"""The application core: the only code that changes order state.

Sources, HTTP handlers, screens and printers call `KitchenService`; it routes
items, applies the state machine, writes the change with its audit rows and
outbox entries in one transaction, and only after the commit updates the
in-memory view, publishes the event and hands out the side effects.

Writes are serialised per order (a keyed lock), so a change is always planned
from committed state and two writes in one group commit never touch the same
row. Different orders commit together.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import hashlib
import json
import sys
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from .allergens import AllergenMatcher
from .bus import EventBus
from .config import Settings
from .errors import ConflictError, InvalidTransition, NotFound
from .ids import uuid7_hex
from .model import (
    ItemEndpoint,
    Location,
    Order,
    OrderEvent,
    OrderIn,
    OrderItem,
    OrderStatus,
    Plu,
    PurchaseType,
    Quantity,
    StatusChange,
    TicketInfo,
    trusted,
    utcnow,
)
from .numbers import PickupNumbers
from .outbox import Outbox, OutboxEntry
from .reports import ProductTotal, TicketFact, facts_of
from .routing import Router
from .states import FINAL, PROCESSABLE, TransitionError, apply_transition
from .store import META_UPSERT, ConstraintViolation, Store, Write

log = structlog.get_logger(__name__)

S = OrderStatus
#: Statuses at which a printer endpoint has (probably) printed the ticket already.
PRINTED = frozenset({S.SENT, S.DELIVERED, S.ACCEPTED, S.PROCESSED, S.REFUSED})
#: Orders whose encoded JSON stays cached (the busiest ones: a change re-encodes anyway).
KEEP_JSON = 1000
_NUMBER_KEY = "orders.numbers_reserved"
_LEGACY_NEXT_NUMBER_KEY = "orders.next_number"
#: Pickup numbers are reserved in blocks (one meta write per block, not per order);
#: after a crash the unused rest of a block is skipped, never reused.
NUMBER_BLOCK = 100
#: Orders read per chunk when the view is rebuilt at start.
LOAD_CHUNK = 1000

ORDER_UPSERT = (
    "INSERT INTO orders (id, source, external_id, number, body_hash, data, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at"
)
ITEM_INSERT = (
    "INSERT INTO items (order_id, item_id, position, plu_name, plu_code, plu_stock_name, plu_group,"
    " amount, unit, comment, course_number, modifiers, allergens)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
ITEM_ENDPOINT_UPSERT = (
    "INSERT INTO item_endpoints (order_id, item_id, endpoint, position, status) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (order_id, item_id, endpoint) DO UPDATE SET status = excluded.status"
)
STATUS_CHANGE_INSERT = (
    "INSERT INTO status_changes (order_id, item_id, endpoint, status, date, actor, reason)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
ORDER_TOUCH = "UPDATE orders SET updated_at = ? WHERE id = ?"
#: The print entries of one order (which VOIDs are queued, which tickets may be on paper).
PRINT_ENTRIES_OF_ORDER = (
    "SELECT target, payload, attempts FROM outbox WHERE order_id = ? AND kind = 'print'"
)


@dataclass(frozen=True)
class IngestResult:
    """The stored order and whether this call created it (False: a repeat)."""

    order: Order
    created: bool


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


@dataclass(frozen=True)
class Change:
    """One planned status change of one item at one endpoint."""

    item_id: int
    endpoint: str
    old: OrderStatus
    new: OrderStatus

    def to_wire(self) -> dict[str, Any]:
        return {
            "itemId": self.item_id,
            "endpoint": self.endpoint,
            "status": self.new.value,
            "from": self.old.value,
        }


@dataclass
class InboxEntry:
    """A raw source event kept for (re)processing."""

    id: int
    source: str
    dedupe_key: str
    payload: bytes
    received_at: datetime


class KeyedLocks:
    """One asyncio.Lock per key, dropped when nobody holds or waits for it.

    `async with locks.hold(key):` — a small class rather than a generator-based
    context manager, because it runs for every order and every status change.
    """

    def __init__(self) -> None:
        self._locks: dict[Any, tuple[asyncio.Lock, list[int]]] = {}

    def hold(self, key: Any) -> _Held:
        """An async context manager holding the lock of `key`."""
        return _Held(self, key)


class _Held:
    __slots__ = ("_entry", "_key", "_owner")

    def __init__(self, owner: KeyedLocks, key: Any) -> None:
        self._owner, self._key = owner, key

    async def __aenter__(self) -> None:
        entry = self._owner._locks.get(self._key)
        if entry is None:
            entry = self._owner._locks[self._key] = (asyncio.Lock(), [0])
        entry[1][0] += 1  # users: holders and waiters
        self._entry = entry
        try:
            await entry[0].acquire()
        except BaseException:
            self._release_user()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._entry[0].release()
        self._release_user()

    def _release_user(self) -> None:
        users = self._entry[1]
        users[0] -= 1
        if not users[0]:
            del self._owner._locks[self._key]


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
        store: Store,
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
        self.writeback_sources = frozenset(writeback_sources)
        self.metrics = ServiceMetrics(registry, (c.name for c in settings.sources))
        self.metrics.open_orders.set_function(self._count_open)
        self._orders: dict[str, Order] = {}
        self._hashes: dict[str, str] = {}
        self._by_external: dict[tuple[str, str], str] = {}
        # hash() of archived (source, external_id) keys: a repeat of an archived order
        # is found without a database read per new order (a hit is confirmed in the DB).
        self._archived: set[int] = set()
        self._locks = KeyedLocks()
        self._recent_json: OrderedDict[str, Order] = OrderedDict()
        self._holds: list[Callable[[Order], bool]] = []
        ui = settings.ui
        self.numbers = PickupNumbers(
            ui.max_pickup_number,
            max(ui.pickup_ready_time, ui.recall_window),
            self._orders.get,
            _all_final,
        )
        self._reserved = 0  # pickup numbers reserved up to here in memory …
        self._reserved_durably = 0  # … and in the store
        self._next_inbox_id = 1

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Rebuild the in-memory view from the store."""
        self.numbers.issued = self._reserved = (
            self._reserved_durably
        ) = await self._numbers_reserved()
        row = await self.store.fetchone("SELECT COALESCE(MAX(id), 0) AS m FROM inbox")
        self._next_inbox_id = (row["m"] if row else 0) + 1
        # Nothing the loader allocates is garbage: collecting while it runs is pure cost.
        gc.disable()
        try:
            for order, body_hash in await self._load_orders():
                self._remember(order, body_hash)
                self.numbers.holds(order)
        finally:
            gc.enable()
        for r in await self.store.fetchall("SELECT source, external_id FROM archived_orders"):
            self._archived.add(hash((r["source"], r["external_id"])))
        log.info("service.loaded", orders=len(self._orders))

    async def _numbers_reserved(self) -> int:
        reserved = await self.store.meta(_NUMBER_KEY)
        if reserved is not None:
            return int(reserved)
        # A database from before numbers were reserved in blocks kept the next number to hand
        # out; continue from it rather than start again at 1 beside the open orders' numbers.
        legacy = await self.store.meta(_LEGACY_NEXT_NUMBER_KEY)
        return int(legacy) - 1 if legacy is not None else 0

    async def stop(self) -> None:
        """Wait for writes in flight."""
        await self.store.barrier()

    def health(self) -> dict[str, Any]:
        return {"ok": True, "orders": len(self._orders), "open": self._count_open()}

    def _count_open(self) -> int:
        return sum(1 for o in self._orders.values() if not _all_final(o))

    async def _load_orders(self) -> list[tuple[Order, str]]:
        """Every stored order with its body hash, oldest first.

        Read a chunk of orders at a time: the rows of all 10,000 at once were
        ~40 MB of short-lived tuples spread between the objects that stay, and
        the allocator could not give that memory back (RSS after a restart was
        15-30 MB above the ingesting process's); chunks reuse the same memory.
        """
        orders: list[tuple[Order, str]] = []
        dates: dict[
            str, datetime
        ] = {}  # one datetime per distinct stamp (an order's changes share a few)
        after = ""
        while chunk := await self.store.fetch_tuples(
            "SELECT id, body_hash, data, updated_at FROM orders WHERE id > ? ORDER BY id LIMIT ?",
            (after, LOAD_CHUNK),
        ):
            orders += await self._load_chunk(chunk, dates)
            after = chunk[-1][0]
        orders.sort(key=lambda pair: (pair[0].created_at, pair[0].id))
        return orders

    async def _load_chunk(
        self, rows: list[tuple[Any, ...]], dates: dict[str, datetime]
    ) -> list[tuple[Order, str]]:
        # Four range scans joined in memory — far faster than a query per order.
        # Rows were validated when written, so objects are constructed directly.
        span = (rows[0][0], rows[-1][0])
        history: dict[tuple[str, int, str], list[StatusChange]] = defaultdict(list)
        for order_id, item_id, endpoint, status, date, reason in await self.store.fetch_tuples(
            "SELECT order_id, item_id, endpoint, status, date, reason FROM status_changes"
            " WHERE order_id BETWEEN ? AND ? ORDER BY order_id, id",
            span,
        ):
            history[(order_id, item_id, endpoint)].append(
                StatusChange(
                    S(status),
                    dates.get(date) or dates.setdefault(date, datetime.fromisoformat(date)),
                    reason,
                )
            )
        endpoints: dict[tuple[str, int], list[ItemEndpoint]] = defaultdict(list)
        for order_id, item_id, endpoint, status in await self.store.fetch_tuples(
            "SELECT order_id, item_id, endpoint, status FROM item_endpoints"
            " WHERE order_id BETWEEN ? AND ? ORDER BY order_id, item_id, position",
            span,
        ):
            endpoints[(order_id, item_id)].append(
                ItemEndpoint.build(
                    _shared(endpoint), S(status), history.get((order_id, item_id, endpoint), [])
                )
            )
        items: dict[str, list[OrderItem]] = defaultdict(list)
        for row in await self.store.fetch_tuples(
            "SELECT order_id, item_id, plu_name, plu_code, plu_stock_name, plu_group, amount, unit, comment,"
            " course_number, modifiers, allergens FROM items WHERE order_id BETWEEN ? AND ? ORDER BY order_id, position",
            span,
        ):
            items[row[0]].append(_item_from_row(row, endpoints.get((row[0], row[1]), [])))
        orders = []
        for order_id, body_hash, data, updated_at in rows:
            header = json.loads(data)
            header["updated_at"] = updated_at  # status changes touch only the column
            orders.append((_order_from_row(header, items.get(order_id, [])), body_hash))
        return orders

    def _remember(self, order: Order, body_hash: str) -> None:
        self._orders[order.id] = order
        self._hashes[order.id] = body_hash
        self._by_external[(order.source, order.external_id)] = order.id

    def _forget(self, order: Order) -> None:
        self._recent_json.pop(order.id, None)
        self._orders.pop(order.id, None)
        self._hashes.pop(order.id, None)
        self._by_external.pop((order.source, order.external_id), None)

    # ----------------------------------------------------------------- reads

    def get(self, order_id: str) -> Order | None:
        """An order of the live view (open or recently finished)."""
        return self._orders.get(order_id)

    def find(self, source: str, external_id: str) -> Order | None:
        """The live order a POS knows as `external_id`."""
        order_id = self._by_external.get((source, external_id))
        return None if order_id is None else self._orders.get(order_id)

    def orders(self) -> Iterator[Order]:
        """Every order of the live view, oldest first."""
        return iter(list(self._orders.values()))

    async def get_archived(self, order_id: str) -> dict[str, Any] | None:
        """The wire JSON of an archived order."""
        row = await self.store.fetchone(
            "SELECT data FROM archived_orders WHERE id = ?", (order_id,)
        )
        return None if row is None else json.loads(row["data"])

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
                await (
                    self.store.barrier()
                )  # a repeat is acknowledged only once the original is durable
                self.metrics.count("repeats", order_in.source)
                return IngestResult(existing, created=False)
            order = self._build_order(order_in, external_id)
            write, entries, changes = self._ingest_write(order, body_hash)
            reservation = self._reserve_numbers(write)
            try:
                await self.store.write(write)
            except Exception:
                self.numbers.forget(order.id, order.number)
                if reservation is not None:  # not durable: the next order reserves again
                    self._reserved = self._reserved_durably
                raise
            if reservation is not None:
                self._reserved_durably = max(self._reserved_durably, reservation)
            self._remember(order, body_hash)
        self.metrics.count("ingested", order.source)
        for change in changes:
            self.metrics.count("changes", change.new.value)
        self._publish("order.created", order)
        self.outbox.published(entries)
        return IngestResult(order, created=True)

    async def _existing(self, key: tuple[str, str], body_hash: str) -> Order | None:
        order_id = self._by_external.get(key)
        if order_id is not None:
            stored_hash, order = self._hashes[order_id], self._orders[order_id]
        elif hash(key) not in self._archived:
            return None
        else:
            row = await self.store.fetchone(
                "SELECT body_hash, data FROM archived_orders WHERE source = ? AND external_id = ?",
                key,
            )
            if row is None:
                return None
            stored_hash, order = row["body_hash"], Order.model_validate_json(row["data"])
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
                    plu=_shared_plu(plu.name, plu.code, plu.stock_name, plu.group),
                    quantity=_shared_quantity(str(item_in.quantity.amount), item_in.quantity.unit),
                    comment=_shared(item_in.comment),
                    course_number=item_in.course_number,
                    modifiers=[_shared(m) for m in item_in.modifiers if m],
                    endpoints=endpoints,
                    allergens=self.allergens.for_item(
                        [plu.name, *item_in.modifiers, item_in.comment], item_in.allergens
                    ),
                )
            )
        # order_in was validated; the rest kds makes itself, so nothing is validated twice.
        return trusted(
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
        )

    def _reserve_numbers(self, write: Write) -> int | None:
        """Add a reservation of the next block to `write` when the issued numbers need one."""
        if self.numbers.issued <= self._reserved:
            return None
        self._reserved = self.numbers.issued + NUMBER_BLOCK
        write.add(META_UPSERT, (_NUMBER_KEY, str(self._reserved)))
        return self._reserved

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

    def _ingest_write(
        self, order: Order, body_hash: str
    ) -> tuple[Write, list[OutboxEntry], list[Change]]:
        write = Write()
        stamp = order.created_at.isoformat()  # every first status change is dated at creation
        write.add(
            ORDER_UPSERT,
            (
                order.id,
                order.source,
                order.external_id,
                order.number,
                body_hash,
                _header_json(order),
                order.created_at.isoformat(),
                order.updated_at.isoformat(),
            ),
        )
        write.add(
            ITEM_INSERT,
            *[_item_row(order.id, pos, item) for pos, item in enumerate(order.items)],
        )
        write.add(
            ITEM_ENDPOINT_UPSERT,
            *[
                (order.id, item.id, e.name, pos, e.status.value)
                for item in order.items
                for pos, e in enumerate(item.endpoints)
            ],
        )
        write.add(
            STATUS_CHANGE_INSERT,
            *[
                (order.id, item.id, e.name, c.status.value, stamp, "kds", c.reason)
                for item in order.items
                for e in item.endpoints
                for c in e.status_changes
            ],
        )
        entries = []
        for name in order.endpoint_names():
            config = self._endpoints.get(name)
            item_ids = [
                i.id
                for i in order.items
                if (e := i.endpoint(name)) and e.status is not S.PROCESS_SKIPPED
            ]
            if config is not None and config.printer is not None and item_ids:
                entries.append(self._stage_print(write, order, name, "new", item_ids))
        changes = [
            Change(item.id, e.name, S.CREATED, e.status)
            for item in order.items
            for e in item.endpoints
            if e.status is not S.CREATED
        ]
        entries += self._stage_writebacks(write, order, changes, reason=None, date=order.created_at)
        return write, entries, changes

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
    ) -> Order:
        """Change the status of the order's item endpoints (all, one endpoint, some items)."""
        async with self._locks.hold(order_id):
            order = self._require(order_id)
            targets = self._targets(order, endpoint, item_ids)
            now = utcnow()
            changes = self._plan(targets, status, recall=recall, strict=strict, now=now)
            if actor != "printer":
                self._check_allergens_acknowledged(order, changes)
            write = Write()
            entries: list[OutboxEntry] = []
            if status is S.PROCESS_SKIPPED:
                record = await self._print_record(order)
                entries += self._stage_voids(write, order, changes, targets, record)
            if not changes:
                if write:
                    await self.store.write(write)
                    self.outbox.published(entries)
                else:
                    await self.store.barrier()
                return order
            if not recall:
                entries += self._stage_writebacks(write, order, changes, reason=reason, date=now)
            await self._commit_changes(order, changes, write, now=now, actor=actor, reason=reason)
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
        order = self._orders.get(order_id)
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
        now: datetime,
    ) -> list[Change]:
        """The changes to make; all-or-nothing when strict.

        Changing a whole order or endpoint leaves items that are already final
        alone (a bumped ticket with a cancelled item is still bumped); one item
        (or one item endpoint) gets the full check.
        """
        single = len(targets) == 1
        changes, errors = [], []
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
                new = apply_transition(ep.status, status, recall=recall)
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
            if new is not None:
                changes.append(Change(item.id, ep.name, ep.status, new))
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
        write: Write,
        *,
        now: datetime,
        actor: str,
        reason: str | None,
    ) -> None:
        # position only matters on insert; these rows exist, so it is ignored.
        write.add(
            ITEM_ENDPOINT_UPSERT,
            *[(order.id, c.item_id, c.endpoint, 0, c.new.value) for c in changes],
        )
        write.add(
            STATUS_CHANGE_INSERT,
            *[
                (order.id, c.item_id, c.endpoint, c.new.value, now.isoformat(), actor, reason)
                for c in changes
            ],
        )
        write.add(ORDER_TOUCH, (now.isoformat(), order.id))
        await self.store.write(write)
        # Committed: now the live view may change.
        for change in changes:
            ep = order.item(change.item_id).endpoint(change.endpoint)  # type: ignore[union-attr]
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
        self._publish("order.updated", order, changes=[c.to_wire() for c in changes])
        self.outbox.published(entries)

    def _publish(self, type_: str, order: Order, **data: Any) -> None:
        self.bus.publish(
            type_,
            data,
            encoded={"order": order.wire_json()},
            endpoints=frozenset(order.endpoint_names()),
        )
        self._keep_json(order)

    def _keep_json(self, order: Order) -> None:
        """Keep the encoded JSON of the most recently changed orders only (memory stays flat)."""
        recent = self._recent_json
        recent[order.id] = order
        recent.move_to_end(order.id)
        while len(recent) > KEEP_JSON:
            _, old = recent.popitem(last=False)
            old.changed()

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
            write = self._header_write(order, updated, now)
            record = await self._print_record(order)
            open_printed = self._printed_items(
                order,
                record,
                [
                    Change(i.id, e.name, e.status, e.status)
                    for i in order.items
                    for e in i.endpoints
                    if e.status not in FINAL
                ],
            )
            entries = [
                self._stage_print(write, updated, name, "rush", ids)
                for name, ids in open_printed.items()
            ]
            await self.store.write(write)
            self._adopt_header(order, updated)
        self._publish("order.updated", order, changes=[])
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
            await self.store.write(self._header_write(order, updated, now))
            self._adopt_header(order, updated)
        self._publish("order.updated", order, changes=[])
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
                item.id: self._initial_endpoint(target, now)
                for item, _ in moving
                if item.endpoint(target) is None
            }
            event = OrderEvent(type="moved", date=now, actor=actor, endpoint=source, to=target)
            updated = self._with_event(order, event, now)
            write = self._header_write(order, updated, now)
            write.add(
                ITEM_ENDPOINT_UPSERT,
                *[
                    (order.id, item_id, target, len(order.item(item_id).endpoints), ep.status.value)  # type: ignore[union-attr]
                    for item_id, ep in arriving.items()
                ],
            )
            write.add(
                STATUS_CHANGE_INSERT,
                *[
                    (order.id, item_id, target, c.status.value, now.isoformat(), actor, c.reason)
                    for item_id, ep in arriving.items()
                    for c in ep.status_changes
                ],
            )
            record = await self._print_record(order)
            entries = [
                self._stage_print(write, updated, name, "transfer", ids, movedTo=target)
                for name, ids in self._printed_items(order, record, changes).items()
            ]
            if config.printer is not None and arriving:
                entries.append(
                    self._stage_print(
                        write, updated, target, "new", list(arriving), movedFrom=source
                    )
                )
            await self._commit_changes(order, changes, write, now=now, actor=actor, reason=reason)
            self._adopt_header(order, updated)
            for item_id, ep in arriving.items():
                order.item(item_id).endpoints.append(ep)  # type: ignore[union-attr]
            order.changed()
            self.numbers.changed(order)
        added = [
            Change(item_id, target, S.CREATED, ep.status).to_wire()
            for item_id, ep in arriving.items()
        ]
        for change in changes:
            self.metrics.count("changes", change.new.value)
        self._publish("order.updated", order, changes=[c.to_wire() for c in changes] + added)
        self.outbox.published(entries)
        return order

    def _require_open(self, order_id: str) -> Order:
        order = self._require(order_id)
        if _all_final(order):
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

    def _header_write(self, order: Order, updated: Order, now: datetime) -> Write:
        write = Write()
        write.add(
            ORDER_UPSERT,
            (
                order.id,
                order.source,
                order.external_id,
                order.number,
                self._hashes[order.id],
                _header_json(updated),
                order.created_at.isoformat(),
                now.isoformat(),
            ),
        )
        return write

    @staticmethod
    def _adopt_header(order: Order, updated: Order) -> None:
        """Take the committed header fields into the live order (its items are shared)."""
        for name in ("rush", "allergen_acks", "events", "version", "updated_at"):
            setattr(order, name, getattr(updated, name))
        order.changed()

    async def report_facts(
        self, start: datetime, end: datetime, endpoint: str | None = None
    ) -> tuple[list[TicketFact], list[ProductTotal]]:
        """Ticket facts and product prep totals of orders that arrived in [start, end)."""
        tickets: list[TicketFact] = []
        products: list[ProductTotal] = []
        for order in list(self._orders.values()):
            if order.created_at >= end:
                continue
            t, p = facts_of(order)
            tickets += [
                f for f in t if start <= f.arrived_at < end and endpoint in (None, f.endpoint)
            ]
            products += [
                f
                for f in p
                if f.arrived_at is not None
                and start <= f.arrived_at < end
                and endpoint in (None, f.endpoint)
            ]
        where = "arrived_at >= ? AND arrived_at < ?" + (" AND endpoint = ?" if endpoint else "")
        args: tuple[Any, ...] = (
            _utc_text(start),
            _utc_text(end),
            *((endpoint,) if endpoint else ()),
        )
        for (
            order_id,
            name,
            arrived,
            seconds,
            items,
            refusals,
            recalls,
            failures,
        ) in await self.store.fetch_tuples(
            "SELECT order_id, endpoint, arrived_at, seconds, items, refusals, recalls,"
            f" printer_failures FROM report_tickets WHERE {where}",
            args,
        ):
            tickets.append(
                TicketFact(
                    order_id,
                    name,
                    datetime.fromisoformat(arrived),
                    seconds,
                    items,
                    refusals,
                    recalls,
                    failures,
                )
            )
        for name, product, code, count, seconds in await self.store.fetch_tuples(
            "SELECT endpoint, product, code, COUNT(*), SUM(seconds) FROM report_items"
            f" WHERE {where} GROUP BY endpoint, product, code",
            args,
        ):
            products.append(ProductTotal(name, product, code, count, seconds))
        return tickets, products

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
            write = Write()
            write.add(
                ORDER_UPSERT,
                (
                    order.id,
                    order.source,
                    order.external_id,
                    order.number,
                    self._hashes[order.id],
                    _header_json(updated),
                    order.created_at.isoformat(),
                    now.isoformat(),
                ),
            )
            record = await self._print_record(order)
            entries = [
                self._stage_print(write, updated, name, "transfer", item_ids)
                for name, item_ids in self._printed_items(order, record).items()
            ]
            await self.store.write(write)
            order.ticket, order.version, order.updated_at = ticket, updated.version, now
            order.changed()
        self._publish("order.updated", order, changes=[])
        self.outbox.published(entries)
        return order

    # ----------------------------------------------------------------- outbox staging

    def _stage_print(
        self,
        write: Write,
        order: Order,
        endpoint: str,
        ticket: str,
        item_ids: list[int],
        **extra: str,
    ) -> OutboxEntry:
        payload = {
            "orderId": order.id,
            "ticket": ticket,
            "itemIds": item_ids,
            "version": order.version,
            **extra,
        }
        return self.outbox.stage(write, "print", endpoint, order.id, payload)

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
            config = self._endpoints.get(endpoint)
            if (
                config is not None
                and config.printer is not None
                and record.printed(endpoint, item_id, status)
            ):
                printed[endpoint].append(item_id)
        return printed

    async def _print_record(self, order: Order) -> PrintRecord:
        """Which items had a VOID queued, and which a new ticket that may have printed."""
        rows = await self.store.fetchall(PRINT_ENTRIES_OF_ORDER, (order.id,))
        voided: set[tuple[str, int]] = set()
        possibly_printed: set[tuple[str, int]] = set()
        for row in rows:
            payload = json.loads(row["payload"])
            target, ticket = row["target"], payload.get("ticket", "new")
            item_ids = payload.get("itemIds")
            if item_ids is None:  # every item of the endpoint
                item_ids = [i.id for i in order.items if i.endpoint(target) is not None]
            if ticket == "void":
                voided.update((target, item_id) for item_id in item_ids)
            elif ticket == "new" and row["attempts"] > 0:
                # `attempted()` is committed right before the first byte is written.
                possibly_printed.update((target, item_id) for item_id in item_ids)
        return PrintRecord(frozenset(voided), frozenset(possibly_printed))

    def _stage_voids(
        self,
        write: Write,
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
            config = self._endpoints.get(ep.name)
            if (
                ep.status is S.PROCESSED
                and config is not None
                and config.printer is not None
                and config.auto_process
                and not config.display
                and item.id not in printed.get(ep.name, [])
                and (ep.name, item.id) not in record.voided
            ):
                printed.setdefault(ep.name, []).append(item.id)
        return [self._stage_print(write, order, name, "void", ids) for name, ids in printed.items()]

    def _stage_writebacks(
        self,
        write: Write,
        order: Order,
        changes: list[Change],
        *,
        reason: str | None,
        date: datetime,
    ) -> list[OutboxEntry]:
        if order.source not in self.writeback_sources or not changes:
            return []
        grouped: dict[tuple[str, OrderStatus], list[int]] = defaultdict(list)
        for change in changes:
            grouped[(change.endpoint, change.new)].append(change.item_id)
        entries = []
        for (endpoint, status), item_ids in grouped.items():
            at_endpoint = {i.id for i in order.items if i.endpoint(endpoint) is not None}
            payload = {
                "orderId": order.id,
                "externalId": order.external_id,
                "endpoint": endpoint,
                "itemIds": item_ids,
                "allItems": set(item_ids) == at_endpoint,
                "status": status.value,
                "date": date.isoformat(),
                "reason": reason,
            }
            entries.append(self.outbox.stage(write, "writeback", order.source, order.id, payload))
        return entries

    # ----------------------------------------------------------------- inbox

    async def receive_raw(self, source: str, dedupe_key: str, payload: bytes) -> int | None:
        """Durably keep a raw source event; None when its key was seen before."""
        async with self._locks.hold(("inbox", source, dedupe_key)):
            if await self._inbox_has(source, dedupe_key):
                await self.store.barrier()
                return None
            inbox_id, self._next_inbox_id = self._next_inbox_id, self._next_inbox_id + 1
            write = Write()
            write.add(
                "INSERT INTO inbox (id, source, dedupe_key, payload, received_at) VALUES (?, ?, ?, ?, ?)",
                (inbox_id, source, dedupe_key, payload, utcnow().isoformat()),
            )
            try:
                await self.store.write(write)
            except ConstraintViolation:
                # Stored meanwhile by someone the lock does not cover: still a duplicate.
                if await self._inbox_has(source, dedupe_key):
                    return None
                raise
            return inbox_id

    async def _inbox_has(self, source: str, dedupe_key: str) -> bool:
        row = await self.store.fetchone(
            "SELECT 1 FROM inbox WHERE source = ? AND dedupe_key = ?", (source, dedupe_key)
        )
        return row is not None

    async def inbox_done(self, inbox_id: int, error: str | None = None) -> None:
        """Mark a raw event processed (with the reason when it could not be used)."""
        write = Write()
        write.add(
            "UPDATE inbox SET processed_at = ?, error = ? WHERE id = ?",
            (utcnow().isoformat(), error, inbox_id),
        )
        await self.store.write(write)

    async def pending_inbox(self, source: str) -> list[InboxEntry]:
        """Raw events of `source` not yet processed, oldest first."""
        rows = await self.store.fetchall(
            "SELECT id, source, dedupe_key, payload, received_at FROM inbox"
            " WHERE source = ? AND processed_at IS NULL ORDER BY id",
            (source,),
        )
        return [
            InboxEntry(
                r["id"],
                r["source"],
                r["dedupe_key"],
                bytes(r["payload"]),
                datetime.fromisoformat(r["received_at"]),
            )
            for r in rows
        ]

    # ----------------------------------------------------------------- archive

    def hold_while(self, holds: Callable[[Order], bool]) -> None:
        """Keep finished orders for which `holds(order)` is true in the live view.

        A source whose POS still shows an order as open (a cheque not yet paid, an
        unbilled table item) needs it there: it diffs what the POS lists against the
        live view, and an archived order would look like lines never sent.
        """
        self._holds.append(holds)

    async def archive_finished(self, now: datetime | None = None) -> int:
        """Move orders finished longer than `archive_after` out of the live tables."""
        now = now or utcnow()
        cutoff = now - timedelta(seconds=self.settings.database.archive_after)
        done = [
            o
            for o in self._orders.values()
            if _all_final(o)
            and o.updated_at <= cutoff
            and not any(holds(o) for holds in self._holds)
        ]
        for order in done:
            async with self._locks.hold(order.id):
                if self._orders.get(order.id) is not order:
                    continue
                write = Write()
                write.add(
                    "INSERT OR REPLACE INTO archived_orders (id, source, external_id, body_hash, data, archived_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        order.id,
                        order.source,
                        order.external_id,
                        self._hashes[order.id],
                        order.wire_json(),
                        now.isoformat(),
                    ),
                )
                _add_report_facts(write, order)
                for table in ("status_changes", "item_endpoints", "items"):
                    write.add(f"DELETE FROM {table} WHERE order_id = ?", (order.id,))
                write.add("DELETE FROM orders WHERE id = ?", (order.id,))
                await self.store.write(write)
                self._forget(order)
                self.numbers.forget(order.id, order.number)
                self._archived.add(hash((order.source, order.external_id)))
            self.bus.publish("order.removed", {"orderId": order.id})
        inbox_cutoff = now - timedelta(seconds=self.settings.database.inbox_retention)
        write = Write()
        write.add(
            "DELETE FROM inbox WHERE processed_at IS NOT NULL AND processed_at < ?",
            (inbox_cutoff.isoformat(),),
        )
        write.add(
            "DELETE FROM outbox WHERE done_at IS NOT NULL AND done_at < ?",
            (inbox_cutoff.isoformat(),),
        )
        await self.store.write(write)
        return len(done)


def _utc_text(when: datetime) -> str:
    """A time as the ISO text the report tables hold (UTC, so text order is time order)."""
    return when.astimezone(UTC).isoformat()


def _add_report_facts(write: Write, order: Order) -> None:
    """The report rows of an order being archived (kds.reports reads them)."""
    tickets, products = facts_of(order)
    write.add(
        "INSERT OR REPLACE INTO report_tickets (order_id, endpoint, arrived_at, seconds, items,"
        " refusals, recalls, printer_failures) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        *[
            (
                t.order_id,
                t.endpoint,
                _utc_text(t.arrived_at),
                t.seconds,
                t.items,
                t.refusals,
                t.recalls,
                t.printer_failures,
            )
            for t in tickets
        ],
    )
    write.add(
        "INSERT INTO report_items (order_id, endpoint, product, code, arrived_at, seconds)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        *[
            (
                order.id,
                p.endpoint,
                p.product,
                p.code,
                _utc_text(p.arrived_at or order.created_at),
                p.seconds,
            )
            for p in products
        ],
    )


def _all_final(order: Order) -> bool:
    return all(e.status in FINAL for e in order.item_endpoints())


def _header_json(order: Order) -> str:
    """The order without its items (they have rows of their own) or derived fields."""
    return order.model_dump_json(exclude=_HEADER_EXCLUDE)


def _shared(text: str | None) -> str | None:
    """One copy of text that repeats across orders (product names, modifiers, endpoints)."""
    if text is None or len(text) > 64:
        return text
    return sys.intern(text)


@functools.lru_cache(maxsize=4096)
def _shared_plu(
    name: str, code: int | str | None, stock_name: str | None, group: str | None
) -> Plu:
    """One Plu object per product: thousands of orders share a menu of dozens (never mutated)."""
    return trusted(
        Plu, name=_shared(name), code=code, stock_name=_shared(stock_name), group=_shared(group)
    )


@functools.lru_cache(maxsize=1024)
def _shared_quantity(amount: str, unit: str) -> Quantity:
    """One Quantity object per (amount, unit) — mostly "1 pcs" (never mutated)."""
    return trusted(Quantity, amount=Decimal(amount), unit=_shared(unit))


def _item_row(order_id: str, position: int, item: OrderItem) -> tuple[Any, ...]:
    """An item as a row of the items table (its endpoints have rows of their own)."""
    plu, quantity = item.plu, item.quantity
    return (
        order_id,
        item.id,
        position,
        plu.name,
        plu.code,
        plu.stock_name,
        plu.group,
        str(quantity.amount),
        quantity.unit,
        item.comment,
        item.course_number,
        json.dumps(item.modifiers, ensure_ascii=False),
        json.dumps(item.allergens, ensure_ascii=False),
    )


def _item_from_row(row: Any, endpoints: list[ItemEndpoint]) -> OrderItem:
    """The inverse of `_item_row`, for rows kds wrote itself."""
    _, item_id, name, code, stock_name, group, amount, unit, comment, course_number, modifiers = (
        row[:11]
    )
    return trusted(
        OrderItem,
        id=item_id,
        plu=_shared_plu(name, code, stock_name, group),
        quantity=_shared_quantity(amount, unit),
        comment=_shared(comment),
        course_number=course_number,
        modifiers=[_shared(m) for m in json.loads(modifiers)],
        endpoints=endpoints,
        allergens=[_shared(a) for a in json.loads(row[11])],
    )


def _order_from_row(data: dict[str, Any], items: list[OrderItem]) -> Order:
    """The inverse of `_header_json`, for rows kds wrote itself."""
    ticket = data["ticket"]
    location = ticket["location"]
    return trusted(
        Order,
        id=data["id"],
        number=data["number"],
        pos_number=data.get("pos_number"),
        source=_shared(data["source"]),
        external_id=data["external_id"],
        device_name=_shared(data["device_name"]),
        user=data["user"],
        ticket=trusted(
            TicketInfo,
            id=ticket["id"],
            name=ticket["name"],
            location=None
            if location is None
            else trusted(
                Location,
                zone_name=_shared(location["zone_name"]),
                table_name=_shared(location["table_name"]),
            ),
            purchase_type=PurchaseType(ticket["purchase_type"]),
            customer=ticket["customer"],
            version=ticket["version"],
        ),
        items=items,
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
        version=data["version"],
        rush=data.get("rush", False),
        allergen_acks={
            name: datetime.fromisoformat(date)
            for name, date in data.get("allergen_acks", {}).items()
        },
        events=[OrderEvent.model_validate(e) for e in data.get("events", [])],
    )


_HEADER_EXCLUDE = {"items", "status", "endpoint_statuses", "is_processed", "is_processable"}
