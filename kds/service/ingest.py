"""Ingest: store a new order (routed, numbered, held back where paced) or recognise a repeat."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import NamedTuple

from ..contracts import EventType
from ..effects import Change
from ..errors import ConflictError
from ..ids import uuid7_hex
from ..interning import (
    EMPTY_DICT,
    EMPTY_LIST,
    shared,
    shared_location,
    shared_plu,
    shared_quantity,
    shared_ticket,
    shared_user,
)
from ..model import (
    ItemEndpoint,
    Order,
    OrderIn,
    OrderItem,
    Plu,
    StatusChange,
    body_json,
    from_fields,
    utcnow,
)
from ..routing import KNOWN_PRODUCTS
from ..states import OrderStatus
from ..store import Batch, ConstraintViolation
from ..store.rows import Steps, creation_history
from .core import ServiceCore

S = OrderStatus


class IngestResult(NamedTuple):
    """The stored order and whether this call created it (False: a repeat)."""

    # A NamedTuple, not a frozen dataclass: made per ingest, and a frozen dataclass sets each
    # field through object.__setattr__.

    order: Order
    created: bool


class IngestCommands(ServiceCore):
    """Ingest and building an order."""

    async def ingest(self, order_in: OrderIn, *, actor: str = "pos") -> IngestResult:
        """Store a new order (201) or recognise a repeat (200); other body, same id: 409."""
        external_id = order_in.id or uuid7_hex()
        key = (order_in.source, external_id)
        # The id is part of the key, so hashing the whole body compares the rest.
        body_hash = hashlib.sha256(body_json(order_in)).hexdigest()
        async with self._locks.hold(key):
            live = self.view.find(*key)
            # Most orders are new: known neither live nor archived, no coroutine to ask.
            if live is None and not self.view.maybe_archived(*key):
                existing = None
            else:
                existing = await self._existing_of(key, body_hash, live)
            if existing is not None:
                # A repeat is acknowledged only once the original is durable.
                await self.store.barrier()
                self.metrics.count("repeats", order_in.source)
                return IngestResult(existing, created=False)
            await self._reservations.ready()  # nothing awaited from here to the number's take
            order = self._build_order(order_in, external_id)
            counts, changes = self._first_steps(order)
            batch = Batch(new_orders=[(order, body_hash)])
            entries = self.effects.new_order(batch, order, changes)
            reservation = self._reservations.reserve(batch.meta)
            try:
                await self.store.commit(batch)
            except Exception as err:
                self.numbers.forget(order.id, order.number)
                self._reservations.failed(reservation)
                if not isinstance(err, ConstraintViolation):
                    raise
                existing = await self._stored_meanwhile(key, body_hash, err)
                self.metrics.count("repeats", order_in.source)
                return IngestResult(existing, created=False)
            self._reservations.committed(reservation)
            self.view.remember(order, body_hash)
        self.metrics.count("ingested", order.source)
        for status, count in counts.items():
            self.metrics.count("changes", status, count)  # one update per status, not per item
        self._publish(EventType.ORDER_CREATED, order)
        self.outbox.published(entries)
        return IngestResult(order, created=True)

    def _first_steps(self, order: Order) -> tuple[dict[str, int], list[Change]]:
        """The new order's item endpoints that start past created (a screen's are sent at
        once): counted by status, and as changes where its POS takes write-backs of them
        (only there: a Change is a frozen dataclass, made field by field)."""
        counts: dict[str, int] = {}
        changes: list[Change] = []
        planned = order.source in self.effects.writeback_sources
        created = S.CREATED  # once: a member read off an enum class is a slow lookup
        for item in order.items:
            for e in item.endpoints:
                status = e.status
                if status is not created:
                    counts[status._value_] = counts.get(status._value_, 0) + 1
                    if planned:
                        changes.append(Change(item.id, e.name, created, status))
        return counts, changes

    async def _stored_meanwhile(
        self, key: tuple[str, str], body_hash: str, err: ConstraintViolation
    ) -> Order:
        """The order another node on the same database stored under `key` a moment ago: this
        ingest is its repeat (or a 409 when the body differs). `err` when there is none."""
        order_id = await self.store.order_id_of(*key)
        if order_id is None:
            raise err
        await self.refresh({order_id})
        existing = await self._existing(key, body_hash)
        if existing is None:
            raise err
        return existing

    async def _existing(self, key: tuple[str, str], body_hash: str) -> Order | None:
        return await self._existing_of(key, body_hash, self.view.find(*key))

    async def _existing_of(
        self, key: tuple[str, str], body_hash: str, order: Order | None
    ) -> Order | None:
        """The order stored under `key` (`order`: the live one, looked up already), or None;
        409 when it was stored with another body."""
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
        next_id = 0  # the ids kds gives items without one: found when one is first needed
        # The order's item endpoints share their creation steps, as loaded orders do.
        steps: Steps = {}
        allergens = self.allergens
        find_allergens = allergens.has_keywords  # else only what the POS flagged
        route, statuses = self.router.route, self._initial_statuses
        for item_in in order_in.items:
            if item_in.id is None:
                if not next_id:
                    next_id = max((i.id for i in order_in.items if i.id is not None), default=0)
                    next_id += 1
                item_id, next_id = next_id, next_id + 1
            else:
                item_id = item_in.id
            plu, quantity, modifiers = item_in.plu, item_in.quantity, item_in.modifiers
            product, names = self._product(plu)
            # `_initial_endpoint` inlined: three calls per item endpoint were a sixth of building.
            endpoints = []
            for name in route(item_in) if item_in.endpoints else names:
                status = statuses.get(name) or self._initial_status(name)
                path = steps.get(status)
                if path is None:
                    path = steps[status] = tuple(creation_history(status, now))
                endpoints.append(ItemEndpoint.build(name, status, list(path)))
            items.append(
                OrderItem.build(
                    item_id,
                    product,
                    shared_quantity(str(quantity.amount), quantity.unit),
                    shared(item_in.comment),
                    item_in.course_number,
                    ([shared(m) for m in modifiers if m] or EMPTY_LIST)
                    if modifiers
                    else EMPTY_LIST,
                    endpoints,
                    # No keywords configured and none flagged: no texts to gather.
                    (
                        allergens.for_item(
                            [plu.name, *modifiers, item_in.comment], item_in.allergens
                        )
                        if find_allergens or item_in.allergens
                        else None
                    )
                    or EMPTY_LIST,
                )
            )
        # order_in was validated; the rest kds makes itself, so nothing is validated twice.
        # Its parts are shared as the loader shares them (kds.interning): one Location per
        # table, repeated text once, one empty list or dict that refuses changes in place.
        ticket, location = order_in.ticket, order_in.ticket.location
        order = from_fields(
            Order,
            {
                "id": order_id,
                "number": self.numbers.take(order_id, now),
                "pos_number": order_in.number,
                "source": shared(order_in.source),
                "external_id": external_id,
                "device_name": shared(order_in.device_name),
                "user": shared_user(order_in.user),
                "ticket": shared_ticket(
                    ticket.id,
                    ticket.name,
                    None
                    if location is None
                    else shared_location(location.zone_name, location.table_name),
                    ticket.purchase_type,
                    ticket.customer,
                    ticket.version,
                ),
                "items": items,
                "created_at": now,
                "updated_at": now,
                "version": 1,
                "rush": False,
                "allergen_acks": EMPTY_DICT,
                "events": EMPTY_LIST,
                "due_at": order_in.due_at,
                "holds": EMPTY_LIST,
            },
        )
        # Its encoded-JSON slot set (to nothing yet): reading a slot never set raises an
        # AttributeError, caught in `wire_json` (a few µs an order for its message alone).
        order.changed()
        self._hold_back(order, now)
        return order

    def _product(self, plu: Plu) -> tuple[Plu, tuple[str, ...]]:
        """A product's one shared Plu and the endpoints its items go to when they name none:
        one lookup for both (a menu is a few hundred products, ordered over and over)."""
        key = (plu.name, plu.code, plu.stock_name, plu.group)
        try:
            return self._products[key]
        except KeyError:
            pass
        if len(self._products) >= KNOWN_PRODUCTS:
            self._products.clear()  # bounded: POS text is untrusted, a flood must not grow it
        shared = shared_plu(*key)
        found = self._products[key] = (shared, tuple(self.router.product_endpoints(shared)))
        return found

    def _hold_back(self, order: Order, now: datetime) -> None:
        """Hold the new order's items that must not reach their stations yet (kds.pacing)."""
        if order.due_at is None and not self.pacing.holds_courses:
            return  # most orders in most kitchens: nothing can be held, no plan to ask
        # A generator: the plan reads it only when something can be held.
        pairs = (
            (i.id, e.name)
            for i in order.items
            for e in i.endpoints
            if e.status is not S.PROCESS_SKIPPED
        )
        holds = self.pacing.plan(order, pairs, now=now)
        if not holds:
            return  # the order keeps the shared empty list
        order.holds = holds
        for hold in holds:
            item = order.item(hold.item_id)
            assert item is not None
            item.endpoints = [
                ItemEndpoint.build(e.name, S.CREATED, [StatusChange(S.CREATED, now)])
                if e.name == hold.endpoint
                else e
                for e in item.endpoints
            ]
