"""Orders read back at start share what repeats (users, table names, stamps): memory per order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

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


async def test_loaded_orders_share_tables_and_one_empty_list_that_refuses_changes(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # Read back, orders at one table share its Location, and what an order holds nothing of
    # (allergens, modifiers, events, holds, acknowledgements) is one shared empty list (or
    # dict) that raises on a change in place; the commands replace those lists, so a rush
    # after the restart changes its own order only.
    second, client, orders = await _read_back(
        tmp_path, aiohttp_client, [order_body("e1"), order_body("e2")]
    )
    one, two = orders["e1"], orders["e2"]
    assert one.ticket.location is two.ticket.location
    burger, beer = one.items
    assert beer.modifiers == [] and beer.modifiers is burger.allergens is two.items[0].allergens
    assert one.events is two.holds
    assert one.allergen_acks == {} and one.allergen_acks is two.allergen_acks
    with pytest.raises(TypeError):
        one.events.append(None)
    with pytest.raises(TypeError):
        one.allergen_acks["grill"] = one.created_at
    assert one.events == [] and one.allergen_acks == {}

    response = await client.post(f"/api/v1/orders/{one.id}/rush")
    assert response.status == 200, await response.text()
    rushed = second.service.get(one.id)
    assert rushed is not None and [e.type for e in rushed.events] == ["rush"]
    assert second.service.get(two.id).events == []  # type: ignore[union-attr]
    await client.close()


async def test_ingested_orders_share_what_loaded_orders_share(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # An order ingested after a restart is built like the ones read back: it shares their
    # table's Location, user, repeated text and the one empty list and dict (an order held
    # ~1.7 KB more when ingested than when loaded); its JSON is that of the order read back,
    # and a command replaces its shared empty lists instead of changing them.
    second, client, orders = await _read_back(tmp_path, aiohttp_client, [order_body("l1")])
    loaded = orders["l1"]
    response = await client.post("/api/v1/orders", json=order_body("i1"))
    assert response.status == 201, await response.text()
    ingested = second.service.find("native", "i1")
    assert ingested is not None
    assert ingested.ticket.location is loaded.ticket.location
    assert ingested.user is loaded.user
    assert ingested.device_name is loaded.device_name
    assert ingested.ticket.name is loaded.ticket.name
    assert ingested.ticket.model_fields_set is loaded.ticket.model_fields_set
    burger, beer = ingested.items
    assert beer.modifiers is burger.allergens is loaded.items[0].allergens
    assert ingested.events is ingested.holds is loaded.events
    assert ingested.allergen_acks is loaded.allergen_acks
    with pytest.raises(TypeError):
        ingested.holds.append(None)

    response = await client.post(f"/api/v1/orders/{ingested.id}/rush")
    assert response.status == 200, await response.text()
    rushed = second.service.get(ingested.id)
    assert rushed is not None and [e.type for e in rushed.events] == ["rush"]
    assert second.service.get(loaded.id).events == []  # type: ignore[union-attr]
    await client.close()


async def test_orders_hold_no_dict_for_their_encoded_json(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # The wire JSON an order keeps between changes sits in a slot, not in a pydantic private
    # dict every order carried (~200 bytes each, whether it held a JSON or not); it is reused
    # until the next change, which encodes it anew, and it does not make equal orders unequal.
    second, client, orders = await _read_back(tmp_path, aiohttp_client, [order_body("j1")])
    response = await client.post("/api/v1/orders", json=order_body("j2"))
    assert response.status == 201, await response.text()
    loaded, ingested = orders["j1"], second.service.find("native", "j2")
    assert ingested is not None
    for order in (loaded, ingested):
        assert order.__pydantic_private__ is None
        assert order.wire_json() is order.wire_json()
    copy = Order.model_validate_json(ingested.wire_json())
    assert copy == ingested and copy.wire_json() == ingested.wire_json()

    response = await client.post(f"/api/v1/orders/{ingested.id}/rush")
    assert response.status == 200, await response.text()
    assert await response.json() == json.loads(ingested.wire_json())
    assert ingested.to_wire()["rush"] is True
    await client.close()


def _keeps_json(order: Order) -> bool:
    try:
        return Order.__dict__["_wire"].__get__(order) is not None
    except AttributeError:  # never kept
        return False


async def test_only_the_last_hundred_changed_orders_keep_their_json(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # Each change's JSON is encoded once, for its event and the answer right after; the bus's
    # history holds the event's bytes already, so only the last 100 changed orders keep theirs
    # as text (1,000 did: ~2 MB after a burst), and every answer is still that order's JSON.
    daemon = Daemon(settings_from_dict(base_config(tmp_path)))
    client = await aiohttp_client(daemon.app)
    answers = {}
    for n in range(101):
        response = await client.post("/api/v1/orders", json=order_body(f"k{n}"))
        assert response.status == 201, await response.text()
        answers[f"k{n}"] = await response.text()
    orders = {o.external_id: o for o in daemon.service.orders()}
    assert not _keeps_json(orders["k0"]) and _keeps_json(orders["k100"])
    assert sum(map(_keeps_json, orders.values())) == 100
    assert all(answers[ext] == o.wire_json(keep=False) for ext, o in orders.items())

    # A repeat's answer (and an unchanged status's) encodes the order without keeping it:
    # kept outside the last 100, its JSON would stay until the order's next change.
    response = await client.post("/api/v1/orders", json=order_body("k0"))
    assert response.status == 200 and await response.text() == answers["k0"]
    assert not _keeps_json(orders["k0"])
    await client.close()
