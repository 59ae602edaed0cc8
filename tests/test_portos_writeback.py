"""Write-backs to PORTOS that fail are kept and shown; every status change reaches PORTOS
or is shown as failed (issue 14, items 2 and 6)."""

from __future__ import annotations

from typing import Any

import websockets
from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.clock import ManualClock
from kds.config import settings_from_dict
from kds.simulators.portos import PortosSimulator

from .test_portos_e2e import (  # noqa: F401
    bump,
    config_data,
    daemon,
    kds_orders,
    on_default_intervals,
    portos,
    portos_auth,
    recv_until,
    sim,
    ws_url,
)
from .util import until


async def readyz(client: TestClient) -> dict[str, Any]:
    return await (await client.get("/readyz")).json()


def refused(daemon: Daemon) -> int:
    return portos(daemon).health()["refusedWritebacks"]


async def test_refused_writebacks_are_kept_counted_shown_and_retried_from_the_api(
    client: TestClient, daemon: Daemon, sim: PortosSimulator
) -> None:
    # The bar endpoint is inactive in PORTOS (403): the bar's bump is kept as refused, counted by
    # status, degrades /readyz with the reason, reaches the screens; after the fix one API call sends it.
    sim.create_ticket([{"pluCode": 101}, {"pluCode": 201}])
    order = await until(daemon.clock, lambda: kds_orders(daemon) and kds_orders(daemon)[0])
    await sim.wait_for(lambda: sim.status_of(order.external_id, "bar") == ["sent"])
    sim.set_endpoint_active("bar", False)
    async with websockets.connect(ws_url(client, "bar")) as screen:
        await recv_until(screen, lambda m: m["type"] == "snapshot")
        await bump(client, order.id, "bar")
        alert = await recv_until(screen, lambda m: m["type"] == "source.alerts" and m["alerts"])
    assert (
        alert["alerts"][0]["kind"] == "writeback_refused" and "403" in alert["alerts"][0]["message"]
    )
    await bump(client, order.id, "grill")  # other endpoints still flow
    await sim.wait_for(lambda: sim.status_of(order.external_id, "grill") == ["processed"])
    await until(daemon.clock, lambda: refused(daemon) == 2)
    report = await readyz(client)
    assert report["status"] == "degraded" and "403" in report["reasons"]["portos"]
    health = report["components"]["portos"]
    assert health["ok"] is False and health["state"] == "writeback_refused"
    assert "403" in health["lastWritebackError"] and "inactive" in health["lastWritebackError"]
    metrics = await (await client.get("/metrics")).text()
    assert 'kds_writeback_failures_total{source="portos",status="403"} 2.0' in metrics
    assert sim.status_of(order.external_id, "bar") == ["sent"]

    assert (await client.post("/api/v1/sources/portos/writebacks/retry")).status == 202
    await until(
        daemon.clock, lambda: refused(daemon) == 2 and portos(daemon).writeback.pending == 0
    )  # still inactive
    sim.set_endpoint_active("bar", True)
    response = await client.post("/api/v1/sources/portos/writebacks/retry")
    assert response.status == 202 and (await response.json())["retried"] == 2
    await sim.wait_for(lambda: sim.status_of(order.external_id, "bar") == ["processed"])
    assert sim.history(order.external_id, 2, "bar") == ["created", "sent", "delivered", "processed"]
    await until(daemon.clock, lambda: refused(daemon) == 0)
    health = (await readyz(client))["components"]["portos"]
    assert health["ok"] is True and health["alerts"] == []
    assert (await client.post("/api/v1/sources/nosuch/writebacks/retry")).status == 404


async def test_refused_writebacks_stay_refused_across_a_restart(
    aiohttp_client: Any, config_data: dict[str, Any], sim: PortosSimulator
) -> None:
    # The outbox keeps a refused write-back as refused: after a restart it is still shown, not lost.
    first = Daemon(settings_from_dict(on_default_intervals(config_data, {})), clock=ManualClock())
    client = await aiohttp_client(first.app)
    sim.create_ticket([{"pluCode": 201}])
    order = await until(first.clock, lambda: kds_orders(first) and kds_orders(first)[0])
    await sim.wait_for(lambda: sim.status_of(order.external_id, "bar") == ["sent"])
    sim.set_endpoint_active("bar", False)
    await bump(client, order.id, "bar")
    await until(first.clock, lambda: refused(first) == 2)
    await client.close()

    second = Daemon(settings_from_dict(on_default_intervals(config_data, {})), clock=ManualClock())
    client = await aiohttp_client(second.app)
    await until(second.clock, lambda: refused(second) == 2)
    assert (await readyz(client))["status"] == "degraded"
    sim.set_endpoint_active("bar", True)
    assert (await client.post("/api/v1/sources/portos/writebacks/retry")).status == 202
    await sim.wait_for(lambda: sim.status_of(order.external_id, "bar") == ["processed"])


async def test_a_line_bumped_at_one_of_its_endpoints_reaches_portos_even_if_the_order_is_cancelled(
    client: TestClient, daemon: Daemon, sim: PortosSimulator
) -> None:
    # The steak is made at grill and cold. The grill bumps just the steak (PORTOS has no route for
    # one item at one endpoint), then the order is cancelled: the grill's `processed` still reaches
    # PORTOS; before the fix it was deferred, its outbox entry closed, and lost.
    sim.create_ticket([{"pluCode": 301}, {"pluCode": 101}])
    order = await until(daemon.clock, lambda: kds_orders(daemon) and kds_orders(daemon)[0])
    await sim.wait_for(lambda: sim.status_of(order.external_id, "grill") == ["sent", "sent"])
    for status in ("delivered", "processed"):
        response = await client.post(
            f"/api/v1/orders/{order.id}/endpoints/grill/items/1/status", json={"status": status}
        )
        assert response.status == 200, await response.text()
    assert sim.status_of(order.external_id, "cold", 1) == ["sent"]  # not written as the whole item
    assert (await client.delete(f"/api/v1/orders/{order.id}")).status == 200
    await sim.wait_for(lambda: sim.status_of(order.external_id, "grill", 1) == ["processed"])
    await until(daemon.clock, lambda: portos(daemon).writeback.pending == 0)
    assert sim.history(order.external_id, 1, "grill") == [
        "created",
        "sent",
        "delivered",
        "processed",
    ]
    assert sim.status_of(order.external_id, "cold", 1) == ["processSkipped"]
    assert sim.status_of(order.external_id, "grill", 2) == ["processSkipped"]
    assert refused(daemon) == 0


async def test_a_change_portos_cannot_take_is_shown_not_dropped(
    client: TestClient, daemon: Daemon, sim: PortosSimulator
) -> None:
    # Same steak and burger; in PORTOS someone marks the steak refused at the grill. The grill in
    # kds then bumps the steak: PORTOS cannot take it, so it is shown as a refused write-back.
    sim.create_ticket([{"pluCode": 301}, {"pluCode": 101}])
    order = await until(daemon.clock, lambda: kds_orders(daemon) and kds_orders(daemon)[0])
    await sim.wait_for(lambda: sim.status_of(order.external_id, "grill") == ["sent", "sent"])
    sim.apply_status(order.external_id, "delivered", item_id=1, endpoint="grill")
    sim.apply_status(order.external_id, "refused", item_id=1, endpoint="grill")
    for status in ("delivered", "processed"):
        response = await client.post(
            f"/api/v1/orders/{order.id}/endpoints/grill/items/1/status", json={"status": status}
        )
        assert response.status == 200
    await until(daemon.clock, lambda: refused(daemon) == 2)
    health = (await readyz(client))["components"]["portos"]
    assert (
        health["alerts"][0]["kind"] == "writeback_refused"
        and "refused" in health["lastWritebackError"]
    )
    assert sim.status_of(order.external_id, "grill", 1) == ["refused"]
