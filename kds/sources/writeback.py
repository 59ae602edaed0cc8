"""Status write-back to a POS: the outbox consumer every write-back source shares.

The service writes a `writeback` outbox row (target = the source's name) in
the same transaction as each status change. This consumer hands the rows of
one source to that source's `send(entry)`, which knows the POS:

* per order strictly in order (one queue and task per order), orders in
  parallel up to `concurrency`;
* `SourceUnavailable` (down, 5xx, 429, garbage): retried with capped backoff,
  and at once when the source calls `wake()` (its POS answers again);
* `WritebackRefused` (403, 404, 409: the POS will not take it): the row stays in
  the outbox marked *refused*, is counted (`kds_writeback_failures_total{source,
  status}`), degrades `/readyz` and shows a source alert on the screens until
  staff retry it (`POST /api/v1/sources/{name}/writebacks/retry`) after fixing
  the cause;
* `WritebackDeferred` (the POS has no route that says exactly this yet, e.g. one
  item at one of its endpoints): parked, and tried again after each later row
  of the same order; later changes of the same line wait behind it (a change of
  the whole endpoint folds it in). When nothing more can change (`can_wait`
  false and the order's queue empty) it is refused, so an acknowledged change
  never silently disappears.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from ..clock import wait_event
from ..contracts import EffectKind, WritebackEffect
from .base import SourceContext, SourceUnavailable, WritebackEntry

log = structlog.get_logger(__name__)

#: Refused rows listed in /readyz at most (all are counted).
LISTED = 20


class WritebackRefused(Exception):
    """The POS answered that it will not take this change (repeating it will not help)."""

    def __init__(self, status: int | str, detail: str) -> None:
        super().__init__(
            f"HTTP {status}: {detail}" if isinstance(status, int) else f"{status}: {detail}"
        )
        self.status = status
        self.detail = detail


class WritebackDeferred(Exception):
    """The change cannot be said exactly yet; `can_wait` when a later change may make it possible."""

    def __init__(self, reason: str, *, can_wait: bool) -> None:
        super().__init__(reason)
        self.can_wait = can_wait


Send = Callable[[WritebackEntry], Awaitable[None]]


def _overlap(a: WritebackEntry, b: WritebackEntry) -> bool:
    """Both change a line at the same endpoint (a change of every line there overlaps all)."""
    first, second = effect_of(a), effect_of(b)
    if first.endpoint != second.endpoint:
        return False
    if first.all_items or second.all_items:
        return True
    return bool(set(first.item_ids) & set(second.item_ids))


def effect_of(entry: WritebackEntry) -> WritebackEffect:
    """The write-back an outbox entry asks for (`kds.contracts`)."""
    return WritebackEffect.from_dict(entry.payload, entry.order_id)


def _described(effect: WritebackEffect) -> dict[str, str]:
    """What staff need to know of a write-back: the POS order, endpoint and status."""
    return {"order": effect.external_id, "endpoint": effect.endpoint, "status": effect.status}


class WritebackMetrics:
    """Write-back counters and gauges, one set per daemon."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.outcomes = Counter(
            "kds_writebacks",
            "Status write-backs by outcome (sent, retried, refused, deferred, skipped)",
            ["source", "outcome"],
            registry=registry,
        )
        self.failures = Counter(
            "kds_writeback_failures",
            "Write-backs the POS refused, by HTTP status (or `inexact`)",
            ["source", "status"],
            registry=registry,
        )
        self.pending = Gauge(
            "kds_writeback_pending",
            "Status changes waiting to be written back",
            ["source"],
            registry=registry,
        )
        self.refused = Gauge(
            "kds_writeback_refused",
            "Refused write-backs kept for a retry",
            ["source"],
            registry=registry,
        )

    @classmethod
    def of(cls, ctx: SourceContext) -> WritebackMetrics:
        """The one WritebackMetrics of the daemon `ctx` belongs to."""
        return ctx.shared(cls, lambda: cls(ctx.metrics))


@dataclass
class _OrderQueue:
    """The write-backs of one order: waiting in order, and parked (deferred)."""

    waiting: deque[WritebackEntry] = field(default_factory=deque)
    parked: list[tuple[WritebackEntry, str]] = field(default_factory=list)
    running: bool = False


class WritebackConsumer:
    """Sends one source's write-backs with `send`; keeps what the POS refuses."""

    def __init__(
        self,
        source: str,
        ctx: SourceContext,
        send: Send,
        *,
        retry: float,
        max_backoff: float,
        concurrency: int,
    ) -> None:
        self.source = source
        self._ctx = ctx
        self._send = send
        self._retry = retry
        self._max_backoff = max_backoff
        self._semaphore = asyncio.Semaphore(concurrency)
        self._queues: dict[str, _OrderQueue] = {}
        self._seen: set[int] = set()
        self._wake = asyncio.Event()
        self.refused: dict[int, tuple[WritebackEntry, str]] = {}
        self.failures = 0
        self.last_error: str | None = None
        self.last_refusal: str | None = None
        self.pending = 0
        metrics = WritebackMetrics.of(ctx)
        self._outcomes = metrics.outcomes
        self._failure_counter = metrics.failures
        self._pending_gauge = metrics.pending.labels(source)
        self._refused_gauge = metrics.refused.labels(source)
        ctx.add_routes([web.post(f"/api/v1/sources/{source}/writebacks/retry", self._handle_retry)])

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Take the `writeback` entries addressed to this source."""
        self._ctx.outbox.subscribe(EffectKind.WRITEBACK, self.enqueue, target=self.source)

    async def stop(self) -> None:
        """Stop taking entries and cancel the senders (pending rows stay in the outbox)."""
        self._ctx.outbox.unsubscribe(EffectKind.WRITEBACK, target=self.source)
        for key in list(self._queues):
            await self._ctx.supervisor.cancel(self._task_name(key))
        self._queues.clear()

    def wake(self) -> None:
        """The POS answers again: retry now instead of after the backoff."""
        self._wake.set()
        self._wake = asyncio.Event()

    def health(self) -> dict[str, Any]:
        """The backlog, the retry state and the refused rows (for the source's /readyz entry)."""
        return {
            "pendingWritebacks": self.pending,
            "writebackFailures": self.failures,
            "refusedWritebacks": len(self.refused),
            "lastWritebackError": self.last_refusal if self.refused else self.last_error,
            "refused": [
                {"entry": e.id, **_described(effect_of(e)), "reason": reason}
                for e, reason in list(self.refused.values())[:LISTED]
            ],
        }

    # ------------------------------------------------------------------ intake

    def _task_name(self, key: str) -> str:
        return f"source:{self.source}:writeback:{key}"

    def enqueue(self, entry: WritebackEntry) -> None:
        """Outbox handler: queue the entry behind earlier ones of its order (or keep it refused)."""
        if entry.id in self._seen:
            return
        self._seen.add(entry.id)
        if entry.refused is not None:
            self._keep_refused(entry, entry.refused)
            return
        self.pending += 1
        self._pending_gauge.set(self.pending)
        key = entry.order_id or effect_of(entry).external_id
        queue = self._queues.setdefault(key, _OrderQueue())
        queue.waiting.append(entry)
        if not queue.running:
            queue.running = True
            self._ctx.supervisor.spawn(self._task_name(key), self._drain(key))

    async def retry_refused(self) -> int:
        """Send the refused rows again (in their order); how many."""
        entries = sorted((e for e, _ in self.refused.values()), key=lambda e: e.id)
        if not entries:
            return 0
        await self._ctx.outbox.unrefuse([e.id for e in entries])
        for entry in entries:
            self.refused.pop(entry.id, None)
            self._seen.discard(entry.id)
            entry.refused = None
        self._refusals_changed()
        for entry in entries:
            self.enqueue(entry)
        log.info("writeback.retry_refused", source=self.source, count=len(entries))
        return len(entries)

    async def _handle_retry(self, request: web.Request) -> web.Response:
        """POST /api/v1/sources/{name}/writebacks/retry: send refused write-backs again (202)."""
        count = await self.retry_refused()
        return web.json_response({"source": self.source, "retried": count}, status=202)

    # ------------------------------------------------------------------ sending

    async def _drain(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue.waiting:
                await self._drain_waiting(queue)
                await self._unpark(queue, final=True)  # entries may arrive meanwhile: loop
        finally:
            queue.running = False
            if not queue.waiting and not queue.parked:
                self._queues.pop(key, None)

    async def _drain_waiting(self, queue: _OrderQueue) -> None:
        while queue.waiting:
            entry = queue.waiting.popleft()
            earlier = [p for p, _ in queue.parked if _overlap(p, entry)]
            if earlier and not effect_of(entry).all_items:
                # The same line at the same endpoint: its changes go out in order.
                queue.parked.append((entry, "waits behind an earlier change of the same line"))
                continue
            if await self._deliver(entry, queue, final=False):
                if earlier:
                    await self._superseded(queue, earlier, entry)
                await self._unpark(queue)

    async def _superseded(
        self, queue: _OrderQueue, earlier: list[WritebackEntry], entry: WritebackEntry
    ) -> None:
        """A change for the whole endpoint went out: earlier parked changes of its lines are folded into it."""
        ids = {e.id for e in earlier}
        queue.parked = [(p, r) for p, r in queue.parked if p.id not in ids]
        for old in earlier:
            await self._ctx.outbox.complete(
                old.id, error=f"folded into write-back {entry.id} (the whole endpoint)"
            )
            self._outcomes.labels(self.source, "superseded").inc()
            self._done(old)
            log.info("writeback.superseded", source=self.source, entry=old.id, by=entry.id)

    async def _unpark(self, queue: _OrderQueue, *, final: bool = False) -> None:
        """Try the parked entries again, in order; a line stays blocked behind its earlier change."""
        still: list[WritebackEntry] = []
        parked, queue.parked = queue.parked, []
        for entry, reason in parked:
            if any(_overlap(p, entry) for p in still):
                queue.parked.append((entry, reason))
                continue
            if not await self._deliver(entry, queue, final=final):
                still.append(entry)

    async def _deliver(self, entry: WritebackEntry, queue: _OrderQueue, *, final: bool) -> bool:
        """Send one entry until it is answered; False when it was parked."""
        outbox = self._ctx.outbox
        delay = self._retry
        while True:
            try:
                async with self._semaphore:
                    await outbox.attempted(entry.id)
                    await self._send(entry)
                    await outbox.complete(entry.id)
            except WritebackDeferred as err:
                # Changes queued meanwhile (during the send) may still make it exact.
                if err.can_wait or not final or queue.waiting:
                    queue.parked.append((entry, str(err)))
                    self._outcomes.labels(self.source, "deferred").inc()
                    log.info(
                        "writeback.deferred", source=self.source, entry=entry.id, reason=str(err)
                    )
                    return False
                await self._refuse(entry, WritebackRefused("inexact", str(err)))
                return True
            except WritebackRefused as err:
                await self._refuse(entry, err)
                return True
            except SourceUnavailable as err:
                self._failed(str(err))
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.exception("writeback.error", source=self.source, entry=entry.id)
                self._failed(repr(err))
            else:
                if self.failures:
                    log.info(
                        "writeback.recovered", source=self.source, after_failures=self.failures
                    )
                self.failures, self.last_error = 0, None
                self._outcomes.labels(self.source, "sent").inc()
                self._done(entry)
                return True
            await wait_event(self._ctx.clock, self._wake, delay * random.uniform(0.8, 1.0))
            delay = min(delay * 2, self._max_backoff)

    def _done(self, entry: WritebackEntry) -> None:
        self._seen.discard(entry.id)
        self.pending -= 1
        self._pending_gauge.set(self.pending)

    def _failed(self, error: str) -> None:
        self.failures += 1
        self.last_error = error
        self._outcomes.labels(self.source, "retried").inc()
        log.info("writeback.retry", source=self.source, error=error, failures=self.failures)

    async def _refuse(self, entry: WritebackEntry, err: WritebackRefused) -> None:
        reason = str(err)
        log.warning(
            "writeback.refused",
            source=self.source,
            **_described(effect_of(entry)),
            http_status=err.status,
            reason=err.detail,
        )
        await self._ctx.outbox.refuse(entry.id, reason)
        self._outcomes.labels(self.source, "refused").inc()
        self._failure_counter.labels(self.source, str(err.status)).inc()
        self._done(entry)
        self._seen.add(entry.id)  # still ours: handed out again only by a retry
        self._keep_refused(entry, reason)

    def _keep_refused(self, entry: WritebackEntry, reason: str) -> None:
        entry.refused = reason
        self.refused[entry.id] = (entry, reason)
        effect = effect_of(entry)
        self.last_refusal = (
            f"{effect.status} at {effect.endpoint} for order {effect.external_id}: {reason}"
        )
        self._refusals_changed()

    def _refusals_changed(self) -> None:
        self._refused_gauge.set(len(self.refused))
        if not self.refused:
            self._ctx.alerts.clear(self.source, "writebacks_refused")
            return
        count = len(self.refused)
        self._ctx.alerts.raise_alert(
            self.source,
            "writebacks_refused",
            "writeback_refused",
            f"{count} status change{'s' if count != 1 else ''} not accepted by {self.source}"
            f" (last: {self.last_refusal}); fix the cause, then retry",
        )
