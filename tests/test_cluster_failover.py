"""Two `kds run` processes on one PostgreSQL database: failover with SIGKILL.

Real processes, a real PostgreSQL server (tests/pg.py), a virtual printer on
127.0.0.1 decoding the bytes it receives. Nothing here sleeps a fixed time:
every wait is on a condition with a bound.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets

from kds.simulators.printer import VirtualPrinter

from .util import KdsProcess, base_config, order_body, wait_until, write_config

pytestmark = pytest.mark.slow


def node(tmp_path: Path, pg_url: str, name: str, **overrides: Any) -> KdsProcess:
    """`kds run` as node `name` of the cluster on `pg_url` (not started)."""
    data = base_config(
        tmp_path,
        database={"url": pg_url},
        node={"name": name},
        logging={"level": "info", "format": "json"},
        **overrides,
    )
    config = write_config(tmp_path / f"{name}.toml", data)
    return KdsProcess(config, tmp_path / f"{name}.sqlite3", log_path=tmp_path / f"{name}.log")


async def readyz(kds: KdsProcess) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{kds.url}/readyz") as response:
        return await response.json()


async def holds(kds: KdsProcess, resource: str) -> bool:
    return resource in (await readyz(kds))["components"]["locks"]["holds"]


async def next_event(ws: Any, type_: str) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] == type_:
            return message


async def test_an_order_on_a_shows_on_bs_screen_and_a_bump_on_b_on_as(
    tmp_path: Path, pg_url: str
) -> None:
    # Two processes on one database: A's order reaches B's websocket; B's bump reaches A's.
    a, b = node(tmp_path, pg_url, "a"), node(tmp_path, pg_url, "b")
    await asyncio.to_thread(a.start)
    await asyncio.to_thread(b.start)
    try:
        async with (
            websockets.connect(a.url.replace("http", "ws") + "/api/v1/ws") as ws_a,
            websockets.connect(b.url.replace("http", "ws") + "/api/v1/ws") as ws_b,
            aiohttp.ClientSession() as http,
        ):
            await next_event(ws_a, "snapshot")
            await next_event(ws_b, "snapshot")
            async with http.post(f"{a.url}/api/v1/orders", json=order_body("p1")) as response:
                assert response.status == 201
                order_id = (await response.json())["id"]
            assert (await next_event(ws_b, "order.created"))["order"]["id"] == order_id
            for status in ("delivered", "processed"):
                path = f"{b.url}/api/v1/orders/{order_id}/endpoints/grill/status"
                async with http.post(path, json={"status": status}) as response:
                    assert response.status == 200, await response.text()
            await next_event(ws_a, "order.updated")
            bumped = await next_event(ws_a, "order.updated")
            grill = bumped["order"]["items"][0]["endpoints"][0]
            assert (grill["name"], grill["status"]) == ("grill", "processed")
    finally:
        await asyncio.to_thread(a.kill)
        await asyncio.to_thread(b.kill)


def drink(i: int) -> dict[str, Any]:
    return order_body(f"d{i}", items=[{"id": 1, "plu": {"name": f"Drink {i}", "group": "Drinks"}}])


async def test_sigkill_of_the_printer_node_under_load_prints_everything_on_the_other(
    tmp_path: Path, pg_url: str
) -> None:
    # A drives the bar printer; orders stream into both nodes; A is SIGKILLed mid-stream.
    # B takes the printers over: every acknowledged ticket prints at least once, and a ticket
    # that printed again is marked REPRINT.
    async with VirtualPrinter(name="bar") as bar:
        endpoints = [
            {"name": "grill", "display": True},
            {"name": "cold", "display": True},
            {
                "name": "bar",
                "printer": {
                    "address": bar.address,
                    "retry_initial": 0.05,
                    "retry_max": 0.3,
                    "status_timeout": 1,
                },
            },
        ]
        a = node(tmp_path, pg_url, "a", endpoints=endpoints)
        b = node(tmp_path, pg_url, "b", endpoints=endpoints)
        await asyncio.to_thread(a.start)
        await asyncio.to_thread(b.start)
        acked: list[int] = []
        try:
            assert await holds(a, "printer:bar") and not await holds(b, "printer:bar")
            async with aiohttp.ClientSession() as http:

                async def post(kds: KdsProcess, i: int) -> None:
                    try:
                        async with http.post(f"{kds.url}/api/v1/orders", json=drink(i)) as r:
                            if r.status == 201:
                                acked.append(i)
                    except aiohttp.ClientError:
                        pass  # A is gone: not acknowledged, not promised

                async def stream() -> None:
                    for i in range(120):
                        await post(a if i % 2 else b, i)

                load = asyncio.create_task(stream())
                await wait_until(lambda: len(acked) >= 40, timeout=120)
                await asyncio.to_thread(a.kill)
                await load
                await wait_until(lambda: holds(b, "printer:bar"), timeout=20)
                async with http.get(f"{b.url}/api/v1/printers") as response:
                    [printer] = (await response.json())["items"]
                    assert printer["heldBy"] == "b"

            def printed(i: int) -> list[str]:
                return [job.text for job in bar.jobs if f"1 x Drink {i}\n" in job.text + "\n"]

            try:
                await wait_until(lambda: all(printed(i) for i in acked), timeout=60)
            except AssertionError:
                missing = [i for i in acked if not printed(i)]
                raise AssertionError(
                    f"drinks {missing} of {len(acked)} acknowledged never printed; "
                    f"node b's log: {b.log_path.read_text()[-3000:]}"
                ) from None
            assert len(acked) > 60  # B kept taking orders after A died
            for i in acked:
                first, *repeats = printed(i)
                assert all("REPRINT" in text for text in repeats), (i, repeats)
        finally:
            await asyncio.to_thread(a.kill)
            await asyncio.to_thread(b.kill)


async def test_sigkill_of_the_portos_poller_resumes_polling_on_the_other_without_duplicates(
    tmp_path: Path, pg_url: str
) -> None:
    # A polls PORTOS; tickets keep coming; A is SIGKILLed. B takes the poll over: every PORTOS
    # order becomes exactly one kds order, and each reached the kitchen (written back as sent).
    from kds.simulators.portos import PortosSimulator

    sim = PortosSimulator(
        static_tokens=["t"], devices={"P01": {"DefaultOrderEndpointName": "grill"}}
    )
    sim.add_plu(101, "Cheeseburger", ["grill"])
    await sim.start()
    source = {
        "type": "portos",
        "base_url": sim.url,
        "token": "t",
        "poll_interval": "50ms",
        "reconcile_interval": 0,
        "max_backoff": "200ms",
        "request_timeout": "2s",
        "writeback_retry": "20ms",
        "writeback_max_backoff": "200ms",
    }
    a = node(tmp_path, pg_url, "a", sources=[{"type": "native"}, source])
    b = node(tmp_path, pg_url, "b", sources=[{"type": "native"}, source])
    try:
        await asyncio.to_thread(a.start)
        await asyncio.to_thread(b.start)
        assert await holds(a, "source:portos") and not await holds(b, "source:portos")

        async def tickets(n: int) -> None:
            for _ in range(n):
                sim.create_ticket([{"pluCode": 101}])
                await asyncio.sleep(0)  # let the poller's answers interleave with new tickets

        async def kds_orders(kds: KdsProcess) -> list[dict[str, Any]]:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{kds.url}/api/v1/orders", params={"$take": "1000"}) as r:
                    return [o for o in (await r.json())["items"] if o["source"] == "portos"]

        await tickets(15)
        await wait_until(lambda: len(sim.orders) == 15, timeout=5)
        await wait_until(lambda: _all_sent(sim), timeout=20)
        await tickets(10)
        await asyncio.to_thread(a.kill)
        await tickets(10)
        await wait_until(lambda: holds(b, "source:portos"), timeout=10)
        await wait_until(lambda: _all_sent(sim), timeout=30)
        stored = await kds_orders(b)
        external = [o["externalId"] for o in stored]
        assert len(external) == len(set(external)), "an order was stored twice"
        assert set(external) == set(sim.orders)
    finally:
        await asyncio.to_thread(a.kill)
        await asyncio.to_thread(b.kill)
        await sim.stop()


def _all_sent(sim: Any) -> bool:
    """Every PORTOS order's grill item was written back as at least `sent`."""
    return bool(sim.orders) and all(
        sim.status_of(order_id, "grill")[-1:] not in ([], ["created"]) for order_id in sim.orders
    )
