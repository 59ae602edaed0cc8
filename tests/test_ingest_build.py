"""How ingest builds a new order: few objects, nothing shared that a later change could touch."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from kds.app import Daemon

from .util import order_body


async def test_new_item_endpoints_share_creation_steps_and_keep_their_own_lists(
    client: TestClient, daemon: Daemon
) -> None:
    # An order's item endpoints are created at one instant: as when read back at start, they
    # share those StatusChange objects (2 an order, not 2 per item endpoint); each keeps a list
    # of its own, so a later change at one station leaves the other's history alone.
    response = await client.post("/api/v1/orders", json=order_body("n1"))
    assert response.status == 201, await response.text()
    order = daemon.service.find("native", "n1")
    assert order is not None
    burger, beer = (item.endpoints[0] for item in order.items)
    assert [c.status for c in burger.status_changes] == ["created", "sent"]
    assert all(a is b for a, b in zip(burger.status_changes, beer.status_changes, strict=True))
    assert burger.status_changes is not beer.status_changes

    response = await client.post(
        f"/api/v1/orders/{order.id}/endpoints/grill/status", json={"status": "accepted"}
    )
    assert response.status == 200, await response.text()
    changed = daemon.service.get(order.id)
    assert changed is not None
    grill, bar = (item.endpoints[0] for item in changed.items)
    assert [c.status for c in grill.status_changes][-1] == "accepted"
    assert [c.status for c in bar.status_changes] == ["created", "sent"]


async def test_items_without_an_id_are_numbered_after_the_highest_given(
    client: TestClient,
) -> None:
    body = order_body("ids")
    burger, beer = body["items"]
    body["items"] = [
        {**burger, "id": None},
        {**beer, "id": 7},
        {**beer, "id": None},
        {**burger, "id": 3},
    ]
    response = await client.post("/api/v1/orders", json=body)
    assert response.status == 201, await response.text()
    assert [i["id"] for i in (await response.json())["items"]] == [8, 7, 9, 3]
    body = order_body("no-ids")
    body["items"] = [{**item, "id": None} for item in body["items"]]
    response = await client.post("/api/v1/orders", json=body)
    assert [i["id"] for i in (await response.json())["items"]] == [1, 2]


async def test_pos_flagged_allergens_are_kept_without_keywords_configured(
    client: TestClient,
) -> None:
    # This daemon has no [allergens]: no text is searched, but what the POS flagged is shown.
    body = order_body("flags")
    body["items"][0]["allergens"] = ["Sesame", " gluten "]
    body["items"][0]["comment"] = "peanut sauce"
    response = await client.post("/api/v1/orders", json=body)
    assert response.status == 201, await response.text()
    items = (await response.json())["items"]
    assert [i["allergens"] for i in items] == [["Sesame", "gluten"], []]


async def test_products_remembered_across_orders_keep_their_own_routes(
    client: TestClient, daemon: Daemon
) -> None:
    # Ingest remembers each product's shared Plu and routed endpoints: a product differing only
    # in group, code or stock name is another product, and an item naming its own endpoints
    # goes there whatever its product's route is.
    products = [
        {"name": "Cola", "group": "Drinks"},
        {"name": "Cola"},
        {"name": "Cola", "code": 500},
        {"name": "Cola", "code": "500"},
        {"name": "Cola", "group": "Drinks", "stockName": "cola-033"},
    ]
    expected = [["bar"], ["grill"], ["cold"], ["cold"], ["bar"]]
    for n in range(2):  # the second order finds every product remembered
        body = order_body(f"p{n}")
        body["items"] = [
            {"id": i + 1, "plu": plu, "quantity": {"amount": 1}} for i, plu in enumerate(products)
        ]
        body["items"].append({"id": 9, "plu": products[0], "endpoints": ["cold"]})
        response = await client.post("/api/v1/orders", json=body)
        assert response.status == 201, await response.text()
        items = (await response.json())["items"]
        assert [[e["name"] for e in i["endpoints"]] for i in items] == [*expected, ["cold"]]
        assert [i["plu"] for i in items] == [
            {"name": "Cola", "code": None, "stockName": None, "group": None, **p}
            for p in [*products, products[0]]
        ]
    first, second = (daemon.service.find("native", f"p{n}") for n in range(2))
    assert first is not None and second is not None
    assert all(a.plu is b.plu for a, b in zip(first.items, second.items, strict=True))
