"""Orders taken on two nodes at once: pickup numbers and repeats, against a real PostgreSQL.

Each node is a whole daemon on its own 127.0.0.1 port; they share nothing but
the database of a real PostgreSQL server (tests/pg.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from kds.app import Daemon
from kds.config import settings_from_dict
from kds.model import utcnow
from kds.numbers import PickupNumbers, SharedNumbers
from kds.store.postgres import PostgresStore

from .util import base_config, order_body, wait_until


def node(tmp_path: Path, pg_url: str, name: str, **ui: Any) -> Daemon:
    config = base_config(
        tmp_path / name, database={"url": pg_url}, node={"name": name}, ui=ui or None
    )
    if not ui:
        del config["ui"]
    return Daemon(settings_from_dict(config))


async def two_nodes(
    tmp_path: Path, pg_url: str, aiohttp_client: Any, **ui: Any
) -> tuple[TestClient, TestClient]:
    a = await aiohttp_client(node(tmp_path, pg_url, "a", **ui).app)
    b = await aiohttp_client(node(tmp_path, pg_url, "b", **ui).app)
    return a, b


async def post(client: TestClient, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = await client.post("/api/v1/orders", json=body)
    return response.status, await response.json()


async def test_two_nodes_taking_orders_at_once_never_hand_out_one_number_twice(
    tmp_path: Path, pg_url: str, aiohttp_client: Any
) -> None:
    # Orders stream into both nodes at the same time: every open order has its own number.
    a, b = await two_nodes(tmp_path, pg_url, aiohttp_client)
    answers = await asyncio.gather(
        *(post(a if n % 2 else b, order_body(f"n{n}")) for n in range(40))
    )
    assert [status for status, _ in answers] == [201] * 40
    numbers = [body["number"] for _, body in answers]
    assert len(set(numbers)) == 40, sorted(numbers)
    # Later orders on either node carry on after them (the nodes share one cursor).
    _, later = await post(a, order_body("later-a"))
    _, later_b = await post(b, order_body("later-b"))
    assert later["number"] not in numbers and later_b["number"] not in numbers
    assert later["number"] != later_b["number"]


async def test_after_the_wrap_a_node_skips_the_numbers_the_other_nodes_orders_hold(
    tmp_path: Path, pg_url: str, aiohttp_client: Any
) -> None:
    # Four numbers; all four orders open on two nodes; B bumps the one numbered 2 (its number is
    # free again at once here). A's next order gets 2: the shared cursor wrapped, and A skipped
    # 1, 3 and 4, held by open orders of either node.
    a, b = await two_nodes(
        tmp_path,
        pg_url,
        aiohttp_client,
        max_pickup_number=4,
        pickup_ready_time="0s",
        recall_window="0s",
    )
    first = [await post(a if n % 2 else b, order_body(f"w{n}")) for n in range(4)]
    by_number = {body["number"]: body["id"] for _, body in first}
    assert sorted(by_number) == [1, 2, 3, 4]
    response = await b.post(f"/api/v1/orders/{by_number[2]}/status", json={"status": "processed"})
    assert response.status == 200, await response.text()

    async def a_sees_it_done() -> bool:
        body = await (await a.get(f"/api/v1/orders/{by_number[2]}")).json()
        return bool(body["isProcessed"])

    await wait_until(a_sees_it_done)
    status, again = await post(a, order_body("after-wrap"))
    assert status == 201 and again["number"] == 2


async def test_one_pos_order_posted_to_both_nodes_at_once_is_stored_once(
    tmp_path: Path, pg_url: str, aiohttp_client: Any
) -> None:
    # A POS (or a load balancer's retry) sends the same order to both nodes at the same moment:
    # one answers 201, the other what a repeat answers (200, the same order), never a 409; the
    # database holds one order, and both nodes' views have it.
    a, b = await two_nodes(tmp_path, pg_url, aiohttp_client)
    for n in range(6):
        body = order_body(f"twice-{n}")
        answers = await asyncio.gather(post(a, body), post(b, body))
        assert sorted(status for status, _ in answers) == [200, 201], answers
        assert answers[0][1]["id"] == answers[1][1]["id"]
        assert answers[0][1]["number"] == answers[1][1]["number"]
    for client in (a, b):
        listing = await (await client.get("/api/v1/orders")).json()
        assert sorted(o["externalId"] for o in listing["items"]) == [f"twice-{n}" for n in range(6)]
    # A different body under the same id is still a conflict, whichever node stored it first.
    status, _ = await post(b, order_body("twice-0", ticket={"id": "other", "name": "Bar"}))
    assert status == 409


class Claims:
    """A node's claims from the shared cursor (`PostgresStore.claim_numbers`), counted."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.calls = 0

    async def __call__(self, count: int) -> int:
        self.calls += 1
        return await self.store.claim_numbers(count)


def shared_numbers(claims: Claims, maximum: int = 999) -> tuple[PickupNumbers, SharedNumbers]:
    numbers = PickupNumbers(maximum, 0, lambda _: None, lambda _: False)
    return numbers, SharedNumbers(numbers, claims)


async def take(numbers: PickupNumbers, shared: SharedNumbers, order_id: str) -> int:
    await shared.ready()
    return numbers.take(order_id, utcnow())  # nothing awaited between ready() and take()


async def test_two_nodes_claiming_at_once_never_get_one_number_twice(pg_url: str) -> None:
    # Two nodes' stores claim from the one cursor of their site at the same time, many orders
    # each: every order on either node has its own number (the nodes share nothing else).
    stores = [PostgresStore(pg_url), PostgresStore(pg_url)]
    for store in stores:
        await store.start()
    try:
        nodes = [shared_numbers(Claims(store)) for store in stores]
        taken = await asyncio.gather(
            *(take(*nodes[n % 2], f"o{n}") for n in range(120)),
            *(take(*nodes[n % 2], f"p{n}") for n in range(120)),
        )
    finally:
        for store in stores:
            await store.stop()
    assert len(set(taken)) == len(taken) == 240, sorted(taken)


async def test_orders_waiting_for_a_number_claim_theirs_in_one_statement(pg_url: str) -> None:
    # Fifty orders arrive at once: the first claims alone (nobody else was waiting yet), the
    # others queued behind it claim together — two round trips, not fifty. Their numbers are
    # 1…50, each once, and the shared cursor is at 50.
    store = PostgresStore(pg_url)
    await store.start()
    try:
        claims = Claims(store)
        numbers, shared = shared_numbers(claims)
        taken = await asyncio.gather(*(take(numbers, shared, f"o{n}") for n in range(50)))
        assert sorted(taken) == list(range(1, 51))
        assert claims.calls == 2
        assert await store.claim_numbers(0) == 50
    finally:
        await store.stop()
