"""`/readyz` counts the open orders as they change, without walking every order per request."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.model import utcnow

from .util import order_body


async def _open(client: TestClient) -> int:
    report = await (await client.get("/readyz")).json()
    return int(report["components"]["service"]["open"])


async def _set(client: TestClient, order: dict[str, Any], status: str) -> None:
    response = await client.post(f"/api/v1/orders/{order['id']}/status", json={"status": status})
    assert response.status == 200, await response.text()


async def test_open_count_follows_creations_bumps_recalls_and_archiving(
    client: TestClient, daemon: Daemon
) -> None:
    # The count is kept between requests; every change that can make an order open or done
    # (ingest, a status change, a recall, archiving) is seen by the next /readyz.
    assert await _open(client) == 0
    orders = [
        await (await client.post("/api/v1/orders", json=order_body(f"o{i}"))).json()
        for i in range(3)
    ]
    assert await _open(client) == 3
    await _set(client, orders[0], "delivered")
    assert await _open(client) == 3
    await _set(client, orders[0], "processed")
    assert await _open(client) == 2
    await _set(client, orders[1], "delivered")
    await _set(client, orders[1], "refused")
    assert await _open(client) == 1
    recalled = await client.post(
        f"/api/v1/orders/{orders[0]['id']}/status", json={"status": "accepted", "recall": True}
    )
    assert recalled.status == 200, await recalled.text()
    assert await _open(client) == 2
    assert await daemon.service.archive.archive_finished(utcnow() + timedelta(days=1)) == 1
    assert await _open(client) == 2
    assert daemon.service.view.count_open() == 2


async def test_after_a_restart_the_count_and_the_held_numbers_are_those_of_the_loaded_orders(
    client: TestClient, daemon: Daemon, aiohttp_client: Any
) -> None:
    # At start each loaded order is looked at once: the open count and the pickup numbers
    # held (a finished order's too, until its release) come from that one look.
    orders = [
        await (await client.post("/api/v1/orders", json=order_body(f"r{i}"))).json()
        for i in range(3)
    ]
    await _set(client, orders[0], "processed")
    await client.close()

    again = Daemon(daemon.settings)
    client = await aiohttp_client(again.app)
    assert await _open(client) == 2
    numbers = again.service.numbers
    for order in orders:
        assert numbers._held[order["number"]] == order["id"]
    assert [order_id for _, _, order_id in numbers._releases] == [orders[0]["id"]]
    fresh = await (await client.post("/api/v1/orders", json=order_body("r3"))).json()
    assert fresh["number"] not in {o["number"] for o in orders}
