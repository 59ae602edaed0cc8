"""Schema migrations: a database made by an earlier kds is brought up to date in place,
and the queries that run per request use an index."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from kds.app import Daemon
from kds.config import settings_from_dict
from kds.model import Order
from kds.store.migrations import MIGRATIONS
from kds.store.rows import header_json, item_row
from kds.store.sqlite import PRINT_ENTRIES_OF_ORDER
from kds.store.sqlite import SqliteStore as Store

from .util import base_config, order_body


async def test_a_version_1_database_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(f"BEGIN; {MIGRATIONS[0]}; PRAGMA user_version=1; COMMIT;")
    conn.execute(
        "INSERT INTO outbox (id, kind, target, order_id, payload, created_at) VALUES (1, 'print', 'bar', 'o1', '{}', 'now')"
    )
    conn.close()
    store = Store(path)
    await store.start()
    try:
        version = await store.fetchone("PRAGMA user_version")
        assert version is not None and version[0] == len(MIGRATIONS)
        rows = await store.fetchall("SELECT order_id FROM outbox")
        assert [r["order_id"] for r in rows] == ["o1"]
    finally:
        await store.stop()


async def test_the_void_lookup_of_a_cancel_uses_an_index(tmp_path: Path) -> None:
    store = Store(tmp_path / "kds.sqlite3")
    await store.start()
    try:
        plan = await store.fetchall(f"EXPLAIN QUERY PLAN {PRINT_ENTRIES_OF_ORDER}", ("o1",))
        details = " ".join(r["detail"] for r in plan)
        assert "USING INDEX outbox_prints_by_order" in details, details
    finally:
        await store.stop()


def write_version_5(path: Path, order: Order, body_hash: str) -> None:
    """A database as kds wrote it before migration 6: a status_changes row per step of every
    item endpoint's history, its creation included."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(f"BEGIN; {'; '.join(MIGRATIONS[:5])}; PRAGMA user_version=5; COMMIT;")
    conn.execute(
        "INSERT INTO orders (id, source, external_id, number, body_hash, data, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            order.id,
            order.source,
            order.external_id,
            order.number,
            body_hash,
            header_json(order),
            order.created_at.isoformat(),
            order.updated_at.isoformat(),
        ),
    )
    for pos, item in enumerate(order.items):
        conn.execute(
            f"INSERT INTO items VALUES ({', '.join('?' * 13)})", item_row(order.id, pos, item)
        )
        for e_pos, e in enumerate(item.endpoints):
            conn.execute(
                "INSERT INTO item_endpoints VALUES (?, ?, ?, ?, ?)",
                (order.id, item.id, e.name, e_pos, e.status.value),
            )
            for c in e.status_changes:
                conn.execute(
                    "INSERT INTO status_changes (order_id, item_id, endpoint, status, date, actor,"
                    " reason) VALUES (?, ?, ?, ?, ?, 'kds', ?)",
                    (order.id, item.id, e.name, c.status.value, c.date.isoformat(), c.reason),
                )
    conn.close()


async def test_a_version_5_database_reads_back_every_items_history(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # Migration 6 keeps an order's creation in one audit row; the rows an older kds wrote for
    # every step still read back as the same statusChanges, and new orders are stored beside.
    endpoints = [{"name": "grill"}, {"name": "cold", "is_active": False}, {"name": "bar"}]
    config = base_config(tmp_path, endpoints=endpoints)
    settings = settings_from_dict(config)
    daemon = Daemon(settings)
    client = await aiohttp_client(daemon.app)
    body = order_body(
        "old", items=[*order_body()["items"], {"plu": {"name": "Salad", "code": 500}}]
    )
    order_id = (await (await client.post("/api/v1/orders", json=body)).json())["id"]
    response = await client.post(
        f"/api/v1/orders/{order_id}/endpoints/grill/status", json={"status": "accepted"}
    )
    assert response.status == 200, await response.text()
    expected = await (await client.get(f"/api/v1/orders/{order_id}")).json()
    order = daemon.service.get(order_id)
    assert order is not None
    body_hash = daemon.service.view.body_hash(order_id)
    await client.close()

    old = tmp_path / "old.sqlite3"
    write_version_5(old, order, body_hash)
    config["database"] = {"path": str(old)}
    migrated = Daemon(settings_from_dict(config))
    client = await aiohttp_client(migrated.app)
    assert await (await client.get(f"/api/v1/orders/{order_id}")).json() == expected
    version = await migrated.store.fetchone("PRAGMA user_version")
    assert version is not None and version[0] == len(MIGRATIONS)
    response = await client.post("/api/v1/orders", json=order_body("new"))
    assert response.status == 201, await response.text()
    new = await response.json()
    await client.close()

    again = Daemon(settings_from_dict(config))
    client = await aiohttp_client(again.app)
    for wire in (expected, new):
        assert await (await client.get(f"/api/v1/orders/{wire['id']}")).json() == wire


async def test_an_order_header_from_before_rush_acks_events_holds_and_due_reads_back(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    # Those fields came after the first stored headers; such a header still loads, each with
    # what its absence means (not rushed, nothing acknowledged, no events, no holds, not due).
    import json

    settings = settings_from_dict(base_config(tmp_path))
    first = Daemon(settings)
    client = await aiohttp_client(first.app)
    response = await client.post("/api/v1/orders", json=order_body("early", number=7))
    assert response.status == 201, await response.text()
    expected = await response.json()
    await client.close()
    conn = sqlite3.connect(settings.database.path, isolation_level=None)
    (data,) = conn.execute("SELECT data FROM orders WHERE id = ?", (expected["id"],)).fetchone()
    header = json.loads(data)
    for later in ("pos_number", "rush", "allergen_acks", "events", "due_at", "holds"):
        del header[later]
    conn.execute("UPDATE orders SET data = ? WHERE id = ?", (json.dumps(header), expected["id"]))
    conn.close()

    second = Daemon(settings)
    client = await aiohttp_client(second.app)
    loaded = await (await client.get(f"/api/v1/orders/{expected['id']}")).json()
    assert loaded == {**expected, "posNumber": None}
    await client.close()
