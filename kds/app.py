"""Builds the daemon: every component, the aiohttp app, and their lifecycle.

Components start in dependency order — store, bus, outbox, service, screens,
printers, sources — and stop in reverse: sources first (no new orders), then
the websockets are closed, printers drained with a bounded wait, and the store
closed last, after every write in flight committed.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from .api import health, openapi, orders, printers, workflow
from .api.auth import ACCESS, AccessControl
from .api.connections import ConnectionGuard, GuardedSite
from .api.health import ComponentCollector
from .api.middleware import add_security_headers, request_middleware
from .api.pairing import pairing_routes
from .api.screens import setup_screens
from .api.ws import setup_ws
from .appkeys import BUS, CLOCK, COMPONENTS, METRICS, SERVICE, SETTINGS, SNAPSHOT_EXTRAS, SPOOLER
from .archive import Archiver
from .bus import EventBus
from .clock import Clock, SystemClock
from .config import Settings
from .outbox import Outbox
from .service import KitchenService
from .sources.base import SourceContext
from .sources.registry import source_module
from .store import open_store
from .systemd import notify, watchdog_interval, watchdog_loop
from .tasks import TaskSupervisor

log = structlog.get_logger(__name__)

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"


class Daemon:
    """One restaurant's kds: the components and the web app that serves them."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        #: The one clock every timer of this daemon waits on (tests pass a ManualClock).
        self.clock: Clock = clock or SystemClock()
        self.registry = CollectorRegistry()
        self.supervisor = TaskSupervisor()
        self.store = open_store(settings.database.path, synchronous=settings.database.synchronous)
        self.bus = EventBus(self.store)
        self.outbox = Outbox(self.store)
        writeback = [c.name for c in settings.sources if source_module(c.type).WRITES_BACK]
        self.service = KitchenService(
            settings, self.store, self.bus, self.outbox, self.registry, writeback_sources=writeback
        )
        self.access = AccessControl(settings.security, settings.server)
        self.app = web.Application(
            client_max_size=settings.server.max_body_bytes,
            middlewares=[request_middleware(self.access)],
        )
        self.hub = setup_ws(self.app, self.bus, self.clock)
        self.printers = self._build_printers()
        self.source_ctx = SourceContext(
            service=self.service,
            inbox=self.service,
            outbox=self.outbox,
            supervisor=self.supervisor,
            bus=self.bus,
            metrics=self.registry,
            settings=settings,
            clock=self.clock,
        )
        self.sources = [source_module(c.type).create(c, self.source_ctx) for c in settings.sources]
        self.app.setdefault(SNAPSHOT_EXTRAS, {})["sourceAlerts"] = self.source_ctx.alerts.snapshot
        self.components: list[Any] = [
            self.supervisor,
            self.store,
            self.bus,
            self.outbox,
            self.service,
            self.hub,
            *self.printers,
            *self.sources,
            Archiver(self.service.archive, self.supervisor, settings.database.archive_interval),
        ]
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
        app[CLOCK] = self.clock
        app[ACCESS] = self.access
        app.add_routes(pairing_routes())
        app.setdefault(SNAPSHOT_EXTRAS, {})
        app.add_routes(orders.routes)
        app.add_routes(workflow.routes)
        app.add_routes(printers.routes)
        app.add_routes(health.routes)
        app.add_routes(openapi.routes)
        app.add_routes(self.source_ctx.routes)
        setup_screens(app, WEB_ROOT)
        app.on_response_prepare.append(add_security_headers)
        app.cleanup_ctx.append(self._lifecycle)
        self.registry.register(ComponentCollector(app))

    async def _lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        started: list[Any] = []
        try:
            for component in self.components:
                await component.start()
                started.append(component)
            app[COMPONENTS] = started
            _tune_gc()
            log.info(
                "kds.ready",
                orders=self.service.health()["orders"],
                endpoints=len(self.settings.endpoints),
            )
            yield
        finally:
            for component in reversed(started):
                try:
                    await asyncio.wait_for(component.stop(), self.settings.server.shutdown_grace)
                except Exception:
                    log.exception("kds.stop_failed", component=component.name)
            log.info("kds.stopped")


def _tune_gc() -> None:
    """Keep the cyclic GC from rescanning the long-lived order view on every burst.

    The loaded orders are moved to the permanent generation, and young
    collections run less often: kds allocates many short-lived objects per
    request but creates few reference cycles, so full scans were pure overhead.
    """
    gc.freeze()  # no collect first: the just-loaded view is all live, walking it costs ~0.5 s
    gc.set_threshold(50_000, 20, 50)


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
