"""The store's promises hold on both backends: SQLite (the default) and PostgreSQL.

Every test runs twice through the `OrderStore` protocol only — once on a SQLite
file, once on a fresh database of a real PostgreSQL server (tests/pg.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from kds.app import Daemon
from kds.config import settings_from_dict
from kds.contracts import OutboxEntry
from kds.model import utcnow
from kds.store import Batch, ConstraintViolation, InboxEntry, OrderStore, open_store

from .util import base_config, order_body, write_config

BACKENDS = ["sqlite", "postgresql"]
BACKEND_STORES = {False: "SqliteStore", True: "PostgresStore"}


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The [database] section of one backend (a fresh database each time)."""
    if request.param == "postgresql":
        return {"path": str(tmp_path / "unused.sqlite3"), "url": request.getfixturevalue("pg_url")}
    return {"path": str(tmp_path / "kds.sqlite3")}


@pytest.fixture
async def store(database: dict[str, Any]) -> AsyncIterator[OrderStore]:
    store = open_store(database["path"], url=database.get("url"))
    await store.start()
    yield store
    await store.stop()


def entry(n: int, order_id: str = "o1", kind: str = "print") -> OutboxEntry:
    payload = {"orderId": order_id, "ticket": "new", "itemIds": [1, 2], "version": 1}
    return OutboxEntry(n, kind, "grill", order_id, payload, utcnow())


async def test_meta_is_durable_and_overwritten(store: OrderStore) -> None:
    # set_meta returns once committed; a second value replaces the first.
    assert await store.meta("k") is None
    await store.set_meta("k", "1")
    await store.set_meta("k", "ünï")
    assert await store.meta("k") == "ünï"


async def test_inbox_dedupes_and_keeps_the_raw_bytes(store: OrderStore) -> None:
    # A raw event is kept byte for byte; the same (source, key) again is a conflict, not a failure.
    at = utcnow()
    await store.add_inbox(InboxEntry(1, "r2o", "evt-1", b"\x00{raw}\xff", at))
    with pytest.raises(ConstraintViolation):
        await store.add_inbox(InboxEntry(2, "r2o", "evt-1", b"{}", at))
    assert store.health()["ok"]
    assert await store.inbox_has("r2o", "evt-1")
    assert not await store.inbox_has("r2o", "evt-2")
    [pending] = await store.pending_inbox("r2o")
    assert (pending.id, pending.payload, pending.received_at) == (1, b"\x00{raw}\xff", at)
    assert await store.last_inbox_id() >= 1  # ids after it are free
    await store.inbox_done(1, at, "could not translate")
    assert await store.pending_inbox("r2o") == []


async def test_outbox_entries_go_through_their_lifecycle(store: OrderStore) -> None:
    # Committed entries are pending in id order; attempts count, refused stays pending, done leaves.
    await store.commit(Batch(outbox=[entry(1), entry(2, kind="writeback"), entry(3, "o2")]))
    assert [e.id for e in await store.pending_outbox()] == [1, 2, 3]
    assert await store.last_outbox_id() >= 3
    await store.outbox_attempted(1, "timeout")
    await store.outbox_refused(2, utcnow(), "403 forbidden")
    await store.outbox_done(3, utcnow(), None)
    pending = {e.id: e for e in await store.pending_outbox()}
    assert set(pending) == {1, 2}
    assert pending[1].attempts == 1 and pending[1].payload == entry(1).payload
    assert pending[2].refused == "403 forbidden"
    await store.outbox_unrefused([2])
    assert {e.id: e.refused for e in await store.pending_outbox()} == {1: None, 2: None}
    assert [e.id for e in await store.print_entries("o1")] == [1]


async def test_a_conflicting_write_fails_alone_in_a_group(store: OrderStore) -> None:
    # Writes queued together share a transaction; the one that breaks a key fails by itself.
    await store.commit(Batch(outbox=[entry(1)]))
    results = await asyncio.gather(
        *(store.commit(Batch(outbox=[entry(n)])) for n in (2, 1, 3, 4)), return_exceptions=True
    )
    assert [type(r).__name__ for r in results] == [
        "NoneType",
        "ConstraintViolation",
        "NoneType",
        "NoneType",
    ]
    assert [e.id for e in await store.pending_outbox()] == [1, 2, 3, 4]
    assert store.health()["ok"]


async def test_prune_deletes_only_what_is_old_and_finished(store: OrderStore) -> None:
    now = utcnow()
    await store.add_inbox(InboxEntry(1, "s", "old", b"1", now))
    await store.add_inbox(InboxEntry(2, "s", "open", b"2", now))
    await store.commit(Batch(outbox=[entry(1), entry(2)]))
    await store.inbox_done(1, now - timedelta(days=8), None)
    await store.outbox_done(1, now - timedelta(days=8), None)
    await store.prune(now - timedelta(days=7))
    assert not await store.inbox_has("s", "old")
    assert await store.inbox_has("s", "open")
    assert [e.id for e in await store.pending_outbox()] == [2]


async def test_the_daemon_reads_back_identical_orders_after_a_restart(
    database: dict[str, Any], tmp_path: Path, aiohttp_client: Any
) -> None:
    # Orders with history, a cancel and an archive read back byte for byte from either backend.
    settings = settings_from_dict(base_config(tmp_path, database=database))
    first = Daemon(settings)
    assert type(first.store).__name__ == BACKEND_STORES[database.get("url") is not None]
    client = await aiohttp_client(first.app)
    bodies = [
        order_body("a"),
        order_body(
            "b",
            items=[
                {
                    "id": 5,
                    "plu": {"name": "Борщ", "code": "X-1", "group": "Soups"},
                    "quantity": {"amount": 1.5, "unit": "kg"},
                    "modifiers": [{"name": "Čučoriedky"}],
                },
                {"id": 9, "plu": {"name": "Cola", "code": 7}, "quantity": 3},
            ],
        ),
        order_body("c"),
    ]
    ids = []
    for body in bodies:
        response = await client.post("/api/v1/orders", json=body)
        assert response.status == 201, await response.text()
        ids.append((await response.json())["id"])
    for status in ("delivered", "refused"):
        response = await client.post(
            f"/api/v1/orders/{ids[0]}/endpoints/grill/status",
            json={"status": status, "reason": "out of buns"},
        )
        assert response.status == 200, await response.text()
    await client.delete(f"/api/v1/orders/{ids[1]}")
    await client.post(f"/api/v1/orders/{ids[2]}/status", json={"status": "processSkipped"})
    assert await first.service.archive_finished(utcnow() + timedelta(days=2)) >= 2
    before = {i: await (await client.get(f"/api/v1/orders/{i}")).json() for i in ids}
    span = {
        "from": (utcnow() - timedelta(hours=1)).isoformat(),
        "to": (utcnow() + timedelta(hours=1)).isoformat(),
    }
    report = await (await client.get("/api/v1/reports", params=span)).json()
    assert report["total"]["tickets"] >= 2, report  # the archived orders count too
    await client.close()

    second = Daemon(settings)
    client = await aiohttp_client(second.app)
    after = {i: await (await client.get(f"/api/v1/orders/{i}")).json() for i in ids}
    assert after == before
    # The report facts stored at archiving read back the same.
    assert await (await client.get("/api/v1/reports", params=span)).json() == report
    # A repeat of an archived order is still recognised (200, same id), not stored again.
    response = await client.post("/api/v1/orders", json=bodies[1])
    assert response.status == 200 and (await response.json())["id"] == ids[1]
    assert json.dumps(after[ids[0]])  # the refused order is live, the others archived


def test_kds_migrate_brings_either_backend_up_to_date(
    database: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `kds migrate` applies the schema without starting kds, and says the version.
    from kds.cli import main
    from kds.store import migrations, postgres

    config = write_config(tmp_path / "config.toml", base_config(tmp_path, database=database))
    assert main(["migrate", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    latest = len((postgres if "url" in database else migrations).MIGRATIONS)
    assert out.strip().endswith(f"schema at version {latest}"), out
    assert main(["migrate", "--config", str(config)]) == 0  # nothing left to do: still fine


def test_kds_backup_points_postgresql_users_to_pg_dump(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from kds.cli import main

    data = base_config(tmp_path, database={"url": pg_url})
    config = write_config(tmp_path / "config.toml", data)
    assert main(["backup", "--config", str(config), str(tmp_path / "copy")]) == 2
    assert "pg_dump" in capsys.readouterr().err


def test_both_backends_have_the_same_numbered_migrations() -> None:
    # A schema change is made on both: migration N of SQLite has its PostgreSQL twin.
    from kds.store import migrations, postgres

    assert len(postgres.MIGRATIONS) == len(migrations.MIGRATIONS)


async def audit_rows(store: Any, order_id: str) -> list[tuple[int, str, str]]:
    """(item_id, endpoint, status) of an order's status_changes rows, in the order written."""
    sql = "SELECT item_id, endpoint, status FROM status_changes WHERE order_id = {} ORDER BY id"
    if hasattr(store, "fetch_tuples"):  # SQLite
        return [tuple(r) for r in await store.fetch_tuples(sql.format("?"), (order_id,))]
    return [tuple(r) for r in await store.fetch(sql.format("$1"), order_id)]


async def test_an_order_is_created_with_one_audit_row_and_keeps_its_history(
    database: dict[str, Any], tmp_path: Path, aiohttp_client: Any
) -> None:
    # Ingest writes one audit row per order (its creation), not one per item endpoint and step;
    # every item's statusChanges read back the same after a change and a restart.
    endpoints = [
        {"name": "grill", "hold_courses": True},
        {"name": "cold", "is_active": False},
        {"name": "bar"},
    ]
    config = base_config(tmp_path, database=database, endpoints=endpoints)
    settings = settings_from_dict(config)
    first = Daemon(settings)
    client = await aiohttp_client(first.app)
    items = [
        {"id": 1, "plu": {"name": "Soup"}, "courseNumber": 1},
        {"id": 2, "plu": {"name": "Steak"}, "courseNumber": 2},
        {"id": 3, "plu": {"name": "Green salad"}},
        {"id": 4, "plu": {"name": "Pilsner", "group": "Drinks"}},
    ]
    response = await client.post("/api/v1/orders", json=order_body("h", items=items))
    assert response.status == 201, await response.text()
    created = await response.json()
    order_id = created["id"]
    histories = {
        (i["id"], e["name"]): [c["status"] for c in e["statusChanges"]]
        for i in created["items"]
        for e in i["endpoints"]
    }
    assert histories == {
        (1, "grill"): ["created", "sent"],
        (2, "grill"): ["created"],  # the second course is held
        (3, "cold"): ["created", "processSkipped"],  # the station is inactive
        (4, "bar"): ["created", "sent"],
    }
    assert await audit_rows(first.store, order_id) == [(-1, "", "created")]
    response = await client.post(
        f"/api/v1/orders/{order_id}/endpoints/bar/status", json={"status": "accepted"}
    )
    assert response.status == 200, await response.text()
    assert await audit_rows(first.store, order_id) == [
        (-1, "", "created"),
        (4, "bar", "delivered"),
        (4, "bar", "accepted"),
    ]
    before = await (await client.get(f"/api/v1/orders/{order_id}")).json()
    await client.close()

    second = Daemon(settings)
    client = await aiohttp_client(second.app)
    assert await (await client.get(f"/api/v1/orders/{order_id}")).json() == before


async def _three_orders(
    database: dict[str, Any], tmp_path: Path, aiohttp_client: Any
) -> tuple[Daemon, Any, list[str]]:
    """A daemon on `database`, its client and the ids of three orders it took (x, y, z)."""
    daemon = Daemon(settings_from_dict(base_config(tmp_path, database=database)))
    client = await aiohttp_client(daemon.app)
    ids = []
    for ext in ("x", "y", "z"):
        response = await client.post("/api/v1/orders", json=order_body(ext))
        assert response.status == 201, await response.text()
        ids.append((await response.json())["id"])
    return daemon, client, ids


async def test_orders_read_by_id_are_those_read_at_start(
    database: dict[str, Any], tmp_path: Path, aiohttp_client: Any
) -> None:
    # load_orders_by_id (a cluster node reading another's changes) builds the same orders as
    # load_orders: history after a change included; unknown ids are left out.
    daemon, client, ids = await _three_orders(database, tmp_path, aiohttp_client)
    response = await client.post(
        f"/api/v1/orders/{ids[1]}/endpoints/grill/status", json={"status": "accepted"}
    )
    assert response.status == 200, await response.text()
    store = daemon.store
    every = {o.id: (o.wire_json(), h) for o, h in await store.load_orders()}
    some = await store.load_orders_by_id([ids[2], ids[1], "not-an-order"])
    assert {o.id: (o.wire_json(), h) for o, h in some} == {i: every[i] for i in ids[1:]}
    assert every[ids[1]][0] == daemon.service.get(ids[1]).wire_json()
    await client.close()


async def test_orders_read_by_id_around_another_order_are_only_those_asked_for(
    database: dict[str, Any], tmp_path: Path, aiohttp_client: Any
) -> None:
    # Asking for the first and the last of three orders reads those two: the one between them
    # (its rows lie in the same range of ids) is neither built nor in the way.
    daemon, client, ids = await _three_orders(database, tmp_path, aiohttp_client)
    assert ids == sorted(ids)
    store = daemon.store
    some = await store.load_orders_by_id([ids[2], ids[0]])
    assert sorted(o.id for o, _ in some) == [ids[0], ids[2]]
    for order, _ in some:
        assert order.wire_json() == daemon.service.get(order.id).wire_json()
    await client.close()
