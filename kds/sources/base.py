"""What every source adapter shares: its context, its error, and the poller base.

A source is thin glue from one POS to the service core. Pollers (PORTOS,
cheques, the ready2order safety net) subclass `Poller` the way a Home Assistant
integration subclasses its update coordinator: they implement `poll()`, raise
`SourceUnavailable` when the POS cannot be read, and the base owns the interval,
the capped exponential backoff and the health the daemon reports.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import AfterValidator

from ..clock import Clock, SystemClock
from .alerts import SourceAlerts

if TYPE_CHECKING:
    from ..bus import EventBus
    from ..config import Settings
    from ..outbox import Outbox
    from ..service import KitchenService
    from ..tasks import TaskSupervisor

log = structlog.get_logger(__name__)


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


#: A POS URL in a source's config: http(s) only, without a trailing slash.
HttpUrl = Annotated[str, AfterValidator(_http_url)]


class SourceUnavailable(Exception):
    """The POS could not be read or written this time (down, 5xx, garbage, timeout)."""


@dataclass
class SourceContext:
    """What a source adapter gets from the daemon."""

    service: KitchenService
    outbox: Outbox
    supervisor: TaskSupervisor
    bus: EventBus
    metrics: CollectorRegistry
    settings: Settings
    #: The daemon's clock: wait on it (intervals, backoff) so tests can move time.
    clock: Clock = field(default_factory=SystemClock)
    routes: list[web.RouteDef] = field(default_factory=list)
    #: Problems staff must see (refused write-backs, unreadable orders), shared by every source.
    alerts: SourceAlerts = field(init=False)

    def __post_init__(self) -> None:
        self.alerts = SourceAlerts(self.bus)

    def add_routes(self, routes: Iterable[web.RouteDef]) -> None:
        """Register HTTP routes (webhooks) on the daemon's web app."""
        self.routes.extend(routes)


class SourceMetrics:
    """Per-registry source gauges and counters, created once and shared."""

    _by_registry: dict[int, SourceMetrics] = {}

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
    def for_registry(cls, registry: CollectorRegistry) -> SourceMetrics:
        """The one SourceMetrics of `registry`."""
        key = id(registry)
        if key not in cls._by_registry:
            cls._by_registry[key] = cls(registry)
        return cls._by_registry[key]


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.ctx = ctx
        self.interval = interval
        self.max_backoff = max_backoff
        self._clock = clock
        self._wake = asyncio.Event()
        self._failures = 0
        self._last_success: float | None = None
        self._last_error: str | None = None
        self.polled = asyncio.Condition()
        self.poll_count = 0
        self._metrics = SourceMetrics.for_registry(ctx.metrics)

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
            await self._poll_once()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.next_delay())
            except TimeoutError:
                pass

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
