"""The live feed with the `websockets` client: snapshot, deltas, resume without loss or duplicates."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import websockets
from aiohttp.test_utils import TestClient, TestServer
from websockets.exceptions import InvalidStatus

from kds.api.ws import HUB
from kds.app import Daemon
from kds.cli import event_loop_factory
from kds.clock import ManualClock
from kds.config import Settings

from .util import order_body, wait_until

#: Tests that must also hold on the loop `kds run` uses (uvloop, whose transports are its own).
needs_uvloop = pytest.mark.skipif(event_loop_factory() is None, reason="uvloop not installed")


def ws_url(client: TestClient, **params: Any) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"ws://127.0.0.1:{client.port}/api/v1/ws" + (f"?{query}" if query else "")


async def recv(ws: Any) -> dict[str, Any]:
    """The next message that is not a keep-alive ping."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if message["type"] != "ping":
            return message


async def post(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/v1/orders", json=body)
    assert response.status == 201
    return await response.json()


async def test_snapshot_then_deltas_with_increasing_seq(client: TestClient) -> None:
    # A screen first gets every open order, then each change once, in seq order.
    first = await post(client, order_body("w1"))
    async with websockets.connect(ws_url(client)) as ws:
        snapshot = await recv(ws)
        assert snapshot["type"] == "snapshot"
        assert [o["id"] for o in snapshot["orders"]] == [first["id"]]
        second = await post(client, order_body("w2"))
        created = await recv(ws)
        assert created["type"] == "order.created" and created["order"]["id"] == second["id"]
        assert created["seq"] > snapshot["seq"]
        await client.post(
            f"/api/v1/orders/{first['id']}/endpoints/grill/status", json={"status": "delivered"}
        )
        updated = await recv(ws)
        assert updated["type"] == "order.updated" and updated["seq"] == created["seq"] + 1
        assert updated["changes"] == [
            {"itemId": 1, "endpoint": "grill", "status": "delivered", "from": "sent"}
        ]
        assert updated["order"]["endpointStatuses"]["grill"] == "delivered"


async def test_endpoint_filter_sends_only_that_stations_orders(client: TestClient) -> None:
    async with websockets.connect(ws_url(client, endpoint="cold")) as ws:
        assert (await recv(ws))["orders"] == []
        await post(client, order_body("grill-only"))  # burger + beer: not for cold
        salad = await post(
            client, order_body("salad", items=[{"id": 1, "plu": {"name": "Greek salad"}}])
        )
        event = await recv(ws)
        assert event["type"] == "order.created" and event["order"]["id"] == salad["id"]


async def test_resume_with_since_gets_exactly_the_missed_events(client: TestClient) -> None:
    # Disconnect, miss three changes, reconnect with since: exactly those three, no snapshot, no repeats.
    order = await post(client, order_body("r1"))
    async with websockets.connect(ws_url(client)) as ws:
        last_seq = (await recv(ws))["seq"]
    missed = [await post(client, order_body(f"r{i}")) for i in (2, 3)]
    await client.post(
        f"/api/v1/orders/{order['id']}/endpoints/grill/status", json={"status": "delivered"}
    )
    async with websockets.connect(ws_url(client, since=last_seq)) as ws:
        events = [await recv(ws) for _ in range(3)]
        assert [e["type"] for e in events] == ["order.created", "order.created", "order.updated"]
        assert [e["order"]["id"] for e in events[:2]] == [o["id"] for o in missed]
        assert [e["seq"] for e in events] == [last_seq + 1, last_seq + 2, last_seq + 3]
        live = await post(client, order_body("r4"))
        event = await recv(ws)
        assert event["seq"] == last_seq + 4 and event["order"]["id"] == live["id"]


async def test_resume_from_unknown_seq_gets_a_fresh_snapshot(client: TestClient) -> None:
    await post(client, order_body("s1"))
    async with websockets.connect(ws_url(client, since=10**15)) as ws:
        snapshot = await recv(ws)
        assert snapshot["type"] == "snapshot" and len(snapshot["orders"]) == 1


async def test_many_concurrent_changes_arrive_once_each_in_order(client: TestClient) -> None:
    async with websockets.connect(ws_url(client)) as ws:
        start = (await recv(ws))["seq"]
        await asyncio.gather(*(post(client, order_body(f"c{i}")) for i in range(40)))
        events = [await recv(ws) for _ in range(40)]
        assert [e["seq"] for e in events] == list(range(start + 1, start + 41))
        assert len({e["order"]["externalId"] for e in events}) == 40


async def test_bad_since_is_400(client: TestClient) -> None:
    response = await client.get("/api/v1/ws", params={"since": "abc"})
    assert response.status == 400


async def test_unknown_endpoint_is_400_not_an_empty_feed(client: TestClient) -> None:
    # A screen opened with a typo in its endpoint would otherwise wait forever on an empty feed.
    with pytest.raises(InvalidStatus) as err:
        async with websockets.connect(ws_url(client, endpoint="nosuch")):
            pass
    assert err.value.response.status_code == 400
    assert b"nosuch" in err.value.response.body
    async with websockets.connect(ws_url(client, endpoint="grill")) as ws:
        assert (await recv(ws))["type"] == "snapshot"


async def test_idle_screens_get_application_pings(client: TestClient) -> None:
    # Browsers cannot see protocol pings; a visible ping lets a screen notice a dead link within 2 s.
    async with websockets.connect(ws_url(client)) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "snapshot"
        ping = json.loads(await asyncio.wait_for(ws.recv(), 3))
        assert ping == {"type": "ping"}


async def test_pings_go_only_to_screens_that_were_sent_nothing_lately(
    aiohttp_client: Any, settings: Settings, clock: ManualClock
) -> None:
    # A screen shows "disconnected" after 2 s without any message; a ping at least every
    # second tells a quiet one the link lives. A screen that is being sent events needs none:
    # no burst of a ping per screen in the middle of a busy fan-out.
    daemon = Daemon(settings, clock=clock)
    client = await aiohttp_client(daemon.app)
    async with (
        websockets.connect(ws_url(client, endpoint="grill")) as busy,
        websockets.connect(ws_url(client, endpoint="cold")) as quiet,
    ):
        assert (await recv(busy))["type"] == (await recv(quiet))["type"] == "snapshot"
        for i in range(8):  # 4 s, an event for the grill every half second
            await post(client, order_body(f"busy{i}"))  # a burger and a beer: not for cold
            await clock.advance(0.5)
        both = [{"id": 1, "plu": {"name": "Burger"}}, {"id": 2, "plu": {"name": "Salad"}}]
        await post(client, order_body("last", items=both))
        busy_got, quiet_got = (
            await messages_until(busy, "last"),
            await messages_until(quiet, "last"),
        )
    assert [m["type"] for m in busy_got] == ["order.created"] * 9
    assert [m["type"] for m in quiet_got] == ["ping"] * 4 + ["order.created"]


async def messages_until(ws: Any, external_id: str) -> list[dict[str, Any]]:
    """Every message, pings too, up to the event of the order `external_id`."""
    got = []
    while not got or got[-1].get("order", {}).get("externalId") != external_id:
        got.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
    return got


async def test_large_snapshot_comes_in_pages_then_live_events(
    client: TestClient, daemon: Any
) -> None:
    # 400 open orders (~600 KB) arrive as a "snapshot" page and "snapshot.more" pages of bounded
    # size with one seq; together they hold every order once; live events follow the last page.
    from kds.api import ws as ws_module
    from kds.model import OrderIn

    for i in range(400):
        await daemon.service.ingest(OrderIn.model_validate(order_body(f"p{i}")))
    async with websockets.connect(ws_url(client), max_size=None) as ws:
        pages = [await recv(ws)]
        while pages[-1]["more"]:
            pages.append(await recv(ws))
        assert pages[0]["type"] == "snapshot" and {p["type"] for p in pages[1:]} == {
            "snapshot.more"
        }
        assert len(pages) >= 2 and len({p["seq"] for p in pages}) == 1
        ids = [o["externalId"] for p in pages for o in p["orders"]]
        assert sorted(ids) == sorted(f"p{i}" for i in range(400))
        live = await post(client, order_body("after"))
        event = await recv(ws)
        assert event["type"] == "order.created" and event["order"]["id"] == live["id"]
        assert event["seq"] == pages[0]["seq"] + 1
    assert all(
        len(json.dumps(p, separators=(",", ":"), ensure_ascii=False)) < ws_module.PAGE_BYTES + 4096
        for p in pages
    )


async def test_screens_at_one_seq_share_snapshot_pages_until_all_have_them(
    client: TestClient, daemon: Any
) -> None:
    # Screens connecting together get the same encoded pages (built once); once every screen has
    # its pages kds lets go of them: /readyz counts the snapshots still being sent.
    from kds.model import OrderIn

    for i in range(300):
        await daemon.service.ingest(OrderIn.model_validate(order_body(f"s{i}")))
    sockets = [await websockets.connect(ws_url(client), max_size=None) for _ in range(3)]
    try:
        received = []
        for ws in sockets:
            pages = [await recv(ws)]
            while pages[-1]["more"]:
                pages.append(await recv(ws))
            received.append(pages)
        assert received[0] == received[1] == received[2]

        async def no_snapshot_sending() -> bool:
            report = await (await client.get("/readyz")).json()
            return bool(report["components"]["screens"]["snapshotsSending"] == 0)

        await wait_until(no_snapshot_sending)
        assert (await (await client.get("/readyz")).json())["components"]["screens"]["screens"] == 3
    finally:
        for ws in sockets:
            await ws.close()


@pytest.mark.parametrize("comment_chars", [0, 200, 70_000])
async def test_events_of_every_frame_size_reach_every_screen_intact(
    client: TestClient, comment_chars: int
) -> None:
    # An event's frame is built once for all screens: its length header is right for short
    # (< 126 bytes of payload is impossible for an order, but the ping is), medium (< 64 KiB)
    # and long messages, and every screen decodes the same event.
    body = order_body("big")
    body["items"][0]["comment"] = "ü" * min(comment_chars, 500)
    if comment_chars > 500:  # a long order: many items, each with a long comment
        body["items"] = [
            {"id": i, "plu": {"name": f"Dish {i}"}, "comment": "ü" * 500}
            for i in range(1, comment_chars // 500 + 1)
        ]
    async with (
        websockets.connect(ws_url(client), max_size=2**22) as one,
        websockets.connect(ws_url(client), max_size=2**22) as two,
    ):
        await recv(one), await recv(two)  # snapshots
        await post(client, body)
        first, second = await recv(one), await recv(two)
        assert first == second
        assert first["type"] == "order.created" and first["order"]["externalId"] == "big"
        assert len(first["order"]["items"]) == len(body["items"])
        assert first["order"]["items"][0]["comment"] == body["items"][0]["comment"]


def on_daemon_loop(daemon: Daemon, test: Callable[[TestClient], Awaitable[None]]) -> None:
    """Run `test` with a client of `daemon` on the event loop `kds run` runs it on."""

    async def main() -> None:
        async with TestClient(TestServer(daemon.app)) as client:
            await test(client)

    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(main())


async def screens_health(client: TestClient) -> dict[str, Any]:
    return (await (await client.get("/readyz")).json())["components"]["screens"]


async def test_a_screen_that_keeps_up_is_written_at_once_not_queued(client: TestClient) -> None:
    await screen_keeping_up(client)


@needs_uvloop
def test_on_the_daemons_loop_a_screen_that_keeps_up_is_written_at_once(daemon: Daemon) -> None:
    # uvloop's transports are not asyncio.Transport: the hub must still write to them directly.
    on_daemon_loop(daemon, screen_keeping_up)


async def screen_keeping_up(client: TestClient) -> None:
    # Each event goes straight to a screen that has taken everything so far: no queue, no
    # sender task woken per screen per event (the hub counts what had to wait in a queue).
    async with websockets.connect(ws_url(client)) as ws:
        assert (await recv(ws))["type"] == "snapshot"
        for i in range(3):
            order = await post(client, order_body(f"k{i}"))
            event = await recv(ws)
            assert event["type"] == "order.created" and event["order"]["id"] == order["id"]
    assert (await screens_health(client))["queued"] == 0


async def test_a_screen_that_falls_behind_and_catches_up_gets_every_event_in_order(
    client: TestClient,
) -> None:
    await screen_falling_behind(client)


@needs_uvloop
def test_on_the_daemons_loop_a_screen_that_falls_behind_catches_up(daemon: Daemon) -> None:
    on_daemon_loop(daemon, screen_falling_behind)


def small_window_socket(client: TestClient) -> socket.socket:
    """A socket to the test server that buffers little: a screen on it falls behind early."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
    sock.connect(("127.0.0.1", client.port))
    sock.setblocking(False)
    return sock


def shrink_send_buffers(client: TestClient) -> None:
    """Fix the server's send buffer of every screen small (the kernel would grow it to MBs)."""
    for screen in client.app[HUB].clients:
        assert screen.transport is not None
        screen.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
        )


async def screen_falling_behind(client: TestClient) -> None:
    # While a screen reads nothing, events wait in its socket and then in its queue; once it
    # reads again it gets them all, in order, and the ones after them too (no overtaking).
    async with websockets.connect(
        ws_url(client), max_queue=1, sock=small_window_socket(client)
    ) as ws:
        start = (await recv(ws))["seq"]
        shrink_send_buffers(client)
        big = "x" * 500
        bodies = [order_body(f"lag{i}") for i in range(60)]
        for body in bodies:
            body["items"] = [
                {"id": n, "plu": {"name": f"Dish {n}"}, "comment": big} for n in range(1, 60)
            ]
        for body in bodies[:40]:  # ~1.5 MB: more than the sockets hold
            await post(client, body)
        events = [await recv(ws) for _ in range(40)]
        for body in bodies[40:]:
            await post(client, body)
        events += [await recv(ws) for _ in range(20)]
        assert [e["seq"] for e in events] == list(range(start + 1, start + 61))
        assert [e["order"]["externalId"] for e in events] == [f"lag{i}" for i in range(60)]
        assert (await screens_health(client))["queued"] > 0  # it did fall behind
