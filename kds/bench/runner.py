"""The bench run: which servers start, in which order, and what each phase measures.

1. kds "live" (fresh store) beside the bare broadcast baseline (the same screens,
   rate and payloads: the order JSON kds sent), their requests alternated one by one
   so both meet the same machine: fan-out — 200 screens, one status change at a
   time (paced at `rate`), delay until every screen has it; then ingest → screen —
   50 screens, orders posted at `rate` for `duration`, delay from POST to each
   screen's `order.created`.
2. kds "ingest" (fresh store): `orders` orders posted over `concurrency`
   connections, each acknowledged after commit; then RSS with those orders open
   and 50 screens (their snapshots received); then restarts on that store, timed
   from process start to `/readyz` 200, each followed by the bare restart baseline
   (aiohttp reading the same orders into dicts), and RSS again with 50 screens.
3. The bare ingest baseline with the same orders and connections.
4. Wide fan-out: one change to 1,000 screens, the last screen's delay, beside the
   bare broadcast to as many (`scale.py`).
5. POS to paper (a virtual printer) and POS to screen per source, ready2order and
   PORTOS webhooks from their simulators (`kitchen.py`).
6. Growth: RSS and restart at 1k, 10k and 50k open orders; the idle CPU with 10
   screens (`scale.py`).
7. Ticket render, in this process: median of rendering one three-item ticket.
8. Reports: `GET /api/v1/reports` over 10 × `orders` archived orders (100,000 by
   default; their report rows written straight into a kds database), median of 3.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from .kitchen import print_phase, webhooks_phase
from .load import (
    Paced,
    Run,
    Screens,
    broadcasts,
    encoded_orders,
    get_text,
    ingest,
    percentile,
    post_json,
)
from .load import paced as _paced
from .profile import recording
from .report import Figure, Report
from .scale import idle_phase, scale_phase, size_label, wide_phase
from .servers import (
    BYTECODE_NOTE,
    ENDPOINTS,
    Server,
    baseline_broadcast_server,
    baseline_ingest_server,
    baseline_restart_server,
    compile_kds,
    cpu_seconds,
    kds_server,
    peak_rss_bytes,
    rss_bytes,
    write_config,
)

MB = 1024 * 1024
#: Phases a run can be limited to (`--only`).
PHASES = (
    "live",
    "ingest",
    "baselines",
    "wide",
    "print",
    "webhooks",
    "scale",
    "idle",
    "render",
    "reports",
)
#: Archived orders the reports figure reads, per ingested order (10 × 10,000 = 100,000).
ARCHIVED_PER_ORDER = 10
_STATUS_BODY = b'{"status":"delivered"}'


@dataclass
class Options:
    """The size of a run (defaults: the issue's figures)."""

    orders: int = 10_000
    concurrency: int = 64
    screens: int = 50
    rate: float = 50.0
    duration: float = 10.0
    fanout_screens: int = 200
    #: One stall delays a few changes for every screen at once: over 100 changes that was the p99.
    fanout_changes: int = 500
    renders: int = 300
    restarts: int = 3
    #: POS changes timed per webhook source, and their pace (per second).
    webhook_samples: int = 100
    webhook_rate: float = 10.0
    #: Screens, changes and pace of the wide fan-out.
    wide_screens: int = 1000
    wide_changes: int = 100
    #: Each server's pace: kds's changes and the baseline's alternate, 10 a second in all.
    wide_rate: float = 5.0
    #: Open orders at which RSS and restart are measured.
    scale: tuple[int, ...] = (1_000, 10_000, 50_000)
    idle_screens: int = 10
    idle_seconds: float = 30.0
    #: Ingest rounds, each on a fresh database; the fastest counts, for kds and baseline alike.
    rounds: int = 2
    synchronous: str = "FULL"
    deflate: bool = True
    profile: Path | None = None
    workdir: Path | None = None
    phases: tuple[str, ...] = PHASES

    @classmethod
    def quick(cls, **overrides: Any) -> Options:
        """A smaller run (~30 s): fewer orders, shorter paced phases."""
        values: dict[str, Any] = {
            "orders": 2_000,
            "duration": 3.0,
            "fanout_changes": 30,
            "renders": 100,
            "webhook_samples": 30,
            "wide_changes": 20,
            "scale": (1_000, 2_000, 5_000),
            "idle_seconds": 5.0,
        }
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True)
class IngestRound:
    """What one ingest burst measured."""

    rate: float
    p50: float
    p99: float
    cpu_ms_per_order: float
    client_cpu_ms_per_order: float
    orders_per_commit: float | None = None  # kds only: how many orders shared a transaction


class Bench:
    """Runs every phase and collects the measurements into a Report."""

    def __init__(self, options: Options, progress: Callable[[str], None] = lambda _: None) -> None:
        self.options = options
        self.progress = progress
        self.m: dict[str, float] = {}
        self.notes: dict[str, str] = {}
        self.linear: dict[str, bool | None] = {}  # scale figures: grows at most linearly
        self.errors: list[str] = []
        self._servers: list[Server] = []
        self._templates: dict[str, str] = {}
        self.kds_compresses = False
        self.run_id = f"{int(time.time()) % 100000}"

    async def run(self) -> Report:
        """Every phase, then the report; servers are always stopped."""
        started = time.perf_counter()
        if self.options.workdir is not None:
            self.options.workdir.mkdir(parents=True, exist_ok=True)
            await self._phases(self.options.workdir)
        else:
            with tempfile.TemporaryDirectory(prefix="kds-bench-") as tmp:
                await self._phases(Path(tmp))
        report = self._report()
        report.setup["seconds"] = round(time.perf_counter() - started, 1)
        return report

    async def _phases(self, workdir: Path) -> None:
        self.workdir = workdir
        phases = [
            ("live", "kds live feed beside the bare broadcast", self._live),
            ("ingest", "kds ingest, memory, restart", self._kds_ingest),
            ("baselines", "baseline ingest", self._baseline_ingest),
            ("wide", "fan-out to 1,000 screens", lambda: wide_phase(self)),
            ("print", "POS to paper", lambda: print_phase(self)),
            ("webhooks", "POS webhooks to screens", lambda: webhooks_phase(self)),
            ("scale", "growth with open orders", lambda: scale_phase(self)),
            ("idle", "idle CPU", lambda: idle_phase(self)),
            ("render", "ticket render", self._render),
            ("reports", "reports over archived orders", self._reports),
        ]
        self.load_before = os.getloadavg()[0]
        self.fsync = await asyncio.to_thread(_fsync_latency, workdir)
        await asyncio.to_thread(compile_kds)
        await self.run_phases(
            [(name, phase) for group, name, phase in phases if group in self.options.phases]
        )

    async def run_phases(self, phases: list[tuple[str, Callable[[], Awaitable[None]]]]) -> None:
        """Each phase in turn; a failed one is an error of the report; its servers are stopped."""
        try:
            for name, phase in phases:
                self.progress(f"bench: {name} …")
                try:
                    await phase()
                except Exception as err:
                    self.errors.append(f"{name}: {type(err).__name__}: {err}")
                finally:
                    for server in self._servers:
                        await server.stop()
                    self._servers.clear()
        finally:
            for server in self._servers:
                server.kill()

    def start(self, server: Server) -> Server:
        """Track `server` so it is stopped after its phase."""
        self._servers.append(server)
        return server

    async def fresh_kds(self, name: str, **config: str) -> Server:
        """kds on a new database `{name}.sqlite3` with config `{name}.toml` (see `write_config`)."""
        db = self.workdir / f"{name}.sqlite3"
        path = write_config(self.workdir, db, self.options.synchronous, name=name, **config)
        server = self.start(kds_server(self.workdir, path, db, f"kds-{name}"))
        await server.start()
        return server

    async def stored_orders(self, server: Server, prefix: str, count: int) -> dict[str, str]:
        """`count` orders stored through the API: externalId → kds id."""
        stats = await ingest(
            server.url + "/api/v1/orders", encoded_orders(prefix, count), 8, keep_bodies=True
        )
        self._check_ingest(f"{prefix} setup", stats.errors, len(stats.bodies), count)
        return {(order := json.loads(body))["externalId"]: order["id"] for body in stats.bodies}

    def _screens(self, urls: list[str], event_type: str, *, snapshot: bool) -> Screens:
        return Screens(urls, event_type, snapshot=snapshot, deflate=self.options.deflate)

    def screen_urls(self, port: int, count: int, path: str = "/api/v1/ws") -> list[str]:
        if path == "/ws":
            return [f"ws://127.0.0.1:{port}/ws"] * count
        return [
            f"ws://127.0.0.1:{port}{path}?endpoint={ENDPOINTS[i % len(ENDPOINTS)]}"
            for i in range(count)
        ]

    async def interleaved(
        self, session: aiohttp.ClientSession, runs: list[Run], rate: float | None = None
    ) -> Paced:
        """The runs' requests alternated one by one, each run at `rate` (default: the bench's),
        until every screen has every event; records each server's CPU per request.

        Alternated, kds and its baseline share whatever else the machine does in those
        seconds, so their ratio holds even while the box's speed drifts. Also recorded: this
        process's CPU share (near 1.0 the load generator may be the limit).
        """
        rate = rate or self.options.rate
        merged = [r for step in zip(*(run.requests for run in runs), strict=True) for r in step]
        for run in runs:
            run.screens.expect(len(run.requests))
        cpus = [cpu_seconds(run.pid) for run in runs]
        wall, cpu = time.perf_counter(), time.process_time()
        result = await _paced(session, merged, rate * len(runs))
        for run in runs:
            await run.screens.wait(10 + len(run.requests) / rate)
        share = (time.process_time() - cpu) / (time.perf_counter() - wall)
        for run, before in zip(runs, cpus, strict=True):
            count = len(run.requests)
            self.m[run.cpu_key] = (cpu_seconds(run.pid) - before) * 1000 / count
            self.m[f"{run.key}.client_cpu_share"] = share
        if result.errors:
            self.errors.append(f"{' and '.join(r.key for r in runs)}: HTTP errors {result.errors}")
        return result

    def record_delays(self, run: Run, result: Paced) -> None:
        """Delays of every (event, screen), HTTP answer times and first-to-last screen spreads."""
        keys = [key for key, _, _ in run.requests]
        sent = {key: result.sent[key] for key in keys}
        delays, missing = run.screens.latencies(sent)
        answers = [result.answers[key] for key in keys if key in result.answers]
        for name, values in (
            ("", delays),
            (".answer", answers),
            (".spread", run.screens.spreads()),
        ):
            self.m[f"{run.key}{name}.p50"] = percentile(values, 50) * 1000
            self.m[f"{run.key}{name}.p99"] = percentile(values, 99) * 1000
        self.m[f"{run.key}.max"] = max(delays, default=math.nan) * 1000
        if missing:
            self.errors.append(f"{run.key}: {missing} deliveries did not arrive")

    # ------------------------------------------------------------------ live feed

    async def _live(self) -> None:
        """kds's live feed beside the bare broadcast, their requests interleaved."""
        o = self.options
        kds = await self.fresh_kds("live")
        api = kds.url + "/api/v1/orders"
        async with aiohttp.ClientSession() as session:
            # Fan-out: orders exist before the screens connect; each change is one event to all.
            changes, updated = await self.status_changes(session, kds, "fan", o.fanout_changes)
            kds_screens = self._screens(
                self.screen_urls(kds.port, o.fanout_screens), "order.updated", snapshot=True
            )
            await kds_screens.open()
            # The baseline broadcast speaks what kds agreed to: compressed or not.
            self.kds_compresses = kds_screens.compressed
            base = self.start(baseline_broadcast_server(self.workdir, self.kds_compresses))
            await base.start()
            fanout = Run("fanout", "fanout.cpu_ms_per_change", kds.pid, changes, kds_screens)
            await self.beside_baseline(session, fanout, base, updated, "order.updated")

            # Ingest → screen: orders posted at a steady rate while screens listen.
            created = self._templates["order.created"] = await self._created_template(session, api)
            orders = encoded_orders(f"lat{self.run_id}", max(1, round(o.rate * o.duration)))
            screens = self._screens(
                self.screen_urls(kds.port, o.screens), "order.created", snapshot=True
            )
            await screens.open()
            screen = Run(
                "screen",
                "screen.cpu_ms_per_order",
                kds.pid,
                [(ext, api, body) for ext, body in orders],
                screens,
            )
            await self.beside_baseline(session, screen, base, created, "order.created")

    async def status_changes(
        self, session: aiohttp.ClientSession, kds: Server, prefix: str, count: int
    ) -> tuple[list[tuple[str, str, bytes]], str]:
        """`count` status changes to as many stored orders, and the JSON of an order after the
        same change (one more order, changed first): what the baseline broadcasts for one."""
        api = kds.url + "/api/v1/orders"
        ids = await self.stored_orders(kds, f"{prefix}{self.run_id}", count + 1)
        _, sample = ids.popitem()
        await post_json(session, f"{api}/{sample}/status", _STATUS_BODY)
        template = await get_text(session, f"{api}/{sample}")
        changes = [(ext, f"{api}/{oid}/status", _STATUS_BODY) for ext, oid in ids.items()]
        return changes, template

    async def beside_baseline(
        self,
        session: aiohttp.ClientSession,
        run: Run,
        base: Server,
        template: str,
        event_type: str,
        *,
        rate: float | None = None,
        record: Callable[[Run, Paced], None] | None = None,
        timeout: float = 60.0,
    ) -> None:
        """`run` on kds (its screens open) interleaved with as many broadcasts of `template` by
        the bare broadcast `base` to as many screens; both recorded by `record` (default: the
        delays of every screen, `record_delays`). The screens are closed after."""
        count, screens_n = len(run.requests), len(run.screens.urls)
        base_key = f"base.{run.key}"
        base_run = Run(
            base_key,
            f"{base_key}.cpu_ms_per_event",
            base.pid,
            broadcasts(base.url, template, event_type, base_key, count),
            self._screens(
                self.screen_urls(base.port, screens_n, "/ws"), event_type, snapshot=False
            ),
        )
        try:
            await base_run.screens.open(timeout)
            await self.await_screens(session, base, screens_n)
            async with recording(run.pid, self.options.profile, run.key):
                result = await self.interleaved(session, [run, base_run], rate)
            for each in (run, base_run):
                (record or self.record_delays)(each, result)
        finally:
            await run.screens.close()
            await base_run.screens.close()

    async def _created_template(self, session: aiohttp.ClientSession, api: str) -> str:
        """What kds sends for a new order (one posted for it): the baseline broadcasts it."""
        ((ext, body),) = encoded_orders(f"tpl{self.run_id}", 1)
        await post_json(session, api, body)
        async with session.get(api, params={"externalId": ext}) as response:
            order = (await response.json())["items"][0]
        return json.dumps(order, separators=(",", ":"))

    def _check_ingest(self, what: str, errors: dict[int, int], stored: int, expected: int) -> None:
        if errors or stored != expected:
            raise RuntimeError(
                f"{what}: {stored} of {expected} orders stored, HTTP errors {errors}"
            )

    async def _kds_ingest(self) -> None:
        o = self.options
        db = self.workdir / "ingest.sqlite3"
        config = write_config(self.workdir, db, o.synchronous)
        rounds = []
        for n in range(1, o.rounds + 1):
            # Earlier rounds on databases of their own; the last one's server and database go on
            # to the memory and restart figures, so they always hold exactly `orders` orders.
            last = n == o.rounds
            server = self.start(
                kds_server(
                    self.workdir,
                    config,
                    db if last else self.workdir / f"ingest-round-{n}.sqlite3",
                    f"kds-ingest-{n}",
                )
            )
            await server.start()
            commits = await _store_commits(server)
            async with recording(server.pid, o.profile if last else None, "ingest"):
                burst = await self._ingest_round(
                    "ingest", server, "/api/v1/orders", f"ing{self.run_id}r{n}"
                )
            commits = await _store_commits(server) - commits
            rounds.append(
                dataclasses.replace(
                    burst, orders_per_commit=o.orders / commits if commits > 0 else None
                )
            )
            if not last:
                await server.stop()
        self._record_rounds("ingest", rounds)

        live_rss, live_peak = await self.rss_with_screens(server, "memory-live")
        await server.stop()

        # The median of a few restarts: one start is a couple of seconds, easily hit by other work.
        # Each is followed by a bare start reading the same orders (the baseline), in turn.
        walls, cpus, bare = [], [], []
        for n in range(o.restarts):
            restarted = self.start(kds_server(self.workdir, config, db, f"kds-restart-{n + 1}"))
            walls.append(await restarted.start())
            # CPU seconds to readiness: what the restart costs, whatever else the machine is doing.
            cpus.append(cpu_seconds(restarted.pid))
            if n < o.restarts - 1:
                await restarted.stop()
            baseline = baseline_restart_server(self.workdir, db, f"baseline-restart-{n + 1}")
            bare.append(await self.start(baseline).start())
            await baseline.stop()
        self.m["restart"] = statistics.median(walls)
        self.m["restart.cpu_s"] = statistics.median(cpus)
        self.m["base.restart"] = statistics.median(bare)
        self.notes["restart"] = (
            f"median of {len(walls)}: "
            + ", ".join(f"{w:.2f}" for w in walls)
            + " s; baseline "
            + ", ".join(f"{w:.2f}" for w in bare)
            + f" s; {BYTECODE_NOTE}"
        )
        async with aiohttp.ClientSession() as session:
            async with session.get(
                restarted.url + "/api/v1/orders", params={"$take": "1", "isProcessed": "false"}
            ) as r:
                open_orders = (await r.json())["totalCount"]
        if open_orders != o.orders:
            self.errors.append(
                f"restart: {open_orders} open orders after restart, expected {o.orders}"
            )
        restart_rss, restart_peak = await self.rss_with_screens(restarted, "memory-restart")
        self.m["rss"] = max(live_rss, restart_rss) / MB
        self.notes["rss"] = (
            f"after ingest {live_rss / MB:.0f} MB (peak {live_peak / MB:.0f}), "
            f"after restart {restart_rss / MB:.0f} MB (peak {restart_peak / MB:.0f})"
        )

    async def rss_with_screens(self, server: Server, phase: str) -> tuple[int, int]:
        """RSS once every screen has its snapshot, and the process's peak so far."""
        screens = self._screens(
            self.screen_urls(server.port, self.options.screens), "order.created", snapshot=True
        )
        self.m[f"{phase}.rss_before_screens_mb"] = rss_bytes(server.pid) / MB
        started = time.perf_counter()
        async with recording(server.pid, self.options.profile, phase):
            await screens.open(timeout=120)
        self.m[f"{phase}.snapshot_s"] = time.perf_counter() - started
        self.m[f"{phase}.snapshot_mb"] = screens.snapshot_bytes / MB
        try:
            # The screens have every page; the figure is the RSS of the connected, idle
            # screens, so wait until kds has let go of the pages it shared among them.
            self.m[f"{phase}.rss_last_page_mb"] = rss_bytes(server.pid) / MB
            await _snapshots_sent(server)
            return rss_bytes(server.pid), peak_rss_bytes(server.pid)
        finally:
            await screens.close()

    # ------------------------------------------------------------------ baselines

    async def _baseline_ingest(self) -> None:
        async def server(n: int) -> Server:
            db = self.workdir / f"baseline-{n}.sqlite3"
            return baseline_ingest_server(self.workdir, self.options.synchronous, db)

        await self.ingest_rounds("base.ingest", "baseline ingest", "/orders", "base", server)

    async def ingest_rounds(
        self,
        key: str,
        what: str,
        path: str,
        prefix: str,
        server_of: Callable[[int], Awaitable[Server]],
    ) -> None:
        """`rounds` ingest bursts, each into a new server `server_of(n)`; the fastest counts."""
        rounds = []
        for n in range(1, self.options.rounds + 1):
            server = self.start(await server_of(n))
            await server.start()
            rounds.append(
                await self._ingest_round(what, server, path, f"{prefix}{self.run_id}r{n}")
            )
            await server.stop()
        self._record_rounds(key, rounds)

    async def _ingest_round(self, what: str, server: Server, path: str, prefix: str) -> IngestRound:
        """One burst of `orders` distinct orders over `concurrency` connections."""
        o = self.options
        orders = encoded_orders(prefix, o.orders)
        cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
        stats = await ingest(server.url + path, orders, o.concurrency)
        self._check_ingest(what, stats.errors, stats.count - sum(stats.errors.values()), o.orders)
        return IngestRound(
            rate=stats.rate,
            p50=percentile(stats.latencies, 50) * 1000,
            p99=percentile(stats.latencies, 99) * 1000,
            # CPU per order is steadier than the rate on a shared machine; the load
            # generator's own share too, since it runs on the same two cores.
            cpu_ms_per_order=(cpu_seconds(server.pid) - cpu) * 1000 / o.orders,
            client_cpu_ms_per_order=(time.process_time() - client_cpu) * 1000 / o.orders,
        )

    def _record_rounds(self, key: str, rounds: list[IngestRound]) -> None:
        """The fastest round is the figure (other work on a shared host only slows a round
        down); every round's rate is in the details and the note."""
        best = max(rounds, key=lambda r: r.rate)
        for name, value in dataclasses.asdict(best).items():
            if value is not None:
                self.m[f"{key}.{name}"] = value
        for n, r in enumerate(rounds, start=1):
            self.m[f"{key}.round{n}.rate"] = r.rate

    async def await_screens(
        self, session: aiohttp.ClientSession, server: Server, count: int
    ) -> None:
        """Until the broadcast server counts every screen (it registers them after the handshake)."""
        deadline = time.perf_counter() + 10
        while time.perf_counter() < deadline:
            async with session.get(server.url + "/readyz") as response:
                if (await response.json())["screens"] >= count:
                    return
            await _tick()
        raise RuntimeError(f"the broadcast server did not register {count} screens")

    # ------------------------------------------------------------------ render

    async def _render(self) -> None:
        from kds.model import Order
        from kds.printing.config import PrinterConfig
        from kds.printing.render import Ticket, TicketRenderer

        template = self._templates.get("order.created")
        order = Order.model_validate_json(template) if template else _sample_order()
        renderer = TicketRenderer(PrinterConfig(address="127.0.0.1:9100"))
        ticket = Ticket(
            order=order, endpoint=ENDPOINTS[0], item_ids=tuple(i.id for i in order.items), job_id=1
        )
        for _ in range(5):  # warm caches (code pages, profile)
            renderer.render(ticket)
        times = []
        for _ in range(self.options.renders):
            t0 = time.perf_counter()
            data = renderer.render(ticket)
            times.append(time.perf_counter() - t0)
        if not data:
            raise RuntimeError("the renderer produced no bytes")
        self.m["render"] = statistics.median(times) * 1000
        self.notes["render"] = f"{len(order.items)} items, {len(data)} bytes"

    # ------------------------------------------------------------------ reports

    async def _reports(self) -> None:
        archived = self.options.orders * ARCHIVED_PER_ORDER
        db = self.workdir / "reports.sqlite3"
        config = write_config(self.workdir, db, self.options.synchronous)
        server = self.start(kds_server(self.workdir, config, db, "kds-reports-schema"))
        await server.start()  # creates the schema
        await server.stop()
        days = await asyncio.to_thread(_seed_report_rows, db, archived)
        server = self.start(kds_server(self.workdir, config, db, "kds-reports"))
        await server.start()
        params = {
            "from": "2026-01-01T00:00:00+00:00",
            "to": f"2026-01-{days + 1:02d}T00:00:00+00:00",
        }
        times = []
        async with aiohttp.ClientSession() as session:
            for _ in range(3):
                t0 = time.perf_counter()
                async with session.get(server.url + "/api/v1/reports", params=params) as r:
                    body = await r.json()
                times.append(time.perf_counter() - t0)
        if r.status != 200 or body["total"]["tickets"] != 2 * archived:
            raise RuntimeError(f"reports: {r.status}, {body.get('total')}")
        self.m["reports"] = statistics.median(times) * 1000
        self.notes["reports"] = (
            f"{archived:,} archived orders over {days} days, {len(body['hours'])} station-hours"
        )

    # ------------------------------------------------------------------ report

    def _rounds_note(self) -> str:
        """Every ingest round's rate, kds and baseline (the figure is the fastest of each)."""
        parts = []
        for key, who in (("ingest", "kds"), ("base.ingest", "baseline")):
            rates = [
                self.m[k]
                for n in range(1, self.options.rounds + 1)
                if (k := f"{key}.round{n}.rate") in self.m
            ]
            if rates:
                parts.append(f"{who} " + ", ".join(f"{r:,.0f}" for r in rates))
        return (
            f"fastest of {self.options.rounds} rounds, each on a fresh database: "
            + "; ".join(parts)
            if parts
            else ""
        )

    def _report(self) -> Report:
        o = self.options
        m = self.m.get
        nan = math.nan
        report = Report(errors=list(self.errors))
        report.setup = {
            "cpus": os.cpu_count(),
            "loadBefore": round(self.load_before, 2),
            "loadAfter": round(os.getloadavg()[0], 2),
            "fsyncMs": {"p50": round(self.fsync[0], 2), "p99": round(self.fsync[1], 2)},
            "orders": o.orders,
            "concurrency": o.concurrency,
            "screens": o.screens,
            "rate": o.rate,
            "duration": o.duration,
            "fanoutScreens": o.fanout_screens,
            "fanoutChanges": o.fanout_changes,
            "renders": o.renders,
            "restarts": o.restarts,
            "rounds": o.rounds,
            "synchronous": o.synchronous,
            "deflate": o.deflate,
            "kdsCompresses": self.kds_compresses,
            "webhookSamples": o.webhook_samples,
            "webhookRate": o.webhook_rate,
            "wideScreens": o.wide_screens,
            "wideChanges": o.wide_changes,
            "wideRate": o.wide_rate,
            "scale": list(o.scale),
            "idleScreens": o.idle_screens,
            "idleSeconds": o.idle_seconds,
        }
        report.add(
            Figure(
                "ingest.rate",
                f"durable ingest, {o.concurrency} clients",
                "orders/s",
                m("ingest.rate", nan),
                m("base.ingest.rate"),
                "≥ 3,000 and ≥ 0.75× baseline",
                lambda f: f.value >= 3000 and (f.ratio is None or f.ratio >= 0.75),
                note=self._rounds_note(),
            )
        )
        report.add(
            Figure(
                "ingest.p50", "ingest latency p50", "ms", m("ingest.p50", nan), m("base.ingest.p50")
            )
        )
        report.add(
            Figure(
                "ingest.p99", "ingest latency p99", "ms", m("ingest.p99", nan), m("base.ingest.p99")
            )
        )
        report.add(
            Figure(
                "screen.p50",
                f"ingest → {o.screens} screens p50 at {o.rate:g}/s",
                "ms",
                m("screen.p50", nan),
                m("base.screen.p50"),
            )
        )
        report.add(
            Figure(
                "screen.p99",
                f"ingest → {o.screens} screens p99 at {o.rate:g}/s",
                "ms",
                m("screen.p99", nan),
                m("base.screen.p99"),
                "≤ 25 and ≤ 2× baseline",
                lambda f: f.value <= 25 and (f.ratio is None or f.ratio <= 2),
            )
        )
        report.add(
            Figure(
                "fanout.p99",
                f"fan-out to {o.fanout_screens} screens p99",
                "ms",
                m("fanout.p99", nan),
                m("base.fanout.p99"),
                "≤ 50 and ≤ 2× baseline",
                lambda f: f.value <= 50 and (f.ratio is None or f.ratio <= 2),
            )
        )
        report.add(
            Figure(
                "restart",
                f"restart with {o.orders:,} open orders",
                "s",
                m("restart", nan),
                m("base.restart"),  # a bare aiohttp start reading the same orders
                "≤ 1",
                lambda f: f.value <= 1,
                note=self.notes.get("restart", ""),
            )
        )
        report.add(
            Figure(
                "rss",
                f"RSS, {o.orders:,} open orders, {o.screens} screens",
                "MB",
                m("rss", nan),
                None,
                "≤ 100",
                lambda f: f.value <= 100,
                note=self.notes.get("rss", ""),
            )
        )
        report.add(
            Figure(
                "render",
                "ticket render median",
                "ms",
                m("render", nan),
                None,
                "≤ 1.2",
                lambda f: f.value <= 1.2,
                note=self.notes.get("render", ""),
            )
        )
        self._kitchen_figures(report)
        report.add(
            Figure(
                "reports",
                f"report over {o.orders * ARCHIVED_PER_ORDER:,} archived orders",
                "ms",
                m("reports", nan),
                None,
                "≤ 2000",
                lambda f: f.value <= 2000,
                note=self.notes.get("reports", ""),
            )
        )
        report.setup["details"] = {
            k: round(v, 3) for k, v in sorted(self.m.items()) if not math.isnan(v)
        }
        # A partial run (--only) reports only what it measured.
        if len(o.phases) < len(PHASES):
            report.figures = [f for f in report.figures if not math.isnan(f.value)]
        return report

    def _kitchen_figures(self, report: Report) -> None:
        """The second round's figures: POS to paper and screen, a wide fan-out, growth, idle."""
        o = self.options
        m = self.m.get
        nan = math.nan
        report.add(
            Figure(
                "print.p99",
                f"order → ticket cut at the printer p99 at {o.rate:g}/s",
                "ms",
                m("print.p99", nan),
                None,
                "≤ 25",
                lambda f: f.value <= 25,
            )
        )
        for key, name, limit in (
            ("webhook.ready2order.p99", "ready2order webhook → screens p99", 50),
            ("webhook.portos.p99", "PORTOS webhook → poll → screens p99", 100),
        ):
            report.add(
                Figure(
                    key,
                    name,
                    "ms",
                    m(key, nan),
                    None,
                    f"≤ {limit}",
                    lambda f, limit=limit: f.value <= limit,
                )
            )
        report.add(
            Figure(
                "fanout1000.p99",
                f"one change → last of {o.wide_screens:,} screens p99",
                "ms",
                m("fanout1000.p99", nan),
                m("base.fanout1000.p99"),
                "≤ 100 and ≤ 3× baseline",
                lambda f: f.value <= 100 and (f.ratio is None or f.ratio <= 3),
            )
        )
        # Targets from the issue at 10k and 50k; every size must grow at most linearly.
        limits = {"rss": {10_000: 100.0}, "restart": {10_000: 1.0, 50_000: 5.0}}
        for what, unit, title in (
            ("rss", "MB", "RSS, {n} open orders, {s} screens"),
            ("restart", "s", "restart with {n} open orders"),
        ):
            sizes = sorted(set(o.scale))
            for n in sizes:
                key = f"scale.{what}.{size_label(n)}"
                limit = limits[what].get(n)
                linear = self.linear.get(f"scale.{what}") if n == sizes[-1] else None
                target = " and ".join(
                    t
                    for t in (
                        f"≤ {limit:g}" if limit is not None else "",
                        "at most linear" if n == sizes[-1] else "",
                    )
                    if t
                )
                report.add(
                    Figure(
                        key,
                        title.format(n=f"{n:,}", s=o.screens),
                        unit,
                        m(key, nan),
                        None,
                        target,
                        (
                            lambda f, limit=limit, linear=linear, last=n == sizes[-1]: (
                                (limit is None or f.value <= limit)
                                and (not last or linear is not False)
                            )
                        )
                        if target
                        else None,
                        note=self.notes.get(f"scale.{what}", "") if n == sizes[-1] else "",
                    )
                )
        report.add(
            Figure(
                "idle.cpu",
                f"idle, {o.idle_screens} screens, no orders, {o.idle_seconds:g} s (% of one core)",
                "%",
                m("idle.cpu", nan),
                None,
                "≤ 0.5",
                lambda f: f.value <= 0.5,
            )
        )


def _seed_report_rows(db: Path, orders: int) -> int:
    """Report rows of `orders` archived orders (two stations, three items each); the days they span.

    Written as kds's archiver writes them: one ticket row per order and station, product
    times summed per hour, station and product.
    """
    import sqlite3
    from collections import Counter

    days = max(1, min(28, orders // 3000))
    spacing = days * 86400 / orders
    menu = [f"Dish {n}" for n in range(30)]
    tickets = []
    products: Counter[tuple[str, str, str, str]] = Counter()
    seconds: Counter[tuple[str, str, str, str]] = Counter()
    for n in range(orders):
        at = int(n * spacing)
        day, hour, minute, sec = 1 + at // 86400, at % 86400 // 3600, at % 3600 // 60, at % 60
        arrived = f"2026-01-{day:02d}T{hour:02d}:{minute:02d}:{sec:02d}+00:00"
        for station in ENDPOINTS[:2]:
            tickets.append(
                (
                    f"bench{n:010d}",
                    station,
                    arrived,
                    300.0 + n % 600,
                    3,
                    n % 50 == 0,
                    n % 70 == 0,
                    0,
                )
            )
            for k in range(3):
                key = (arrived[:13], station, menu[(n + k) % 30], "")
                products[key] += 1
                seconds[key] += 200 + k * 60
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO report_tickets VALUES (?, ?, ?, ?, ?, ?, ?, ?)", tickets)
        conn.executemany(
            "INSERT INTO report_products VALUES (?, ?, ?, ?, ?, ?)",
            [(*key, count, seconds[key]) for key, count in products.items()],
        )
    return days


def _fsync_latency(directory: Path, rounds: int = 50) -> tuple[float, float]:
    """p50 and p99 ms of a 4 KiB write + fsync in `directory`: what one durable commit costs at least."""
    path = directory / "fsync.probe"
    times = []
    with open(path, "wb") as f:
        for _ in range(rounds):
            t0 = time.perf_counter()
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
            times.append((time.perf_counter() - t0) * 1000)
    path.unlink()
    return percentile(times, 50), percentile(times, 99)


async def _store_commits(server: Server) -> int:
    """Transactions kds's store has committed so far (from /readyz)."""
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + "/readyz") as response:
            return int((await response.json())["components"]["store"].get("commits", 0))


async def _snapshots_sent(server: Server, timeout: float = 10.0) -> None:
    """Until kds reports no snapshot still being sent to a screen (`/readyz`)."""
    deadline = time.perf_counter() + timeout
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() < deadline:
            async with session.get(server.url + "/readyz") as response:
                if (await response.json())["components"]["screens"]["snapshotsSending"] == 0:
                    return
            await _tick()
    raise RuntimeError(
        f"kds was still sending snapshots {timeout:.0f} s after the screens had them"
    )


async def _tick() -> None:
    await asyncio.sleep(0.01)  # polling another process's state


def _sample_order() -> Any:
    """The bench's three-item order as kds stores it (for a run without the live phase)."""
    from kds.model import Order, utcnow

    from .load import order_body

    now = utcnow().isoformat()
    wire = order_body("render-1")
    stations = {1: "grill", 2: "cold", 3: "bar"}
    for item in wire["items"]:
        history = [{"status": "created", "date": now}, {"status": "sent", "date": now}]
        item["endpoints"] = [
            {"name": stations[item["id"]], "status": "sent", "statusChanges": history}
        ]
    wire.update(
        id="0" * 32, number=42, source="native", externalId=wire["id"], createdAt=now, updatedAt=now
    )
    return Order.model_validate(wire)
