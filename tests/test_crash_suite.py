"""The crash suite: SIGKILL `kds run` at random moments under load; nothing acknowledged is lost.

One daemon (a subprocess) with a grill screen, a bar printer (the virtual
printer, in this process) and a PORTOS source (the simulator, in this process).
Each round starts the load, kills the daemon at a random moment — after a
random number of acknowledgements, when a ticket is on its way to the printer,
or after a random delay — restarts it and checks:

* every acknowledged order and status change is there, with the id it was
  acknowledged with; no order is stored twice or without having been sent;
* nothing is half-written: every stored order has all its items, every item its
  endpoints, every history starts at `created`, follows the state machine and
  ends at the current status;
* the websocket feed's seq after the restart is above every seq seen before;
* every print queued in the outbox reached the virtual printer at least once,
  and a repeat is marked REPRINT;
* every PORTOS status change reached the simulator, in order.

`KDS_CRASH_SEED=N` replays a run; `pytest --long` runs 100 rounds instead of 20.
The suite runs on SQLite and on PostgreSQL (a real server, tests/pg.py; 5
rounds, 20 with --long).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets

from kds.simulators.portos import PortosSimulator
from kds.simulators.printer import VirtualPrinter

from .crash.harness import (
    PORTOS_PLUS,
    Ledger,
    Load,
    check_orders,
    check_prints,
    check_writebacks,
    fetch_orders,
    read_outbox,
)
from .util import KdsProcess, base_config, wait_until, write_config

pytestmark = pytest.mark.slow

TOKEN = "crash-portos-token"
ROUNDS, LONG_ROUNDS = 20, 100
#: Rounds on PostgreSQL (each restart is slower there: a shorter run in CI).
PG_ROUNDS, PG_LONG_ROUNDS = 5, 20
TRIGGERS = ("acks", "acks", "print", "delay")


@pytest.fixture
async def bar() -> AsyncIterator[VirtualPrinter]:
    async with VirtualPrinter(name="bar") as printer:
        yield printer


@pytest.fixture
async def sim() -> AsyncIterator[PortosSimulator]:
    sim = PortosSimulator(
        static_tokens=[TOKEN], devices={"P01": {"DefaultOrderEndpointName": "grill"}}
    )
    for code, (name, endpoints) in PORTOS_PLUS.items():
        sim.add_plu(code, name, endpoints)
    await sim.start()
    yield sim
    await sim.stop()


def crash_config(tmp_path: Path, printer: VirtualPrinter, sim: PortosSimulator) -> dict[str, Any]:
    """Grill screen, bar printer (auto-processed), native + PORTOS sources, no ingest rate limit."""
    return base_config(
        tmp_path,
        logging={"level": "info", "format": "json"},
        security={"ingest_rate": 0},
        endpoints=[
            {"name": "grill", "display": True},
            {
                "name": "bar",
                "printer": {
                    "address": printer.address,
                    "retry_initial": 0.05,
                    "retry_max": 0.2,
                    "attempts": 2,
                    "status_timeout": 1,
                    "connect_timeout": 1,
                    "write_timeout": 2,
                },
            },
        ],
        routing={
            "default_endpoint": "grill",
            "rules": [{"product_group": "Drinks", "endpoint": "bar"}],
        },
        sources=[
            {"type": "native"},
            {
                "type": "portos",
                "base_url": sim.url,
                "token": TOKEN,
                "poll_interval": "50ms",
                "reconcile_interval": 0,
                "max_backoff": "200ms",
                "request_timeout": "1s",
                "writeback_retry": "20ms",
                "writeback_max_backoff": "200ms",
            },
        ],
    )


async def kill_trigger(
    kind: str, rng: random.Random, ledger: Ledger, printer: VirtualPrinter
) -> str:
    """Wait for the random moment of this round; return what it was."""
    if kind == "acks":
        target = ledger.acknowledged() + rng.randint(1, 40)
        await wait_until(lambda: ledger.acknowledged() >= target, timeout=15)
        return f"after {target} acknowledgements"
    if kind == "print":
        # A ticket is being written to the printer right now (bytes arrived, job not recorded yet).
        received, jobs = printer.bytes_received, len(printer.jobs)
        try:
            await wait_until(
                lambda: printer.bytes_received > received and len(printer.jobs) == jobs,
                timeout=10,
                interval=0.001,
            )
        except AssertionError:
            return "after 10 s without a ticket in flight"
        return "while a ticket was printing"
    # The moment itself is what is random here, not a wait for an effect.
    delay = rng.uniform(0.0, 0.4)
    await asyncio.sleep(delay)
    return f"{delay * 1000:.0f} ms into the load"


def _start_quietly(kds: KdsProcess) -> bool:
    try:
        kds.start()
        return True
    except RuntimeError:  # killed while starting, as intended
        return False


async def kill_during_startup(kds: KdsProcess, rng: random.Random) -> str:
    """Start the daemon and SIGKILL it at a random moment of its recovery (loading, outbox replay)."""
    old = kds.proc
    starting = asyncio.create_task(asyncio.to_thread(_start_quietly, kds))
    await wait_until(lambda: kds.proc is not old)
    delay = rng.uniform(0.0, 0.8)
    await asyncio.sleep(delay)  # the random moment itself, not a wait for an effect
    kds.kill()
    ready = await starting
    kds.kill()
    return f", then {delay * 1000:.0f} ms into the restart ({'after' if ready else 'before'} it was ready)"


async def settle(
    kds: KdsProcess, db: Path | str, printer: VirtualPrinter, sim: PortosSimulator
) -> list[dict[str, Any]]:
    """After a restart: wait until queued prints printed and write-backs arrived; return every order."""
    async with aiohttp.ClientSession(kds.url) as http:

        async def settled() -> list[dict[str, Any]] | None:
            orders = await fetch_orders(http)
            if check_prints(await read_outbox(db, "print"), printer.jobs, orders)[0]:
                return None
            if any(r["done_at"] is None for r in await read_outbox(db, "writeback")):
                return None
            return orders if not check_writebacks(orders, sim)[0] else None

        try:
            return await wait_until(settled, timeout=20, interval=0.05)
        except AssertionError:
            return await fetch_orders(http)  # the checks say what is missing


async def check_feed(kds: KdsProcess, ledger: Ledger, orders: list[dict[str, Any]]) -> list[str]:
    """The restarted feed numbers past everything seen before and snapshots every live order."""
    async with websockets.connect(
        kds.url.replace("http://", "ws://") + "/api/v1/ws", max_size=None
    ) as ws:
        pages = [json.loads(await asyncio.wait_for(ws.recv(), 10))]
        while pages[-1].get("more"):  # a big snapshot comes in pages ("snapshot.more")
            pages.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    problems = []
    seq = pages[0]["seq"]
    if seq <= ledger.max_seq:
        problems.append(
            f"feed seq {seq} after the restart is not above {ledger.max_seq} seen before"
        )
    if any(p["seq"] != seq for p in pages) or [p["type"] for p in pages[1:]] != [
        "snapshot.more"
    ] * (len(pages) - 1):
        problems.append(f"snapshot pages disagree: {[(p['type'], p['seq']) for p in pages]}")
    shown = [o["id"] for p in pages for o in p["orders"]]
    if len(shown) != len(set(shown)) or set(shown) != {o["id"] for o in orders}:
        missing = {o["id"] for o in orders} - set(shown)
        problems.append(
            f"the feed's snapshot ({len(shown)} orders in {len(pages)} pages) and the orders API "
            f"({len(orders)}) disagree about the live orders; missing {sorted(missing)[:5]}"
        )
    return problems


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_sigkill_at_random_moments_loses_nothing_acknowledged(
    tmp_path: Path,
    bar: VirtualPrinter,
    sim: PortosSimulator,
    long_run: bool,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    # Under concurrent load, ≥20 SIGKILLs at random moments: after every restart all that was
    # acknowledged is there and whole, the feed's seq only grows, every ticket printed, every
    # PORTOS change arrived.
    seed = int(os.environ.get("KDS_CRASH_SEED") or random.randrange(1 << 32))
    rng = random.Random(seed)
    rounds = LONG_ROUNDS if long_run else ROUNDS
    config = crash_config(tmp_path, bar, sim)
    db: Path | str = tmp_path / "kds.sqlite3"
    if backend == "postgresql":
        rounds = PG_LONG_ROUNDS if long_run else PG_ROUNDS
        db = config["database"]["url"] = request.getfixturevalue("pg_url")
    kds = KdsProcess(write_config(tmp_path / "config.toml", config), tmp_path / "kds.sqlite3")
    ledger = Ledger()
    totals: Counter[str] = Counter()
    began = time.monotonic()
    print(
        f"\ncrash suite on {backend}: seed {seed}, {rounds} rounds (KDS_CRASH_SEED={seed} replays)"
    )
    await asyncio.to_thread(kds.start)
    try:
        for round_no in range(1, rounds + 1):
            load = Load(kds.url, ledger, rng, round_no, sim=sim)
            await load.start()
            trigger = rng.choice(TRIGGERS)
            if round_no % 4 == 0:
                # Some rounds with a slow printer, so kills land in the middle of a ticket.
                await bar.set_mode("slow", times=3, delay=0.05)
            try:
                moment = await kill_trigger(trigger, rng, ledger, bar)
            finally:
                assert kds.proc is not None
                died = kds.proc.poll()
                kds.kill()
                await load.stop()
            assert died is None, (
                f"round {round_no}: kds died on its own ({died}): {kds.log_path.read_text()[-3000:]}"
            )
            await bar.set_mode("online")
            if rng.random() < 0.3:
                moment += await kill_during_startup(kds, rng)
            await asyncio.to_thread(kds.start)

            orders = await settle(kds, db, bar, sim)
            problems = list(ledger.problems)
            order_problems, stats = check_orders(ledger, orders)
            print_problems, print_stats = check_prints(
                await read_outbox(db, "print"), bar.jobs, orders
            )
            writeback_problems, writeback_stats = check_writebacks(orders, sim)
            problems += (
                order_problems
                + print_problems
                + writeback_problems
                + await check_feed(kds, ledger, orders)
            )
            stats.update(print_stats)
            stats.update(writeback_stats)
            totals["rounds"] += 1
            summary = (
                f"round {round_no}/{rounds}: killed {moment}; {stats['orders checked']} orders "
                f"({stats['acknowledged orders']} acknowledged, {stats['unacknowledged orders stored whole']} "
                f"unacknowledged but whole), {len(ledger.acks)} acknowledged changes, "
                f"{stats['item endpoints checked']} item endpoints, "
                f"{sum(v for k, v in stats.items() if k.endswith('tickets queued'))} tickets printed "
                f"({stats['reprints marked REPRINT']} reprints marked), {stats['PORTOS orders']} PORTOS orders with "
                f"{stats['PORTOS status changes written back']} write-backs, feed seq {ledger.max_seq}"
            )
            print(summary)
            assert not problems, f"seed {seed}, {summary}\n" + "\n".join(problems[:30])
        final = (
            f"crash suite passed: {rounds} SIGKILLs, {len(ledger.orders)} orders and {len(ledger.acks)} status "
            f"changes acknowledged and found, {len(bar.jobs)} print jobs, {len(sim.orders)} PORTOS orders, "
            f"{time.monotonic() - began:.1f} s (seed {seed})"
        )
        print(final)
    finally:
        kds.kill()
