"""kds's own API: a negative quantity is never a new dish; removing a dish prints a VOID (issue 14, item 5)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.simulators.printer import VirtualPrinter

from .util import base_config, order_body, printed_grill, wait_until


@pytest.fixture
def config_data(tmp_path: Path, printer: VirtualPrinter) -> dict[str, Any]:
    return base_config(
        tmp_path,
        endpoints=printed_grill(printer.address),
        routing={
            "default_endpoint": "grill",
            "rules": [{"product_group": "Drinks", "endpoint": "bar"}],
        },
    )


@pytest.mark.parametrize("quantity", [-1, "-1", {"amount": -2, "unit": "pcs"}, 0, "-0.001"])
async def test_negative_quantity_is_a_422_and_stores_nothing(
    client: TestClient, daemon: Daemon, quantity: Any
) -> None:
    # Guarantees: a return line posted as a negative (or zero) quantity is refused with the
    # reason; the order is not half-stored and nothing reaches a screen or printer.
    body = order_body("neg-1")
    body["items"][0]["quantity"] = quantity
    resp = await client.post("/api/v1/orders", json=body)
    assert resp.status == 422
    problem = await resp.json()
    assert problem["error"] and "quantity" in problem["detail"]
    assert daemon.service.find("native", "neg-1") is None


async def test_removing_a_dish_through_the_item_route_prints_a_void_and_updates_the_station(
    client: TestClient, daemon: Daemon, printer: VirtualPrinter
) -> None:
    # Guarantees: the documented way to take a dish back (processSkipped on the item) prints a
    # VOID at its station and the station's live feed shows the item cancelled.
    created = await (await client.post("/api/v1/orders", json=order_body("ret-1"))).json()
    first = (await printer.wait_for_jobs(1))[0]
    assert "2 x Cheeseburger" in first.text
    await wait_until(
        lambda: (
            daemon.service.get(created["id"]).item(1).endpoint("grill").status.value == "delivered"
        )
    )  # type: ignore[union-attr]
    async with client.session.ws_connect(f"{client.make_url('/api/v1/ws')}?endpoint=grill") as ws:
        snapshot = await ws.receive_json(timeout=5)
        assert snapshot["type"] == "snapshot"
        resp = await client.post(
            f"/api/v1/orders/{created['id']}/items/1/status", json={"status": "processSkipped"}
        )
        assert resp.status == 200

        async def cancelled() -> dict[str, Any]:
            while True:
                message = await ws.receive_json(timeout=5)
                if message["type"] == "order.updated":
                    return message

        update = await asyncio.wait_for(cancelled(), 5)
    assert [(c["itemId"], c["endpoint"], c["status"]) for c in update["changes"]] == [
        (1, "grill", "processSkipped")
    ]
    item = next(i for i in update["order"]["items"] if i["id"] == 1)
    assert item["endpoints"][0]["status"] == "processSkipped"
    void = (await printer.wait_for_jobs(2))[1]
    assert (
        void.lines[0].text.strip() == "VOID"
        and "2 x Cheeseburger" in void.text
        and "Pilsner" not in void.text
    )
