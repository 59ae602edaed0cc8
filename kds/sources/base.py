"""What every source adapter shares: its context, its error, and the poller base.

A source is thin glue from one POS to the service core. Pollers (PORTOS,
cheques, the ready2order safety net) subclass `Poller` the way a Home Assistant
integration subclasses its update coordinator: they implement `poll()`, raise
`SourceUnavailable` when the POS cannot be read, and the base owns the interval,
the capped exponential backoff and the health the daemon reports.

Sources never import the store, the inbox or the outbox: the daemon injects
them through `SourceContext`, typed by the small protocols below (`OrderService`,
`RawInbox`, `WritebackOutbox`), so a newcomer sees in one place everything a
source may ask of the core.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import AfterValidator

from ..clock import Clock, SystemClock, wait_event
from .alerts import SourceAlerts

if TYPE_CHECKING:
    from ..bus import EventBus
    from ..config import Settings
    from ..model import Order, OrderIn, TicketInfo
    from ..tasks import TaskSupervisor

log = structlog.get_logger(__name__)
T = TypeVar("T")


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


#: A POS URL in a source's config: http(s) only, without a trailing slash.
HttpUrl = Annotated[str, AfterValidator(_http_url)]


class SourceUnavailable(Exception):
    """The POS could not be read or written this time (down, 5xx, garbage, timeout)."""


# --------------------------------------------------------------------------- what the core offers


class Ingested(Protocol):
    """The answer to `OrderService.ingest`: the stored order, and whether this call created it."""

    @property
    def order(self) -> Order: ...
    @property
    def created(self) -> bool: ...


class OrderService(Protocol):
    """The service-core commands and live-view reads a source uses (the only writer of orders)."""

    def get(self, order_id: str) -> Order | None:
        """An order of the live view."""
        ...

    def find(self, source: str, external_id: str) -> Order | None:
        """The live order a POS knows as `external_id`."""
        ...

    def orders(self) -> Iterator[Order]:
        """Every order of the live view, oldest first."""
        ...

    async def ingest(self, order_in: OrderIn, *, actor: str = ...) -> Ingested:
        """Store a new order or recognise a repeat (ConflictError: same id, other body)."""
        ...

    async def cancel(
        self,
        order_id: str,
        *,
        item_ids: Sequence[int] | None = ...,
        reason: str | None = ...,
        actor: str = ...,
    ) -> Order:
        """Cancel an order or some of its items (VOID where printed)."""
        ...

    async def update_ticket(self, order_id: str, ticket: TicketInfo, *, actor: str = ...) -> Order:
        """Move an order to another table (TRANSFER where printed)."""
        ...

    def hold_while(self, holds: Callable[[Order], bool]) -> None:
        """Keep finished orders in the live view while `holds(order)` is true."""
        ...


class RawEvent(Protocol):
    """A raw POS event kept in the inbox."""

    @property
    def id(self) -> int: ...
    @property
    def payload(self) -> bytes: ...


class RawInbox(Protocol):
    """The durable inbox of raw POS events (`kds.inbox.Inbox`): stored before they are acknowledged."""

    async def receive(self, source: str, dedupe_key: str, payload: bytes) -> int | None:
        """Keep a raw event; its inbox id, or None when its key was seen before."""
        ...

    async def done(self, inbox_id: int, error: str | None = None) -> None:
        """Mark a raw event processed (with the reason when it could not be used)."""
        ...

    async def pending(self, source: str) -> Sequence[RawEvent]:
        """Raw events of `source` not processed yet, oldest first."""
        ...


class WritebackEntry(Protocol):
    """One status change to write back (an outbox row addressed to a source)."""

    id: int
    order_id: str | None
    payload: dict[str, Any]
    refused: str | None


class WritebackOutbox(Protocol):
    """The outbox as a write-back consumer sees it."""

    def subscribe(
        self, kind: str, handler: Callable[[Any], None], target: str | None = None
    ) -> None:
        """Hand the pending and future entries of `kind` (for `target`) to `handler`."""
        ...

    def unsubscribe(self, kind: str, target: str | None = None) -> None:
        """Stop handing out entries of `kind` (for `target`)."""
        ...

    def attempted(self, entry_id: int, error: str | None = None) -> Awaitable[None]:
        """Count a try."""
        ...

    def complete(self, entry_id: int, error: str | None = None) -> Awaitable[None]:
        """The effect happened (or is moot): the entry is done."""
        ...

    def refuse(self, entry_id: int, error: str) -> Awaitable[None]:
        """The receiver refused it: kept, not handed out again until retried."""
        ...

    def unrefuse(self, entry_ids: list[int]) -> Awaitable[None]:
        """Make refused entries pending again."""
        ...


# --------------------------------------------------------------------------- the context


@dataclass
class SourceContext:
    """What a source adapter gets from the daemon."""

    service: OrderService
    inbox: RawInbox
    outbox: WritebackOutbox
    supervisor: TaskSupervisor
    bus: EventBus
    metrics: CollectorRegistry
    settings: Settings
    #: The daemon's clock: wait on it (intervals, backoff) so tests can move time.
    clock: Clock = field(default_factory=SystemClock)
    routes: list[web.RouteDef] = field(default_factory=list)
    #: Problems staff must see (refused write-backs, unreadable orders), shared by every source.
    alerts: SourceAlerts = field(init=False)

    #: Objects this daemon's sources share (see `shared`): per daemon, never per process.
    _shared: dict[Hashable, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.alerts = SourceAlerts(self.bus)

    def shared(self, key: Hashable, make: Callable[[], T]) -> T:
        """The one object for `key` in this daemon, made on first use (metrics, a rate limit)."""
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]  # type: ignore[no-any-return]

    def add_routes(self, routes: Iterable[web.RouteDef]) -> None:
        """Register HTTP routes (webhooks) on the daemon's web app."""
        self.routes.extend(routes)


class SourceMetrics:
    """The daemon's source gauges and counters, created once and shared by its sources."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.up = Gauge(
            "kds_source_up",
            "1 when the last poll of a source succeeded",
            ["source"],
            registry=registry,
        )
        self.polls = Counter(
            "kds_source_polls", "Polls of a source", ["source", "outcome"], registry=registry
        )
        self.unknown_endpoints = Counter(
            "kds_source_unknown_endpoints",
            "Order lines at POS endpoints kds does not own (left to the POS)",
            ["source", "endpoint"],
            registry=registry,
        )

    @classmethod
    def of(cls, ctx: SourceContext) -> SourceMetrics:
        """The one SourceMetrics of the daemon `ctx` belongs to."""
        return ctx.shared(cls, lambda: cls(ctx.metrics))


class Poller:
    """Base for a source that polls its POS every `interval` seconds.

    Subclasses implement `poll()`. Failures back off exponentially (capped at
    `max_backoff`, with jitter so restaurants sharing a POS cloud do not march
    in step); `poll_now()` wakes the loop early, e.g. after a webhook.
    """

    def __init__(
        self,
        name: str,
        ctx: SourceContext,
        interval: float,
        *,
        max_backoff: float = 30.0,
    ) -> None:
        self.name = name
        self.ctx = ctx
        self.interval = interval
        self.max_backoff = max_backoff
        #: Intervals and backoff wait on the daemon's clock (a test moves a ManualClock).
        self.clock = ctx.clock
        self._clock = ctx.clock.monotonic
        self._wake = asyncio.Event()
        self._failures = 0
        self._last_success: float | None = None
        self._last_error: str | None = None
        self.polled = asyncio.Condition()
        self.poll_count = 0
        #: True while the loop waits (on the clock) for its next poll.
        self.waiting = False
        self._metrics = SourceMetrics.of(ctx)

    async def poll(self) -> None:
        """Read the POS once and hand what is new to the service."""
        raise NotImplementedError

    async def start(self) -> None:
        """Start the poll loop."""
        self.ctx.supervisor.spawn(f"source:{self.name}", self._run())

    async def stop(self) -> None:
        """Stop the poll loop."""
        await self.ctx.supervisor.cancel(f"source:{self.name}")

    def poll_now(self) -> None:
        """Poll as soon as possible instead of waiting for the interval."""
        self._wake.set()

    def health(self) -> dict[str, Any]:
        """Reachability of the POS as seen by the last polls."""
        return {
            "ok": self._failures == 0,
            "consecutiveFailures": self._failures,
            "lastError": self._last_error,
            "secondsSinceSuccess": None
            if self._last_success is None
            else round(self._clock() - self._last_success, 1),
        }

    def next_delay(self) -> float:
        """Seconds until the next poll: the interval, or the backoff after failures."""
        if self._failures == 0:
            return self.interval
        backoff = min(self.max_backoff, self.interval * 2 ** min(self._failures, 10))
        return backoff * random.uniform(0.8, 1.0)

    async def _run(self) -> None:
        while True:
            # Cleared before the poll: a wake-up during it (a webhook) brings one more poll,
            # since this one may have read the POS before the change it announces.
            self._wake.clear()
            await self._poll_once()
            self.waiting = True
            try:
                await wait_event(self.clock, self._wake, self.next_delay())
            finally:
                self.waiting = False

    async def _poll_once(self) -> None:
        try:
            await self.poll()
        except Exception as err:
            self._failures += 1
            self._last_error = str(err) or type(err).__name__
            if not isinstance(err, SourceUnavailable):
                log.exception("source.poll_crashed", source=self.name)
            self._metrics.up.labels(self.name).set(0)
            self._metrics.polls.labels(self.name, "error").inc()
            log.warning(
                "source.unavailable", source=self.name, error=str(err), failures=self._failures
            )
        else:
            if self._failures:
                log.info("source.recovered", source=self.name, after_failures=self._failures)
            self._failures = 0
            self._last_error = None
            self._last_success = self._clock()
            self._metrics.up.labels(self.name).set(1)
            self._metrics.polls.labels(self.name, "ok").inc()
        async with self.polled:
            self.poll_count += 1
            self.polled.notify_all()
