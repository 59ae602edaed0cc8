"""`kds demo` as the README runs it: orders arrive from every POS kind, tickets reach the virtual printer."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import websockets

from kds.app import Daemon
from kds.clock import ManualClock
from kds.demo import demo_server
from kds.simulators.cooks import CookPace, SimulatedCooks

from .util import ROOT, free_port, order_body, wait_until

POS = {"native", "portos", "ready2order", "cheques"}


@asynccontextmanager
async def running_demo(
    tmp_path: Path, *args: str
) -> AsyncIterator[tuple[int, asyncio.subprocess.Process]]:
    """`kds demo` on the repo's config.toml and a free port, past its banner; stopped cleanly after."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kds.cli",
        "demo",
        "--config",
        str(ROOT / "config.toml"),
        *args,
        "--listen",
        f"127.0.0.1:{port}",
        "--db",
        str(tmp_path / "demo.sqlite3"),
        "--printer-log-dir",
        str(tmp_path / "printers"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    try:
        banner = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert "kds demo is running" in banner, banner + (await proc.stdout.read(4000)).decode()
        yield port, proc
    finally:
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
    assert proc.returncode == 0


def _orders_in(message: dict[str, Any]) -> list[dict[str, Any]]:
    return message.get("orders") or ([message["order"]] if "order" in message else [])


async def test_demo_runs_every_pos_kind(tmp_path: Path) -> None:
    # The demo on the repo's config.toml: the live feed shows orders from all four POS kinds and
    # bar tickets delivered by the virtual printer, whose log holds the decoded ticket text.
    async with running_demo(tmp_path, "--rate", "240", "--seed", "7") as (port, proc):
        assert proc.stdout is not None
        assert f"http://127.0.0.1:{port}/screen/grill" in (await proc.stdout.readline()).decode()
        seen: set[str] = set()
        printed = False
        async with websockets.connect(f"ws://127.0.0.1:{port}/api/v1/ws", max_size=None) as ws:

            async def watch() -> None:
                nonlocal printed
                while not (seen >= POS and printed):
                    for order in _orders_in(json.loads(await ws.recv())):
                        seen.add(order["source"])
                        printed |= order.get("endpointStatuses", {}).get("bar") in (
                            "delivered",
                            "processed",
                        )

            await asyncio.wait_for(watch(), 60)
        log = (tmp_path / "printers" / "bar.jsonl").read_text().splitlines()
        assert log and "BAR" in json.loads(log[0])["text"]


async def test_simulated_cooks_work_every_ticket_through_the_api(
    aiohttp_client: Any, daemon: Daemon
) -> None:
    # A cook per station sees each ticket on the live feed, acknowledges it at once like a screen,
    # accepts it after the pace's look and bumps it after its cooking time — all through the HTTP
    # API, with the clock in the test's hands.
    client = await aiohttp_client(daemon.app)
    clock = ManualClock()  # the cooks' sleep: pace delays pass only when the test says
    pace = CookPace(accept_after=10, cook_base=60, cook_per_item=20)
    cooks = SimulatedCooks(
        str(client.make_url("")),
        ["grill", "cold", "bar"],
        pace,
        rng=random.Random(3),
        sleep=clock.sleep,
    )
    await cooks.start()
    try:
        ids = []
        for i in range(5):
            response = await client.post("/api/v1/orders", json=order_body(f"c{i}"))
            ids.append((await response.json())["id"])
        tickets = 2 * len(ids)  # a burger at the grill and a beer at the bar each

        async def statuses() -> set[str]:
            found = set()
            for order_id in ids:
                order = await (await client.get(f"/api/v1/orders/{order_id}")).json()
                found |= set(order["endpointStatuses"].values())
            return found

        await clock.waiting(tickets, timeout=10)
        assert await statuses() == {"delivered"}  # seen, not yet started
        await clock.advance(pace.accept_after * 1.5)
        await clock.waiting(tickets, timeout=10)
        assert await statuses() == {"accepted"}
        await clock.advance(1.3 * (pace.cook_base + pace.cook_per_item))
        await wait_until(lambda: cooks.bumped == tickets, timeout=10)
        assert await statuses() == {"processed"}
    finally:
        await cooks.stop()


async def test_demo_restaurant_flows(tmp_path: Path) -> None:
    # `kds demo` with its cooks working fast: orders keep arriving, and they keep leaving —
    # tickets reach processed and the number of open orders stays small.
    args = ("--pos", "native", "--rate", "120", "--cook-speed", "30", "--seed", "5")
    async with running_demo(tmp_path, *args) as (port, _):
        orders: dict[str, dict[str, Any]] = {}
        most_open = 0
        async with websockets.connect(f"ws://127.0.0.1:{port}/api/v1/ws", max_size=None) as ws:

            async def watch() -> None:
                nonlocal most_open
                while sum(1 for o in orders.values() if o["isProcessed"]) < 40:
                    for order in _orders_in(json.loads(await ws.recv())):
                        orders[order["id"]] = order
                    most_open = max(
                        most_open, sum(1 for o in orders.values() if not o["isProcessed"])
                    )

            await asyncio.wait_for(watch(), 90)
        # At 2 orders a second and about 4 s per ticket, a dozen are open at a time; without
        # cooks every order would stay open.
        assert most_open <= 35, most_open


async def test_demo_exits_within_two_seconds_of_sigterm(tmp_path: Path) -> None:
    # Ctrl-C / SIGTERM with cooks and traffic running and a screen connected: the demo stops its
    # own clients first, the screen is told 1001 (going away), and the process is gone within 2 s,
    # not after websocket watchdogs time out.
    args = ("--pos", "native", "--rate", "120", "--cook-speed", "30", "--seed", "5")
    async with running_demo(tmp_path, *args) as (port, proc):
        async with websockets.connect(f"ws://127.0.0.1:{port}/api/v1/ws", max_size=None) as ws:
            await asyncio.wait_for(ws.recv(), 10)
            loop = asyncio.get_running_loop()
            proc.terminate()
            started = loop.time()
            await asyncio.wait_for(proc.wait(), 20)
            took = loop.time() - started
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert took < 2, f"kds demo took {took:.1f}s to stop"


@pytest.mark.parametrize(
    "listen,expected",
    [
        (None, ("127.0.0.1:8080", "open")),
        ("127.0.0.1:9000", ("127.0.0.1:9000", "open")),
        ("[::1]:9000", ("[::1]:9000", "open")),
        ("localhost:9000", ("localhost:9000", "open")),
        ("0.0.0.0:8080", ("0.0.0.0:8080", "loopback")),
        ("192.168.1.5:8080", ("192.168.1.5:8080", "loopback")),
    ],
)
def test_demo_is_open_only_on_loopback(listen: str | None, expected: tuple[str, str]) -> None:
    # The demo listens on 127.0.0.1 unless told otherwise, and is open (no tokens) only there:
    # on a network address other machines need a token, as with `kds run`.
    assert demo_server(listen) == expected


def test_demo_printer_logs_are_ignored_by_git() -> None:
    assert "demo-printers/" in (ROOT / ".gitignore").read_text().splitlines()
