"""What kds takes from PORTOS (issue 14, items 1, 3, 4): only its own endpoints, through any
failed refresh, and every order it can read — the ones it cannot are shown, not skipped."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import websockets
from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.clock import ManualClock
from kds.simulators.portos import PortosSimulator

from .test_portos_e2e import (  # noqa: F401
    config_data,
    daemon,
    kds_orders,
    portos,
    portos_auth,
    recv_until,
    sim,
    ws_url,
)
from .util import next_poll, until, wait_until

CREDENTIALS = {"username": "kds", "password": "secret", "device_name": "P01"}


async def readyz_source(client: TestClient) -> dict[str, Any]:
    return (await (await client.get("/readyz")).json())["components"]["portos"]


async def test_items_at_endpoints_kds_does_not_run_are_left_alone_and_reported(
    client: TestClient, daemon: Daemon, sim: PortosSimulator
) -> None:
    # kds runs grill, cold and bar; PORTOS also drives a pizza printer itself. The pizza lines
    # are neither shown nor acknowledged in PORTOS; the name is reported once, never claimed.
    sim.add_plu(501, "Margherita", ["pizza"])
    sim.add_plu(502, "Bruschetta", ["grill", "pizza"])
    sim.create_ticket([{"pluCode": 101}, {"pluCode": 501}, {"pluCode": 502}])
    order = await until(daemon.clock, lambda: kds_orders(daemon) and kds_orders(daemon)[0])
    assert [(i.id, [e.name for e in i.endpoints]) for i in order.items] == [
        (1, ["grill"]),
        (3, ["grill"]),
    ]
    await sim.wait_for(lambda: sim.status_of(order.external_id, "grill") == ["sent", "sent"])
    sim.create_ticket([{"pluCode": 501}])  # only pizza: no kitchen order at all
    await until(daemon.clock, lambda: portos(daemon).poll_count >= 3)
    assert len(kds_orders(daemon)) == 1
    assert all(p.endpoint != "pizza" and p.route != "order" for p in sim.status_posts)
    assert all(
        sim.status_of(o, "pizza") == ["created"] * len(sim.status_of(o, "pizza"))
        for o in sim.orders
    )
    health = await readyz_source(client)
    assert health["unknownEndpoints"] == ["pizza"]
    metrics = await (await client.get("/metrics")).text()
    assert 'kds_source_unknown_endpoints_total{endpoint="pizza",source="portos"} 3.0' in metrics


REFRESH_FAULTS = {
    "text404": {"mode": "error", "status": 404, "body": "Not Found"},
    "empty404": {"mode": "error", "status": 404, "body": ""},
    "401": {"mode": "error", "status": 401},
    "garbage": {"mode": "html"},
    "drop": {"mode": "drop"},
}


@pytest.mark.parametrize("portos_auth", [CREDENTIALS], ids=["credentials"])
@pytest.mark.parametrize("refresh", list(REFRESH_FAULTS))
async def test_any_failed_refresh_falls_back_to_a_full_login(
    client: TestClient, daemon: Daemon, sim: PortosSimulator, refresh: str
) -> None:
    # The token expires and the refresh route fails in one of five ways: kds logs in again
    # and keeps polling (before the fix a text 404 or garbage stopped it until a restart).
    sim.create_ticket([{"pluCode": 101}])
    await until(daemon.clock, lambda: len(kds_orders(daemon)) == 1)
    assert sim.auth_logins == 1
    await sim.set_mode(**REFRESH_FAULTS[refresh], path="/api/auth/refresh")
    sim.expire_tokens()
    sim.create_ticket([{"pluCode": 201}])
    await until(daemon.clock, lambda: len(kds_orders(daemon)) == 2)
    assert sim.auth_logins == 2
    assert sim.faults.applied >= 1


async def test_values_the_seed_allows_do_not_drop_the_order(
    client: TestClient, daemon: Daemon, sim: PortosSimulator
) -> None:
    # Course 100 and 12 kg of beef in grams with three decimals: a PORTOS Quantity allows both.
    sim.add_plu(701, "Hovädzie", ["grill"], unit="g")
    sim.create_ticket(
        [
            {"pluCode": 101, "courseNumber": 100},
            {"pluCode": 701, "quantity": {"amount": 12000.125, "unit": "g"}},
        ]
    )
    order = await until(daemon.clock, lambda: kds_orders(daemon) and kds_orders(daemon)[0])
    burger, beef = order.items
    assert burger.course_number == 100
    assert (beef.quantity.amount, beef.quantity.unit) == (Decimal("12000.125"), "g")


def _unreadable() -> dict[str, Any]:
    endpoints = [{"name": "grill", "orderItemStatus": "created", "statusChanges": []}]
    return {
        "items": [
            {
                "id": 1,
                "plu": {"name": "Guláš", "code": 9},
                "quantity": {"amount": "lots"},
                "endpoints": endpoints,
            }
        ]
    }


async def test_an_unreadable_order_is_shown_to_staff_and_retried_on_every_poll(
    client: TestClient, daemon: Daemon, sim: PortosSimulator
) -> None:
    # kds cannot read the quantity: expo and board get an alert naming the POS, the order and why,
    # /readyz is degraded; once PORTOS serves a readable order it comes in without a restart.
    clock = daemon.clock
    assert isinstance(clock, ManualClock)
    async with websockets.connect(ws_url(client, "grill")) as screen:
        snapshot = await recv_until(screen, lambda m: m["type"] == "snapshot")
        assert snapshot["sourceAlerts"] == []
        raw = sim.put_order(_unreadable())
        await next_poll(portos(daemon), clock)
        message = await recv_until(screen, lambda m: m["type"] == "source.alerts" and m["alerts"])
        (alert,) = message["alerts"]
        assert (
            alert["source"] == "portos"
            and alert["order"] == raw["id"]
            and alert["kind"] == "order_unreadable"
        )
        assert "quantity" in alert["message"]
        health = await readyz_source(client)
        assert health["ok"] is False and health["alerts"][0]["order"] == raw["id"]
        assert (await (await client.get("/readyz")).json())["status"] == "degraded"
        polls = portos(daemon).poll_count
        await until(daemon.clock, lambda: portos(daemon).poll_count >= polls + 2)
        assert not kds_orders(daemon)

        raw["items"][0]["quantity"] = {"amount": 2, "unit": "pcs"}
        await next_poll(portos(daemon), clock)  # a second of the clock: the screen stays on
        order = await wait_until(lambda: kds_orders(daemon) and kds_orders(daemon)[0])
        assert order.external_id == raw["id"]
        cleared = await recv_until(screen, lambda m: m["type"] == "source.alerts")
        assert cleared["alerts"] == []
    assert (await readyz_source(client))["alerts"] == []
    json.dumps(order.to_wire())
