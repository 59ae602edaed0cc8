"""The cheques source: poll open cheques and diff them against the kitchen.

The cheques API (seed 003, spoken to in `client.py`, read in `translate.py`)
answers `GET_CHEQUES` with every open cheque: `Postponed` ones and `Order`
ones at a table and place, each with items whose money and quantities are strings. It says nothing about what
changed, so every poll diffs each cheque, by uuid, against what kds already has:

* the key of a line is its (code, name): a price correction is the same dish.
  Lines may lack name and code (as in the seed's example) and still reach the
  kitchen, labelled by position and price; for them the price is the only
  identity there is, so it is their key. Quantities of equal keys are summed
  (a multiset); a negative line (a return or correction) subtracts;
* more of a key than kds has → the difference becomes a new kitchen order of
  that cheque (`{uuid}#{n}`), routed like any other;
* less of a key → whole kitchen items are cancelled (VOID where printed),
  newest first; when only part of an item went, it is cancelled and the rest
  is sent again as a new order, so the kitchen never makes too much;
* a cheque that disappears is finished: kds stops tracking it and leaves its
  tickets to the cooks (paying a cheque does not un-cook it). A missing or
  empty answer is never read as "everything was removed";
* a line kds cannot read is never taken as removed: its key (or, when even
  that is unknown, the whole cheque) voids nothing until it reads again, and it
  is logged and listed in `/readyz` (`unreadableLines`).

Each cheque read is kept raw in the inbox before it is processed — a new entry
only when its content changed since the last one stored — and the shared inbox
worker (`kds.sources.intake`) runs the diff (`_process`), one cheque at a time
in the order read; an unchanged cheque is diffed again by the worker without
being stored. A diff that fails (the store cannot commit, a bug) is retried by
the worker; a raw cheque still pending at a stop is diffed again on start.

A non-200 `resultCode` (488 "cheque not found" included) or an unreadable
answer fails the poll (`SourceUnavailable`); the base backs off and nothing
is changed. With a `pin`, the `AUTH` intent fetches the token, renewed when
the API rejects it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog

from ...errors import ConflictError, ConstraintViolation, NotFound
from ...model import (
    Location,
    Order,
    OrderIn,
    OrderItemIn,
    OrderStatus,
    Plu,
    PurchaseType,
    Quantity,
    TicketInfo,
)
from ..alerts import summary
from ..base import Poller, SourceContext, SourceUnavailable
from ..coerce import three_places
from ..intake import InboxWorker
from .client import ChequesClient
from .config import Config
from .translate import KEY_PREFIX, Cheque, Line, Unreadable, label, read_cheque, stored_key

log = structlog.get_logger(__name__)

WRITES_BACK = False


@dataclass
class KdsLine:
    """A live kitchen item of a cheque."""

    order: Order
    item_id: int
    quantity: Decimal


class ChequesSource(Poller):
    """Polls the cheques API and turns each cheque's changes into orders and VOIDs."""

    def __init__(self, config: Config, ctx: SourceContext) -> None:
        super().__init__(config.name, ctx, config.poll_interval, max_backoff=config.max_backoff)
        self.config = config
        self.client = ChequesClient(config)
        self._tracked: set[str] = set()
        self._unreadable: dict[str, list[Unreadable]] = {}
        self.finished: list[str] = []
        self.inbox = InboxWorker(config.name, ctx, self._process, gave_up=self._gave_up)
        self._stored: dict[str, tuple[str, int]] = {}  # uuid → (digest, inbox id) of its last raw
        self._open_ids: set[int] = set()  # inbox entries not closed yet
        self._failing: dict[int, Cheque] = {}  # inbox id → its cheque, while its diff fails
        self._given_up: dict[str, str] = {}  # uuid → digest of the content given up on

    async def start(self) -> None:
        """Open the HTTP session, resume raw cheques left pending, start polling."""
        await self.client.start()
        self._tracked = {
            _cheque_uuid(o) for o in self.ctx.service.orders() if o.source == self.name
        }
        # An open cheque's orders stay live however long it stays open: archived, its
        # lines would look unsent and go to the kitchen again.
        self.ctx.service.hold_while(self._is_open_cheque_order)
        self._open_ids = {entry.id for entry in await self.inbox.start()}
        await super().start()

    def _is_open_cheque_order(self, order: Order) -> bool:
        return order.source == self.name and _cheque_uuid(order) in self._tracked

    async def stop(self) -> None:
        """Stop polling and processing (what is pending stays in the inbox), close the session."""
        await super().stop()
        await self.inbox.stop()
        await self.client.stop()

    def health(self) -> dict[str, Any]:
        """Poll health, how many cheques are tracked, and the lines kds could not read."""
        health = super().health()
        unreadable = [
            u.to_json(uuid) for uuid, lines in sorted(self._unreadable.items()) for u in lines
        ]
        alerts = self.ctx.alerts.of(self.name)
        if alerts:
            health["reason"] = f"alert: {summary(alerts)}"
        return {
            **health,
            "ok": health["ok"] and not unreadable and not alerts,
            "alerts": alerts,
            "trackedCheques": len(self._tracked),
            "queuedCheques": self.inbox.queued,
            "unreadableLines": unreadable[:50],
        }

    # ------------------------------------------------------------------ diff

    async def poll(self) -> None:
        """Read every cheque, keep it raw and hand it to the inbox worker to diff."""
        cheques = []
        for entry in await self.client.fetch():
            cheque = read_cheque(entry)
            if cheque is None or cheque.kind not in (None, *self.config.cheque_types):
                continue
            cheques.append(cheque)
            await self._keep(cheque.uuid, entry)
        seen = {c.uuid for c in cheques}
        for uuid in sorted(self._tracked - seen):
            log.info("cheques.finished", uuid=uuid)
            self.finished.append(uuid)
        del self.finished[:-1000]
        self._tracked = seen
        self._stored = {u: s for u, s in self._stored.items() if u in seen}
        for uuid in set(self._given_up) - seen:  # closed at the till: nothing left to send
            self._taken(uuid)
        self._unreadable = {c.uuid: c.unreadable for c in cheques if c.unreadable}

    async def _keep(self, uuid: str, entry: Any) -> None:
        """Store a cheque raw when it changed since it was last stored; queue it for the diff."""
        body = json.dumps(entry, ensure_ascii=False, sort_keys=True).encode()
        digest = hashlib.sha256(body).hexdigest()[:16]
        stored = self._stored.get(uuid)
        if stored is not None and stored[0] == digest:
            if self._given_up.get(uuid) != digest:  # given up: tried again once it changes
                self.inbox.enqueue(
                    stored[1], body
                )  # diffed again (a staff cancel), not stored again
            return
        # A cheque may come back to an earlier content: each change is an entry of its own.
        key = f"cheque:{uuid}:{digest}:{secrets.token_hex(6)}"
        inbox_id = await self.ctx.inbox.receive(self.name, key, body)
        if inbox_id is None:
            return
        self._stored[uuid] = (digest, inbox_id)
        self._open_ids.add(inbox_id)
        self.inbox.enqueue(inbox_id, body)

    async def _process(self, inbox_id: int, body: bytes) -> None:
        """(inbox worker) Bring the kitchen in line with one raw cheque, then close its entry."""
        try:
            entry = json.loads(body)
        except ValueError:
            entry = None
        cheque = read_cheque(entry, quiet=True)
        if cheque is None:
            await self.ctx.inbox.done(inbox_id, error="not a cheque")
            return
        try:
            await self._sync(cheque, self._orders_by_cheque().get(cheque.uuid, []))
        except Exception:
            self._failing[inbox_id] = cheque  # for `_gave_up`, should the retries run out
            raise
        self._failing.pop(inbox_id, None)
        self._taken(cheque.uuid)
        if inbox_id in self._open_ids:
            await self.ctx.inbox.done(inbox_id)
            self._open_ids.discard(inbox_id)

    def _gave_up(self, inbox_id: int, err: Exception) -> None:
        """(inbox worker) A cheque whose diff kept failing: shown to staff until it changes."""
        cheque = self._failing.pop(inbox_id, None)
        if cheque is None:
            return
        stored = self._stored.get(cheque.uuid)
        # The content given up on ("" when a newer one is already stored: that one is tried).
        self._given_up[cheque.uuid] = stored[0] if stored and stored[1] == inbox_id else ""
        where = f" at table {cheque.table}" if cheque.table else ""
        self.ctx.alerts.raise_alert(
            self.name,
            f"cheque:{cheque.uuid}",
            "order_failed",
            f"cheque {cheque.name or cheque.uuid}{where} could not be sent to the kitchen:"
            f" {(str(err) or type(err).__name__)[:300]}",
            order=cheque.uuid,
        )

    def _taken(self, uuid: str) -> None:
        """A cheque's diff went through (or the cheque is closed): its alert, if any, goes."""
        if self._given_up.pop(uuid, None) is not None:
            self.ctx.alerts.clear(self.name, f"cheque:{uuid}")

    def _orders_by_cheque(self) -> dict[str, list[Order]]:
        by_uuid: dict[str, list[Order]] = defaultdict(list)
        for order in self.ctx.service.orders():
            if order.source == self.name and "#" in order.external_id:
                by_uuid[_cheque_uuid(order)].append(order)
        return by_uuid

    @staticmethod
    def _live_lines(orders: list[Order]) -> dict[str, list[KdsLine]]:
        """The cheque's kitchen items that are not cancelled, by key, oldest first."""
        lines: dict[str, list[KdsLine]] = defaultdict(list)
        for order in sorted(orders, key=lambda o: (o.created_at, o.external_id)):
            for item in order.items:
                if all(e.status is OrderStatus.PROCESS_SKIPPED for e in item.endpoints):
                    continue
                stored = stored_key(item.plu.stock_name)
                if stored is None:
                    continue
                lines[stored[0]].append(KdsLine(order, item.id, Decimal(item.quantity.amount)))
        return lines

    async def _sync(self, cheque: Cheque, orders: list[Order]) -> None:
        wanted: dict[str, Decimal] = defaultdict(Decimal)
        sample: dict[str, Line] = {}
        for line in cheque.lines:
            wanted[line.key] += line.quantity
            if line.quantity > 0:
                sample.setdefault(line.key, line)
        # A line kds could not read may be any of the dishes: its key (or, unknown, every key) voids nothing.
        frozen = {u.key for u in cheque.unreadable}
        have = self._live_lines(orders)
        additions: list[tuple[Line, Decimal]] = []
        cancels: dict[str, list[int]] = defaultdict(list)
        orders_by_id = {o.id: o for o in orders}
        for key in sorted(set(wanted) | set(have)):
            if key in frozen:
                continue
            kds_lines = have.get(key, [])
            # More returned than ordered cannot un-make more than the kitchen has.
            delta = max(wanted.get(key, Decimal(0)), Decimal(0)) - sum(
                (k.quantity for k in kds_lines), Decimal(0)
            )
            if delta > 0 and key in sample:
                additions.append((sample[key], delta))
            elif delta < 0 and None not in frozen:
                excess = -delta
                # Whole items first, newest first; then split one item if some excess is left.
                for kds_line in reversed(kds_lines):
                    if kds_line.quantity <= excess:
                        cancels[kds_line.order.id].append(kds_line.item_id)
                        excess -= kds_line.quantity
                        if excess == 0:
                            break
                if excess > 0:
                    rest = [k for k in kds_lines if k.item_id not in cancels.get(k.order.id, [])]
                    split = min(rest, key=lambda k: k.quantity)
                    cancels[split.order.id].append(split.item_id)
                    keep = split.quantity - excess
                    line = sample.get(key) or self._line_from_item(split)
                    additions.append((line, keep))
        for order_id, item_ids in cancels.items():
            try:
                await self.ctx.service.cancel(
                    order_id, item_ids=item_ids, reason="removed from the cheque", actor=self.name
                )
            except NotFound:
                log.info(
                    "cheques.cancel_of_archived_order", order=orders_by_id[order_id].external_id
                )
            log.info("cheques.voided", uuid=cheque.uuid, order=order_id, items=item_ids)
        if additions:
            await self._add(cheque, orders, additions)

    @staticmethod
    def _line_from_item(kds_line: KdsLine) -> Line:
        item = kds_line.order.item(kds_line.item_id)
        assert item is not None
        stored = stored_key(item.plu.stock_name)
        assert stored is not None
        key, price = stored
        code, name = json.loads(key)[:2]
        return Line(key, code, name, price, kds_line.quantity, 0)

    async def _add(
        self, cheque: Cheque, orders: list[Order], additions: list[tuple[Line, Decimal]]
    ) -> None:
        n = max((_part_number(o) for o in orders), default=0) + 1
        items = [
            OrderItemIn(
                id=i,
                plu=Plu(name=label(line), code=line.code, stock_name=KEY_PREFIX + line.key),
                quantity=Quantity(amount=three_places(quantity)),
            )
            for i, (line, quantity) in enumerate(
                sorted(additions, key=lambda a: a[0].position), start=1
            )
        ]
        table = cheque.table
        if table and cheque.place:
            table = f"{table} · {cheque.place}"
        order_in = OrderIn(
            id=f"{cheque.uuid}#{n}",
            source=self.name,
            device_name=self.name,
            ticket=TicketInfo(
                id=cheque.uuid,
                name=cheque.name or (f"Table {cheque.table}" if cheque.table else None),
                location=Location(table_name=table) if table else None,
                purchase_type=PurchaseType.WALK_IN
                if cheque.kind == "Order"
                else PurchaseType.UNKNOWN,
            ),
            items=items,
        )
        for attempt in range(100):
            try:
                result = await self.ctx.service.ingest(order_in, actor=self.name)
            except ConstraintViolation:
                raise  # the store refuses the order itself: another number would not help
            except ConflictError:
                result = None
            if result is not None and result.created:
                break
            # `#n` belongs to an order archived meanwhile: take the next number.
            order_in = order_in.model_copy(update={"id": f"{cheque.uuid}#{n + attempt + 1}"})
        else:
            raise SourceUnavailable(f"no free order number for cheque {cheque.uuid}")
        log.info(
            "cheques.order",
            uuid=cheque.uuid,
            order=result.order.id,
            items=len(items),
            created=result.created,
        )


def _cheque_uuid(order: Order) -> str:
    """The cheque an order came from (its external id is `{uuid}#{n}`)."""
    return order.external_id.rsplit("#", 1)[0]


def create(config: Config, ctx: SourceContext) -> ChequesSource:
    """The cheques source component."""
    return ChequesSource(config, ctx)


def _part_number(order: Order) -> int:
    """The n of an order kds made as `<cheque>#<n>`; 0 for any other id."""
    suffix = order.external_id.rsplit("#", 1)[-1]
    return int(suffix) if suffix.isascii() and suffix.isdigit() else 0
