"""Schema migrations: a database made by an earlier kds is brought up to date in place,
and the queries that run per request use an index."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kds.store.migrations import MIGRATIONS
from kds.store.sqlite import PRINT_ENTRIES_OF_ORDER
from kds.store.sqlite import SqliteStore as Store


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
