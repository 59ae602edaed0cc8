"""Duplicate webhooks arriving together: each is a 202, each item is stored once, the store stays healthy."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.simulators.ready2order import Ready2OrderSimulator

from .test_ready2order_e2e import SECRET, TOKEN, r2o_orders
from .util import base_config, wait_until

PAIRS = 500
CONCURRENCY = 64


@pytest.fixture
async def sim() -> AsyncIterator[Ready2OrderSimulator]:
    sim = Ready2OrderSimulator(account_token=TOKEN, seed=7)
    sim.seed_menu()
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
def config_data(tmp_path: Path, sim: Ready2OrderSimulator) -> dict[str, Any]:
    source = {
        "type": "ready2order",
        "base_url": sim.api_url,
        "account_token": TOKEN,
        "webhook_secret": SECRET,
        "group_window": "50ms",
        "poll_interval": "1h",
        "refetch_delay": "50ms",
    }
    return base_config(tmp_path, sources=[source])


async def test_duplicate_webhooks_together_are_202_and_stored_once(
    client: TestClient, daemon: Daemon, sim: Ready2OrderSimulator
) -> None:
    # 1,000 webhooks in 500 duplicate pairs, 64 in flight at a time (each pair together): every
    # answer is 202, the inbox keeps each event once, every item is on exactly one ticket, and
    # the store and /readyz stay healthy (a duplicate is not a store failure).
    products, tables = list(sim.products), list(sim.tables)
    ids = [
        sim.create_items(tables[n % len(tables)], [(products[n % len(products)], 1)], notify=False)[
            0
        ]
        for n in range(PAIRS)
    ]
    bodies = [
        json.dumps({"id": f"evt-{oid}", "event": "orderItem.created", "resource": [oid]}).encode()
        for oid in ids
    ]
    url = f"http://127.0.0.1:{client.port}/hooks/ready2order/{SECRET}"
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
        queue.put_nowait(body)
    statuses: Counter[int] = Counter()

    async def deliver(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            async with session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                statuses[response.status] += 1

    async with aiohttp.ClientSession() as session:
        await asyncio.wait_for(asyncio.gather(*(deliver(session) for _ in range(CONCURRENCY))), 120)
    assert statuses == {202: 2 * PAIRS}
    rows = await daemon.store.fetchall("SELECT dedupe_key FROM inbox WHERE source = 'ready2order'")
    assert sorted(r["dedupe_key"] for r in rows) == sorted(
        f"event:orderItem.created:evt-{oid}" for oid in ids
    )

    def stored_items() -> Counter[int]:
        return Counter(item.id for order in r2o_orders(daemon) for item in order.items)

    await wait_until(lambda: set(stored_items()) == set(ids), timeout=60)
    assert max(stored_items().values()) == 1
    assert daemon.store.health()["ok"] and daemon.store.health()["lastError"] is None
    ready = await client.get("/readyz")
    report = await ready.json()
    assert (
        ready.status == 200 and report["status"] == "ok" and report["components"]["store"]["ok"]
    ), report
