"""A status further on is one request: the server walks the statuses between
(`states.path`), audits each step and writes each back as the POS expects."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.simulators.portos import PortosSimulator

from .test_portos_e2e import config_data, daemon, kds_orders, portos_auth, sim  # noqa: F401
from .util import order_body, until


def history(order: dict, item_id: int, endpoint: str) -> list[str]:
    item = next(i for i in order["items"] if i["id"] == item_id)
    ep = next(e for e in item["endpoints"] if e["name"] == endpoint)
    return [c["status"] for c in ep["statusChanges"]]


async def test_accepting_a_sent_ticket_walks_delivered_in_one_request(client: TestClient) -> None:
    # A screen's "accept" of a ticket that is only `sent`: one POST, both steps in the audit log.
    created = await client.post("/api/v1/orders", json=order_body("walk"))
    order = await created.json()
    response = await client.post(
        f"/api/v1/orders/{order['id']}/endpoints/grill/status", json={"status": "accepted"}
    )
    assert response.status == 200, await response.text()
    walked = await response.json()
    assert history(walked, 1, "grill") == ["created", "sent", "delivered", "accepted"]
    # The change is durable as one transaction: the stored order says the same.
    fetched = await (await client.get(f"/api/v1/orders/{order['id']}")).json()
    assert history(fetched, 1, "grill") == ["created", "sent", "delivered", "accepted"]


async def test_a_status_that_cannot_be_reached_is_still_409_and_nothing_changes(
    client: TestClient,
) -> None:
    created = await client.post("/api/v1/orders", json=order_body("unreachable"))
    order = await created.json()
    path = f"/api/v1/orders/{order['id']}/items/1/status"
    response = await client.post(path, json={"status": "created"})
    assert response.status == 409
    assert (await response.json())["allowed"] == ["delivered", "failed", "processSkipped"]
    fetched = await (await client.get(f"/api/v1/orders/{order['id']}")).json()
    assert history(fetched, 1, "grill") == ["created", "sent"]


async def test_each_walked_step_is_written_back_to_portos_in_order(
    client: TestClient, daemon: Daemon, sim: PortosSimulator
) -> None:
    # PORTOS takes delivered before accepted; a walked accept reaches it as both, in order.
    sim.create_ticket([{"pluCode": 101}])
    order = await until(
        daemon.clock, lambda: kds_orders(daemon) and kds_orders(daemon)[0]
    )  # a poll
    await sim.wait_for(lambda: sim.status_of(order.external_id, "grill") == ["sent"])
    response = await client.post(
        f"/api/v1/orders/{order.id}/endpoints/grill/status", json={"status": "accepted"}
    )
    assert response.status == 200, await response.text()
    await sim.wait_for(lambda: sim.status_of(order.external_id, "grill") == ["accepted"])
    item_id = order.items[0].id
    assert sim.history(order.external_id, item_id, "grill") == [
        "created",
        "sent",
        "delivered",
        "accepted",
    ]
