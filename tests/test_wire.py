"""kds.wire writes an order's JSON by hand: byte for byte what pydantic writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from aiohttp.test_utils import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from kds import wire
from kds.appkeys import BUS, SERVICE
from kds.bus import Event
from kds.interning import (
    shared_location,
    shared_plu,
    shared_quantity,
    shared_ticket,
)
from kds.model import (
    Hold,
    HoldReason,
    ItemEndpoint,
    Location,
    Order,
    OrderEvent,
    OrderItem,
    OrderStatus,
    Plu,
    PurchaseType,
    Quantity,
    StatusChange,
    TicketInfo,
    from_fields,
    trusted,
)
from kds.store.rows import Steps, new_order_header, shared_creation_history

from .util import order_body


def pydantic_json(order: Order) -> str:
    """What `Order.wire_json` spliced its derived fields into before kds.wire."""
    serializer = order.__pydantic_serializer__
    return serializer.to_json(order, by_alias=True, exclude_computed_fields=True).decode()


def pydantic_wire(order: Order) -> str:
    """The whole wire JSON as pydantic writes it: the fields, then the derived (computed) ones."""
    return order.__pydantic_serializer__.to_json(order, by_alias=True).decode()


def pydantic_header(order: Order) -> str:
    """The stored header as pydantic writes it (what `rows.header_json` wrote before kds.wire)."""
    exclude = {"items", "status", "endpoint_statuses", "is_processed", "is_processable"}
    return order.__pydantic_serializer__.to_json(order, exclude=exclude).decode()


def test_the_models_are_the_ones_written_out() -> None:
    # A field added to a model without teaching kds.wire makes Order.wire_json use pydantic.
    assert wire.MATCHES


async def test_orders_through_the_api_encode_as_pydantic_does(client: TestClient) -> None:
    bodies: list[dict[str, Any]] = [
        order_body("w-1"),
        order_body(
            "w-2",
            user='anna "the" cook\n\t\u0001\u2028 \U0001f600',
            number=12,
            deviceName=None,
            ticket={
                "id": 77,
                "name": "Tisch 5 / ü",
                "location": {"zoneName": "Garten"},
                "purchaseType": "delivery",
                "customer": {"name": "Zoë", "phone": 123, "vip": True, "score": 1.5, "tags": []},
                "version": 3,
            },
            dueAt="2030-01-01T12:00:00+01:00",
            items=[
                {
                    "id": 5,
                    "plu": {
                        "name": "Bier \\ Pils",
                        "code": "P-1",
                        "stockName": "b",
                        "group": "Drinks",
                    },
                    "quantity": {"amount": 0.125, "unit": "l"},
                    "comment": "kalt\r\n",
                    "courseNumber": 2,
                    "modifiers": [{"name": "ohne Schaum"}, "gross"],
                    "allergens": ["gluten"],
                },
                {"plu": {"name": "Peanut curry"}, "quantity": 123456.789, "courseNumber": 3},
            ],
        ),
    ]
    service = client.server.app[SERVICE]
    for body in bodies:
        answer = await client.post("/api/v1/orders", json=body)
        assert answer.status == 201, await answer.text()
        order_id = (await answer.json())["id"]
        await client.post(f"/api/v1/orders/{order_id}/status", json={"status": "processSkipped"})
        order = service.get(order_id)
        assert order is not None
        assert wire.order_json(order) == pydantic_json(order)
        assert wire.header_json(order) == pydantic_header(order)
        assert order.wire_json(keep=False) == pydantic_wire(order)


async def test_an_orders_events_carry_the_json_its_answers_carry(client: TestClient) -> None:
    events: list[Event] = []
    client.server.app[BUS].subscribe(events.append)
    answer = await client.post("/api/v1/orders", json=order_body("e-1"))
    created = await answer.read()
    order_id = json.loads(created)["id"]
    path = f"/api/v1/orders/{order_id}/status"
    updated = await (await client.post(path, json={"status": "processSkipped"})).read()
    assert [e.type for e in events] == ["order.created", "order.updated"]
    for event, body in zip(events, (created, updated), strict=True):
        whole = {"type": event.type, "seq": event.seq, **event.data, "order": json.loads(body)}
        assert (
            event.payload == json.dumps(whole, separators=(",", ":"), ensure_ascii=False).encode()
        )
        assert event.payload.endswith(b',"order":' + body + b"}")


texts = st.text(max_size=12)
maybe_texts = st.none() | texts
dates = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
) | st.datetimes(timezones=st.sampled_from([timezone(timedelta(hours=2)), UTC])).filter(
    lambda d: d.year > 1
)
statuses = st.sampled_from(list(OrderStatus))
amounts = st.decimals(
    min_value=Decimal("0.001"), max_value=Decimal(1_000_000), places=3, allow_nan=False
)


@st.composite
def endpoints(draw: st.DrawFn) -> ItemEndpoint:
    changes = draw(st.lists(st.builds(StatusChange, statuses, dates, maybe_texts), max_size=4))
    return ItemEndpoint.build(draw(texts), draw(statuses), changes)


@st.composite
def items(draw: st.DrawFn) -> OrderItem:
    code = draw(st.none() | st.integers(-(2**63), 2**63 - 1) | texts)
    plu = trusted(
        Plu, name=draw(texts), code=code, stock_name=draw(maybe_texts), group=draw(maybe_texts)
    )
    quantity = trusted(Quantity, amount=draw(amounts), unit=draw(texts))
    return OrderItem.build(
        draw(st.integers(0, 2**31 - 1)),
        plu,
        quantity,
        draw(maybe_texts),
        draw(st.none() | st.integers(0, 2**31 - 1)),
        draw(st.lists(texts, max_size=3)),
        draw(st.lists(endpoints(), max_size=3)),
        draw(st.lists(texts, max_size=2)),
    )


@st.composite
def orders(draw: st.DrawFn) -> Order:
    created = draw(dates)
    shared_step = StatusChange(OrderStatus.CREATED, created)
    order_items = draw(st.lists(items(), max_size=4))
    for item in order_items:  # creation steps shared by item endpoints, as ingest builds them
        for endpoint in item.endpoints:
            endpoint.status_changes = [shared_step, *endpoint.status_changes]
    free = st.dictionaries(
        texts, st.none() | st.booleans() | st.integers() | st.floats() | texts, max_size=3
    )
    ticket = from_fields(
        TicketInfo,
        {
            "id": draw(maybe_texts),
            "name": draw(maybe_texts),
            "location": draw(
                st.none() | st.builds(Location, zone_name=maybe_texts, table_name=maybe_texts)
            ),
            "purchase_type": draw(st.sampled_from(list(PurchaseType))),
            "customer": draw(st.none() | free),
            "version": draw(st.none() | st.integers(0, 10**6)),
        },
    )
    event = st.builds(
        OrderEvent, type=texts, date=dates, actor=texts, endpoint=maybe_texts, to=maybe_texts
    )
    hold = st.builds(
        Hold,
        item_id=st.integers(0, 99),
        endpoint=texts,
        reason=st.sampled_from(list(HoldReason)),
        course=st.none() | st.integers(0, 9),
        release_at=st.none() | dates,
    )
    return from_fields(
        Order,
        {
            "id": draw(texts),
            "number": draw(st.integers(0, 10**6)),
            "pos_number": draw(st.none() | st.integers(0, 10**9)),
            "source": draw(texts),
            "external_id": draw(texts),
            "device_name": draw(maybe_texts),
            "user": draw(st.none() | texts | free),
            "ticket": ticket,
            "items": order_items,
            "created_at": created,
            "updated_at": draw(st.just(created) | dates),
            "version": draw(st.integers(1, 100)),
            "rush": draw(st.booleans()),
            "allergen_acks": draw(st.dictionaries(texts, dates, max_size=2)),
            "events": draw(st.lists(event, max_size=2)),
            "due_at": draw(st.none() | dates),
            "holds": draw(st.lists(hold, max_size=2)),
        },
    )


@settings(max_examples=300, deadline=None)
@given(orders())
def test_any_order_encodes_as_pydantic_does(order: Order) -> None:
    assert wire.order_json(order) == pydantic_json(order)
    assert wire.order_json(order) == pydantic_json(order)  # again, from what it kept


@settings(max_examples=300, deadline=None)
@given(orders())
def test_any_order_header_is_stored_as_pydantic_writes_it(order: Order) -> None:
    assert wire.header_json(order) == pydantic_header(order)


@settings(max_examples=300, deadline=None)
@given(orders())
def test_any_orders_wire_json_with_its_derived_fields_is_pydantics(order: Order) -> None:
    names = frozenset(e.name for e in order.item_endpoints())
    assert order.wire_event() == (pydantic_wire(order), names)
    assert order.wire_event() == (pydantic_wire(order), names)  # the kept one
    order.changed()
    assert order.wire_json(keep=False) == pydantic_wire(order)
    assert order.wire_json() == pydantic_wire(order)
    assert order.wire_json() == pydantic_wire(order)  # the kept one


@settings(max_examples=300, deadline=None)
@given(orders())
def test_a_new_orders_header_keeps_its_wire_json_from_the_same_pass(order: Order) -> None:
    # The store writes a new order's header; its event right after the commit reuses the
    # wire JSON written from the same values (one pass, nothing encoded twice).
    names = frozenset(e.name for e in order.item_endpoints())
    assert wire.wire_event_and_header(order) == (
        pydantic_wire(order),
        names,
        pydantic_header(order),
        order.created_at.isoformat(),
    )
    order.changed()
    assert new_order_header(order) == (pydantic_header(order), order.created_at.isoformat())
    assert order._kept_wire() == (pydantic_wire(order), names)
    assert order.wire_event() == (pydantic_wire(order), names)


def built_order(n: int, items: list[OrderItem], now: datetime, ticket: TicketInfo) -> Order:
    """Order `n` of `items`, built as ingest builds one (no validation, nothing kept)."""
    order = from_fields(
        Order,
        {
            "id": f"o-{n}",
            "number": n,
            "pos_number": None,
            "source": "native",
            "external_id": f"x-{n}",
            "device_name": None,
            "user": None,
            "ticket": ticket,
            "items": items,
            "created_at": now,
            "updated_at": now,
            "version": 1,
            "rush": False,
            "allergen_acks": {},
            "events": [],
            "due_at": None,
            "holds": [],
        },
    )
    order.changed()
    return order


def test_orders_sharing_products_tables_and_creation_steps_encode_as_pydantic_does() -> None:
    # Built as ingest and the loader build them: one object per product, quantity and table
    # across orders (kds.wire keeps their JSON), creation steps shared by an order's endpoints.
    plus = [
        shared_plu('Bier "Pils" \\ ü\n\u2028</script>', 7, None, "Drinks"),
        shared_plu('Bier "Pils" \\ ü\n\u2028</script>', "7", "b", None),  # same name
        shared_plu("\U0001f354 Burger", None, None, None),
    ]
    quantities = [shared_quantity("0.125", "l"), shared_quantity("2", "pcs")]
    orders = []
    for n in range(12):
        now = datetime(2030, 1, 1, 12, n, tzinfo=UTC)
        steps: Steps = {}
        status = [OrderStatus.SENT, OrderStatus.CREATED][n % 2]
        items = [
            OrderItem.build(
                i,
                plus[(n + i) % len(plus)],
                quantities[(n + i) % len(quantities)],
                None,
                None,
                ["ohne \u00fc"] if i else [],
                [
                    ItemEndpoint.build(name, status, shared_creation_history(status, now, steps))
                    for name in ("grill", "bar")[: 1 + i % 2]
                ],
                [],
            )
            for i in range(1, 4)
        ]
        ticket = shared_ticket(
            None, "T", shared_location("Garten", "5"), PurchaseType.UNKNOWN, None, None
        )
        order = built_order(n, items, now, ticket)
        assert order.wire_json() == pydantic_wire(order)
        orders.append(order)
    for order in orders:  # changed after its first encoding: one endpoint of a shared path
        endpoint = order.items[1].endpoints[0]
        endpoint.set_status(OrderStatus.DELIVERED)
        endpoint.status_changes.append(StatusChange(OrderStatus.DELIVERED, order.created_at))
        order.changed()
        assert order.wire_json() == pydantic_wire(order)
        assert wire.header_json(order) == pydantic_header(order)


def test_items_alike_but_for_one_part_encode_each_as_pydantic_does() -> None:
    # kds.wire keeps an item's JSON by what it is made of, and an item endpoint's around its
    # history by its name and statuses: every part tells two items (and endpoints) apart.
    plu, other_plu = shared_plu("Soup", 1, None, None), shared_plu("Soup", 2, None, None)
    quantity, other_quantity = shared_quantity("1", "pcs"), shared_quantity("1", "l")
    parts = [
        (plu, quantity, None, None, [], []),
        (other_plu, quantity, None, None, [], []),
        (plu, other_quantity, None, None, [], []),
        (plu, quantity, "hot", None, [], []),
        (plu, quantity, None, 2, [], []),
        (plu, quantity, None, 0, [], []),
        (plu, quantity, None, None, ["no salt"], []),
        (plu, quantity, None, None, ["no salt", "extra"], []),
        (plu, quantity, None, None, [], ["celery"]),
        (plu, quantity, None, None, ["celery"], []),
    ]
    now = datetime(2030, 1, 1, 12, tzinfo=UTC)
    for status in (OrderStatus.SENT, OrderStatus.DELIVERED, OrderStatus.PROCESSED):
        for n, (p, q, comment, course, modifiers, allergens) in enumerate(parts):
            endpoints = [
                ItemEndpoint.build(name, status, [StatusChange(OrderStatus.CREATED, now)])
                for name in ("grill", "bar")[: 1 + n % 2]
            ]
            item = OrderItem.build(n, p, q, comment, course, modifiers, endpoints, allergens)
            order = built_order(n, [item], now, TicketInfo())
            assert order.wire_json(keep=False) == pydantic_wire(order), (status, n)


def test_the_item_caches_keep_learning_after_they_fill() -> None:
    # A daemon runs for weeks: free-text comments fill kds.wire's item cache with items that
    # never come again. A full cache starts over (the interning caches evict too), so the dishes
    # ordered now are kept, not only those of the first hours.
    plu, quantity = shared_plu("Soup", 1, None, None), shared_quantity("1", "pcs")
    now = datetime(2030, 1, 1, 12, tzinfo=UTC)

    def encoded(n: int, comment: str, station: str, modifiers: list[str]) -> Order:
        endpoint = ItemEndpoint.build(
            station, OrderStatus.SENT, [StatusChange(OrderStatus.CREATED, now)]
        )
        item = OrderItem.build(n, plu, quantity, comment, None, modifiers, [endpoint], [])
        order = built_order(n, [item], now, TicketInfo())
        assert order.wire_json(keep=False) == pydantic_wire(order)
        return order

    for n in range(wire._PARTS_MAX + 10):  # one-offs: comments, stations, modifiers
        encoded(n, f"table {n}: no onions", f"station-{n}", [f"seat {n}"])
    encoded(1, "the dish of the day", "grill", ["no salt"])
    assert any(key[2] == "the dish of the day" for key in wire._ITEMS)
    assert any(key[0] == "grill" for key in wire._ENDPOINTS)
    assert ("grill", "sent") in wire._DERIVED and ("no salt",) in wire._TEXT_LISTS
