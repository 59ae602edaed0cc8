"""The orders API against a real server on 127.0.0.1: ingest, query, status, cancel, bad input."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import MultiDict

from kds.api.query import FILTERS, PATTERNS, SORT_PATTERN, parse_order_query
from kds.errors import BadRequest

from .util import order_body


async def post_order(client: TestClient, body: dict[str, Any], expect: int = 201) -> dict[str, Any]:
    response = await client.post("/api/v1/orders", json=body)
    data = await response.json()
    assert response.status == expect, data
    return data


async def post_status(
    client: TestClient, path: str, status: str, expect: int = 200, **extra: Any
) -> dict[str, Any]:
    response = await client.post(path, json={"status": status, **extra})
    data = await response.json()
    assert response.status == expect, data
    return data


def ep_status(order: dict[str, Any], item_id: int, endpoint: str) -> str:
    item = next(i for i in order["items"] if i["id"] == item_id)
    return next(e["status"] for e in item["endpoints"] if e["name"] == endpoint)


# ----------------------------------------------------------------------------- ingest


async def test_ingest_stores_portos_shaped_order_and_routes_items(client: TestClient) -> None:
    # A native order comes back in PORTOS JSON with kds's id, the POS id, and items routed by rule.
    order = await post_order(client, order_body("pos-1"))
    assert order["source"] == "native" and order["externalId"] == "pos-1"
    assert order["id"] != "pos-1" and isinstance(order["number"], int)
    assert uuid.UUID(order["id"]).version == 7  # time-ordered: new rows append to the store's trees
    assert order["ticket"]["location"] == {"zoneName": "Terrace", "tableName": "5"}
    assert order["ticket"]["purchaseType"] == "walkIn"
    burger, beer = order["items"]
    assert burger["plu"] == {"name": "Cheeseburger", "code": 101, "stockName": None, "group": None}
    assert burger["quantity"] == {"amount": 2, "unit": "pcs"}
    assert (
        burger["modifiers"] == ["no onion", "extra cheese"] and burger["comment"] == "medium rare"
    )
    assert burger["courseNumber"] == 1
    assert [e["name"] for e in burger["endpoints"]] == ["grill"]
    assert [e["name"] for e in beer["endpoints"]] == ["bar"]
    grill = burger["endpoints"][0]
    assert (
        grill["status"] == "sent"
        and grill["isProcessable"] is False
        and grill["isProcessed"] is False
    )
    assert [c["status"] for c in grill["statusChanges"]] == ["created", "sent"]
    fetched = await (await client.get(f"/api/v1/orders/{order['id']}")).json()
    assert fetched == order


async def test_routing_pos_endpoints_then_rules_then_default(client: TestClient) -> None:
    # POS endpoints win; then code, group and name-pattern rules; else the default endpoint. Nothing is dropped.
    body = order_body(
        "route",
        items=[
            {"id": 1, "plu": {"name": "Steak"}, "endpoints": [{"name": "cold"}, {"name": "grill"}]},
            {"id": 2, "plu": {"name": "Soup", "code": 500}},
            {"id": 3, "plu": {"name": "Caesar Salad"}},
            {"id": 4, "plu": {"name": "Cola", "group": "drinks"}},
            {"id": 5, "plu": {"name": "Mystery"}},
        ],
    )
    order = await post_order(client, body)
    routed = {i["id"]: [e["name"] for e in i["endpoints"]] for i in order["items"]}
    assert routed == {1: ["cold", "grill"], 2: ["cold"], 3: ["cold"], 4: ["bar"], 5: ["grill"]}


async def test_ingest_is_idempotent_on_source_and_external_id(client: TestClient) -> None:
    # The same order twice is stored once (201 then 200); another source may reuse the id.
    first = await post_order(client, order_body("dup"))
    second = await post_order(client, order_body("dup"), expect=200)
    assert second["id"] == first["id"]
    other = await post_order(client, order_body("dup", source="kiosk"))
    assert other["id"] != first["id"]
    listing = await (await client.get("/api/v1/orders", params={"externalId": "dup"})).json()
    assert listing["totalCount"] == 2


async def test_different_body_under_same_id_is_409(client: TestClient) -> None:
    await post_order(client, order_body("conflict"))
    changed = order_body("conflict")
    changed["items"][0]["quantity"]["amount"] = 3
    data = await post_order(client, changed, expect=409)
    assert data["error"] == "conflict" and "different body" in data["detail"]


async def test_items_without_ids_are_numbered(client: TestClient) -> None:
    order = await post_order(
        client,
        {"id": "noids", "items": [{"plu": {"name": "A"}}, {"plu": {"name": "B"}, "quantity": 2}]},
    )
    assert [i["id"] for i in order["items"]] == [1, 2]
    assert order["items"][1]["quantity"] == {"amount": 2, "unit": "pcs"}


# ----------------------------------------------------------------------------- query


@pytest.fixture
async def three_orders(client: TestClient) -> list[dict[str, Any]]:
    a = await post_order(client, order_body("q-a", deviceName="POS1", number=7))
    b = await post_order(
        client,
        order_body(
            "q-b",
            deviceName="POS2",
            number=8,
            items=[{"id": 1, "plu": {"name": "Cola", "group": "Drinks"}}],
        ),
    )
    c = await post_order(
        client, order_body("q-c", deviceName="POS2", number=9, ticket={"id": "T9", "name": "Bar 1"})
    )
    return [a, b, c]


async def query(client: TestClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/orders", params={k: str(v) for k, v in params.items()})
    data = await response.json()
    assert response.status == 200, data
    return data


async def test_query_filters(client: TestClient, three_orders: list[dict[str, Any]]) -> None:
    # Every seed-002 filter plus source, externalId, endpoint and status.
    a, b, c = three_orders
    ids = lambda r: sorted(o["externalId"] for o in r["items"])  # noqa: E731
    assert ids(await query(client, deviceName="POS2")) == ["q-b", "q-c"]
    assert ids(await query(client, deviceName="POS1,POS2")) == ["q-a", "q-b", "q-c"]
    assert ids(await query(client, id=b["id"])) == ["q-b"]
    assert ids(await query(client, number=c["number"])) == ["q-c"]
    assert ids(await query(client, posNumber=9)) == ["q-c"]  # the POS's own number
    assert ids(await query(client, ticketId="T9")) == ["q-c"]
    assert ids(await query(client, ticketName="Bar 1")) == ["q-c"]
    assert ids(await query(client, userUserName="anna")) == ["q-a", "q-b", "q-c"]
    assert ids(await query(client, source="native")) == ["q-a", "q-b", "q-c"]
    assert ids(await query(client, externalId="q-a")) == ["q-a"]
    assert ids(await query(client, endpoint="grill")) == ["q-a", "q-c"]
    assert ids(await query(client, endpoint="bar")) == ["q-a", "q-b", "q-c"]
    await post_status(client, f"/api/v1/orders/{b['id']}/endpoints/bar/status", "delivered")
    assert ids(await query(client, endpoint="bar", status="delivered")) == ["q-b"]
    assert ids(await query(client, status="sent")) == ["q-a", "q-c"]
    await post_status(client, f"/api/v1/orders/{b['id']}/status", "processed")
    assert ids(await query(client, isProcessed="true")) == ["q-b"]
    assert ids(await query(client, isProcessed="false")) == ["q-a", "q-c"]
    assert ids(await query(client, isProcessable="true")) == []
    assert ids(await query(client, isProcessable="false")) == ["q-a", "q-b", "q-c"]


async def test_query_paging_sorting_and_count(
    client: TestClient, three_orders: list[dict[str, Any]]
) -> None:
    page = await query(client, **{"$sort": "-posNumber", "$skip": 1, "$take": 1})
    assert [o["posNumber"] for o in page["items"]] == [8]
    assert page["count"] == 1 and page["totalCount"] == 3
    asc = await query(client, **{"$sort": "PosNumber:asc"})
    assert [o["posNumber"] for o in asc["items"]] == [7, 8, 9]
    multi = await query(client, **{"$sort": "deviceName:desc,posNumber:desc"})
    assert [o["posNumber"] for o in multi["items"]] == [9, 8, 7]
    counted = await query(client, **{"$count": "true", "deviceName": "POS2"})
    assert counted == {"count": 2, "totalCount": 2}


async def test_query_ndata_operators(
    client: TestClient, three_orders: list[dict[str, Any]]
) -> None:
    # Seed 002: every filter supports NData — `op:arg`, several conditions with `;` or a
    # repeated parameter (all must hold), `in:`/`nin:` lists; operators are case-insensitive.
    a, b, c = three_orders
    ids = lambda r: sorted(o["externalId"] for o in r["items"])  # noqa: E731
    assert ids(await query(client, posNumber="gt:7")) == ["q-b", "q-c"]
    assert ids(await query(client, posNumber="gte:8;lt:9")) == ["q-b"]
    assert ids(await query(client, posNumber="LE:8")) == ["q-a", "q-b"]
    assert ids(await query(client, posNumber="ne:8")) == ["q-a", "q-c"]
    assert ids(await query(client, posNumber="in:7,9")) == ["q-a", "q-c"]
    assert ids(await query(client, posNumber="nin:7,9")) == ["q-b"]
    assert ids(await query(client, deviceName="neq:POS1")) == ["q-b", "q-c"]
    assert ids(await query(client, deviceName="startswith:pos")) == ["q-a", "q-b", "q-c"]
    assert ids(await query(client, externalId="endswith:-c")) == ["q-c"]
    assert ids(await query(client, ticketName="contains:BAR")) == ["q-c"]
    assert ids(await query(client, ticketId="eq:T9")) == ["q-c"]
    assert ids(await query(client, isProcessed="eq:false")) == ["q-a", "q-b", "q-c"]
    assert ids(await query(client, isProcessed="ne:false")) == []
    assert ids(await query(client, status="in:sent,delivered")) == ["q-a", "q-b", "q-c"]
    await post_status(client, f"/api/v1/orders/{b['id']}/endpoints/bar/status", "delivered")
    assert ids(await query(client, endpoint="bar", status="ne:sent")) == ["q-b"]
    assert ids(await query(client, endpoint="eq:bar", status="nin:sent")) == ["q-b"]
    # A repeated parameter adds conditions (a range), like `;`.
    response = await client.get("/api/v1/orders?posNumber=gt:7&posNumber=lt:9")
    assert ids(await response.json()) == ["q-b"]
    # Repeated $sort parameters concatenate; a key named again is ignored.
    response = await client.get(
        "/api/v1/orders?$sort=deviceName:desc&$sort=posNumber:desc,deviceName"
    )
    assert [o["posNumber"] for o in (await response.json())["items"]] == [9, 8, 7]
    assert ids(await query(client, number=f"gte:{b['number']}")) == [
        "q-b",
        "q-c",
    ]  # kds's own number
    # A missing value: isnull / isnotnull.
    await post_order(client, order_body("q-d", number=10, ticket={"name": "walk-in"}))
    assert ids(await query(client, ticketId="isnull")) == ["q-d"]
    assert ids(await query(client, ticketId="isnotnull;ne:T9")) == ["q-a", "q-b"]


@pytest.mark.parametrize("name", ["number", "isProcessed", "status", "endpoint", "$sort"])
def test_the_published_pattern_is_exactly_what_the_parser_takes(name: str) -> None:
    # The OpenAPI document publishes each typed filter's pattern: a string near the grammar
    # is parsed (no 400, no 500) exactly when the pattern admits it.
    pattern = SORT_PATTERN if name == "$sort" else PATTERNS[FILTERS[name.lower()].kind]
    words = st.sampled_from(
        [
            "gt:",
            "LTE:",
            "in:",
            "nin:",
            "eq:",
            "ne:",
            "contains:",
            "isnull",
            "true",
            "False",
            "sent",
            "processSkipped",
            "grill",
            "number",
            "-createdAt",
            ":desc",
            "7",
            "-12",
            "x",
        ]
    )
    near = st.lists(words | st.sampled_from(list(";,:- 0")), max_size=8).map("".join)

    @settings(max_examples=150, deadline=None, database=None)
    @given(value=near)
    def check(value: str) -> None:
        try:
            parse_order_query(MultiDict([(name, value)]))
        except BadRequest:
            assert not re.fullmatch(pattern, value), value
        else:
            assert re.fullmatch(pattern, value), value

    check()


@pytest.mark.parametrize(
    "params,fragment",
    [
        ({"number": "contains:7"}, "contains"),
        ({"isProcessed": "gt:true"}, "gt"),
        ({"status": "gt:sent"}, "gt"),
        ({"number": "gt:seven"}, "number"),
        ({"number": "7;"}, "number"),
        ({"status": "in:sent,cooking"}, "cooking"),
        ({"status": ""}, "status"),
        ({"number": ""}, "number"),
        ({"isProcessable": ""}, "isProcessable"),
        ({"endpoint": "in:grill,bar"}, "endpoint"),
        ({"isProcessed": "1"}, "isProcessed"),
        ({"$count": "1"}, "$count"),
        ({"number": "+7"}, "number"),
        ({"number": "gt:-1"}, "number"),
        ({"$skip": "1_0"}, "$skip"),
        ({"$sort": "+number"}, "$sort"),
        ({"$skip": "1000000001"}, "$skip"),
        ({"$take": "1001"}, "$take"),
    ],
)
async def test_bad_ndata_is_400_naming_the_filter(
    client: TestClient, params: dict[str, str], fragment: str
) -> None:
    # Anything the NData grammar does not allow is a 400 naming the parameter, never an empty page.
    response = await client.get("/api/v1/orders", params=params)
    data = await response.json()
    assert response.status == 400, data
    assert fragment in data["detail"], data


@pytest.mark.parametrize(
    "params,fragment",
    [
        ({"$take": "-1"}, "$take"),
        ({"$take": "abc"}, "$take"),
        ({"$skip": "x"}, "$skip"),
        ({"$sort": "nosuch"}, "cannot sort"),
        ({"status": "cooking"}, "unknown status"),
        ({"isProcessed": "maybe"}, "isProcessed"),
        ({"colour": "red"}, "unknown query parameter"),
        ({"number": "seven"}, "number"),
    ],
)
async def test_bad_queries_are_400(
    client: TestClient, params: dict[str, str], fragment: str
) -> None:
    response = await client.get("/api/v1/orders", params=params)
    data = await response.json()
    assert response.status == 400 and fragment in data["detail"]


# ----------------------------------------------------------------------------- status


async def test_status_routes_walk_the_state_machine(client: TestClient) -> None:
    # Endpoint, item and order routes; each change is recorded in statusChanges.
    order = await post_order(client, order_body("walk"))
    oid = order["id"]
    order = await post_status(client, f"/api/v1/orders/{oid}/endpoints/grill/status", "delivered")
    assert ep_status(order, 1, "grill") == "delivered" and ep_status(order, 2, "bar") == "sent"
    order = await post_status(client, f"/api/v1/orders/{oid}/items/1/status", "accepted")
    assert ep_status(order, 1, "grill") == "accepted"
    order = await post_status(
        client, f"/api/v1/orders/{oid}/endpoints/bar/items/2/status", "delivered"
    )
    order = await post_status(client, f"/api/v1/orders/{oid}/status", "processed")
    assert ep_status(order, 1, "grill") == "processed" and ep_status(order, 2, "bar") == "processed"
    assert order["status"] == "processed" and order["isProcessed"] is True
    grill = order["items"][0]["endpoints"][0]
    assert [c["status"] for c in grill["statusChanges"]] == [
        "created",
        "sent",
        "delivered",
        "accepted",
        "processed",
    ]


async def test_illegal_transition_is_409_with_allowed_targets(client: TestClient) -> None:
    order = await post_order(client, order_body("illegal"))
    data = await post_status(
        client, f"/api/v1/orders/{order['id']}/items/1/status", "created", expect=409
    )
    assert data["error"] == "invalid_transition"
    assert (
        data["allowed"] == ["delivered", "failed", "processSkipped"] and data["current"] == "sent"
    )
    # Nothing was applied.
    fetched = await (await client.get(f"/api/v1/orders/{order['id']}")).json()
    assert ep_status(fetched, 1, "grill") == "sent"


async def test_repeating_the_current_status_is_a_no_op(client: TestClient) -> None:
    order = await post_order(client, order_body("repeat"))
    again = await post_status(client, f"/api/v1/orders/{order['id']}/status", "sent")
    assert len(again["items"][0]["endpoints"][0]["statusChanges"]) == 2


async def test_recall_is_the_one_exit_from_processed(client: TestClient) -> None:
    order = await post_order(client, order_body("recall"))
    path = f"/api/v1/orders/{order['id']}/endpoints/grill/status"
    await post_status(client, path, "delivered")
    await post_status(client, path, "processed")
    await post_status(client, path, "accepted", expect=409)
    recalled = await post_status(client, path, "accepted", recall=True)
    assert ep_status(recalled, 1, "grill") == "accepted"


async def test_endpoint_recall_skips_refused_items(client: TestClient) -> None:
    # Recalling a bumped ticket brings back the processed items; a refused one stays refused.
    body = order_body(
        "recall-mixed", items=[{"id": 1, "plu": {"name": "A"}}, {"id": 2, "plu": {"name": "B"}}]
    )
    order = await post_order(client, body)
    path = f"/api/v1/orders/{order['id']}/endpoints/grill"
    await post_status(client, f"{path}/status", "delivered")
    await post_status(client, f"{path}/items/2/status", "refused", reason="sold out")
    await post_status(client, f"{path}/status", "processed")
    recalled = await post_status(client, f"{path}/status", "accepted", recall=True)
    assert (
        ep_status(recalled, 1, "grill") == "accepted"
        and ep_status(recalled, 2, "grill") == "refused"
    )


async def test_unknown_order_item_endpoint_are_404(client: TestClient) -> None:
    order = await post_order(client, order_body("nf"))
    for path in (
        "/api/v1/orders/nope/status",
        f"/api/v1/orders/{order['id']}/items/99/status",
        f"/api/v1/orders/{order['id']}/endpoints/pizza/status",
    ):
        response = await client.post(path, json={"status": "delivered"})
        assert response.status == 404, path
        assert (await response.json())["error"] == "not_found"
    assert (await client.get("/api/v1/orders/nope")).status == 404
    assert (await client.delete("/api/v1/orders/nope")).status == 404


# ----------------------------------------------------------------------------- cancel


async def test_delete_cancels_open_items_and_keeps_finished_ones(client: TestClient) -> None:
    order = await post_order(client, order_body("cancel"))
    await post_status(client, f"/api/v1/orders/{order['id']}/endpoints/bar/status", "delivered")
    await post_status(client, f"/api/v1/orders/{order['id']}/endpoints/bar/status", "processed")
    response = await client.delete(f"/api/v1/orders/{order['id']}")
    cancelled = await response.json()
    assert response.status == 200
    assert (
        ep_status(cancelled, 1, "grill") == "processSkipped"
        and ep_status(cancelled, 2, "bar") == "processed"
    )
    assert cancelled["isProcessed"] is True
    again = await client.delete(f"/api/v1/orders/{order['id']}")
    assert again.status == 200


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "raw,status,fragment",
    [
        (b"{not json", 400, "not valid JSON"),
        (b"\xff\xfe{}", 400, "UTF-8"),
        (b"", 400, "empty"),
        (b"[1,2]", 422, "JSON object"),
        (b'{"id":"x"}', 422, "items"),
        (b'{"id":"x","items":[]}', 422, "items"),
        (b'{"id":"x","items":[{"plu":{"name":"A"},"quantity":{"amount":-1}}]}', 422, "amount"),
        (b'{"id":"x","items":[{"plu":{"name":"A"},"quantity":{"amount":1e30}}]}', 422, "amount"),
        (b'{"id":"x","items":[{"plu":{"name":"A"},"quantity":{"amount":NaN}}]}', 422, "NaN"),
        (b'{"id":"x","items":[{"plu":{"name":"A"},"quantity":"lots"}]}', 422, "amount"),
        (b'{"id":"x","items":[{"plu":"A"}]}', 422, "plu"),
        # JSON types as the OpenAPI document says (schemathesis found each accepted): no true for
        # an integer, no text for an integer or an amount.
        (b'{"id":"x","ticket":{"version":false},"items":[{"plu":{"name":"A"}}]}', 422, "version"),
        (b'{"id":"x","items":[{"id":true,"plu":{"name":"A"}}]}', 422, "items.0.id"),
        (b'{"id":"x","items":[{"courseNumber":"2","plu":{"name":"A"}}]}', 422, "courseNumber"),
        (b'{"id":"x","items":[{"plu":{"name":"A"},"quantity":{"amount":"2"}}]}', 422, "amount"),
        # Two items with one id break a uniqueness rule (seed 004: "unique item identifier within
        # order"): a 409 conflict, which JSON Schema cannot express as a 422's schema violation.
        (
            b'{"id":"x","items":[{"id":1,"plu":{"name":"A"}},{"id":1,"plu":{"name":"B"}}]}',
            409,
            "unique",
        ),
        (
            b'{"id":"x","items":[{"id":1,"plu":{"name":"A"}},{"id":1.0,"plu":{"name":"B"}}]}',
            409,
            "unique",
        ),
        (
            b'{"id":"x","ticket":{"purchaseType":"teleport"},"items":[{"plu":{"name":"A"}}]}',
            422,
            "purchaseType",
        ),
        (
            b'{"id":"x","items":[{"plu":{"name":"A"},"endpoints":[{"name":"grill","status":"cooking"}]}]}',
            422,
            "status",
        ),
        (b"[" * 5000 + b"]" * 5000, 400, "nested"),
        (
            b'{"id":"x","ticket":{"customer":'
            + b'{"a":' * 20
            + b"1"
            + b"}" * 20
            + b'},"items":[{"plu":{"name":"A"}}]}',
            422,
            "nested",
        ),
        # A product code beyond SQLite's 64-bit INTEGER: refused, not a failed commit (503).
        (
            b'{"id":"x","items":[{"plu":{"name":"A","code":1180591620717411303424}}]}',
            422,
            "plu.code",
        ),
        # Unpaired surrogate escapes inside free-form objects: not valid Unicode, cannot be stored.
        (b'{"id":"x","user":{"name":"\\ud800"},"items":[{"plu":{"name":"A"}}]}', 422, "surrogate"),
        (
            b'{"id":"x","ticket":{"customer":{"\\udfff":1}},"items":[{"plu":{"name":"A"}}]}',
            422,
            "surrogate",
        ),
    ],
)
async def test_bad_order_bodies_are_clear_4xx_and_store_nothing(
    client: TestClient, raw: bytes, status: int, fragment: str
) -> None:
    response = await client.post(
        "/api/v1/orders", data=raw, headers={"Content-Type": "application/json"}
    )
    data = await response.json()
    assert response.status == status, data
    assert set(data) >= {"error", "detail"} and fragment in data["detail"]
    assert (await query(client))["totalCount"] == 0


async def test_oversized_body_is_413(client: TestClient) -> None:
    big = order_body("big")
    big["items"][0]["comment"] = "x" * 400
    big["items"] = [dict(big["items"][0], id=i) for i in range(1, 3000)]
    response = await client.post("/api/v1/orders", json=big)
    assert response.status == 413
    assert (await response.json())["error"] == "payload_too_large"


async def test_too_many_items_is_422(client: TestClient) -> None:
    body = {"id": "many", "items": [{"plu": {"name": "A"}} for _ in range(10_000)]}
    response = await client.post("/api/v1/orders", json=body)
    assert response.status == 422


@pytest.mark.parametrize(
    "body,status",
    [
        ({"status": "cooking"}, 422),
        ({}, 422),
        ({"status": 3}, 422),
        ({"status": "accepted", "extra": 1}, 422),
    ],
)
async def test_bad_status_bodies(client: TestClient, body: dict[str, Any], status: int) -> None:
    order = await post_order(client, order_body("badstatus"))
    response = await client.post(f"/api/v1/orders/{order['id']}/status", json=body)
    assert response.status == status
    response = await client.post(
        f"/api/v1/orders/{order['id']}/items/abc/status", json={"status": "delivered"}
    )
    assert response.status in (400, 404)


async def test_status_context_takes_the_seeds_date_and_only_a_boolean_recall(
    client: TestClient,
) -> None:
    # OrderItemEndpointStatusChange has `date`: a PORTOS client may send it with the status.
    order = await post_order(client, order_body("ctx"))
    path = f"/api/v1/orders/{order['id']}/endpoints/grill/status"
    changed = await post_status(client, path, "delivered", date="2026-03-01T12:00:00Z")
    assert ep_status(changed, 1, "grill") == "delivered"
    for extra in (
        {"date": "yesterday"},
        {"date": 1767225600},
        {"recall": 0},
        {"recall": "true"},
        {"recall": None},
    ):
        response = await client.post(path, json={"status": "accepted", **extra})
        assert response.status == 422, extra
    fetched = await (await client.get(f"/api/v1/orders/{order['id']}")).json()
    assert ep_status(fetched, 1, "grill") == "delivered"  # nothing applied


async def test_item_and_endpoint_status_routes_take_an_optional_body(client: TestClient) -> None:
    # Seed 002 marks the body optional on the item and endpoint routes (required on the order
    # route). Without one there is no status to set: 200 with the order, nothing changed.
    order = await post_order(client, order_body("nobody"))
    oid = order["id"]
    for path in (
        f"/api/v1/orders/{oid}/items/1/status",
        f"/api/v1/orders/{oid}/endpoints/grill/status",
        f"/api/v1/orders/{oid}/endpoints/grill/items/1/status",
    ):
        response = await client.post(path)
        assert response.status == 200, await response.text()
        assert await response.json() == order
        response = await client.post(path, json={})  # a body without a status is still refused
        assert response.status == 422
    assert (await client.post(f"/api/v1/orders/{oid}/status")).status == 400
    assert (await client.post(f"/api/v1/orders/{oid}/items/9/status")).status == 404
    assert (await client.post(f"/api/v1/orders/{oid}/endpoints/pizza/status")).status == 404


@pytest.mark.parametrize(
    "item_id", ["-1", "2147483648", "99999999999", "%C2%B2", "1.0", "+1", "01x"]
)
async def test_item_ids_outside_the_documented_range_are_400(
    client: TestClient, item_id: str
) -> None:
    # Item ids are 0..2^31-1 (as ingested); anything else is a 400, not a 404 or a 500.
    order = await post_order(client, order_body("itemrange"))
    response = await client.post(
        f"/api/v1/orders/{order['id']}/items/{item_id}/status", json={"status": "delivered"}
    )
    assert response.status == 400, await response.text()
    assert "itemId" in (await response.json())["detail"]


async def test_html_in_text_is_stored_as_text(client: TestClient) -> None:
    evil = '<img src=x onerror="window.__xss=1"><script>alert(1)</script>'
    order = await post_order(
        client, order_body("xss", items=[{"id": 1, "plu": {"name": evil}, "comment": evil}])
    )
    assert order["items"][0]["plu"]["name"] == evil


async def test_endpoints_health_metrics_openapi(client: TestClient) -> None:
    endpoints = await (await client.get("/api/v1/endpoints")).json()
    assert [e["name"] for e in endpoints["items"]] == ["grill", "cold", "bar"]
    assert endpoints["items"][0]["timers"] == {
        "warnAfter": 300.0,
        "lateAfter": 600.0,
        "lateFlash": False,
        "lateSound": False,
    }
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["status"] == "ok"
    await post_order(client, order_body("m"))
    metrics = await (await client.get("/metrics")).text()
    assert 'kds_orders_ingested_total{source="native"} 1.0' in metrics
    assert 'kds_component_up{component="store"} 1.0' in metrics
    spec = await (await client.get("/api/v1/openapi.json")).json()
    assert "/api/v1/orders" in spec["paths"] and "OrderIn" in spec["components"]["schemas"]
