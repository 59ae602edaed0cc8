"""The ready2order source: table-order webhooks, a safety-net poll, 60 requests a minute.

ready2order (seed 001) pushes `orderItem.created / cancelled / transferred`
webhooks that carry only resource ids; item details come from the table-orders
API (`GET /v1/orders`). How kds handles them:

* **webhook** — `POST /hooks/ready2order/{secret}` (`webhook.py`): a wrong
  secret is a 404 and nothing is stored; otherwise the raw body goes to the
  durable inbox (dedupe key: the event id, else a hash of the body, so a
  retried delivery is kept once) and the answer is 202 at once. The shared
  inbox worker (`kds.sources.intake`) hands entries to `_process` in order;
  entries left from before a crash are processed on start.
* **created** — the ids wait for the next fetch. One fetch of the open table
  orders (paged) serves every pending webhook at once, which is what keeps a
  burst of 200 webhooks to a handful of requests. New items of one table are
  held for `group_window` and become one kitchen ticket (`grouping.py`; rows
  become a kds order in `translate.py`).
* **cancelled** — known items go to processSkipped (VOID where printed); an
  item still held is dropped; an id not seen yet is remembered, so a cancel
  that overtakes its create still ends with nothing on the screens.
* **transferred** — the kds order gets the new table (TRANSFER where printed).
* **returns** — a row booked in retour mode (`order_retour`) or with a
  negative quantity takes that much of the same dish (name and item number)
  off the table's kitchen items, newest first: whole items are voided, a part
  is voided and the rest sent again (VOID, then the lower quantity). It is
  never a new dish; applied once (its inbox key `return:{order_id}` survives
  restarts); a return kds cannot match is logged and listed in `/readyz`.
* **order_status** — `open_statuses` (default 1, the seed's value on an open
  item) are made, `void_statuses` are voided (or never sent); any other value
  is made, logged and listed in `/readyz` until it is mapped in the config.
* **vanished items** — an item kds sent that has been missing from the open
  list for `missing_fetches` polls was billed or removed: the table's bills
  since the order (`GET /document/invoice?tableId=…&items=true`) tell which;
  an item on no bill is voided ("removed in ready2order"), so a lost
  `orderItem.cancelled` webhook never leaves a dish on the screens.
* **product / productGroup events** — update the catalogue kds routes by
  (`catalog.py`): an item is routed by its product's group and the groups
  that group is inside; a product, group or table kds has not seen is looked
  up by id before its item is routed.
* **poll** — every `poll_interval` the same fetch runs as a safety net: items a
  lost webhook never announced are picked up, table changes and order_status
  are applied, vanished items are checked against the bills.
* **rate limit** — every request takes a token from one bucket per account
  token (60 a minute); a 429 blocks the bucket for `Retry-After`. The
  catalogue is read in the background at low priority: order fetches first.

Webhook payloads are not fixed by the seed, so the reader accepts the
plausible shapes (`resource` arrays of ids or objects, `ids`, `order_ids`,
nested `data`) and logs — never drops — what it cannot read: the raw event
stays in the inbox with the reason, and a poll runs at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Literal

import structlog

from ...clock import Cancellable
from ...errors import ConflictError, ConstraintViolation, KdsError, NotFound, Unavailable
from ...model import Location, Order, OrderItem, OrderStatus
from ...routing import Router
from ...states import FINAL
from ..alerts import MAX_PER_SOURCE, summary
from ..base import Poller, SourceContext, SourceUnavailable
from ..coerce import as_decimal, as_int, three_places
from ..intake import InboxWorker
from ..ratelimit import TokenBucket
from ..returns import resend_rest, resume_rest, voided_by
from .bills import BILL_SLACK, billed, take_billed
from .catalog import Catalogue
from .client import Ready2OrderClient
from .config import Config
from .grouping import HeldItem, group_items
from .translate import (
    is_return,
    is_training,
    order_in,
    plu_identity,
    returned_quantity,
    ticket_name,
)
from .webhook import (
    CATALOG_EVENTS,
    ITEM_EVENTS,
    RETURN_EVENT,
    Ready2OrderWebhook,
    WebhookEvent,
    read_webhook,
)

log = structlog.get_logger(__name__)

WRITES_BACK = False
TOMBSTONES = 10_000


def _return_reason(return_id: int) -> str:
    """The reason of a return's voids: it marks the return as applied (see `_return_applied`)."""
    return f"returned in ready2order (line {return_id})"


def _rest_id(order: Order, return_id: int) -> str:
    """The external id of what a return left of an item: the same on every pass."""
    return f"{order.external_id}-r{return_id}"


def _was_final(item: OrderItem, reason: str) -> bool:
    """Whether every station had finished the item before the void with `reason`."""
    before = []
    for endpoint in item.endpoints:
        changes = endpoint.status_changes
        at = next((n for n, c in enumerate(changes) if c.reason == reason), 0)
        before.append(changes[at - 1].status if at > 0 else endpoint.status)
    return all(status in FINAL for status in before)


class Ready2OrderSource(Poller):
    """Webhooks in, table orders fetched, kitchen tickets out."""

    def __init__(self, config: Config, ctx: SourceContext) -> None:
        super().__init__(config.name, ctx, config.poll_interval, max_backoff=config.max_backoff)
        self.config = config
        # One bucket per account (API root + token), shared by every source of this daemon using it.
        secret = (
            config.account_token.get_secret_value()
            if config.account_token
            else f"file:{config.account_token_file}"
        )
        token_key = hashlib.sha256(f"{config.base_url}|{secret}".encode()).hexdigest()
        self.bucket = ctx.shared(
            (TokenBucket, token_key),
            lambda: TokenBucket(
                limit=config.rate_limit,
                period=config.rate_period,
                clock=ctx.clock.monotonic,
                sleep=ctx.clock.sleep,
            ),
        )
        self.client = Ready2OrderClient(config, self.bucket)
        self._known: dict[
            int, tuple[str, int | None]
        ] = {}  # r2o order_id -> (kds order id, table id)
        # kds orders with items the last poll still listed as open (None: no poll yet).
        self._open_orders: set[str] | None = None
        self._held: dict[int, HeldItem] = {}
        self._held_changed = asyncio.Event()
        self._tombstones: OrderedDict[int, None] = OrderedDict()
        self._awaiting: dict[int, set[int]] = {}  # r2o order_id -> inbox ids announcing it
        self._inbox_refs: dict[int, int] = {}  # inbox id -> ids still unresolved
        self._misses: dict[int, int] = {}
        self.catalog = Catalogue(self.client)
        self._router = Router(ctx.settings.routing)
        self._lock = asyncio.Lock()  # one writer of the adapter's maps at a time
        self.idle = asyncio.Condition()
        self.unreadable = 0
        self._refetch: Cancellable | None = None
        self._returns: dict[int, dict[str, Any]] = {}  # return rows waiting to be applied
        self._unmatched: deque[dict[str, Any]] = deque(maxlen=20)
        self._unknown_status: dict[str, int] = {}  # open items with an unmapped order_status
        self._products_of: dict[int, int] = {}  # known item -> product_id (to match bills)
        self._gone: dict[
            int, int
        ] = {}  # known item -> polls it has been missing from the open list
        self._settled: set[int] = set()  # known items that left the open list and were handled
        self._refused: dict[str, list[int]] = {}  # alert key of a ticket kds refused -> its items
        # Webhooks: stored raw, answered 202, then processed in order by one worker.
        self.inbox = InboxWorker(
            self.name, ctx, self._process, lock=self._lock, after=self._notify_idle
        )
        self.webhook = Ready2OrderWebhook(config, self.inbox.receive)
        ctx.add_routes(self.webhook.routes())

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Rebuild what kds already has, requeue unprocessed webhooks, start the workers."""
        await self.client.start()
        for order in self.ctx.service.orders():
            if order.source == self.name:
                self._remember_order(order.id, as_int(order.ticket.id), [i.id for i in order.items])
        # An order with items still open at the till stays live however old: archived,
        # those items would look new to the next poll and go to the kitchen again.
        self.ctx.service.hold_while(self._has_open_items)
        await self.inbox.start()
        self.ctx.supervisor.spawn(f"source:{self.name}:tickets", self._ticket_loop())
        self.ctx.supervisor.spawn(f"source:{self.name}:catalog", self._catalog_loop())
        await super().start()

    async def stop(self) -> None:
        """Stop the workers; unprocessed webhooks stay in the inbox for the next start."""
        await super().stop()
        if self._refetch is not None:
            self._refetch.cancel()
        await self.inbox.stop()
        await self.ctx.supervisor.cancel(f"source:{self.name}:tickets")
        await self.ctx.supervisor.cancel(f"source:{self.name}:catalog")
        await self.client.stop()

    def health(self) -> dict[str, Any]:
        """Poll health plus the rate-limit bucket, the backlog and what kds could not map."""
        health = super().health()
        alerts = self.ctx.alerts.of(self.name)
        if alerts:
            health["reason"] = f"alert: {summary(alerts)}"
        return {
            **health,
            "ok": health["ok"] and not self._unknown_status and not alerts,
            "alerts": alerts,
            "unknownOrderStatus": dict(self._unknown_status),
            "unmatchedReturns": list(self._unmatched),
            "rateLimit": self.bucket.health(),
            "queuedWebhooks": self.inbox.queued,
            "heldItems": len(self._held),
            "awaitingItems": len(self._awaiting),
            "requests": self.client.requests,
        }

    @property
    def busy(self) -> bool:
        """True while webhooks, held items or announced items are outstanding."""
        return bool(self.inbox.busy or self._held or self._awaiting)

    async def _notify_idle(self) -> None:
        async with self.idle:
            self.idle.notify_all()

    # ------------------------------------------------------------------ webhook events (the inbox worker calls _process)

    async def _process(self, inbox_id: int, body: bytes) -> None:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
            event = WebhookEvent(None, problems=["body is not JSON"])
        else:
            event = read_webhook(data)
        name = event.name or ""
        if name == RETURN_EVENT:  # left pending by a stop between storing and applying it
            for row in event.objects:
                if not self._return_applied(as_int(row.get("order_id")) or 0):
                    await self._apply_return(row)
                else:
                    await self._resume_return(row)
            await self.ctx.inbox.done(inbox_id)
            return
        if name in CATALOG_EVENTS:
            self.catalog.apply_event(name, event.objects, event.ids)
            await self.ctx.inbox.done(inbox_id)
            return
        if name not in ITEM_EVENTS or (
            not event.ids and not event.objects and event.source_table is None
        ):
            # Unreadable or unexpected: keep it (with the reason) and let a fetch find what it meant.
            self.unreadable += 1
            reason = "; ".join(event.problems) or f"no item ids in {name or 'event'}"
            if name and name not in ITEM_EVENTS:
                reason = f"event {name!r} not used"
            log.warning(
                "ready2order.webhook_unreadable",
                inbox_id=inbox_id,
                reason=reason,
                body=body[:300].decode("utf-8", "replace"),
            )
            await self.ctx.inbox.done(inbox_id, error=reason)
            if not name or name in ITEM_EVENTS:
                self.poll_now()
            return
        if name == "orderItem.created":
            await self._on_created(inbox_id, event)
        elif name == "orderItem.cancelled":
            await self._on_cancelled(event)
            await self.ctx.inbox.done(inbox_id)
        else:
            await self._on_transferred(event)
            await self.ctx.inbox.done(inbox_id)

    async def _on_created(self, inbox_id: int, event: WebhookEvent) -> None:
        full = [
            o
            for o in event.objects
            if o.get("order_product_name") is not None and o.get("table_id") is not None
        ]
        for item in full:
            self._consider(item, inbox_id=None)
        await self._apply_returns()  # full objects: a return needs no fetch
        # Held items count too: the webhook is closed once they are on a ticket.
        pending = [i for i in event.ids if i not in self._known and i not in self._tombstones]
        if not pending:
            await self.ctx.inbox.done(inbox_id)
            return
        for oid in pending:
            self._awaiting.setdefault(oid, set()).add(inbox_id)
        self._inbox_refs[inbox_id] = len(pending)
        self.poll_now()

    async def _on_cancelled(self, event: WebhookEvent) -> None:
        by_order: dict[str, list[int]] = {}
        for oid in event.ids:
            if oid in self._known:
                by_order.setdefault(self._known[oid][0], []).append(oid)
            else:
                # Not ingested yet: drop it if held, and make sure a late create is ignored.
                held = self._held.pop(oid, None)
                self._tombstone(oid)
                await self._resolve(oid, done=True)
                if held is not None:
                    log.info("ready2order.cancelled_before_ticket", order_id=oid)
        for kds_id, item_ids in by_order.items():
            await self._cancel(kds_id, item_ids)

    async def _cancel(
        self, kds_id: str, item_ids: list[int], reason: str = "cancelled in ready2order"
    ) -> None:
        try:
            await self.ctx.service.cancel(kds_id, item_ids=item_ids, reason=reason, actor=self.name)
        except NotFound:
            log.info("ready2order.cancel_of_archived_order", order=kds_id, items=item_ids)

    async def _on_transferred(self, event: WebhookEvent) -> None:
        ids = list(event.ids)
        if not ids and event.source_table is not None:
            # "omit order_ids to transfer every unbilled item on the source table"
            ids = [oid for oid, (_, table) in self._known.items() if table == event.source_table]
            ids += [
                oid
                for oid, held in self._held.items()
                if held.data.get("table_id") == event.source_table
            ]
        if event.target_table is None:
            self.poll_now()  # the fetch will show where the items went
            return
        for oid in ids:
            if oid in self._held:
                self._held[oid].data["table_id"] = event.target_table
        await self._move({oid: event.target_table for oid in ids if oid in self._known})

    async def _move(self, moves: dict[int, int]) -> None:
        """Apply table changes of known items to their kds orders."""
        by_order: dict[str, dict[int, int]] = {}
        for oid, table in moves.items():
            kds_id, old = self._known[oid]
            if old != table:
                by_order.setdefault(kds_id, {})[oid] = table
        for kds_id, moved in by_order.items():
            order = self.ctx.service.get(kds_id)
            for oid, table in moved.items():
                self._known[oid] = (kds_id, table)
            if order is None:
                continue
            await self.catalog.ensure((), moved.values())
            # The ticket's table: where its still-open items are now (all items when none is open).
            open_items = [
                i.id for i in order.items if any(e.status not in FINAL for e in i.endpoints)
            ]
            tables = {
                self._known[i][1]
                for i in open_items or [i.id for i in order.items]
                if i in self._known
            }
            names = [self.catalog.table_name(t) for t in sorted(t for t in tables if t is not None)]
            table_name = " + ".join(names) if names else None
            if order.ticket.location and order.ticket.location.table_name == table_name:
                continue
            single = next(iter(tables)) if len(tables) == 1 else None
            ticket = order.ticket.model_copy(
                update={
                    "id": str(single) if single is not None else order.ticket.id,
                    "name": ticket_name(
                        table_name or "?", training=(order.ticket.name or "").startswith("TRAINING")
                    ),
                    "location": Location(table_name=table_name),
                }
            )
            try:
                await self.ctx.service.update_ticket(kds_id, ticket, actor=self.name)
            except NotFound:
                pass
            log.info("ready2order.transferred", order=kds_id, items=sorted(moved), table=table_name)

    # ------------------------------------------------------------------ catalogue

    async def _catalog_loop(self) -> None:
        """Read the whole catalogue now and every `catalog_refresh` (sooner again after a failure)."""
        while True:
            try:
                await self.catalog.refresh()
            except SourceUnavailable as err:
                log.warning("ready2order.catalog_unavailable", error=str(err))
                await self.clock.sleep(min(self.config.catalog_refresh, self.config.max_backoff))
                continue
            await self.clock.sleep(self.config.catalog_refresh)

    # ------------------------------------------------------------------ fetch (webhook follow-up and safety net)

    async def poll(self) -> None:
        """Fetch the open table orders; hold new items, apply table changes, close announced webhooks."""
        rows = await self.client.get_pages("/orders", {"trainingsMode": "false"})
        training_rows: list[dict[str, Any]] = []
        if self.config.training == "mark":
            training_rows = await self.client.get_pages("/orders", {"trainingsMode": "true"})
            for row in training_rows:
                row["trainingMode"] = True
        async with self._lock:
            seen: set[int] = set()
            moves: dict[int, int] = {}
            voided: dict[str, list[int]] = {}
            unknown: Counter[str] = Counter()
            for row in [*rows, *training_rows]:
                oid = as_int(row.get("order_id"))
                if oid is None:
                    continue
                seen.add(oid)
                table = as_int(row.get("table_id"))
                status = self._status_kind(row)
                if status is None:
                    unknown[str(row.get("order_status"))] += 1
                if oid in self._known:
                    if table is not None and self._known[oid][1] != table:
                        moves[oid] = table
                    if status == "void":
                        voided.setdefault(self._known[oid][0], []).append(oid)
                    await self._resolve(oid, done=True)
                    continue
                self._consider(row, inbox_id=None)
                if oid in self._tombstones:  # not for the kitchen (training, void status, a return)
                    await self._resolve(oid, done=True)
            self._note_unknown_statuses(unknown)
            if moves:
                await self._move(moves)
            for kds_id, item_ids in voided.items():
                await self._cancel(kds_id, item_ids, reason="voided in ready2order (order_status)")
            await self._apply_returns()
            await self._check_vanished(seen)
            self._clear_refused(seen)
            self._open_orders = {self._known[oid][0] for oid in seen if oid in self._known}
            for oid in list(self._awaiting):
                if oid in seen:
                    continue
                self._misses[oid] = self._misses.get(oid, 0) + 1
                if self._misses[oid] >= self.config.missing_fetches:
                    log.info("ready2order.announced_item_not_found", order_id=oid)
                    await self._resolve(
                        oid, done=True, error="not in the open table orders (cancelled or billed)"
                    )
            self._forget_archived()
            if self._awaiting and self._refetch is None:
                # Announced but not listed yet (or gone): look again soon, not at the next interval.
                self._refetch = self.clock.call_later(self.config.refetch_delay, self._refetch_now)
        await self._notify_idle()

    def _refetch_now(self) -> None:
        self._refetch = None
        self.poll_now()

    def _consider(self, row: dict[str, Any], *, inbox_id: int | None) -> None:
        """Hold a new item for its table's ticket (unless known, cancelled, ignored or a return)."""
        oid = as_int(row.get("order_id"))
        if oid is None or oid in self._known or oid in self._tombstones:
            return
        if is_training(row) and self.config.training == "ignore":
            self._tombstone(oid)
            return
        if is_return(row):
            self._returns[oid] = dict(row)  # applied by the poll, once
            self._tombstone(oid)
            return
        if self._status_kind(row) == "void" or as_decimal(row.get("order_quantity")) == 0:
            log.info(
                "ready2order.not_for_the_kitchen",
                order_id=oid,
                status=row.get("order_status"),
                quantity=row.get("order_quantity"),
            )
            self._tombstone(oid)
            return
        held = self._held.get(oid)
        if held is None:
            self._held[oid] = HeldItem(dict(row), self._clock())
            self._held_changed.set()
        else:
            held.data.update(row)

    async def _ticket_loop(self) -> None:
        """Turn held items into kitchen tickets once their table's window closed."""
        while True:
            self._held_changed.clear()
            now = self._clock()
            tables: dict[int | None, list[HeldItem]] = {}
            for held in self._held.values():
                tables.setdefault(as_int(held.data.get("table_id")), []).append(held)
            due = {
                t: hs
                for t, hs in tables.items()
                if now - min(h.since for h in hs) >= self.config.group_window
            }
            if due:
                try:
                    async with self._lock:
                        await self._flush(due)
                except Exception:
                    log.exception("ready2order.flush_failed")
                    await self.clock.sleep(1.0)  # back off a failing store instead of spinning
                await self._notify_idle()
                continue
            waits = [
                self.config.group_window - (now - min(h.since for h in hs))
                for hs in tables.values()
            ]
            try:
                await self.clock.wait_for(self._held_changed.wait(), min(waits) if waits else None)
            except TimeoutError:
                pass

    async def _flush(self, due: dict[int | None, list[HeldItem]]) -> None:
        # A product kds has not seen (no product webhook, catalogue not read yet): its group decides the station.
        await self.catalog.ensure(
            (as_int(h.data.get("product_id")) for hs in due.values() for h in hs), due
        )
        for table, helds in due.items():
            rows = [h.data for h in helds if as_int(h.data.get("order_id")) in self._held]
            for group in group_items(rows, self.config.group_window):
                await self._ingest(table, group)

    async def _ingest(self, table: int | None, rows: list[dict[str, Any]]) -> None:
        ids = sorted(as_int(r["order_id"]) or 0 for r in rows)
        ticket = order_in(self.name, table, rows, self.catalog, self._router)
        external = f"{table}-{ids[0]}"
        try:
            try:
                result = await self.ctx.service.ingest(
                    ticket.model_copy(update={"id": external}), actor=self.name
                )
            except ConstraintViolation:
                raise  # the store refuses the ticket itself: another id would not help
            except ConflictError:
                # Same first item, other items (regrouped after a restart): a distinct ticket id.
                suffix = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:8]
                result = await self.ctx.service.ingest(
                    ticket.model_copy(update={"id": f"{external}-{suffix}"}), actor=self.name
                )
        except Unavailable:
            raise  # the store is down: keep the items held and try again
        except KdsError as err:
            log.error("ready2order.ingest_rejected", table=table, items=ids, error=err.detail)
            self._refuse(external, table, ids, err.detail)
            for oid in ids:
                self._held.pop(oid, None)
                self._tombstone(oid)
                await self._resolve(oid, done=True, error=f"rejected: {err.detail}")
            return
        self._remember_order(result.order.id, table, ids)
        for row in rows:
            if (pid := as_int(row.get("product_id"))) is not None:
                self._products_of[as_int(row["order_id"]) or 0] = pid
        for oid in ids:
            self._held.pop(oid, None)
            await self._resolve(oid, done=True)
        log.info(
            "ready2order.ticket",
            order=result.order.id,
            table=table,
            items=ids,
            created=result.created,
        )

    def _refuse(self, key: str, table: int | None, ids: list[int], reason: str) -> None:
        """Show staff a ticket kds could not take (until ready2order no longer lists its items)."""
        self._refused[key] = ids
        while len(self._refused) > MAX_PER_SOURCE:  # what the alert list itself keeps
            self._refused.pop(next(iter(self._refused)))
        self.ctx.alerts.raise_alert(
            self.name,
            f"ticket:{key}",
            "order_rejected",
            f"ready2order ticket for table {self.catalog.table_name(table)}"
            f" ({len(ids)} item(s)) was refused: {reason}",
            order=key,
        )

    def _clear_refused(self, seen: set[int]) -> None:
        """Refused tickets whose items the till no longer lists (billed, removed) need no one."""
        for key, ids in list(self._refused.items()):
            if seen.isdisjoint(ids):
                del self._refused[key]
                self.ctx.alerts.clear(self.name, f"ticket:{key}")

    # ------------------------------------------------------------------ order_status, returns, vanished items

    def _status_kind(self, row: dict[str, Any]) -> Literal["open", "void"] | None:
        """What `order_status` means by the config: open, void, or None when it is not mapped."""
        status = as_int(row.get("order_status"))
        if row.get("order_status") is None or status in self.config.open_statuses:
            return "open"
        if status in self.config.void_statuses:
            return "void"
        return None

    def _note_unknown_statuses(self, unknown: Counter[str]) -> None:
        for status in sorted(set(unknown) - set(self._unknown_status)):
            log.warning("ready2order.unknown_order_status", order_status=status, items=unknown[status],
                        hint="map it with open_statuses or void_statuses; until then such items are made")  # fmt: skip
        self._unknown_status = dict(unknown)

    async def _apply_returns(self) -> None:
        """Apply each new return row once: its inbox key makes a repeat (later polls, restarts) a no-op."""
        for oid, row in list(self._returns.items()):
            body = json.dumps({"event": RETURN_EVENT, "resource": [row]}).encode()
            inbox_id = await self.ctx.inbox.receive(self.name, f"return:{oid}", body)
            del self._returns[oid]
            if inbox_id is not None:
                await self._apply_return(row)
                await self.ctx.inbox.done(inbox_id)
            await self._resolve(oid, done=True)

    def _return_applied(self, return_id: int) -> bool:
        """True when an earlier run already applied this return (a stop between apply and inbox done)."""
        mark = f"(line {return_id})"
        return any(
            o.source == self.name and (o.external_id.endswith(f"-r{return_id}") or any(
                mark in (c.reason or "") for i in o.items for e in i.endpoints for c in e.status_changes
            ))
            for o in self.ctx.service.orders()
        )  # fmt: skip

    async def _apply_return(self, row: dict[str, Any]) -> None:
        """Take the returned quantity of the dish off the table's kitchen items, newest first."""
        return_id = as_int(row.get("order_id")) or 0
        table = as_int(row.get("table_id"))
        remaining = returned_quantity(row)
        name, code = plu_identity(row, self.catalog)
        candidates = []
        for oid, (kds_id, item_table) in self._known.items():
            order = self.ctx.service.get(kds_id)
            item = order.item(oid) if order is not None and item_table == table else None
            if item is None or all(e.status is OrderStatus.PROCESS_SKIPPED for e in item.endpoints):
                continue
            if (item.plu.name, item.plu.code) == (name, code):
                candidates.append((order, item))
        # Dishes the kitchen can still stop first, then the newest.
        candidates.sort(key=lambda c: (all(e.status in FINAL for e in c[1].endpoints), -c[1].id))
        reason = _return_reason(return_id)
        for order, item in candidates:
            if remaining <= 0:
                break
            amount = Decimal(item.quantity.amount)
            await self._cancel(order.id, [item.id], reason=reason)
            if amount > remaining:
                await self._resend(order, item, amount - remaining, return_id)
            remaining -= min(amount, remaining)
        log.info(
            "ready2order.return",
            return_id=return_id,
            table=table,
            product=name,
            unmatched=str(remaining),
        )
        if remaining > 0:
            await self.catalog.ensure((), [table])  # the report names the table as staff know it
            log.warning(
                "ready2order.return_unmatched",
                return_id=return_id,
                table=table,
                product=name,
                quantity=str(remaining),
            )
            self._unmatched.append(
                {
                    "returnId": return_id,
                    "table": self.catalog.table_name(table),
                    "product": name,
                    "quantity": str(remaining),
                }
            )

    async def _resend(self, order: Order, item: Any, amount: Decimal, return_id: int) -> None:
        """Send the part of an item a return left (the item itself was voided)."""
        rest_id = _rest_id(order, return_id)
        sent = await resend_rest(self.ctx.service, order, item, three_places(amount), external_id=rest_id,
                                 device_name="ready2order", actor=self.name)  # fmt: skip
        self._known[item.id] = (sent.id, as_int(order.ticket.id))

    async def _resume_return(self, row: dict[str, Any]) -> None:
        """Send the rest of an applied return if a stop came between its void and the re-send."""
        return_id = as_int(row.get("order_id")) or 0
        reason = _return_reason(return_id)
        voided = voided_by((o for o in self.ctx.service.orders() if o.source == self.name), reason)
        voided.sort(
            key=lambda m: (_was_final(m[1], reason), -m[1].id)
        )  # the order _apply_return voided them in
        if not voided:
            return
        order, item = voided[-1]
        rest_id = _rest_id(order, return_id)
        sent = await resume_rest(self.ctx.service, voided, returned_quantity(row), external_id=rest_id,
                                 device_name="ready2order", actor=self.name)  # fmt: skip
        if sent is not None:
            self._known[item.id] = (sent.id, as_int(order.ticket.id))

    async def _check_vanished(self, seen: set[int]) -> None:
        """Items kds sent that left the open list: billed ones stay, the others are voided."""
        gone: dict[int | None, list[tuple[Order, Any]]] = {}
        for oid, (kds_id, table) in self._known.items():
            if oid in seen:
                self._gone.pop(oid, None)
                self._settled.discard(oid)
                continue
            if oid in self._settled:
                continue
            self._gone[oid] = self._gone.get(oid, 0) + 1
            if self._gone[oid] < self.config.missing_fetches:
                continue
            order = self.ctx.service.get(kds_id)
            item = order.item(oid) if order is not None else None
            if order is None or item is None or all(e.status in FINAL for e in item.endpoints):
                self._settled.add(oid)  # nothing the kitchen could still stop
                continue
            gone.setdefault(table, []).append((order, item))
        for table, entries in gone.items():
            since = min(order.created_at for order, _ in entries) - BILL_SLACK
            lines = await billed(self.client, table, since) if table is not None else []
            voids: dict[str, list[int]] = {}
            for order, item in entries:
                if not take_billed(lines, self._products_of.get(item.id), item.plu.name):
                    voids.setdefault(order.id, []).append(item.id)
                self._settled.add(item.id)
            for kds_id, item_ids in voids.items():
                log.info("ready2order.vanished_voided", order=kds_id, items=item_ids, table=table)
                await self._cancel(kds_id, item_ids, reason="removed in ready2order")

    # ------------------------------------------------------------------ bookkeeping

    def _remember_order(self, kds_id: str, table: int | None, item_ids: Iterable[int]) -> None:
        for oid in item_ids:
            self._known[oid] = (kds_id, table)

    def _has_open_items(self, order: Order) -> bool:
        return order.source == self.name and (
            self._open_orders is None or order.id in self._open_orders
        )

    def _forget_archived(self) -> None:
        """Drop items of orders that left the live view (bounded memory)."""
        live = {o.id for o in self.ctx.service.orders()}
        for oid in [oid for oid, (kds_id, _) in self._known.items() if kds_id not in live]:
            del self._known[oid]
            self._products_of.pop(oid, None)
            self._gone.pop(oid, None)
            self._settled.discard(oid)

    def _tombstone(self, oid: int) -> None:
        self._tombstones[oid] = None
        self._tombstones.move_to_end(oid)
        while len(self._tombstones) > TOMBSTONES:
            self._tombstones.popitem(last=False)

    async def _resolve(self, oid: int, *, done: bool, error: str | None = None) -> None:
        """An announced item was handled: close each webhook whose items are all handled."""
        inbox_ids = self._awaiting.pop(oid, None)
        self._misses.pop(oid, None)
        if not inbox_ids or not done:
            return
        for inbox_id in inbox_ids:
            self._inbox_refs[inbox_id] = self._inbox_refs.get(inbox_id, 1) - 1
            if self._inbox_refs[inbox_id] <= 0:
                del self._inbox_refs[inbox_id]
                await self.ctx.inbox.done(inbox_id, error=error)


def create(config: Config, ctx: SourceContext) -> Ready2OrderSource:
    """The ready2order source component."""
    return Ready2OrderSource(config, ctx)
