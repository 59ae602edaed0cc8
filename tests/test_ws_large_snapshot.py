"""A snapshot of many open orders is built a page at a time: the daemon keeps serving meanwhile.

At 50,000 open orders building a screen's snapshot took seconds on the event loop; screens
already connected could not answer a ping meanwhile and the watchdog closed them (1013).
"""

from __future__ import annotations

import asyncio
from typing import Any

import websockets
from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.model import OrderIn

from .test_ws import recv, ws_url
from .util import order_body

ORDERS = 700  # ~1.4 MB of order JSON: six pages or so


async def _ingest(daemon: Daemon, prefix: str, count: int) -> None:
    for i in range(count):
        await daemon.service.ingest(OrderIn.model_validate(order_body(f"{prefix}{i}")))


async def _snapshot(ws: Any) -> list[dict[str, Any]]:
    pages = [await recv(ws)]
    while pages[-1]["more"]:
        pages.append(await recv(ws))
    return pages


class BuildProbe:
    """Runs on the loop beside the daemon; counts the turns it got while a snapshot was built."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.turns_while_building = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            if self.daemon.hub.health().get("snapshotsBuilding", 0):
                self.turns_while_building += 1
            await asyncio.sleep(0)

    async def building(self, timeout: float = 10) -> None:
        """Until a snapshot is seen being built (bounded)."""
        async with asyncio.timeout(timeout):
            while not self.turns_while_building:
                await asyncio.sleep(0)

    def stop(self) -> None:
        self._task.cancel()


async def test_other_work_runs_between_the_pages_of_a_snapshot(
    client: TestClient, daemon: Daemon
) -> None:
    # While a multi-page snapshot is built, the loop runs other tasks between its pages
    # (pongs of other screens, HTTP requests): the build never holds it for the whole snapshot.
    await _ingest(daemon, "big", ORDERS)
    probe = BuildProbe(daemon)
    try:
        async with websockets.connect(ws_url(client, endpoint="grill"), max_size=None) as ws:
            pages = await _snapshot(ws)
    finally:
        probe.stop()
    assert len(pages) >= 3
    assert sorted(o["externalId"] for p in pages for o in p["orders"]) == sorted(
        f"big{i}" for i in range(ORDERS)
    )
    assert probe.turns_while_building >= len(pages) - 1


async def test_changes_during_a_snapshot_build_reach_the_screen_once(
    client: TestClient, daemon: Daemon
) -> None:
    # An order created and an order changed while the screen's snapshot is still being built:
    # the snapshot holds the orders open when the screen connected, the events after it bring
    # the new order once and the change; nothing is lost or shown older than it is.
    await _ingest(daemon, "c", ORDERS)
    last = daemon.service.find("native", f"c{ORDERS - 1}")
    assert last is not None
    probe = BuildProbe(daemon)
    try:
        async with websockets.connect(ws_url(client, endpoint="grill"), max_size=None) as ws:
            await probe.building()
            changed = await client.post(
                f"/api/v1/orders/{last.id}/endpoints/grill/status", json={"status": "delivered"}
            )
            assert changed.status == 200
            created = await client.post("/api/v1/orders", json=order_body("during"))
            assert created.status == 201
            pages = await _snapshot(ws)
            events = [await recv(ws), await recv(ws)]
    finally:
        probe.stop()
    seq = pages[0]["seq"]
    snapshot = {o["id"]: o for p in pages for o in p["orders"]}
    assert sorted(o["externalId"] for o in snapshot.values()) == sorted(
        f"c{i}" for i in range(ORDERS)
    )
    assert [e["seq"] for e in events] == [seq + 1, seq + 2]
    assert [e["type"] for e in events] == ["order.updated", "order.created"]
    assert events[1]["order"]["externalId"] == "during"
    # The screen applies an event unless it is older (version, then updatedAt: web/js/feed.js).
    assert events[0]["order"]["id"] == last.id
    newest = max(
        snapshot[last.id], events[0]["order"], key=lambda o: (o["version"], o["updatedAt"])
    )
    assert newest["endpointStatuses"]["grill"] == "delivered"
