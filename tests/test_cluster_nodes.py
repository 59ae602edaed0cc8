"""Two kds nodes on one PostgreSQL database: one kitchen, either node's screens.

Each node is a whole daemon on its own 127.0.0.1 port; they share nothing but
the database of a real PostgreSQL server (tests/pg.py).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.config import settings_from_dict
from kds.model import OrderStatus, utcnow
from kds.simulators.printer import VirtualPrinter
from kds.store import Batch, StatusUpdate
from kds.store.postgres import PostgresStore

from .util import base_config, order_body, printed_grill, wait_until


def node_settings(tmp_path: Path, pg_url: str, name: str) -> Any:
    config = base_config(tmp_path / name, database={"url": pg_url}, node={"name": name})
    return settings_from_dict(config)


async def next_event(ws: Any, type_: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next message of `type_` on a websocket (others are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads((await ws.receive()).data)
            if message["type"] == type_:
                return message


async def test_an_order_on_one_node_reaches_the_other_nodes_screens_and_back(
    tmp_path: Path, pg_url: str, aiohttp_client: Any
) -> None:
    # An order ingested on A is on B's websocket (and in B's API); a bump on B is seen on A's
    # websocket and in A's view; both nodes number the events alike.
    a: TestClient = await aiohttp_client(Daemon(node_settings(tmp_path, pg_url, "a")).app)
    b: TestClient = await aiohttp_client(Daemon(node_settings(tmp_path, pg_url, "b")).app)
    ws_a = await a.ws_connect("/api/v1/ws?endpoint=grill")
    ws_b = await b.ws_connect("/api/v1/ws?endpoint=grill")
    assert (await next_event(ws_b, "snapshot"))["orders"] == []
    await next_event(ws_a, "snapshot")

    response = await a.post("/api/v1/orders", json=order_body("x1"))
    assert response.status == 201, await response.text()
    order_id = (await response.json())["id"]
    created_b = await next_event(ws_b, "order.created")
    created_a = await next_event(ws_a, "order.created")
    assert created_b["order"]["id"] == order_id
    assert created_b["seq"] == created_a["seq"]
    assert (await b.get(f"/api/v1/orders/{order_id}")).status == 200

    for status in ("delivered", "processed"):  # the screen acknowledges, the cook bumps
        response = await b.post(
            f"/api/v1/orders/{order_id}/endpoints/grill/status", json={"status": status}
        )
        assert response.status == 200, await response.text()
    await next_event(ws_a, "order.updated")  # delivered
    updated_a = await next_event(ws_a, "order.updated")
    assert updated_a["order"]["id"] == order_id
    assert updated_a["seq"] > created_a["seq"]
    statuses = {e["name"]: e["status"] for i in updated_a["order"]["items"] for e in i["endpoints"]}
    assert statuses["grill"] == "processed"

    async def a_sees_it() -> bool:
        body = await (await a.get(f"/api/v1/orders/{order_id}")).json()
        return any(e["status"] == "processed" for i in body["items"] for e in i["endpoints"])

    await wait_until(a_sees_it)
    # A's view read B's change back from the database whole: both nodes answer the same order.
    assert (
        await (await a.get(f"/api/v1/orders/{order_id}")).json()
        == await (await b.get(f"/api/v1/orders/{order_id}")).json()
    )


async def test_a_screen_resumes_on_the_other_node_with_since(
    tmp_path: Path, pg_url: str, aiohttp_client: Any
) -> None:
    # A screen that saw seq N on A and reconnects to B with since=N gets exactly what it missed.
    a: TestClient = await aiohttp_client(Daemon(node_settings(tmp_path, pg_url, "a")).app)
    b: TestClient = await aiohttp_client(Daemon(node_settings(tmp_path, pg_url, "b")).app)
    ws_a = await a.ws_connect("/api/v1/ws")
    await next_event(ws_a, "snapshot")
    await a.post("/api/v1/orders", json=order_body("first"))
    seen = (await next_event(ws_a, "order.created"))["seq"]
    await ws_a.close()
    ids = []
    for n in range(3):
        response = await a.post("/api/v1/orders", json=order_body(f"missed-{n}"))
        ids.append((await response.json())["id"])

    async def b_has_all() -> bool:
        return all([(await b.get(f"/api/v1/orders/{i}")).status == 200 for i in ids])

    await wait_until(b_has_all)
    ws_b = await b.ws_connect(f"/api/v1/ws?since={seen}")
    replay = [await next_event(ws_b, "order.created") for _ in ids]
    assert [m["order"]["id"] for m in replay] == ids
    assert [m["seq"] for m in replay] == sorted(m["seq"] for m in replay)
    assert replay[0]["seq"] > seen


async def test_nodes_hand_out_outbox_and_inbox_ids_from_separate_ranges(pg_url: str) -> None:
    # Each node numbers outbox and inbox rows itself; on one database the ranges never meet.
    first, second = PostgresStore(pg_url), PostgresStore(pg_url)
    await first.start()
    await second.start()
    try:
        starts = [await s.last_outbox_id() for s in (first, second)]
        starts += [await s.last_inbox_id() for s in (first, second)]
        assert len(set(starts)) == 4
        assert all(abs(x - y) >= 10**9 for x in starts for y in starts if x != y)
    finally:
        await first.stop()
        await second.stop()


async def test_sites_share_the_database_but_not_their_orders_screens_or_printers(
    tmp_path: Path, pg_url: str, aiohttp_client: Any, printers: dict[str, VirtualPrinter]
) -> None:
    # Two restaurants of a chain on one database: each sees only its own orders (the same POS id
    # may exist at both), its screens get only its events, and each drives its own printers.
    def site_settings(name: str, printer: VirtualPrinter) -> Any:
        config = base_config(
            tmp_path / name,
            database={"url": pg_url},
            node={"name": name, "site": name},
            endpoints=printed_grill(printer.address),
        )
        return settings_from_dict(config)

    north_daemon = Daemon(site_settings("north", printers["grill"]))
    south_daemon = Daemon(site_settings("south", printers["bar"]))
    north: TestClient = await aiohttp_client(north_daemon.app)
    south: TestClient = await aiohttp_client(south_daemon.app)
    ws_south = await south.ws_connect("/api/v1/ws")
    await next_event(ws_south, "snapshot")

    first = await north.post("/api/v1/orders", json=order_body("same-id"))
    assert first.status == 201
    north_id = (await first.json())["id"]
    second = await south.post("/api/v1/orders", json=order_body("same-id"))
    assert second.status == 201  # not a repeat: another restaurant's order
    south_id = (await second.json())["id"]
    assert south_id != north_id
    created = await next_event(ws_south, "order.created")
    assert created["order"]["id"] == south_id  # north's order never reached south's screen
    assert (await south.get(f"/api/v1/orders/{north_id}")).status == 404
    listing = await (await north.get("/api/v1/orders")).json()
    assert [o["id"] for o in listing["items"]] == [north_id]
    assert north_daemon.cluster is not None and south_daemon.cluster is not None
    assert north_daemon.cluster.locks.holds("printer:grill")
    assert south_daemon.cluster.locks.holds("printer:grill")
    # Each site's ticket came out of its own printer only.
    [north_ticket] = await printers["grill"].wait_for_jobs(1)
    [south_ticket] = await printers["bar"].wait_for_jobs(1)
    assert north_ticket.printer == "grill" and south_ticket.printer == "bar"


async def test_a_change_whose_node_died_before_its_event_still_reaches_the_screens(
    tmp_path: Path, pg_url: str, aiohttp_client: Any
) -> None:
    # A node commits a change and dies before publishing its event (the commit's notification
    # went out, the event never did). Here that node is a PostgreSQL store of its own that
    # commits a cook's accept and never publishes. B's screens get the change as an
    # order.updated within a bounded time, without waiting for a snapshot.
    b: TestClient = await aiohttp_client(Daemon(node_settings(tmp_path, pg_url, "b")).app)
    ws_b = await b.ws_connect("/api/v1/ws?endpoint=grill")
    await next_event(ws_b, "snapshot")
    response = await b.post("/api/v1/orders", json=order_body("ghostly"))
    order_id = (await response.json())["id"]
    await next_event(ws_b, "order.created")

    ghost = PostgresStore(pg_url)
    ghost.origin = "ghost/1/dead"  # a node of the same site: its commits notify the others
    await ghost.start()
    try:
        accepted = StatusUpdate(order_id, 1, "grill", OrderStatus.ACCEPTED, utcnow(), "cook", None)
        await ghost.commit(Batch(statuses=[accepted]))
    finally:
        await ghost.stop()

    updated = await next_event(ws_b, "order.updated", timeout=5)
    assert updated["order"]["id"] == order_id
    grill = {e["name"]: e["status"] for e in updated["order"]["items"][0]["endpoints"]}
    assert grill["grill"] == "accepted"
