"""Reading ready2order webhooks and grouping table-order items into tickets (no I/O)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kds.sources.coerce import as_int
from kds.sources.ready2order.grouping import group_items
from kds.sources.ready2order.webhook import dedupe_key, read_webhook

FIXTURES = Path(__file__).parent / "fixtures" / "ready2order"


def load(name: str) -> object:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("fixture", "event", "ids"),
    [
        ("webhook_created_resource_ids.json", "orderItem.created", [1001, 1002]),
        ("webhook_created_objects.json", "orderItem.created", [1001]),
        ("webhook_created_nested.json", "orderItem.created", [1001, 1002]),
        ("webhook_cancelled_ids.json", "orderItem.cancelled", [1003]),
        ("webhook_transferred.json", "orderItem.transferred", [101, 102, 103]),
    ],
)
def test_plausible_webhook_shapes_are_read(fixture: str, event: str, ids: list[int]) -> None:
    # Guarantees: the seed fixes no JSON shape; each plausible one yields the event and its item ids.
    read = read_webhook(load(fixture))
    assert read.name == event and read.ids == ids and not read.problems


def test_transfer_metadata_and_full_objects() -> None:
    # Guarantees: tables of a transfer are read (also without ids); full objects are kept for use without a fetch.
    whole = read_webhook(load("webhook_transferred_whole_table.json"))
    assert (whole.source_table, whole.target_table, whole.ids) == (10, 20, [])
    created = read_webhook(load("webhook_created_objects.json"))
    assert created.objects[0]["order_product_name"] == "Burger"
    product = read_webhook(load("webhook_product_updated.json"))
    assert (
        product.name == "product.updated"
        and product.objects[0]["productgroup"]["productgroup_name"] == "Drinks"
    )


def test_unreadable_bodies_say_why() -> None:
    # Guarantees: what cannot be read is reported (and then logged and kept), never silently empty.
    assert read_webhook("hello").problems
    assert read_webhook({"resource": [1]}).problems == ["no event name"]
    assert read_webhook([{"event": "orderItem.cancelled", "resource": [5]}]).ids == [5]


def test_dedupe_key_uses_the_event_id_else_the_body() -> None:
    # Guarantees: retries of one event share a key; different events (or bodies) do not.
    a = json.dumps(
        {"id": "e1", "event": "orderItem.created", "resource": [1], "attempt": 1}
    ).encode()
    b = json.dumps(
        {"id": "e1", "event": "orderItem.created", "resource": [1], "attempt": 2}
    ).encode()
    c = json.dumps({"id": "e2", "event": "orderItem.created", "resource": [1]}).encode()
    assert dedupe_key(a) == dedupe_key(b) != dedupe_key(c)
    assert dedupe_key(b"not json") == dedupe_key(b"not json") != dedupe_key(b"other")


def item(oid: int, created: str | None, group: int | None = None) -> dict[str, object]:
    return {"order_id": oid, "order_created_at": created, "order_group": group, "table_id": 1}


def test_grouping_by_time_window_and_order_group() -> None:
    # Guarantees: items within the window (chained) or of one order group are one ticket; others split.
    items = [
        item(1, "2024-01-01 12:00:00"),
        item(2, "2024-01-01 12:00:02"),
        item(3, "2024-01-01 12:00:04"),  # chained to 2 within 3 s
        item(4, "2024-01-01 12:10:00", group=9),
        item(5, "2024-01-01 12:20:00", group=9),  # far in time, same order group
        item(6, "2024-01-01 12:30:00"),
    ]
    groups = [[i["order_id"] for i in g] for g in group_items(items, 3.0)]
    assert groups == [[1, 2, 3], [4, 5], [6]]


def test_seed_table_order_rows_are_grouped_even_without_times() -> None:
    # Guarantees: the seed's row shape (date-only created_at) and rows without a time still form tickets.
    rows = load("table_orders.json")
    assert isinstance(rows, list)
    assert [len(g) for g in group_items(rows, 3.0)] == [1]
    assert [
        len(g) for g in group_items([item(1, None), item(2, None), item(3, "2024-01-01")], 3.0)
    ] == [3]


@pytest.mark.parametrize("raw", ["²", "٣", "１", " 7\u00b2"])
def test_catalogue_ids_take_ascii_digits_only(raw: str) -> None:
    # An id the POS spells with a Unicode digit is no id (was a ValueError from int()).
    assert as_int(raw) is None
    assert as_int(" 42 ") == 42
