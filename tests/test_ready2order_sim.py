"""The ready2order simulator behaves like the API kds is built against (seed 001)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kds.simulators.ready2order import Ready2OrderSimulator

from .util import wait_until

TOKEN = "sim-acc"


@pytest.fixture
async def sim() -> AsyncIterator[Ready2OrderSimulator]:
    sim = Ready2OrderSimulator(
        account_token=TOKEN, developer_token="sim-dev", rate_limit=5, retry_delays=(0.01, 0.02)
    )
    sim.seed_menu()
    await sim.start()
    yield sim
    await sim.stop()


class Receiver:
    """A webhook receiver on 127.0.0.1 that can fail the first deliveries."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.bodies: list[dict[str, Any]] = []
        self.got = asyncio.Condition()
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        async with self.got:
            if self.fail_first:
                self.fail_first -= 1
                return web.Response(status=500)
            self.bodies.append(body)
            self.got.notify_all()
        return web.Response(status=202)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]

    async def wait(self, n: int) -> None:
        async def enough() -> None:
            async with self.got:
                await self.got.wait_for(lambda: len(self.bodies) >= n)

        await asyncio.wait_for(enough(), 5)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    assert r.runner is not None
    await r.runner.cleanup()


async def get(sim: Ready2OrderSimulator, path: str, token: str | None) -> aiohttp.ClientResponse:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{sim.api_url}{path}", headers=headers) as resp:
            await resp.read()
            return resp


async def test_auth_401_without_token_403_with_the_wrong_kind(sim: Ready2OrderSimulator) -> None:
    # Guarantees: the seed's error table — missing token 401, developer token on account data 403.
    assert (await get(sim, "/orders", None)).status == 401
    assert (await get(sim, "/orders", "sim-dev")).status == 403
    assert (await get(sim, "/orders", "nope")).status == 401
    assert (await get(sim, "/orders", TOKEN)).status == 200


async def test_rate_limit_answers_429_with_retry_after(sim: Ready2OrderSimulator) -> None:
    # Guarantees: more than the limit per period → 429 with Retry-After; admitted requests never exceed it.
    statuses = [(await get(sim, "/orders", TOKEN)).status for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    resp = await get(sim, "/orders", TOKEN)
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    assert sim.throttled == 3 and sim.max_admitted_in_period() == 5


async def test_table_orders_list_pages_and_training_filter(sim: Ready2OrderSimulator) -> None:
    # Guarantees: GET /orders lists open items with the seed's fields, paged; training items only on request.
    table = next(iter(sim.tables))
    ids = sim.create_items(table, [(p, 1) for p in list(sim.products)[:3]], notify=False)
    sim.create_items(table, [(next(iter(sim.products)), 1)], training=True, notify=False)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s:
        async with s.get(f"{sim.api_url}/orders", params={"page": 1, "limit": 2}) as resp:
            page1 = await resp.json()
        async with s.get(f"{sim.api_url}/orders", params={"page": 2, "limit": 2}) as resp:
            page2 = await resp.json()
        async with s.get(f"{sim.api_url}/orders", params={"trainingsMode": "true"}) as resp:
            training = await resp.json()
    assert [r["order_id"] for r in page1 + page2] == ids
    assert {
        "order_id",
        "order_quantity",
        "order_product_name",
        "order_group",
        "table_id",
        "order_created_at",
    } <= set(page1[0])
    assert len(training) == 1 and training[0]["trainingMode"] is True


async def test_webhooks_retry_duplicate_drop_and_reorder(
    sim: Ready2OrderSimulator, receiver: Receiver
) -> None:
    # Guarantees: failed deliveries are retried; duplicates, drops and reordering happen on demand.
    sim.webhook_url = receiver.url
    receiver.fail_first = 1
    table = next(iter(sim.tables))
    product = next(iter(sim.products))
    first = sim.create_items(table, [(product, 1)])
    await receiver.wait(1)
    assert (
        receiver.bodies[0]["event"] == "orderItem.created"
        and receiver.bodies[0]["resource"] == first
    )
    assert sim.deliveries[0].attempts == 2 and sim.deliveries[0].statuses == [500, 202]

    sim.set_webhook_mode("duplicate", times=1)
    sim.cancel_items(first)
    await receiver.wait(3)
    assert receiver.bodies[1] == receiver.bodies[2]

    sim.set_webhook_mode("drop", times=1)
    sim.create_items(table, [(product, 1)])
    await sim.wait_delivered()
    assert len(receiver.bodies) == 3

    sim.set_webhook_mode("hold")
    a = sim.create_items(table, [(product, 1)])
    sim.cancel_items(a)
    assert len(receiver.bodies) == 3
    sim.release(reverse=True)
    await receiver.wait(5)
    assert [b["event"] for b in receiver.bodies[3:]] == ["orderItem.cancelled", "orderItem.created"]


async def test_transfer_payload_carries_tables_and_ids(
    sim: Ready2OrderSimulator, receiver: Receiver
) -> None:
    # Guarantees: orderItem.transferred carries source/target table and the moved order ids.
    sim.webhook_url = receiver.url
    t1, t2 = list(sim.tables)[:2]
    ids = sim.create_items(t1, [(next(iter(sim.products)), 1)], notify=False)
    sim.transfer_items(t1, t2)
    await receiver.wait(1)
    body = receiver.bodies[0]
    assert body["event"] == "orderItem.transferred"
    assert body["resource"]["source_table_id"] == t1 and body["resource"]["target_table_id"] == t2
    assert body["resource"]["order_ids"] == ids
    assert sim.items[ids[0]]["table_id"] == t2


async def test_webhook_registration_routes(sim: Ready2OrderSimulator) -> None:
    # Guarantees: PUT /webhook and /webhook/events as documented configure delivery.
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s:
        async with s.put(
            f"{sim.api_url}/webhook", json={"webhookUrl": "http://127.0.0.1:9/x"}
        ) as resp:
            assert resp.status == 200
        async with s.put(
            f"{sim.api_url}/webhook/events", json={"addEvent": "orderItem.created"}
        ) as resp:
            assert "orderItem.created" in (await resp.json())["msg"]
    assert sim.webhook_url == "http://127.0.0.1:9/x" and sim.webhook_events == {"orderItem.created"}
    assert sim.deliveries == []  # nothing happened on the floor yet


async def test_random_traffic_for_the_demo(sim: Ready2OrderSimulator, receiver: Receiver) -> None:
    # Guarantees: step()/run_traffic() book, cancel, transfer and bill, and every change is announced.
    sim.webhook_url = receiver.url
    done = {sim.step() for _ in range(150)}
    assert {"create", "cancel", "transfer", "bill"} <= done
    await sim.wait_delivered(10)
    events = {b["event"] for b in receiver.bodies}
    assert events == {"orderItem.created", "orderItem.cancelled", "orderItem.transferred"}
    stop = asyncio.Event()
    before = len(sim.deliveries)
    task = asyncio.create_task(sim.run_traffic(6000, stop))
    await wait_until(lambda: len(sim.deliveries) > before + 3)
    stop.set()
    await asyncio.wait_for(task, 5)


SEED_FIELDS = json.loads(
    (Path(__file__).parent / "fixtures" / "ready2order" / "seed001_fields.json").read_text()
)


def outside_seed(
    rows: list[dict[str, Any]], resource: str, inferred: str | None = None
) -> set[str]:
    allowed = set(SEED_FIELDS[resource]) | set(SEED_FIELDS.get(inferred or "", []))
    return {key for row in rows for key in row} - allowed


async def test_every_field_the_simulator_returns_is_in_seed_001(sim: Ready2OrderSimulator) -> None:
    # Guarantees: the fake adds no field the real API lacks (an order row has no productgroup_id,
    # so kds cannot route by a field ready2order never sends); the two inferred fields are named.
    sim.rate_limit = 100
    table = next(iter(sim.tables))
    food = sim.add_group("Food")
    burgers = sim.add_group("Burgers", parent=food)
    burger = sim.add_product("Veggie burger", burgers)
    sim.create_items(table, [(burger, 1), (next(iter(sim.products)), 2, "no ice")], notify=False)
    sim.return_items(table, [(burger, 1)], notify=False)
    sim.bill_table(table)
    sim.create_items(table, [(burger, 1)], notify=False)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s:

        async def fetch(path: str, **params: Any) -> Any:
            async with s.get(f"{sim.api_url}{path}", params=params) as resp:
                assert resp.status == 200, path
                return await resp.json()

        orders = await fetch("/orders")
        products = await fetch("/products")
        one = await fetch(f"/products/{burger}")
        groups = [*await fetch("/productgroups"), await fetch(f"/productgroups/{burgers}")]
        tables = [*await fetch("/tables"), await fetch(f"/tables/{table}")]
        invoices = await fetch("/document/invoice", tableId=str(table), items="true")
    assert orders and "productgroup_id" not in orders[0]
    assert outside_seed(orders, "order_row", "order_row_inferred") == set()
    assert outside_seed([*products, one], "product") == set()
    assert outside_seed(groups, "productgroup", "productgroup_inferred") == set()
    assert [g["productgroup_parent"] for g in groups if "productgroup_parent" in g] == [food, food]
    assert outside_seed(tables, "table") == set()
    assert outside_seed([invoices], "invoice_list") == set()
    assert outside_seed(invoices["invoices"], "invoice") == set()
    assert (
        outside_seed([i for inv in invoices["invoices"] for i in inv["items"]], "invoice_item")
        == set()
    )
    assert [i["item_retour"] for i in invoices["invoices"][0]["items"]] == [False, False, True]
