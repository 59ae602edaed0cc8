"""Builds the daemon: every component, the aiohttp app, and their lifecycle.

Components start in dependency order — task supervisor, store, bus, outbox,
service, printers, screens, sources, archiver — and stop in reverse, all within
one deadline, `[server] shutdown_grace` after the stop began:

1. when aiohttp shuts down (before it waits for open requests): the archiver,
   the sources (no new orders) and the screens (closed with 1001, so no open
   websocket holds the shutdown up);
2. once in-flight requests are done (aiohttp's cleanup): printers finish the
   ticket they are on, the service's writes commit, the store is closed, and
   the supervisor cancels whatever task is left.

A component whose stop() overruns the deadline is cancelled; the ones after it
still get `LAST_CHANCE` seconds each, so the store is closed even then.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from .api import health, orders, printers, workflow
from .api.auth import ACCESS, AccessControl
from .api.connections import ConnectionGuard, GuardedSite
from .api.health import ComponentCollector
from .api.middleware import add_security_headers, request_middleware
from .api.pairing import pairing_routes
from .api.screens import setup_screens
from .api.ws import setup_ws
from .appkeys import BUS, CLUSTER, COMPONENTS, METRICS, SERVICE, SETTINGS, SNAPSHOT_EXTRAS, SPOOLER
from .archive import Archiver
from .bus import EventBus
from .clock import Clock, SystemClock
from .component import Component
from .config import Settings
from .outbox import Outbox
from .pacing.timers import KitchenTimers
from .service import KitchenService
from .sources.base import SourceContext
from .sources.registry import source_module
from .store import open_store
from .systemd import notify, watchdog_interval, watchdog_loop
from .tasks import TaskSupervisor

if TYPE_CHECKING:
    from .cluster import Cluster
    from .store.sqlite import ChunkReader

log = structlog.get_logger(__name__)

#: Seconds each component still gets to stop once the shutdown deadline has passed.
LAST_CHANCE = 1.0

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"


class Daemon:
    """One restaurant's kds: the components and the web app that serves them."""

    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, preload: ChunkReader | None = None
    ) -> None:
        self.settings = settings
        #: The one clock every timer of this daemon waits on (tests pass a ManualClock).
        self.clock: Clock = clock or SystemClock()
        self.registry = CollectorRegistry()
        self.supervisor = TaskSupervisor(self.clock)
        database = settings.database
        self.store = open_store(
            database.path,
            synchronous=database.synchronous,
            supervisor=self.supervisor,
            url=database.url,
            site=settings.node.site,
            preload=preload,
        )
        # On PostgreSQL several nodes may share the database (see kds.cluster).
        self.cluster: Cluster | None = None
        if database.url is not None:
            # Imported only then: kds.cluster brings asyncpg (~0.15 s and ~2 MB at every start).
            from .cluster import Cluster

            self.cluster = Cluster(settings, database.url, self.supervisor)
        self.bus = (
            EventBus(self.store, self.supervisor) if self.cluster is None else self.cluster.bus
        )
        self.outbox = (
            Outbox(self.store) if self.cluster is None else self.cluster.outbox(self.store)
        )
        writeback = [c.name for c in settings.sources if source_module(c.type).WRITES_BACK]
        self.service = KitchenService(
            settings, self.store, self.bus, self.outbox, self.registry, writeback_sources=writeback
        )
        if self.cluster is not None:
            self.cluster.attach(self.service, self.store)
        self.access = AccessControl(settings.security, settings.server)
        self.app = web.Application(
            client_max_size=settings.server.max_body_bytes,
            middlewares=[request_middleware(self.access)],
        )
        self.hub = setup_ws(self.app, self.bus, self.supervisor, self.clock)
        self.printers = self._build_printers()
        self.timers = KitchenTimers(self.service, settings, self.supervisor, self.clock)
        self.source_ctx = SourceContext(
            service=self.service,
            inbox=self.service.inbox,
            outbox=self.outbox,
            supervisor=self.supervisor,
            bus=self.bus,
            metrics=self.registry,
            settings=settings,
            clock=self.clock,
        )
        self.sources = [source_module(c.type).create(c, self.source_ctx) for c in settings.sources]
        self.app.setdefault(SNAPSHOT_EXTRAS, {})["sourceAlerts"] = self.source_ctx.alerts.snapshot
        printers: list[Component] = list(self.printers)
        timers: Component = self.timers
        sources: list[Component] = list(self.sources)
        archiver: Component = Archiver(
            self.service.archive, self.supervisor, database.archive_interval, clock=self.clock
        )
        cluster = self.cluster
        if cluster is not None:  # what drives printers, POS or orders runs on one node only
            from .cluster import ARCHIVER, TIMERS

            printers = [
                guarded
                for spooler in self.printers
                for guarded in cluster.guarded_printers(spooler, settings.endpoints)
            ]
            timers = cluster.guarded(timers, TIMERS)
            sources = cluster.guarded_sources(settings.sources, sources)
            archiver = cluster.guarded(archiver, ARCHIVER)
        self.components: list[Component] = [
            self.supervisor,
            self.store,
            self.bus,
            self.outbox,
            self.service,
            *printers,
            timers,
            self.hub,  # from here on: stopped before aiohttp waits for open requests
            *sources,
            archiver,
            # Last: it starts what the node holds a lock for, and first stops it.
            *([] if cluster is None else [cluster.locks]),
        ]
        self._running: list[Component] = []  # started and not yet stopped, in start order
        self._deadline: float | None = None  # loop time by which everything must have stopped
        self._setup_app()
        self.listening = asyncio.Event()  # set by serve() once the port is bound

    def _build_printers(self) -> list[Any]:
        if not any(e.printer for e in self.settings.endpoints):
            return []
        # Imported only when a printer is configured: python-escpos brings Pillow and more.
        from .printing.spooler import PrintSpooler

        spooler = PrintSpooler(
            self.service,
            self.outbox,
            self.bus,
            self.settings.endpoints,
            self.registry,
            supervisor=self.supervisor,
            clock=self.clock,
        )
        self.app.setdefault(SNAPSHOT_EXTRAS, {})["printers"] = spooler.printer_states
        self.app[SPOOLER] = spooler
        return [spooler]

    def _setup_app(self) -> None:
        app = self.app
        app[SETTINGS] = self.settings
        app[SERVICE] = self.service
        app[BUS] = self.bus
        app[METRICS] = self.registry
        if self.cluster is not None:
            app[CLUSTER] = self.cluster
        app[ACCESS] = self.access
        app.add_routes(pairing_routes())
        app.setdefault(SNAPSHOT_EXTRAS, {})
        app.add_routes(orders.routes)
        app.add_routes(workflow.routes)
        app.add_routes(printers.routes)
        app.add_routes(health.routes)
        app.router.add_get("/api/v1/openapi.json", _openapi)
        app.add_routes(self.source_ctx.routes)
        setup_screens(app, WEB_ROOT)
        app.on_response_prepare.append(add_security_headers)
        app.cleanup_ctx.append(self._lifecycle)
        app.on_shutdown.append(self._stop_front)
        self.registry.register(ComponentCollector(app))

    async def _lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        self._deadline = None
        # Starting allocates what stays (above all the loaded view): a collection meanwhile
        # walks it for nothing (0.8 s of a restart with 10,000 orders). _tune_gc turns it back on.
        gc.disable()
        try:
            for component in self.components:
                await component.start()
                self._running.append(component)
            app[COMPONENTS] = list(self._running)
            _tune_gc()
            log.info(
                "kds.ready",
                orders=self.service.health()["orders"],
                endpoints=len(self.settings.endpoints),
            )
            yield
        finally:
            gc.enable()  # also when a component failed to start
            await self._stop_until(None)
            log.info("kds.stopped")

    async def _stop_front(self, app: web.Application) -> None:
        """aiohttp is shutting down: stop taking orders and close the screens first."""
        await self._stop_until(self.hub)

    async def _stop_until(self, last: Component | None) -> None:
        """Stop running components in reverse start order, down to `last` (None: all)."""
        loop = asyncio.get_running_loop()
        if self._deadline is None:
            self._deadline = loop.time() + self.settings.server.shutdown_grace
        while self._running:
            component = self._running.pop()
            # Past the deadline, each remaining part still gets a moment to close its files.
            until = max(self._deadline, loop.time() + LAST_CHANCE)
            try:
                async with asyncio.timeout_at(until):
                    await component.stop()
            except TimeoutError:
                log.error("kds.stop_overran", component=component.name)
            except Exception:
                log.exception("kds.stop_failed", component=component.name)
            if component is last:
                return


async def _openapi(request: web.Request) -> web.StreamResponse:
    """The OpenAPI document; its builder is imported on the first request, not at every start."""
    from .api.openapi import handle_openapi

    return await handle_openapi(request)


def _tune_gc() -> None:
    """Keep the cyclic GC from rescanning the long-lived order view on every burst.

    The loaded orders are moved to the permanent generation, and young
    collections run less often: kds allocates many short-lived objects per
    request but creates few reference cycles, so full scans were pure overhead.
    """
    gc.freeze()  # no collect first: the just-loaded view is all live, walking it costs ~0.5 s
    gc.set_threshold(50_000, 20, 50)
    gc.enable()


async def serve(daemon: Daemon, host: str, port: int, stop: asyncio.Event) -> None:
    """Run the daemon's web app on host:port until `stop` is set."""
    config = daemon.settings.server
    runner = web.AppRunner(
        daemon.app,
        handle_signals=False,
        access_log=None,
        keepalive_timeout=config.keepalive_timeout,
        shutdown_timeout=config.shutdown_grace,
    )
    await runner.setup()
    try:
        guard = ConnectionGuard(config, daemon.registry)
        site = GuardedSite(runner, host, port, guard=guard)
        await site.start()
        daemon.listening.set()
        log.info("kds.listening", url=f"http://{host}:{port}")
        notify("READY=1")
        interval = watchdog_interval()
        if interval:
            daemon.supervisor.spawn("systemd:watchdog", watchdog_loop(interval))
        await stop.wait()
    finally:
        daemon.listening.clear()
        notify("STOPPING=1")
        await runner.cleanup()
