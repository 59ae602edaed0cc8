"""Orders read back at start share what repeats (users, table names, stamps): memory per order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kds.app import Daemon
from kds.config import settings_from_dict

from .util import base_config, order_body


async def test_loaded_orders_share_equal_users_names_and_stamps(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # 10,000 open orders held ~450 bytes each of copies of the same user, table name and time
    # stamps; read back, equal values are one object, and the orders' JSON is unchanged.
    settings = settings_from_dict(base_config(tmp_path))
    first = Daemon(settings)
    client = await aiohttp_client(first.app)
    nested = {"userName": "eva", "roles": ["cashier"]}  # not plain text: kept as it is
    for ext, user in (("u1", {"userName": "anna"}), ("u2", {"userName": "anna"}), ("u3", nested)):
        response = await client.post("/api/v1/orders", json=order_body(ext, user=user))
        assert response.status == 201, await response.text()
    before = {o.external_id: o.wire_json() for o in first.service.orders()}
    await client.close()

    second = Daemon(settings)
    client = await aiohttp_client(second.app)
    orders = {o.external_id: o for o in second.service.orders()}
    assert {ext: o.wire_json() for ext, o in orders.items()} == before
    assert orders["u1"].user is orders["u2"].user
    assert orders["u3"].user == nested
    assert orders["u1"].ticket.name is orders["u2"].ticket.name
    for order in orders.values():
        assert order.updated_at is order.items[0].endpoints[0].status_changes[-1].date
    await client.close()
