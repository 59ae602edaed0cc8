"""The PORTOS source: poll its orders, hand them to the service, write every status back.

PORTOS generates an Order after each ticket update and names, per item, the
order endpoints (kitchen stations) that must make it. kds processes the
endpoints it owns (`Config.owns`: named in `endpoints`, else those that are kds
endpoints); lines elsewhere are left to PORTOS and the names reported.

* **poll** — `GET {base_url}/orders?isProcessable=true`, paged with
  `$skip/$take` (sorted by `number` so new orders append), every
  `poll_interval`. Each order not yet known is kept raw in the inbox; the
  shared inbox worker (`kds.sources.intake`) hands it to `_process`, in order,
  which translates it to `OrderIn` (`translate.py`) and ingests it
  idempotently. A later order of the same ticket is its own kitchen order. An
  order that cannot be read, or whose return PORTOS did not take, stays
  pending and is tried again on every poll (the first is a source alert); one
  whose processing crashes is retried by the worker, then closed with the
  reason and shown to staff. A negative line (a
  return, correction or storno) cancels the matching kitchen lines of the
  ticket; a part of a line is voided and the rest sent again
  (`kds.sources.returns.resend_rest`).
* **deletions** — PORTOS drops a deleted order from its lists. Every
  `reconcile_interval`, open kds orders of this source that are neither
  processable nor unprocessed in PORTOS any more are looked up one by one; a 404
  cancels them in kds.
* **write-back** — the service writes a `writeback` outbox row for each status
  change; the shared `WritebackConsumer` sends it with `PortosWriteback.send`
  (`writeback.py`), per order strictly in order, retried while PORTOS is down,
  kept as refused on a 4xx, parked while a shared line cannot be said exactly.
* **auth** — a static bearer token, or credentials exchanged for a token that is
  refreshed before it expires and after a 401, or NWS4 request signing with an
  ApiKey (`auth.py`, used by `client.py`).
* **webhooks** — optional, signed; each one triggers a poll (`webhook.py`).
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import structlog
from pydantic import ValidationError

from ...errors import ConflictError, ConstraintViolation, KdsError, Unavailable
from ...model import Order, OrderItem, OrderStatus
from ...states import FINAL
from ..alerts import summary
from ..base import Poller, SourceContext, SourceMetrics, SourceUnavailable
from ..http import PosRejected
from ..intake import InboxWorker
from ..returns import resend_rest, resume_rest, voided_by
from ..writeback import WritebackConsumer
from .client import PortosClient, PortosMetrics
from .config import Config
from .translate import (
    REST_MARK,
    ReturnedLine,
    foreign_endpoints,
    portos_item_endpoints,
    returned_lines,
    ticket_of,
    translate,
    unreadable_reason,
)
from .webhook import PortosWebhook
from .writeback import PortosWriteback

log = structlog.get_logger(__name__)

WRITES_BACK = True
ITEM_CACHE_SIZE = 5000


class PortosSource(Poller):
    """Polls PORTOS for processable orders and writes statuses back."""

    def __init__(self, config: Config, ctx: SourceContext) -> None:
        super().__init__(config.name, ctx, config.poll_interval, max_backoff=config.max_backoff)
        self.config = config
        self.metrics = PortosMetrics.of(ctx)
        self.client = PortosClient(config, self.metrics)
        self.writeback = WritebackConsumer(
            config.name,
            ctx,
            PortosWriteback(self).send,
            retry=config.writeback_retry,
            max_backoff=config.writeback_max_backoff,
            concurrency=config.writeback_concurrency,
        )
        self.deleted: set[str] = set()
        self._skipped: set[str] = set()
        self._unreadable: set[str] = set()  # PORTOS order ids shown to staff as unreadable
        self._open: dict[str, int] = {}  # PORTOS order id → its raw inbox entry not yet done
        # The poll's reconcile and the worker's processing take turns, as when both ran inline.
        self._lock = asyncio.Lock()
        self.inbox = InboxWorker(
            config.name, ctx, self._process, lock=self._lock, gave_up=self._gave_up
        )
        self._unapplied: dict[
            str, str
        ] = {}  # alert key of a return kds could not apply → ticket id
        self.unknown_endpoints: set[str] = set()
        self._kds_endpoints = frozenset(e.name for e in ctx.settings.endpoints)
        self._source_metrics = SourceMetrics.of(ctx)
        self._items: OrderedDict[str, dict[int, list[str]]] = OrderedDict()
        self._last_reconcile: float | None = None
        self.webhook = (
            PortosWebhook(config, self.poll_now) if config.webhook_secret is not None else None
        )
        if self.webhook is not None:
            ctx.add_routes(self.webhook.routes())

    @property
    def webhooks(self) -> int:
        """Signed webhooks received (each made the source poll at once)."""
        return self.webhook.received if self.webhook is not None else 0

    async def start(self) -> None:
        """Open the client, resume write-backs and unprocessed raw orders, start polling."""
        await self.client.start()
        self.writeback.start()
        for entry in await self.inbox.start():
            external_id = _external_id(entry.payload)
            if external_id is not None:
                self._open[external_id] = entry.id
        await super().start()

    async def stop(self) -> None:
        """Stop polling, processing and sending; what is pending stays in the inbox and outbox."""
        await super().stop()
        await self.inbox.stop()
        await self.writeback.stop()
        await self.client.stop()

    def health(self) -> dict[str, Any]:
        """Poll reachability, the write-back backlog and refusals, and the source's alerts."""
        health = super().health()
        reachable = health["ok"]
        health.update(self.writeback.health())
        health.update(
            {
                "authError": self.client.last_auth_error,
                "queuedOrders": self.inbox.queued,
                "unknownEndpoints": sorted(self.unknown_endpoints),
                "alerts": self.ctx.alerts.of(self.config.name),
            }
        )
        problems = [
            (not reachable, "unreachable"),
            (health["refusedWritebacks"] > 0, "writeback_refused"),
            (self.writeback.failures > 0, "writeback_failing"),
            (bool(health["alerts"]), "alert"),
        ]
        health["state"] = next((state for bad, state in problems if bad), "ok")
        health["ok"] = health["state"] == "ok"
        if not health["ok"]:
            details = {
                "unreachable": health["lastError"],
                "writeback_refused": f"{health['refusedWritebacks']} write-back(s) refused: {health['lastWritebackError']}",
                "writeback_failing": health["lastWritebackError"],
                "alert": summary(health["alerts"]),
            }
            health["reason"] = f"{health['state']}: {details[health['state']]}"
        return health

    # ------------------------------------------------------------------ polling

    async def poll(self) -> None:
        """Ingest new processable orders; now and then, cancel those deleted in PORTOS."""
        orders = await self.client.fetch_orders([("isProcessable", "true")])
        for raw in orders:
            await self._take(raw)
        listed = {str(o["id"]) for o in orders}
        # Forget what PORTOS no longer offers (memory stays bounded; a problem with it is over).
        self._skipped &= listed
        self._unreadable &= listed
        for kind in ("order_unreadable", "order_failed"):
            self.ctx.alerts.clear_where(
                self.config.name, kind, {f"order:{i}" for i in self._unreadable}
            )
        async with self._lock:
            self._clear_unapplied()
            now = self._clock()
            if (
                self._last_reconcile is None
                or now - self._last_reconcile >= self.config.reconcile_interval
            ):
                await self._reconcile(listed)
                self._last_reconcile = now
        if self.writeback.failures:
            self.writeback.wake()

    async def _take(self, raw: dict[str, Any]) -> None:
        """Keep a listed order raw in the inbox (once) and queue it for the inbox worker."""
        external_id = str(raw["id"])
        if (
            external_id in self._skipped
            or self.ctx.service.find(self.config.name, external_id) is not None
        ):
            return
        payload = json.dumps(raw, ensure_ascii=False, sort_keys=True).encode()
        inbox_id = self._open.get(external_id)  # still pending: processed again, as listed now
        if inbox_id is None:
            inbox_id = await self.ctx.inbox.receive(
                self.config.name, f"order:{external_id}", payload
            )
            if inbox_id is None:  # stored and closed before (processed, or given up)
                self._skipped.add(external_id)
                return
            self._open[external_id] = inbox_id
        self.inbox.enqueue(inbox_id, payload)

    async def _process(self, inbox_id: int, body: bytes) -> None:
        """(inbox worker) One raw PORTOS order: ingest it, apply its returns, close its entry."""
        try:
            raw = json.loads(body)
        except ValueError:
            raw = None
        if not isinstance(raw, dict) or "id" not in raw:
            await self.ctx.inbox.done(inbox_id, error="not a PORTOS order")
            return
        try:
            await self._ingest_raw(raw, inbox_id)
        except Unavailable as err:
            # The store cannot commit: stays pending, processed again on the next poll.
            log.warning(
                "portos.order_deferred", source=self.config.name, order=raw["id"], error=str(err)
            )

    def _gave_up(self, inbox_id: int, err: Exception) -> None:
        """(inbox worker) An order whose processing kept crashing: closed; shown to staff."""
        external_id = next((e for e, i in self._open.items() if i == inbox_id), None)
        if external_id is None:
            return
        del self._open[external_id]
        self._skipped.add(external_id)
        self._order_alert(external_id, "order_failed", f"{external_id} could not be processed", err)

    async def _done(self, external_id: str, inbox_id: int, error: str | None = None) -> None:
        """Close an order's raw entry: processed (or with the reason it could not be used)."""
        await self.ctx.inbox.done(inbox_id, error=error)
        if self._open.get(external_id) == inbox_id:
            del self._open[external_id]

    async def _ingest_raw(self, raw: dict[str, Any], inbox_id: int) -> None:
        service = self.ctx.service
        external_id = str(raw.get("id"))
        if service.find(self.config.name, external_id) is not None:
            await self._done(external_id, inbox_id)
            return
        try:
            order_in = translate(raw, self.config, self._kds_endpoints)
            returns = returned_lines(raw, self.config, self._kds_endpoints)
        except (ValidationError, ValueError, TypeError, KeyError, AttributeError) as err:
            # Kept pending in the inbox and shown to staff; tried again on every poll.
            self._unreadable_order(raw, err)
            return
        self._readable(external_id)
        self._note_foreign(raw)
        if returns and not await self._apply_returns(raw, returns):
            return  # PORTOS did not take the acknowledgement: pending, again on the next poll
        if order_in is None:
            self._skipped.add(external_id)
            await self._done(external_id, inbox_id, error="no items for this kds's endpoints")
            return
        self._remember_items(external_id, portos_item_endpoints(raw))
        try:
            result = await service.ingest(order_in, actor="portos")
        except ConstraintViolation:
            raise  # the store refused the write itself, no order stands under this id: retried, then shown
        except ConflictError as err:
            # An archived order came back with other content: keep what was cooked.
            self._skipped.add(external_id)
            log.warning(
                "portos.order_conflict",
                source=self.config.name,
                order=external_id,
                error=err.detail,
            )
        else:
            if result.created:
                self.metrics.orders.labels(self.config.name, "ingested").inc()
                log.info(
                    "portos.order_ingested",
                    source=self.config.name,
                    order=external_id,
                    number=result.order.number,
                )
        await self._done(external_id, inbox_id)

    async def _apply_returns(self, raw: dict[str, Any], lines: list[ReturnedLine]) -> bool:
        """Cancel the kitchen lines a return takes back (VOID where printed); acknowledge it in PORTOS."""
        external_id = str(raw.get("id"))
        ticket_id = str(ticket_of(raw).get("id"))
        acknowledged = True
        for line in lines:
            tag = f"returned in PORTOS order {external_id} line {line.id}"
            earlier = [
                o
                for o in self.ctx.service.orders()
                if o.source == self.config.name
                and o.ticket.id == ticket_id
                and o.external_id != external_id
            ]
            voided = voided_by(reversed(earlier), tag)
            if not voided:
                await self._void_returned(raw, line, earlier, tag)
            else:  # applied before; a stop may have come between the void and the rest
                voided.sort(
                    key=lambda m: m[1].id != line.id
                )  # the order _void_returned voided them in
                await resume_rest(self.ctx.service, voided, line.amount, external_id=self._rest_id(raw, line),
                                  device_name=voided[-1][0].device_name, actor="portos")  # fmt: skip
            if line.acknowledge:
                path = f"/orders/{quote(external_id, safe='')}/items/{line.id}/status"
                try:
                    await self.client.request(
                        "POST", path, body={"status": OrderStatus.PROCESS_SKIPPED.value}
                    )
                except (SourceUnavailable, PosRejected) as err:
                    log.info(
                        "portos.return_ack_failed",
                        source=self.config.name,
                        order=external_id,
                        error=str(err),
                    )
                    acknowledged = False
        return acknowledged

    @staticmethod
    def _rest_id(raw: dict[str, Any], line: ReturnedLine) -> str:
        """The external id of the rest of a partly returned line: the same on every pass."""
        return f"{raw.get('id')}{REST_MARK}{line.id}"

    async def _void_returned(
        self, raw: dict[str, Any], line: ReturnedLine, earlier: list[Order], tag: str
    ) -> None:
        matches = [
            (order, item)
            for order in reversed(earlier)  # the newest kitchen order first
            for item in order.items
            if item.plu.code == line.code
            and (line.stock_name is None or item.plu.stock_name in (None, line.stock_name))
            and any(e.name in line.kds_endpoints and e.status not in FINAL for e in item.endpoints)
        ]
        matches.sort(key=lambda m: m[1].id != line.id)  # the same PORTOS line first (a storno)
        remaining = line.amount
        voids: dict[str, list[int]] = {}
        partial: tuple[Order, OrderItem, Decimal] | None = None
        for order, item in matches:
            voids.setdefault(order.id, []).append(item.id)
            if item.quantity.amount > remaining:
                partial = (
                    order,
                    item,
                    item.quantity.amount - remaining,
                )  # VOID, then the rest again
            remaining -= min(item.quantity.amount, remaining)
            if remaining <= 0:
                break
        for order_id, item_ids in voids.items():
            await self.ctx.service.cancel(order_id, item_ids=item_ids, reason=tag, actor="portos")
            log.info(
                "portos.return_voided",
                source=self.config.name,
                order=order_id,
                items=item_ids,
                reason=tag,
            )
        if partial is not None:
            order, item, rest = partial
            await resend_rest(self.ctx.service, order, item, rest, external_id=self._rest_id(raw, line),
                              device_name=order.device_name, actor="portos")  # fmt: skip
        if remaining > 0:
            # Nothing left to take it from (sold before kds ran, or already cooked): say so.
            number = raw.get("number")
            left = f"{remaining.normalize():f}"
            self._unapplied[f"return:{raw.get('id')}:{line.id}"] = str(ticket_of(raw).get("id"))
            self.ctx.alerts.raise_alert(
                self.config.name,
                f"return:{raw.get('id')}:{line.id}",
                "line_unapplied",
                f"PORTOS order #{number} takes back {left} × {line.name}: kds found no open kitchen line of it"
                " — tell the kitchen",
                order=str(raw.get("id")),
            )

    def _clear_unapplied(self) -> None:
        """A return alert stays until no kitchen order of its ticket is open any more."""
        open_tickets = {
            o.ticket.id
            for o in self.ctx.service.orders()
            if o.source == self.config.name
            and not all(e.status in FINAL for e in o.item_endpoints())
        }
        for key, ticket_id in list(self._unapplied.items()):
            if ticket_id not in open_tickets:
                del self._unapplied[key]
                self.ctx.alerts.clear(self.config.name, key)

    def _unreadable_order(self, raw: dict[str, Any], err: Exception) -> None:
        external_id = str(raw.get("id"))
        if external_id not in self._unreadable:
            self.metrics.orders.labels(self.config.name, "rejected").inc()
        number = raw.get("number")
        label = f"#{number} ({external_id})" if isinstance(number, int) else external_id
        self._order_alert(external_id, "order_unreadable", f"{label} cannot be read", err)

    def _order_alert(self, external_id: str, kind: str, what: str, err: Exception) -> None:
        """Show staff a PORTOS order kds cannot take (until it can, or PORTOS drops it)."""
        self._unreadable.add(external_id)
        self.ctx.alerts.raise_alert(
            self.config.name,
            f"order:{external_id}",
            kind,
            f"PORTOS order {what}: {unreadable_reason(err)}",
            order=external_id,
        )

    def _readable(self, external_id: str) -> None:
        self._unreadable.discard(external_id)
        self.ctx.alerts.clear(self.config.name, f"order:{external_id}")

    def _note_foreign(self, raw: dict[str, Any]) -> None:
        """Report endpoints kds does not own: counted per item, logged once per name."""
        for name in foreign_endpoints(raw, self.config, self._kds_endpoints):
            self._source_metrics.unknown_endpoints.labels(self.config.name, name).inc()
            if name not in self.unknown_endpoints and len(self.unknown_endpoints) < 100:
                self.unknown_endpoints.add(name)
                log.warning(
                    "portos.unknown_endpoint",
                    source=self.config.name,
                    endpoint=name,
                    detail="not a kds endpoint (or not in `endpoints`): its items are left to PORTOS, never acknowledged",
                )

    def _remember_items(self, external_id: str, routed: dict[int, list[str]]) -> None:
        self._items[external_id] = routed
        self._items.move_to_end(external_id)
        while len(self._items) > ITEM_CACHE_SIZE:
            self._items.popitem(last=False)

    async def item_endpoints(self, external_id: str) -> dict[int, list[str]]:
        """PORTOS endpoint names per item of an order (cached; fetched after a restart)."""
        routed = self._items.get(external_id)
        if routed is None:
            raw = await self.client.request("GET", f"/orders/{quote(external_id, safe='')}")
            if not isinstance(raw, dict):
                raise SourceUnavailable("GET /orders/{id}: the answer is not an Order")
            routed = portos_item_endpoints(raw)
            self._remember_items(external_id, routed)
        return routed

    async def _reconcile(self, processable: set[str]) -> None:
        """Cancel open orders that PORTOS no longer has."""
        candidates = [
            o
            for o in self.ctx.service.orders()
            if o.source == self.config.name
            and o.external_id not in processable
            and o.external_id not in self.deleted
            and REST_MARK not in o.external_id
            and not all(e.status in FINAL for e in o.item_endpoints())
        ]
        if not candidates:
            return
        alive = {str(o["id"]) for o in await self.client.fetch_orders([("isProcessed", "false")])}
        for order in candidates:
            if order.external_id in alive:
                continue
            try:
                await self.client.request("GET", f"/orders/{quote(order.external_id, safe='')}")
            except PosRejected as err:
                if err.status != 404:
                    raise SourceUnavailable(
                        f"GET /orders/{order.external_id}: HTTP {err.status}"
                    ) from err
            else:
                continue  # finished in PORTOS by someone else; the cooks still see it
            self.deleted.add(order.external_id)
            try:
                await self.ctx.service.cancel(order.id, reason="deleted in PORTOS", actor="portos")
            except KdsError as err:  # archived meanwhile: nothing left to cancel
                log.info(
                    "portos.cancel_skipped",
                    source=self.config.name,
                    order=order.external_id,
                    reason=err.detail,
                )
                continue
            self.metrics.orders.labels(self.config.name, "cancelled").inc()
            log.info(
                "portos.order_deleted",
                source=self.config.name,
                order=order.external_id,
                kds_order=order.id,
            )


def _external_id(payload: bytes) -> str | None:
    """The PORTOS order id of a raw inbox entry (None when it is not an Order)."""
    try:
        raw = json.loads(payload)
    except ValueError:
        return None
    return str(raw["id"]) if isinstance(raw, dict) and "id" in raw else None


def create(config: Config, ctx: SourceContext) -> PortosSource:
    """The PORTOS source component."""
    return PortosSource(config, ctx)
