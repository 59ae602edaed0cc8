"""The print spooler: one queue per printer, fed from the outbox, never losing a ticket.

The service writes a `print` outbox row in the same transaction as the change
that needs a ticket; the outbox hands rows to `PrintSpooler._on_entry` (at
start for everything still pending, then right after each commit). Each
printer endpoint has one FIFO queue and one worker, so tickets print in the
order they were created and the tickets of one order never interleave with
another's. The worker prints in rounds: every ticket waiting (up to `BATCH_MAX`)
goes out over one connection, with one commit of their `sent` statuses and
attempts before the first byte and one of their `delivered` and completion
after, so a busy kitchen's queue drains instead of waiting on four commits per
ticket. The head of a queue is retried with capped exponential backoff until
it prints; the tickets behind it wait — a ticket is never skipped or dropped.

Statuses go through `service.set_status(..., actor="printer", strict=False)`:
`created|failed → sent` right before the ticket's bytes are written,
`sent → delivered` when the printer confirmed it, `→ failed` after
`attempts` failed tries (or at once when a write may have been cut off), and
`delivered → processed` for endpoints with `auto_process`. Failed items stay
processable: the queue keeps trying and they go `failed → sent → delivered`
when the printer is back.

Duplicates never pass as new orders: `outbox.attempted()` is called right
before the first byte of a round is written, so an entry handed out with
`attempts > 0` after a restart — or a ticket whose bytes were handed over in a
round that failed in this run — prints with a REPRINT banner. The same durable count makes its items "possibly printed": a
stalled or dropped job leaves them `failed`, yet the service still queues a
VOID when they are cancelled and a TRANSFER when the table changes.

With `fallback` configured, a job that failed `fallback_after` times goes to the
fallback printer (alternating with the primary, so whichever comes back first
prints); later jobs go straight to the fallback until a probe finds the
primary healthy again.

Printer faults are published as `printer.status` events (the screens show a
banner), kept in `printer_states()` for the websocket snapshot, and exported as
Prometheus gauges.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Awaitable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from ..clock import Clock, SystemClock, wait_event
from ..contracts import EffectKind, EventType, PrintEffect, TicketKind
from ..model import Order, OrderStatus, utcnow
from .config import PrinterConfig
from .render import Ticket, TicketRenderer
from .transport import PrinterFault, PrinterStatus, print_tickets, probe

if TYPE_CHECKING:
    from ..bus import EventBus
    from ..outbox import Outbox, OutboxEntry
    from ..service import KitchenService
    from ..tasks import TaskSupervisor

log = structlog.get_logger(__name__)

S = OrderStatus
#: How long start() waits for the first status of every printer.
START_PROBE_WAIT = 1.0
#: Tickets written over one connection at most (each write has its own timeout).
BATCH_MAX = 20
STATES = ("unknown", "ok", "offline", "timeout", "disconnected", "paper_out", "cover_open", "error")


class EndpointLike(Protocol):
    """What the spooler reads of an endpoint's config."""

    name: str
    display: bool | None
    printer: PrinterConfig | None
    auto_process: bool | None


@dataclass(eq=False)
class PrintJob:
    """One outbox `print` entry on its way to paper."""

    entry: OutboxEntry
    kind: TicketKind
    order_id: str
    item_ids: tuple[int, ...] | None
    maybe_printed: bool  # a previous try may have printed it: print as REPRINT
    moved_to: str | None = None  # a ticket moved to / from another station (TRANSFER)
    moved_from: str | None = None
    failures: int = 0
    last_error: str | None = None
    marked_failed: bool = False


@dataclass
class _Target:
    """A physical printer a queue can print on."""

    label: str
    config: PrinterConfig
    renderer: TicketRenderer


@dataclass(eq=False)
class _Prepared:
    """A job of this round, rendered: what its ticket lists and its bytes."""

    job: PrintJob
    ticket: Ticket
    item_ids: list[int]
    data: bytes
    writing: bool = False  # its bytes were handed to the printer: it may have printed


@dataclass
class PrinterQueue:
    """The queue, worker and health of one printer endpoint."""

    endpoint: EndpointLike
    primary: _Target
    fallback: _Target | None = None
    jobs: deque[PrintJob] = field(default_factory=deque)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    kicked: asyncio.Event = field(default_factory=asyncio.Event)
    state: str = "unknown"
    detail: str = "no ticket printed yet"
    since: datetime = field(default_factory=utcnow)
    fallback_active: bool = False
    primary_checked: float = 0.0
    printed: int = 0
    last_printed_at: datetime | None = None
    task: asyncio.Task[None] | None = None
    entry_ids: set[int] = field(default_factory=set)
    probed: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False  # this printer alone stops (another node drives it now)

    @property
    def name(self) -> str:
        return self.endpoint.name

    @property
    def config(self) -> PrinterConfig:
        return self.primary.config


class _Metrics:
    """The spooler's Prometheus series, in the daemon's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.up = Gauge(
            "kds_printer_up",
            "1 when the printer's last job or probe succeeded",
            ["endpoint"],
            registry=registry,
        )
        self.state = Gauge(
            "kds_printer_state",
            "1 for the printer's current state",
            ["endpoint", "state"],
            registry=registry,
        )
        self.queue = Gauge(
            "kds_printer_queue_length",
            "tickets waiting for the printer",
            ["endpoint"],
            registry=registry,
        )
        self.fallback = Gauge(
            "kds_printer_fallback_active",
            "1 while tickets go to the fallback printer",
            ["endpoint"],
            registry=registry,
        )
        self.jobs = Counter(
            "kds_print_jobs", "print attempts by result", ["endpoint", "result"], registry=registry
        )
        self.reprints = Counter(
            "kds_print_reprints", "tickets printed marked REPRINT", ["endpoint"], registry=registry
        )


class PrintSpooler:
    """Prints the `print` outbox entries on each endpoint's printer."""

    name = "printers"

    def __init__(
        self,
        service: KitchenService,
        outbox: Outbox,
        bus: EventBus,
        endpoints: Sequence[EndpointLike],
        metrics: CollectorRegistry,
        *,
        supervisor: TaskSupervisor,
        clock: Clock | None = None,
    ) -> None:
        self.service = service
        #: Runs one worker per printer (restarted after a crash).
        self.supervisor = supervisor
        #: Retry backoff, probe intervals and the fallback's re-check wait on this clock.
        self.clock: Clock = clock or SystemClock()
        self.outbox = outbox
        self.bus = bus
        self._metrics = _Metrics(metrics)
        self._queues: dict[str, PrinterQueue] = {}
        self._device_locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._orphans: dict[str, int] = {}
        self._stopping = False
        by_name = {e.name: e for e in endpoints}
        for endpoint in endpoints:
            if endpoint.printer is None:
                continue
            config = endpoint.printer
            self._queues[endpoint.name] = PrinterQueue(
                endpoint=endpoint, primary=_Target(endpoint.name, config, TicketRenderer(config))
            )
        for queue in self._queues.values():
            queue.fallback = self._fallback_target(queue, by_name)
            self._publish_gauges(queue)

    def _fallback_target(
        self, queue: PrinterQueue, by_name: dict[str, EndpointLike]
    ) -> _Target | None:
        """The fallback printer: another endpoint's, else an address (both checked by kds.config)."""
        fallback = queue.config.fallback
        if not fallback:
            return None
        other = by_name.get(fallback)
        if other is not None and other.printer is not None:
            return _Target(f"{other.name} printer", other.printer, TicketRenderer(other.printer))
        config = queue.config.model_copy(update={"address": fallback, "fallback": None})
        return _Target(fallback, config, TicketRenderer(config))

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start one worker per printer, then take pending and new `print` entries."""
        self._stopping = False
        for queue in self._queues.values():
            queue.task = self.supervisor.spawn(
                f"printer:{queue.name}", partial(self._run, queue), restart=True
            )
        self.outbox.subscribe(EffectKind.PRINT, self._on_entry)
        # A missing printer should read "offline" on the first screen, not "ok" until a
        # ticket fails: wait briefly for the start probes (slow ones finish in the background).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(START_PROBE_WAIT):
                for queue in self._queues.values():
                    await queue.probed.wait()
        log.info(
            "printers.started",
            printers=[q.name for q in self._queues.values()],
            queued=sum(len(q.jobs) for q in self._queues.values()),
        )

    async def stop(self) -> None:
        """Let each printer finish the ticket it is on, then stop.

        The daemon's shutdown deadline bounds the wait: when it cancels this,
        the workers are cancelled too. Unprinted entries stay pending in the
        outbox and resume on the next start.
        """
        self._stopping = True
        self.outbox.unsubscribe(EffectKind.PRINT)
        tasks = [q.task for q in self._queues.values() if q.task is not None and not q.task.done()]
        for queue in self._queues.values():
            queue.arrived.set()
            queue.kicked.set()
        try:
            if tasks:
                await asyncio.wait(tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def start_printer(self, endpoint: str) -> None:
        """Drive one printer: its worker and its `print` entries (several nodes on one
        database drive different printers, see kds.cluster.printers)."""
        queue = self._queues[endpoint]
        queue.stopping = False
        queue.task = self.supervisor.spawn(
            f"printer:{queue.name}", partial(self._run, queue), restart=True
        )
        self.outbox.subscribe(EffectKind.PRINT, self._on_entry, endpoint)

    async def stop_printer(self, endpoint: str) -> None:
        """Stop driving one printer after the ticket it is on; its queue stays in the outbox."""
        queue = self._queues[endpoint]
        self.outbox.unsubscribe(EffectKind.PRINT, endpoint)
        queue.stopping = True
        queue.arrived.set()
        queue.kicked.set()
        if queue.task is not None and not queue.task.done():
            await asyncio.wait([queue.task])
        # Whoever drives it next gets these from the outbox again, their attempts counted.
        queue.jobs.clear()
        queue.entry_ids.clear()

    def health(self) -> dict[str, Any]:
        """ok unless a worker died or a printer reports a fault."""
        workers_ok = all(self._worker_running(q) for q in self._queues.values())
        printers = {
            q.name: {"state": q.state, "detail": q.detail, "queued": len(q.jobs)}
            for q in self._queues.values()
        }
        faults = [q.name for q in self._queues.values() if q.state not in ("ok", "unknown")]
        report: dict[str, Any] = {"ok": workers_ok and not faults, "printers": printers}
        if faults:
            report["faults"] = faults
        if self._orphans:
            report["unroutable"] = dict(self._orphans)
        return report

    def _worker_running(self, queue: PrinterQueue) -> bool:
        state = self.supervisor.state(f"printer:{queue.name}")
        return state is not None and state["state"] == "running"

    def printer_states(self) -> list[dict[str, Any]]:
        """Every printer's state, for the websocket snapshot and the screens' banner."""
        return [self._state_of(q) for q in self._queues.values()]

    def kick(self, endpoint: str | None = None) -> None:
        """Retry now instead of waiting out the backoff (all printers, or one)."""
        for queue in self._queues.values():
            if endpoint is None or queue.name == endpoint:
                queue.kicked.set()

    def has_printer(self, endpoint: str) -> bool:
        """Whether `endpoint` has a printer (a queue) here."""
        return endpoint in self._queues

    def queued(self, endpoint: str) -> int:
        """Tickets waiting for `endpoint`'s printer."""
        queue = self._queues.get(endpoint)
        return len(queue.jobs) if queue else 0

    # ------------------------------------------------------------------ intake

    def _on_entry(self, entry: OutboxEntry) -> None:
        """Outbox handler: enqueue, never block."""
        queue = self._queues.get(entry.target)
        if queue is None:
            # Not dropped: the entry stays pending and is handed out again once
            # the endpoint has a printer in the config.
            self._orphans[entry.target] = self._orphans.get(entry.target, 0) + 1
            log.error("print.no_printer", endpoint=entry.target, entry=entry.id)
            return
        if entry.id in queue.entry_ids:
            return
        try:
            effect = PrintEffect.from_dict(entry.payload, entry.order_id)
        except ValueError:
            log.warning("print.unknown_ticket_kind", entry=entry.id, payload=entry.payload)
            effect = PrintEffect.from_dict(
                {**entry.payload, "ticket": TicketKind.NEW.value}, entry.order_id
            )
        job = PrintJob(
            entry=entry,
            kind=effect.ticket,
            order_id=effect.order_id,
            item_ids=effect.item_ids,
            maybe_printed=entry.attempts > 0,
            moved_to=effect.moved_to,
            moved_from=effect.moved_from,
        )
        queue.jobs.append(job)
        queue.entry_ids.add(entry.id)
        self._metrics.queue.labels(queue.name).set(len(queue.jobs))
        queue.arrived.set()

    # ------------------------------------------------------------------ worker

    async def _run(self, queue: PrinterQueue) -> None:
        await self._probe_idle(queue)
        queue.probed.set()
        while not (self._stopping or queue.stopping):
            if not queue.jobs:
                queue.arrived.clear()
                await wait_event(self.clock, queue.arrived, queue.config.probe_interval)
                if not queue.jobs and not (self._stopping or queue.stopping):
                    await self._probe_idle(queue)
                continue
            head = queue.jobs[0]
            try:
                done = await self._attempt(queue)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("print.attempt_crashed", endpoint=queue.name, entry=head.entry.id)
                head.failures += 1
                done = False
            if done:
                continue
            if self._stopping or queue.stopping:
                break
            await self._backoff(queue, head)

    async def _probe_idle(self, queue: PrinterQueue) -> None:
        """Ask an idle printer's status, so a fault shows before a ticket fails on it."""
        try:
            async with self._device_lock(queue.config):
                status = await probe(queue.config)
        except PrinterFault as fault:
            self._set_state(queue, fault.state, fault.detail)
            return
        except Exception:
            log.exception("printer.probe_crashed", endpoint=queue.name)
            return
        if status is None:
            self._set_state(queue, "ok", "connected (printer does not report status)")
        else:
            self._set_state(queue, status.state, status.detail)

    async def _backoff(self, queue: PrinterQueue, job: PrintJob) -> None:
        config = queue.config
        delay = min(config.retry_max, config.retry_initial * 2 ** max(job.failures - 1, 0))
        delay *= random.uniform(0.9, 1.1)  # printers recovering together don't retry in lockstep
        queue.kicked.clear()
        await wait_event(self.clock, queue.kicked, delay)

    async def _attempt(self, queue: PrinterQueue) -> bool:
        """Print the jobs at the head of the queue in one round; True when they are done.

        Every job waiting (up to BATCH_MAX) is rendered and written over one
        connection: the `sent` statuses and attempts of all of them are recorded in
        one group commit before the first byte, their `delivered` and completion in
        one after the printer confirmed. A fault fails the round: the head is retried
        (with the rest behind it), and every ticket whose bytes were handed over may
        have printed (REPRINT on the retry).
        """
        head = queue.jobs[0]
        target = await self._pick_target(queue, head)
        batch: list[_Prepared] = []
        for job in list(islice(queue.jobs, BATCH_MAX)):
            try:
                prepared = await self._render(queue, job, target)
            except Exception:
                if not batch:
                    raise
                # Print what came before it: this job is the next round's head.
                log.exception("print.render_failed", endpoint=queue.name, entry=job.entry.id)
                break
            if prepared is None:  # done without printing
                self._finished(queue, job)
                if not batch:
                    return True  # the next head may need another printer: pick again
                continue
            batch.append(prepared)
        if not batch:
            return True
        recorded = False

        async def prepare() -> Iterator[bytes]:
            nonlocal recorded
            await self._record_attempts(queue, batch)
            recorded = True
            for prepared in batch:
                if prepared.job.kind is TicketKind.NEW and self._cancelled_since_render(
                    prepared.job.order_id, queue.name, prepared.item_ids
                ):
                    # Rendered before its `sent` was stored: an item cancelled meanwhile must
                    # not print (no VOID would follow). From `sent` on, a cancel queues a VOID.
                    log.info(
                        "print.rerender",
                        endpoint=queue.name,
                        entry=prepared.job.entry.id,
                        reason="item cancelled meanwhile",
                    )
                    self._rerender(prepared, target)
            return self._handed_over(batch)

        try:
            async with self._device_lock(target.config):
                status = await print_tickets(target.config, prepare)
        except PrinterFault as fault:
            await self._round_failed(queue, batch, target, fault, recorded)
            return False
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as err:
            log.warning(
                "print.attempt_failed", endpoint=queue.name, entry=head.entry.id, error=repr(err)
            )
            # Which tickets may have printed is each one's `writing`, not the fault's flag.
            error = PrinterFault("error", f"{type(err).__name__}: {err}")
            await self._round_failed(queue, batch, target, error, recorded, printer_fault=False)
            return False
        await self._printed(queue, batch, target, status)
        return True

    async def _render(
        self, queue: PrinterQueue, job: PrintJob, target: _Target
    ) -> _Prepared | None:
        """The job's ticket for `target`; None when it is done without printing (completed)."""
        order = self.service.get(job.order_id) or await self._archived(job.order_id)
        if order is None:
            # Gone from the live view and the archive: nothing left to render from.
            log.error(
                "print.order_gone", endpoint=queue.name, entry=job.entry.id, order=job.order_id
            )
            self._metrics.jobs.labels(queue.name, "dropped").inc()
            await self.outbox.complete(job.entry.id, error="order no longer available")
            return None
        on_fallback = target is not queue.primary
        ticket = Ticket(
            order=order,
            endpoint=queue.name,
            kind=job.kind,
            item_ids=job.item_ids,
            job_id=job.entry.id,
            reprint=job.maybe_printed,
            moved_to=job.moved_to,
            moved_from=job.moved_from,
            note=f"{queue.name} printer down - printed on {target.label}" if on_fallback else None,
        )
        items = ticket.items()
        if job.kind is TicketKind.NEW and not items:
            log.info("print.nothing_left", endpoint=queue.name, entry=job.entry.id, order=order.id)
            await self.outbox.complete(job.entry.id)
            return None
        return _Prepared(job, ticket, [item.id for item in items], target.renderer.render(ticket))

    def _rerender(self, prepared: _Prepared, target: _Target) -> None:
        """Render again from the live order: the items cancelled meanwhile are left out."""
        order = self.service.get(prepared.job.order_id) or prepared.ticket.order
        ticket = replace(prepared.ticket, order=order, item_ids=tuple(prepared.item_ids))
        items = ticket.items()
        prepared.ticket, prepared.item_ids = ticket, [item.id for item in items]
        # Nothing left: no ticket at all (the round completes the job without printing).
        prepared.data = target.renderer.render(ticket) if items else b""

    @staticmethod
    def _handed_over(batch: list[_Prepared]) -> Iterator[bytes]:
        """The round's tickets, each marked as possibly printed as it is handed to the printer."""
        for prepared in batch:
            if prepared.data:
                prepared.writing = True
                yield prepared.data

    async def _record_attempts(self, queue: PrinterQueue, batch: list[_Prepared]) -> None:
        """`sent` for the new tickets' items and one more attempt for every job: one group commit."""
        writes = [
            self._set_status(p.job.order_id, queue.name, p.item_ids, S.SENT)
            for p in batch
            if p.job.kind is TicketKind.NEW
        ]
        writes += [self.outbox.attempted(p.job.entry.id, p.job.last_error) for p in batch]
        # Started together, they queue in the store's writer before it wakes: one transaction.
        results = await asyncio.gather(*writes, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def _cancelled_since_render(self, order_id: str, endpoint: str, item_ids: list[int]) -> bool:
        """True when one of the rendered items was cancelled before the ticket went out."""
        order = self.service.get(order_id)
        if order is None:
            return False
        for item_id in item_ids:
            item = order.item(item_id)
            ep = item.endpoint(endpoint) if item is not None else None
            if ep is not None and ep.status is S.PROCESS_SKIPPED:
                return True
        return False

    async def _archived(self, order_id: str) -> Order | None:
        """An order archived while its ticket waited (e.g. a VOID during a long outage)."""
        try:
            data = await self.service.get_archived(order_id)
            return Order.model_validate(data) if data is not None else None
        except Exception as err:
            log.warning("print.archive_read_failed", order=order_id, error=repr(err))
            return None

    async def _pick_target(self, queue: PrinterQueue, job: PrintJob) -> _Target:
        fallback = queue.fallback
        if fallback is None:
            return queue.primary
        config = queue.config
        if job.failures >= config.fallback_after:
            # Both may be down: alternate, so whichever comes back first prints.
            return fallback if (job.failures - config.fallback_after) % 2 == 0 else queue.primary
        if queue.fallback_active:
            if self.clock.monotonic() - queue.primary_checked < config.retry_max:
                return fallback
            queue.primary_checked = self.clock.monotonic()
            try:
                async with self._device_lock(config):
                    status = await probe(config)
            except PrinterFault as fault:
                self._set_state(queue, fault.state, fault.detail)
                return fallback
            if status is not None and status.state != "ok":
                self._set_state(queue, status.state, status.detail)
                return fallback
            queue.fallback_active = False
            self._metrics.fallback.labels(queue.name).set(0)
            log.info("printer.primary_back", endpoint=queue.name)
        return queue.primary

    async def _round_failed(
        self,
        queue: PrinterQueue,
        batch: list[_Prepared],
        target: _Target,
        fault: PrinterFault,
        recorded: bool,
        *,
        printer_fault: bool = True,
    ) -> None:
        """A round did not surely print: the head failed; what was handed over may have printed."""
        if printer_fault and target is queue.primary:
            self._set_state(queue, fault.state, fault.detail)
        head, *rest = batch
        job = head.job
        self._failed(queue, job, target, fault, maybe_printed=head.writing)
        if job.kind is TicketKind.NEW and (recorded or job.failures >= queue.config.attempts):
            # `sent` must not stay on a ticket that did not surely print.
            await self._mark_failed(queue, job, head.item_ids, reason=fault.detail)
        for prepared in rest:
            if prepared.writing:
                self._failed(queue, prepared.job, target, fault, maybe_printed=True)
            if prepared.job.kind is TicketKind.NEW and recorded:
                await self._mark_failed(queue, prepared.job, prepared.item_ids, reason=fault.detail)
        if job.failures >= queue.config.attempts:
            # The printer is down: the tickets behind this one are stuck too.
            for waiting in list(queue.jobs)[1:]:
                if waiting.kind is TicketKind.NEW and not waiting.marked_failed:
                    await self._mark_failed(
                        queue, waiting, list(waiting.item_ids or ()) or None, reason=fault.detail
                    )

    def _failed(
        self,
        queue: PrinterQueue,
        job: PrintJob,
        target: _Target,
        fault: PrinterFault,
        *,
        maybe_printed: bool,
    ) -> None:
        """Count a failed try of `job` (its bytes handed over: it may have printed)."""
        job.failures += 1
        job.last_error = str(fault)
        job.maybe_printed = job.maybe_printed or maybe_printed
        self._metrics.jobs.labels(queue.name, "failed").inc()
        log.warning(
            "print.failed",
            endpoint=queue.name,
            printer=target.label,
            entry=job.entry.id,
            order=job.order_id,
            failures=job.failures,
            state=fault.state,
            detail=fault.detail,
            maybe_printed=job.maybe_printed,
        )

    async def _mark_failed(
        self, queue: PrinterQueue, job: PrintJob, item_ids: list[int] | None, *, reason: str
    ) -> None:
        job.marked_failed = True
        with contextlib.suppress(Exception):
            await self._set_status(job.order_id, queue.name, item_ids, S.FAILED, reason=reason)

    async def _printed(
        self,
        queue: PrinterQueue,
        batch: list[_Prepared],
        target: _Target,
        status: PrinterStatus | None,
    ) -> None:
        if target is queue.primary:
            detail = (
                status.detail if status is not None else "printed (printer does not report status)"
            )
            self._set_state(queue, "ok", detail)
        elif not queue.fallback_active:
            queue.fallback_active = True
            queue.primary_checked = self.clock.monotonic()
            self._metrics.fallback.labels(queue.name).set(1)
            self._publish_state(queue)
        settle: list[Awaitable[None]] = []
        for prepared in batch:
            job = prepared.job
            if prepared.writing:
                self._count_printed(queue, job, target)
                if job.kind is TicketKind.NEW:
                    settle.append(self._delivered(queue, job, prepared.item_ids))
            settle.append(self._complete(queue, job))
        # Started together: one group commit for the whole round.
        await asyncio.gather(*settle)
        for prepared in batch:
            self._finished(queue, prepared.job)

    def _count_printed(self, queue: PrinterQueue, job: PrintJob, target: _Target) -> None:
        queue.printed += 1
        queue.last_printed_at = utcnow()
        self._metrics.jobs.labels(queue.name, "printed").inc()
        if job.maybe_printed:
            self._metrics.reprints.labels(queue.name).inc()
        log.info(
            "print.printed",
            endpoint=queue.name,
            printer=target.label,
            entry=job.entry.id,
            order=job.order_id,
            ticket=job.kind.value,
            reprint=job.maybe_printed,
            moved_to=job.moved_to,
            moved_from=job.moved_from,
        )

    async def _delivered(self, queue: PrinterQueue, job: PrintJob, item_ids: list[int]) -> None:
        """`delivered` for a printed ticket's items (walked on to `processed` with auto_process)."""
        status = S.PROCESSED if queue.endpoint.auto_process else S.DELIVERED
        try:
            await self._set_status(job.order_id, queue.name, item_ids, status, walk=True)
        except Exception as err:
            log.warning(
                "print.status_failed", endpoint=queue.name, order=job.order_id, error=repr(err)
            )

    async def _complete(self, queue: PrinterQueue, job: PrintJob) -> None:
        try:
            await self.outbox.complete(job.entry.id)
        except Exception as err:
            log.error(
                "print.complete_failed", endpoint=queue.name, entry=job.entry.id, error=repr(err)
            )

    def _finished(self, queue: PrinterQueue, job: PrintJob) -> None:
        """`job` is done (printed, or nothing left to print): it leaves the queue."""
        with contextlib.suppress(ValueError):
            queue.jobs.remove(job)
        queue.entry_ids.discard(job.entry.id)
        self._metrics.queue.labels(queue.name).set(len(queue.jobs))

    async def _set_status(
        self,
        order_id: str,
        endpoint: str,
        item_ids: Iterable[int] | None,
        status: OrderStatus,
        *,
        reason: str | None = None,
        walk: bool = False,
    ) -> None:
        from ..errors import NotFound

        ids = list(item_ids) if item_ids is not None else None
        try:
            await self.service.set_status(
                order_id,
                status,
                endpoint=endpoint,
                item_ids=ids or None,
                reason=reason,
                actor="printer",
                strict=False,
                walk=walk,
            )
        except NotFound as err:
            log.info(
                "print.status_skipped",
                order=order_id,
                endpoint=endpoint,
                status=status.value,
                detail=str(err),
            )

    def _device_lock(self, config: PrinterConfig) -> asyncio.Lock:
        # Two queues may share a physical printer (fallback): one job at a time.
        key = (config.host, config.port)
        lock = self._device_locks.get(key)
        if lock is None:
            lock = self._device_locks[key] = asyncio.Lock()
        return lock

    # ------------------------------------------------------------------ state

    def _state_of(self, queue: PrinterQueue) -> dict[str, Any]:
        return {
            "endpoint": queue.name,
            "address": queue.config.address,
            "ok": queue.state in ("ok", "unknown"),
            "state": queue.state,
            "detail": queue.detail,
            "since": queue.since.isoformat(),
            "queued": len(queue.jobs),
            "printed": queue.printed,
            "fallback": queue.fallback.label if queue.fallback else None,
            "fallbackActive": queue.fallback_active,
        }

    def _set_state(self, queue: PrinterQueue, state: str, detail: str) -> None:
        changed = state != queue.state
        queue.detail = detail
        if not changed:
            return
        log.info(
            "printer.state", endpoint=queue.name, state=state, previous=queue.state, detail=detail
        )
        queue.state = state
        queue.since = utcnow()
        self._publish_gauges(queue)
        self._publish_state(queue)

    def _publish_state(self, queue: PrinterQueue) -> None:
        try:
            self.bus.publish(EventType.PRINTER_STATUS, {"printer": self._state_of(queue)})
        except Exception:
            log.exception("printer.publish_failed", endpoint=queue.name)

    def _publish_gauges(self, queue: PrinterQueue) -> None:
        self._metrics.up.labels(queue.name).set(1 if queue.state == "ok" else 0)
        for state in STATES:
            self._metrics.state.labels(queue.name, state).set(1 if state == queue.state else 0)
        self._metrics.queue.labels(queue.name).set(len(queue.jobs))
        self._metrics.fallback.labels(queue.name).set(1 if queue.fallback_active else 0)
