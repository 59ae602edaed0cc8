"""kds with a PORTOS source against the PORTOS simulator on 127.0.0.1 (issue 6, "Done when")."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import websockets
from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.clock import ManualClock
from kds.config import settings_from_dict
from kds.model import Order, OrderStatus
from kds.simulators.portos import PortosSimulator
from kds.sources.portos.source import PortosSource

from .util import base_config, next_poll, until, wait_until

TOKEN = "portos-static-token"
#: Short intervals on the system clock, for the tests that import `config_data` (this module's
#: own tests run on a ManualClock with the default intervals: see `daemon`).
FAST = {
    "poll_interval": "50ms",
    "reconcile_interval": 0,
    "max_backoff": "200ms",
    "request_timeout": "300ms",
    "writeback_retry": "20ms",
    "writeback_max_backoff": "200ms",
}


@pytest.fixture
async def sim() -> AsyncIterator[PortosSimulator]:
    sim = PortosSimulator(
        users={"kds": "secret"},
        static_tokens=[TOKEN],
        api_keys={"kds-client": "kds-secret"},
        devices={"P01": {"DefaultOrderEndpointName": "grill"}},
    )
    sim.add_plu(101, "Cheeseburger", ["grill"])
    sim.add_plu(201, "Pilsner", ["bar"])
    sim.add_plu(301, "Steak", ["grill", "cold"])
    sim.add_plu(401, "Soup", [])  # device default: grill
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
def portos_auth() -> dict[str, Any]:
    """How kds authenticates; tests parametrize this."""
    return {"token": TOKEN}


@pytest.fixture
def config_data(
    tmp_path: Path, sim: PortosSimulator, portos_auth: dict[str, Any]
) -> dict[str, Any]:
    source = {"type": "portos", "base_url": sim.url, **FAST, **portos_auth}
    return base_config(tmp_path, sources=[{"type": "native"}, source])


def on_default_intervals(
    config_data: dict[str, Any], portos_auth: dict[str, Any]
) -> dict[str, Any]:
    """`config_data` with the PORTOS source on its default intervals (the 300 ms request
    timeout stays: it bounds real I/O); what a test parametrizes in `portos_auth` is kept."""
    keep = {"request_timeout", *portos_auth}
    sources = [
        {k: v for k, v in s.items() if k in keep or k not in FAST} if s["type"] == "portos" else s
        for s in config_data["sources"]
    ]
    return {**config_data, "sources": sources}


@pytest.fixture
def daemon(config_data: dict[str, Any], portos_auth: dict[str, Any], clock: ManualClock) -> Daemon:
    """kds on a ManualClock with the default poll (1 s), reconcile (10 s) and write-back backoff:
    a test moves time (`until`, `clock.advance`) instead of polling every 50 ms."""
    return Daemon(settings_from_dict(on_default_intervals(config_data, portos_auth)), clock=clock)


def portos(daemon: Daemon) -> PortosSource:
    return next(s for s in daemon.sources if isinstance(s, PortosSource))


def kds_orders(daemon: Daemon) -> list[Order]:
    return [o for o in daemon.service.orders() if o.source == "portos"]


def ws_url(client: TestClient, endpoint: str) -> str:
    return f"ws://127.0.0.1:{client.port}/api/v1/ws?endpoint={endpoint}"


async def recv_until(ws: Any, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async def _next() -> dict[str, Any]:
        while True:
            message = json.loads(await ws.recv())
            if predicate(message):
                return message

    return await asyncio.wait_for(_next(), 5)


async def bump(client: TestClient, order_id: str, endpoint: str) -> None:
    """What a cook's bump does: the station acknowledges, then finishes."""
    for status in ("delivered", "processed"):
        response = await client.post(
            f"/api/v1/orders/{order_id}/endpoints/{endpoint}/status", json={"status": status}
        )
        assert response.status == 200, await response.text()


def histories_match(sim: PortosSimulator, daemon: Daemon) -> bool:
    """Every PORTOS item endpoint went through exactly kds's statuses, in the same order."""
    for order in kds_orders(daemon):
        if order.external_id not in sim.orders:
            continue
        for item in order.items:
            for ep in item.endpoints:
                kds = [c.status.value for c in ep.status_changes]
                if sim.history(order.external_id, item.id, ep.name) != kds:
                    return False
    return True


async def test_ticket_for_two_endpoints_reaches_both_stations_and_bump_is_written_back(
    client: TestClient, daemon: Daemon, sim: PortosSimulator
) -> None:
    # Within one poll interval (1 s of the daemon's clock) the order is on both station feeds;
    # a bump comes back as `processed`.
    source = portos(daemon)
    clock = daemon.clock
    assert isinstance(clock, ManualClock)
    async with (
        websockets.connect(ws_url(client, "grill")) as grill,
        websockets.connect(ws_url(client, "bar")) as bar,
    ):
        assert (await recv_until(grill, lambda m: True))["type"] == "snapshot"
        assert (await recv_until(bar, lambda m: True))["type"] == "snapshot"
        await wait_until(lambda: source.waiting)  # the poll at start is done
        polls_before = source.poll_count
        sim.create_ticket(
            [
                {"pluCode": 101, "quantity": 2, "comment": "medium rare", "courseNumber": 2},
                {"pluCode": 201},
            ],
            name="Table 5",
            location={"zoneName": "Terrace", "tableName": "5"},
            purchase_type="walkIn",
            customer={"fullName": "Ján Novák"},
        )
        (portos_order,) = sim.orders.values()
        await next_poll(source, clock)
        on_grill = await recv_until(grill, lambda m: m["type"] == "order.created")
        on_bar = await recv_until(bar, lambda m: m["type"] == "order.created")
        assert source.poll_count - polls_before == 1
    order = on_grill["order"]
    assert on_bar["order"]["id"] == order["id"]
    assert order["externalId"] == portos_order["id"] and order["number"] == portos_order["number"]
    assert (
        order["ticket"]["id"] == portos_order["ticket"]["id"]
        and order["ticket"]["name"] == "Table 5"
    )
    assert order["ticket"]["location"] == {"zoneName": "Terrace", "tableName": "5"}
    assert order["ticket"]["purchaseType"] == "walkIn" and order["ticket"]["customer"] == {
        "fullName": "Ján Novák"
    }
    burger = next(i for i in order["items"] if i["plu"]["code"] == 101)
    assert (
        burger["comment"] == "medium rare"
        and burger["courseNumber"] == 2
        and burger["quantity"]["amount"] == 2
    )
    # Arriving at the screens (sent) is written back, so PORTOS stops offering the order.
    await sim.wait_for(lambda: sim.status_of(portos_order["id"], "grill") == ["sent"])

    await bump(client, order["id"], "grill")
    await sim.wait_for(lambda: sim.status_of(portos_order["id"], "grill") == ["processed"])
    assert sim.history(portos_order["id"], 1, "grill") == [
        "created",
        "sent",
        "delivered",
        "processed",
    ]
    assert sim.status_of(portos_order["id"], "bar") == ["sent"]
    assert [p.route for p in sim.status_posts] == [
        "endpoint"
    ] * 4  # sent@grill, sent@bar, delivered, processed
    await wait_until(lambda: source.writeback.pending == 0)
    assert histories_match(sim, daemon)


async def test_items_added_later_are_a_second_order_and_deletion_cancels(
    client: TestClient, daemon: Daemon, sim: PortosSimulator
) -> None:
    # A ticket update makes a second kitchen order; deleting it in PORTOS cancels it in kds.
    ticket = sim.create_ticket([{"pluCode": 101}, {"pluCode": 401}])
    await until(daemon.clock, lambda: len(kds_orders(daemon)) == 1)
    first = kds_orders(daemon)[0]
    assert [e.name for i in first.items for e in i.endpoints] == [
        "grill",
        "grill",
    ]  # PLU and device default
    second_portos = sim.add_items(ticket["id"], [{"pluCode": 201, "quantity": 3}])
    assert second_portos is not None
    second = await until(daemon.clock, lambda: daemon.service.find("portos", second_portos["id"]))
    assert second.id != first.id and second.ticket.id == ticket["id"]
    assert [(i.plu.name, int(i.quantity.amount)) for i in second.items] == [("Pilsner", 3)]
    assert len(first.items) == 2

    sim.delete_order(second_portos["id"])
    await until(
        daemon.clock,
        lambda: all(e.status is OrderStatus.PROCESS_SKIPPED for e in second.item_endpoints()),
    )
    assert second.item_endpoints()[0].status_changes[-1].reason == "deleted in PORTOS"
    assert all(
        e.status is OrderStatus.SENT for e in first.item_endpoints()
    )  # the other order is untouched
    await until(daemon.clock, lambda: portos(daemon).writeback.pending == 0)
    metrics = await (await client.get("/metrics")).text()
    assert 'kds_portos_orders_total{outcome="cancelled",source="portos"} 1.0' in metrics


async def test_single_item_bump_uses_the_item_route_when_exact(
    client: TestClient, daemon: Daemon, sim: PortosSimulator
) -> None:
    # One item of two at a station: the item route (that item has no other endpoint).
    sim.create_ticket([{"pluCode": 101}, {"pluCode": 401}])
    order = await until(daemon.clock, lambda: kds_orders(daemon) and kds_orders(daemon)[0])
    await sim.wait_for(lambda: sim.status_of(order.external_id, "grill") == ["sent", "sent"])
    for status in ("delivered", "processed"):
        response = await client.post(
            f"/api/v1/orders/{order.id}/items/1/status", json={"status": status}
        )
        assert response.status == 200
    await sim.wait_for(lambda: sim.status_of(order.external_id, "grill") == ["processed", "sent"])
    assert [p.route for p in sim.status_posts][-2:] == ["item", "item"]
    assert histories_match(sim, daemon)


@pytest.mark.parametrize(
    "portos_auth",
    [{"username": "kds", "password": "secret", "device_name": "P01"}],
    ids=["credentials"],
)
async def test_outages_500s_expired_tokens_and_garbage_lose_and_duplicate_nothing(
    client: TestClient, daemon: Daemon, sim: PortosSimulator
) -> None:
    # Down, slow, 500s, dropped connections, expired tokens, malformed JSON: afterwards every
    # order is in kds exactly once and every status reached PORTOS, in order.
    source = portos(daemon)
    sim.create_ticket([{"pluCode": 101}, {"pluCode": 201}], name="A")
    first = await until(daemon.clock, lambda: kds_orders(daemon) and kds_orders(daemon)[0])
    assert sim.auth_logins == 1

    await sim.set_mode("offline")
    await until(daemon.clock, lambda: source.health()["consecutiveFailures"] >= 1)
    readyz = await (await client.get("/readyz")).json()
    assert readyz["status"] == "degraded" and readyz["components"]["portos"]["ok"] is False
    assert 'kds_source_up{source="portos"} 0.0' in await (await client.get("/metrics")).text()
    # The kitchen keeps working from what it has; the bump waits in the outbox.
    await bump(client, first.id, "grill")
    ticket_b = sim.create_ticket([{"pluCode": 301}], name="B")
    await until(daemon.clock, lambda: source.writeback.failures >= 1)

    await sim.set_mode("slow", delay=1.0)  # back, but slower than request_timeout
    await until(
        daemon.clock,
        lambda: "timed out" in (source.health()["lastError"] or source.writeback.last_error or ""),
    )
    await sim.set_mode("drop", times=2)
    sim.then_mode("error", times=3, status=500)
    sim.then_mode("garbage", times=2)
    sim.expire_tokens()
    sim.add_items(ticket_b["id"], [{"pluCode": 201}])
    sim.create_ticket([{"pluCode": 401, "quantity": 2}], name="C")

    def settled() -> bool:
        return (
            {o.external_id for o in kds_orders(daemon)} == set(sim.orders)
            and source.writeback.pending == 0
            and all(
                sim.status_of(o.external_id, e.name, i.id) == [e.status.value]
                for o in kds_orders(daemon)
                for i in o.items
                for e in i.endpoints
            )
        )

    await until(daemon.clock, settled, timeout=10)
    orders = kds_orders(daemon)
    assert len(orders) == len(sim.orders) == 4
    assert len({o.external_id for o in orders}) == 4  # exactly once
    assert histories_match(sim, daemon)
    assert sim.history(first.external_id, 1, "grill") == [
        "created",
        "sent",
        "delivered",
        "processed",
    ]
    assert sim.auth_refreshes >= 1 and sim.auth_logins == 1  # refreshed, not logged in again
    assert sim.faults.mode == "online" and not sim.faults.queued
    await until(daemon.clock, lambda: source.health()["ok"])
    readyz = await (await client.get("/readyz")).json()
    assert readyz["components"]["portos"]["ok"] is True


@pytest.mark.parametrize(
    "portos_auth", [{"client_id": "kds-client", "client_secret": "kds-secret"}], ids=["nws4"]
)
async def test_signed_requests_are_accepted(
    client: TestClient, daemon: Daemon, sim: PortosSimulator
) -> None:
    # NWS4 signing: the simulator verifies every request, so orders flow and statuses come back.
    sim.create_ticket([{"pluCode": 201}])
    order = await until(daemon.clock, lambda: kds_orders(daemon) and kds_orders(daemon)[0])
    await bump(client, order.id, "bar")
    await sim.wait_for(lambda: sim.status_of(order.external_id, "bar") == ["processed"])
    assert sim.unauthorized == 0


@pytest.mark.parametrize("portos_auth", [{"token": "wrong"}], ids=["bad-token"])
async def test_rejected_token_shows_on_readyz(
    client: TestClient, daemon: Daemon, sim: PortosSimulator
) -> None:
    source = portos(daemon)
    await until(daemon.clock, lambda: source.health()["consecutiveFailures"] >= 1)
    health = (await (await client.get("/readyz")).json())["components"]["portos"]
    assert health["ok"] is False and "401" in health["lastError"] and health["authError"]


async def test_writeback_to_an_inactive_endpoint_is_refused_and_later_ones_still_flow(
    client: TestClient, daemon: Daemon, sim: PortosSimulator
) -> None:
    # PORTOS answers 403 (inactive endpoint): kept as refused (shown, retried on request), not retried forever.
    sim.create_ticket([{"pluCode": 101}, {"pluCode": 201}])
    order = await until(daemon.clock, lambda: kds_orders(daemon) and kds_orders(daemon)[0])
    source = portos(daemon)
    await sim.wait_for(lambda: sim.status_of(order.external_id, "bar") == ["sent"])
    sim.set_endpoint_active("bar", False)
    await bump(client, order.id, "bar")
    await bump(client, order.id, "grill")
    await sim.wait_for(lambda: sim.status_of(order.external_id, "grill") == ["processed"])
    await until(daemon.clock, lambda: source.writeback.pending == 0)
    assert sim.status_of(order.external_id, "bar") == ["sent"]
    assert [p.answer for p in sim.status_posts if p.endpoint == "bar"][-2:] == [403, 403]
    assert source.health()["ok"] is False and source.health()["refusedWritebacks"] == 2


async def test_restart_resumes_writebacks_from_the_outbox_without_duplicates(
    aiohttp_client: Any, config_data: dict[str, Any], sim: PortosSimulator
) -> None:
    # kds stops while PORTOS is down with a bump unsent; after a restart the bump is sent once
    # and the order is not ingested again.
    settings = settings_from_dict(on_default_intervals(config_data, {}))
    first = Daemon(settings, clock=ManualClock())
    client = await aiohttp_client(first.app)
    sim.create_ticket([{"pluCode": 101}])
    order = await until(first.clock, lambda: kds_orders(first) and kds_orders(first)[0])
    await sim.wait_for(lambda: sim.status_of(order.external_id, "grill") == ["sent"])
    await sim.set_mode("offline")
    await bump(client, order.id, "grill")
    await until(first.clock, lambda: portos(first).writeback.failures >= 1)
    await client.close()
    sim.create_ticket([{"pluCode": 201}])  # taken while kds was off

    await sim.set_mode("online")
    second = Daemon(settings, clock=ManualClock())
    await aiohttp_client(second.app)
    await sim.wait_for(lambda: sim.status_of(order.external_id, "grill") == ["processed"])
    await until(
        second.clock, lambda: len(kds_orders(second)) == 2 and portos(second).writeback.pending == 0
    )
    assert next(o.id for o in kds_orders(second)) == order.id
    assert sim.history(order.external_id, 1, "grill") == [
        "created",
        "sent",
        "delivered",
        "processed",
    ]
    assert histories_match(sim, second)


@pytest.mark.parametrize(
    "portos_auth",
    [{"token": TOKEN, "poll_interval": "60s", "webhook_secret": "hook-secret"}],
    ids=["webhook"],
)
async def test_signed_webhook_brings_the_order_before_the_next_poll(
    client: TestClient, daemon: Daemon, sim: PortosSimulator
) -> None:
    # With a 60 s poll interval only the webhook can bring the order in time; a bad signature is refused.
    source = portos(daemon)
    await wait_until(lambda: source.poll_count >= 1)
    sim.set_webhook(f"http://127.0.0.1:{client.port}/hooks/portos/portos", "hook-secret")
    sim.create_ticket([{"pluCode": 101}])
    await wait_until(lambda: len(kds_orders(daemon)) == 1)
    assert source.webhooks == 1 and sim.webhooks_sent == [("order.created", 202)]
    bad = await client.post(
        "/hooks/portos/portos", data=b"{}", headers={"X-PORTOS-WEBHOOK-SIGNATURE": "00"}
    )
    assert bad.status == 401 and source.webhooks == 1
