"""The PORTOS simulator on its own: tickets → orders, queries, status routes, auth, faults."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import aiohttp
import pytest

from kds.simulators.portos import PortosSimulator

TOKEN = "static-test-token"


@pytest.fixture
async def sim() -> AsyncIterator[PortosSimulator]:
    sim = PortosSimulator(
        static_tokens=[TOKEN],
        users={"kds": "pw"},
        devices={"P01": {"DefaultOrderEndpointName": "kitchen"}},
    )
    sim.add_plu(1, "Burger", ["grill"])
    sim.add_plu(2, "Cola", ["bar"])
    sim.add_plu(3, "Soup", [])
    sim.add_plu(4, "Steak", ["grill", "kitchen"])
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def http(sim: PortosSimulator) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session:
        yield session


async def test_ticket_generates_order_with_plu_or_default_endpoints(
    sim: PortosSimulator, http: aiohttp.ClientSession
) -> None:
    # Item endpoints come from the PLU's orderEndpointNames, else the device default.
    body = {
        "name": "T1",
        "location": {"zoneName": "Bar", "tableName": "5"},
        "purchaseType": "walkIn",
        "items": [
            {
                "plu": {"code": 1},
                "quantity": {"amount": 2, "unit": "pcs"},
                "comment": "no onion",
                "courseNumber": 2,
            },
            {"plu": {"code": 3}},
            {"plu": {"code": 4}},
        ],
    }
    async with http.post(f"{sim.url}/tickets", json=body) as resp:
        assert resp.status == 201
        ticket = await resp.json()
    async with http.get(f"{sim.url}/orders", params={"ticketId": ticket["id"]}) as resp:
        result = await resp.json()
    assert result["count"] == 1 and result["totalCount"] == 1
    order = result["items"][0]
    assert order["ticket"]["location"] == {"zoneName": "Bar", "tableName": "5"}
    assert order["ticket"]["version"] == 1
    by_code = {i["plu"]["code"]: i for i in order["items"]}
    assert [e["name"] for e in by_code[1]["endpoints"]] == ["grill"]
    assert [e["name"] for e in by_code[3]["endpoints"]] == ["kitchen"]
    assert [e["name"] for e in by_code[4]["endpoints"]] == ["grill", "kitchen"]
    assert by_code[1]["comment"] == "no onion" and by_code[1]["courseNumber"] == 2
    endpoint = by_code[1]["endpoints"][0]
    assert (
        endpoint["orderItemStatus"] == "created"
        and endpoint["isProcessable"]
        and not endpoint["isProcessed"]
    )


async def test_ticket_update_orders_only_the_added_items(
    sim: PortosSimulator, http: aiohttp.ClientSession
) -> None:
    # A later update creates a second order holding only what was added (by quantity).
    ticket = sim.create_ticket([{"pluCode": 1, "quantity": 1}])
    put = {"items": [{"id": 1, "plu": {"code": 1}, "quantity": 3}, {"plu": {"code": 2}}]}
    async with http.put(f"{sim.url}/tickets/{ticket['id']}", json=put) as resp:
        assert resp.status == 200
    orders = sorted(
        (o for o in sim.orders.values() if o["ticket"]["id"] == ticket["id"]),
        key=lambda o: o["number"],
    )
    assert len(orders) == 2
    second = orders[1]
    assert {(i["plu"]["code"], i["quantity"]["amount"]) for i in second["items"]} == {
        (1, 2),
        (2, 1),
    }
    assert second["ticket"]["version"] == 2


async def test_closed_ticket_answers_403(sim: PortosSimulator, http: aiohttp.ClientSession) -> None:
    ticket = sim.create_ticket([{"pluCode": 1}])
    async with http.post(
        f"{sim.url}/tickets/{ticket['id']}/close", json={"fiscal": {"name": "eKasa"}}
    ) as resp:
        assert resp.status == 200
    async with http.put(
        f"{sim.url}/tickets/{ticket['id']}", json={"items": [{"plu": {"code": 2}}]}
    ) as resp:
        assert resp.status == 403
    with pytest.raises(PermissionError):
        sim.add_items(ticket["id"], [{"pluCode": 2}])


async def test_query_filters_sort_paging_and_count(
    sim: PortosSimulator, http: aiohttp.ClientSession
) -> None:
    # seed-002 filters plus $skip/$take/$sort/$count.
    for n in range(5):
        sim.create_ticket([{"pluCode": 1}], name=f"T{n}")
    first = min(sim.orders.values(), key=lambda o: o["number"])
    sim.apply_status(first["id"], "sent")
    async with http.get(
        f"{sim.url}/orders",
        params={"isProcessable": "true", "$sort": "-number", "$skip": "1", "$take": "2"},
    ) as resp:
        page = await resp.json()
    assert page["count"] == 2 and page["totalCount"] == 4
    assert [o["number"] for o in page["items"]] == [4, 3]
    async with http.get(
        f"{sim.url}/orders", params={"$count": "true", "number": "gte:2;lt:4"}
    ) as resp:
        counted = await resp.json()
    assert counted == {"count": 2, "totalCount": 2}
    async with http.get(
        f"{sim.url}/orders", params={"ticketName": "in:T1:T3", "$sort": "ticketName:desc"}
    ) as resp:
        names = [o["ticket"]["name"] for o in (await resp.json())["items"]]
    assert names == ["T3", "T1"]
    async with http.get(f"{sim.url}/orders", params={"bogus": "1"}) as resp:
        assert resp.status == 400


async def test_status_routes_follow_the_seeds_rules(
    sim: PortosSimulator, http: aiohttp.ClientSession
) -> None:
    # Seed 004: final statuses (refused, processed, processSkipped) never change; nothing else is
    # forbidden (its diagram is missing). A route over several item endpoints leaves final ones alone.
    sim.create_ticket([{"pluCode": 1}, {"pluCode": 4}])
    order = next(iter(sim.orders.values()))
    url = f"{sim.url}/orders/{order['id']}"
    async with http.post(f"{url}/endpoints/grill/status", json={"status": "sent"}) as resp:
        assert resp.status == 200
    assert sim.status_of(order["id"], "grill") == ["sent", "sent"]
    assert sim.status_of(order["id"], "kitchen") == ["created"]
    async with http.post(f"{url}/items/2/status", json={"status": "processed"}) as resp:
        assert (
            resp.status == 200
        )  # sent → processed and created → processed: the seed forbids neither
    assert sim.status_of(order["id"], "kitchen") == ["processed"]
    async with http.post(f"{url}/items/2/status", json={"status": "accepted"}) as resp:
        assert resp.status == 409  # final at both endpoints: nothing can change
    async with http.post(f"{url}/endpoints/grill/status", json={"status": "delivered"}) as resp:
        assert resp.status == 200  # the processed steak is left alone, the burger moves
    assert sim.status_of(order["id"], "grill") == ["delivered", "processed"]
    async with http.post(f"{url}/items/1/status", json={"status": "delivered"}) as resp:
        assert resp.status == 200  # repeating is a no-op
    assert sim.history(order["id"], 1, "grill") == ["created", "sent", "delivered"]
    async with http.post(f"{url}/items/1/status", json={"status": "unknown"}) as resp:
        assert resp.status == 409
    async with http.post(f"{url}/items/9/status", json={"status": "sent"}) as resp:
        assert resp.status == 404
    async with http.post(f"{url}/endpoints/nowhere/status", json={"status": "sent"}) as resp:
        assert resp.status == 404
    async with http.post(f"{url}/status", json={"status": "bogus"}) as resp:
        assert resp.status == 400
    sim.set_endpoint_active("kitchen", False)
    async with http.post(f"{url}/endpoints/kitchen/status", json={"status": "sent"}) as resp:
        assert resp.status == 403
    async with http.delete(url) as resp:
        assert resp.status == 204
    async with http.post(f"{url}/status", json={"status": "sent"}) as resp:
        assert resp.status == 404
    assert [p.answer for p in sim.status_posts] == [
        200,
        200,
        409,
        200,
        200,
        409,
        404,
        404,
        400,
        403,
        404,
    ]


def test_nws4_verifier_accepts_the_vendor_vector_and_nothing_else() -> None:
    # The simulator's own NWS4 check against ninedigit/nws4-php's published test vector (the
    # seeds have none): the library's request verifies at its time; any change breaks it.
    from datetime import timedelta

    from kds.simulators.portos.nws4 import verify

    from .test_portos_auth import AUTHORIZATION, BODY, NOW, PUBLIC, SECRET, URL

    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "host": "example.com:8080",
        "x-nd-date": "2023-05-30T13:17:01.992Z",
        "x-nd-content-sha256": hashlib.sha256(BODY).hexdigest(),
        "Authorization": AUTHORIZATION,
    }
    assert verify("POST", URL, headers, BODY, {PUBLIC: SECRET}, now=NOW) == PUBLIC
    changes = [
        {"method": "PUT"},
        {"url": URL.replace("user", "users")},
        {"url": URL.replace("i=1", "i=2")},
        {"body": b"{}"},
        {"keys": {PUBLIC: "other"}},
        {"keys": {}},
        {"now": NOW + timedelta(hours=1)},
    ]
    for change in changes:
        args = {
            "method": "POST",
            "url": URL,
            "body": BODY,
            "keys": {PUBLIC: SECRET},
            "now": NOW,
            **change,
        }
        with pytest.raises(ValueError):
            verify(
                args["method"], args["url"], headers, args["body"], args["keys"], now=args["now"]
            )


async def test_login_refresh_and_expiry(sim: PortosSimulator) -> None:
    # AuthResult tokens work until they expire (401); the refresh token gets a new pair.
    async with aiohttp.ClientSession() as s:
        async with s.post(
            f"{sim.url}/auth", json={"UserName": "kds", "Password": "bad", "DeviceName": "P01"}
        ) as resp:
            assert resp.status == 401
        async with s.post(
            f"{sim.url}/auth", json={"UserName": "kds", "Password": "pw", "DeviceName": "P01"}
        ) as resp:
            auth = await resp.json()
        assert (
            auth["tokenId"].count(".") == 2
            and auth["refreshToken"]
            and auth["user"]["userName"] == "kds"
        )
        headers = {"Authorization": f"Bearer {auth['tokenId']}"}
        async with s.get(f"{sim.url}/orders", headers=headers) as resp:
            assert resp.status == 200
        sim.expire_tokens()
        async with s.get(f"{sim.url}/orders", headers=headers) as resp:
            assert resp.status == 401
        async with s.post(
            f"{sim.url}/auth/refresh", json={"refreshToken": auth["refreshToken"]}
        ) as resp:
            fresh = await resp.json()
        async with s.post(
            f"{sim.url}/auth/refresh", json={"refreshToken": auth["refreshToken"]}
        ) as resp:
            assert resp.status == 401  # refresh tokens rotate
        async with s.get(
            f"{sim.url}/orders", headers={"Authorization": f"Bearer {fresh['tokenId']}"}
        ) as resp:
            assert resp.status == 200
        async with s.get(f"{sim.url}/orders") as resp:
            assert resp.status == 401


async def test_faults_500_malformed_drop_delay_and_down(
    sim: PortosSimulator, http: aiohttp.ClientSession
) -> None:
    # Each fault is visible to a client exactly as a real outage would be.
    await sim.set_mode("error", times=2, status=503)
    for _ in range(2):
        async with http.get(f"{sim.url}/orders") as resp:
            assert resp.status == 503
    await sim.set_mode("garbage", times=1)
    async with http.get(f"{sim.url}/orders") as resp:
        assert resp.status == 200
        with pytest.raises(ValueError):
            await resp.json()
    await sim.set_mode("drop", times=2)  # aiohttp retries a GET once after a disconnect
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with http.get(f"{sim.url}/orders") as resp:
            await resp.read()
    assert sim.faults.mode == "online"
    await sim.set_mode("slow", delay=1.0)
    with pytest.raises(asyncio.TimeoutError):
        async with http.get(f"{sim.url}/orders", timeout=aiohttp.ClientTimeout(total=0.2)) as resp:
            await resp.read()
    await sim.set_mode("offline")
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(f"{sim.url}/orders") as resp:
            await resp.read()
    await sim.set_mode("online")
    async with http.get(f"{sim.url}/orders") as resp:
        assert resp.status == 200


async def test_control_routes_drive_the_simulator(sim: PortosSimulator) -> None:
    # Another process (kds demo) can drive it over /_sim/.
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{sim.root}/_sim/tickets", json={"items": [{"pluCode": 2}]}) as resp:
            created = await resp.json()
        ticket_id = created["ticket"]["id"]
        async with s.post(
            f"{sim.root}/_sim/tickets/{ticket_id}/items", json={"items": [{"pluCode": 1}]}
        ) as resp:
            second = (await resp.json())["order"]
        async with s.delete(f"{sim.root}/_sim/orders/{second['id']}") as resp:
            assert resp.status == 204
        async with s.post(
            f"{sim.root}/_sim/mode", json={"mode": "error", "times": 1, "status": 500}
        ) as resp:
            assert resp.status == 200
        async with s.get(f"{sim.url}/orders", headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            assert resp.status == 500
        async with s.get(f"{sim.root}/_sim/state") as resp:
            state = await resp.json()
    assert len(state["orders"]) == 1 and state["deletedOrders"] == [second["id"]]


async def test_control_routes_expire_tokens_and_refuse_a_bad_plu(sim: PortosSimulator) -> None:
    # Another process can expire every token; a PLU without an integer code is a 400, not a 500.
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{sim.root}/_sim/plus", json={"code": "x", "name": "Soup"}) as resp:
            assert resp.status == 400
        async with s.post(f"{sim.root}/_sim/plus", json=["not", "a", "plu"]) as resp:
            assert resp.status == 400
        async with s.post(f"{sim.root}/_sim/expire-tokens") as resp:
            assert resp.status == 204
        async with s.get(f"{sim.url}/orders", headers=headers) as resp:
            assert resp.status == 401


async def test_wait_for_wakes_on_change(sim: PortosSimulator) -> None:
    waiter = asyncio.create_task(sim.wait_for(lambda: len(sim.orders) == 1))
    await asyncio.sleep(0)
    sim.create_ticket([{"pluCode": 1}])
    await asyncio.wait_for(waiter, 5)


async def test_feed_acts_like_a_till(sim: PortosSimulator) -> None:
    # The demo feed keeps producing orders for known PLUs (for `kds demo`).
    task = asyncio.create_task(sim.feed(0.001, seed=7))
    try:
        await sim.wait_for(lambda: len(sim.orders) >= 5)
    finally:
        task.cancel()
    assert all(i["plu"]["code"] in sim.plus for o in sim.orders.values() for i in o["items"])
