"""Orders read back at start share what repeats (users, table names, stamps): memory per order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kds.app import Daemon
from kds.config import settings_from_dict
from kds.model import Order

from .util import base_config, order_body


async def _read_back(
    tmp_path: Path, aiohttp_client: Any, bodies: list[dict[str, Any]]
) -> tuple[Daemon, Any, dict[str, Order]]:
    """Ingest `bodies`, then start a second daemon on the database: (daemon, client, its orders
    by external id), each order's JSON checked unchanged."""
    settings = settings_from_dict(base_config(tmp_path))
    first = Daemon(settings)
    client = await aiohttp_client(first.app)
    for body in bodies:
        response = await client.post("/api/v1/orders", json=body)
        assert response.status == 201, await response.text()
    before = {o.external_id: o.wire_json() for o in first.service.orders()}
    await client.close()

    second = Daemon(settings)
    client = await aiohttp_client(second.app)
    orders = {o.external_id: o for o in second.service.orders()}
    assert {ext: o.wire_json() for ext, o in orders.items()} == before
    return second, client, orders


async def test_loaded_orders_share_equal_users_names_and_stamps(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # 10,000 open orders held ~450 bytes each of copies of the same user, table name and time
    # stamps; read back, equal values are one object, and the orders' JSON is unchanged.
    nested = {"userName": "eva", "roles": ["cashier"]}  # not plain text: kept as it is
    users = (("u1", {"userName": "anna"}), ("u2", {"userName": "anna"}), ("u3", nested))
    _, client, orders = await _read_back(
        tmp_path, aiohttp_client, [order_body(ext, user=user) for ext, user in users]
    )
    assert orders["u1"].user is orders["u2"].user
    assert orders["u3"].user == nested
    assert orders["u1"].ticket.name is orders["u2"].ticket.name
    for order in orders.values():
        assert order.updated_at is order.items[0].endpoints[0].status_changes[-1].date
    await client.close()


async def test_loaded_item_endpoints_share_creation_steps_and_keep_their_own_lists(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # An order's item endpoints were created at one instant: read back, they share those
    # StatusChange objects (2 an order, not 2 per item endpoint) and equal modifier lists
    # share their text; each keeps a list of its own, so a later change touches one item.
    second, client, orders = await _read_back(
        tmp_path, aiohttp_client, [order_body("s1"), order_body("s2")]
    )
    burger, beer = (item.endpoints[0] for item in orders["s1"].items)
    assert [c.status for c in burger.status_changes] == ["created", "sent"]
    assert all(a is b for a, b in zip(burger.status_changes, beer.status_changes))
    assert burger.status_changes is not beer.status_changes
    other = orders["s2"].items[0]
    assert orders["s1"].items[0].modifiers == other.modifiers == ["no onion", "extra cheese"]
    assert orders["s1"].items[0].modifiers is not other.modifiers
    assert orders["s1"].items[0].modifiers[0] is other.modifiers[0]

    oid = orders["s1"].id
    response = await client.post(
        f"/api/v1/orders/{oid}/endpoints/grill/status", json={"status": "accepted"}
    )
    assert response.status == 200, await response.text()
    changed = second.service.get(oid)
    assert changed is not None
    grill, bar = (item.endpoints[0] for item in changed.items)
    assert [c.status for c in grill.status_changes][-1] == "accepted"
    assert [c.status for c in bar.status_changes] == ["created", "sent"]
    await client.close()
