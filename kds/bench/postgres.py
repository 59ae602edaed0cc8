"""`kds bench --db postgresql://…`: kds on PostgreSQL beside a bare asyncpg baseline.

Phases, each on a fresh database made on the given server (the URL's user
needs CREATEDB; the databases are dropped at the end):

1. durable ingest: `orders` orders over `concurrency` connections into one kds
   node, and into the bare asyncpg handler (`baseline_pg_ingest`), `rounds`
   rounds each, the fastest counting — target ≥ 0.5× the baseline;
2. cross-node screen latency: two kds nodes on one database, `screens` screens
   on node B, orders posted to node A at `rate` for `duration` — the delay from
   the POST to each of B's screens seeing `order.created`, target p99 ≤ 50 ms.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg

from .load import Run, encoded_orders
from .report import Figure, Report
from .runner import Bench, Options, _fsync_latency
from .servers import Server, free_port, kds_server, write_config


def database_url(url: str, name: str) -> str:
    """`url` with its database replaced by `name`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


class PgBench(Bench):
    """The PostgreSQL figures of `kds bench`."""

    def __init__(self, options: Options, url: str, progress=lambda _: None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(options, progress)
        self.url = url
        self._databases: list[str] = []

    async def _phases(self, workdir: Path) -> None:
        self.workdir = workdir
        self.load_before = os.getloadavg()[0]
        self.fsync = _fsync_latency(workdir)
        try:
            await self.run_phases(
                [
                    ("kds ingest on PostgreSQL", self._pg_kds_ingest),
                    ("baseline asyncpg ingest", self._pg_baseline_ingest),
                    ("cross-node screen latency", self._cross_node),
                ]
            )
        finally:
            await self._drop_databases()

    async def _fresh_database(self, name: str) -> str:
        """A new empty database on the server; its URL."""
        full = f"kds_bench_{self.run_id}_{name}"
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(f'CREATE DATABASE "{full}"')
        finally:
            await conn.close()
        self._databases.append(full)
        return database_url(self.url, full)

    async def _drop_databases(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            for name in self._databases:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    def _config(self, node: str) -> Path:
        path = write_config(self.workdir, self.workdir / "unused.sqlite3", name=f"bench-{node}")
        with path.open("a", encoding="utf-8") as config:
            config.write(f'\n[node]\nname = "{node}"\n')
        return path

    def _node(self, url: str, node: str) -> Server:
        """A kds node on `url` (not started; `start` it to have it stopped after the phase)."""
        return kds_server(self.workdir, self._config(node), url, f"kds-{node}")  # type: ignore[arg-type]

    async def _pg_kds_ingest(self) -> None:
        async def server(n: int) -> Server:
            return self._node(await self._fresh_database(f"kds{n}"), f"ingest{n}")

        await self.ingest_rounds("ingest", "ingest", "/api/v1/orders", "pg", server)

    async def _pg_baseline_ingest(self) -> None:
        async def server(n: int) -> Server:
            url = await self._fresh_database(f"base{n}")
            port = free_port()
            argv = [sys.executable, "-m", "kds.bench.baseline_pg_ingest", "--port", str(port)]
            return Server("baseline-pg", [*argv, "--db", url], port, self.workdir / "base-pg.log")

        await self.ingest_rounds("base.ingest", "baseline ingest", "/orders", "pgb", server)

    async def _cross_node(self) -> None:
        o = self.options
        url = await self._fresh_database("nodes")
        a, b = self.start(self._node(url, "a")), self.start(self._node(url, "b"))
        await a.start()
        await b.start()
        screens = self._screens(self.screen_urls(b.port, o.screens), "order.created", snapshot=True)
        await screens.open()
        try:
            orders = encoded_orders(f"x{self.run_id}", max(1, round(o.rate * o.duration)))
            api = a.url + "/api/v1/orders"
            # CPU of the node whose screens are timed: what the fan-out there costs.
            run = Run(
                "crossnode",
                "crossnode.screen_node_cpu_ms_per_order",
                b.pid,
                [(e, api, body) for e, body in orders],
                screens,
            )
            async with aiohttp.ClientSession() as session:
                self.record_delays(run, await self.interleaved(session, [run]))
        finally:
            await screens.close()

    def _report(self) -> Report:
        o = self.options
        m = self.m.get
        nan = math.nan
        report = Report(errors=list(self.errors))
        report.setup = {
            "database": _without_password(self.url),
            "cpus": os.cpu_count(),
            "loadBefore": round(self.load_before, 2),
            "loadAfter": round(os.getloadavg()[0], 2),
            "orders": o.orders,
            "concurrency": o.concurrency,
            "screens": o.screens,
            "rate": o.rate,
            "duration": o.duration,
            "rounds": o.rounds,
        }
        report.add(
            Figure(
                "pg.ingest.rate",
                f"durable ingest on PostgreSQL, {o.concurrency} clients",
                "orders/s",
                m("ingest.rate", nan),
                m("base.ingest.rate"),
                "≥ 0.5× asyncpg baseline",
                lambda f: f.ratio is not None and f.ratio >= 0.5,
                note=self._rounds_note(),
            )
        )
        for p in ("p50", "p99"):
            report.add(
                Figure(
                    f"pg.ingest.{p}",
                    f"ingest latency {p}",
                    "ms",
                    m(f"ingest.{p}", nan),
                    m(f"base.ingest.{p}"),
                )
            )
        report.add(
            Figure(
                "pg.crossnode.p50",
                f"node A ingest → {o.screens} screens on node B p50 at {o.rate:g}/s",
                "ms",
                m("crossnode.p50", nan),
            )
        )
        report.add(
            Figure(
                "pg.crossnode.p99",
                f"node A ingest → {o.screens} screens on node B p99 at {o.rate:g}/s",
                "ms",
                m("crossnode.p99", nan),
                None,
                "≤ 50",
                lambda f: f.value <= 50,
            )
        )
        report.setup["details"] = {
            k: round(v, 3) for k, v in sorted(self.m.items()) if not math.isnan(v)
        }
        return report


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", "@")
    return urlunsplit(parts._replace(netloc=netloc))
