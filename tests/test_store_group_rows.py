"""A group commit's rows: few statements on the writer thread, read back exactly as written."""

from __future__ import annotations

import sqlite3

from kds.store.sqlite import META_UPSERT, STATUS_CHANGE_INSERT, SqliteStore, Write

from .test_store_reads import store  # noqa: F401  (a started store on a fresh database)


async def traced(store: SqliteStore, write: Write) -> list[str]:
    """The statements the writer connection ran for `write` (one per row stepped)."""
    statements: list[str] = []
    conn = store._writer
    assert conn is not None
    await store._on_writer(conn.set_trace_callback, statements.append)
    try:
        await store.write(write)
    finally:
        await store._on_writer(conn.set_trace_callback, None)
    return statements


async def test_many_rows_of_an_insert_take_few_statements_and_read_back_as_written(
    store: SqliteStore,
) -> None:
    # The writer thread holds the GIL while it binds and steps each statement: row by row
    # (executemany) that was ~90k instructions per ingested order, taken from the main thread.
    # An INSERT's rows go in multi-row statements instead: same rows, same order (the audit
    # ids count up in the order written), NULLs stay NULL.
    rows = [
        (f"o{n % 7}", n, "grill", "sent", f"2026-12-02T10:00:{n % 60:02d}+00:00", "kds", None)
        if n % 3
        else (f"o{n % 7}", n, "bar", "created", "2026-12-02T10:00:00+00:00", "api", "why ü")
        for n in range(150)
    ]
    write = Write()
    write.add(STATUS_CHANGE_INSERT, *rows)
    statements = await traced(store, write)
    assert len(statements) <= 2 + 8  # BEGIN, COMMIT and a few INSERTs, not one per row
    back = await store.fetch_tuples(
        "SELECT id, order_id, item_id, endpoint, status, date, actor, reason, typeof(reason)"
        " FROM status_changes ORDER BY id"
    )
    assert [r[0] for r in back] == list(range(1, 151))
    assert [tuple(r[1:8]) for r in back] == rows
    assert [r[8] for r in back] == ["null" if row[6] is None else "text" for row in rows]


async def test_an_upsert_of_one_key_twice_in_a_group_keeps_the_last_value(
    store: SqliteStore,
) -> None:
    # Rows of one statement apply in order, as they did one at a time.
    write = Write()
    write.add(META_UPSERT, ("k", "1"), ("other", "x"), ("k", "2"))
    await store.write(write)
    assert await store.meta("k") == "2"
    assert await store.meta("other") == "x"


def test_none_is_bound_through_a_registered_adapter() -> None:
    # sqlite3 (3.11) has no fast path for None: without an adapter each None parameter costs
    # ~3,300 instructions of failed attribute lookups on the writer thread, GIL held.
    assert (type(None), sqlite3.PrepareProtocol) in sqlite3.adapters
    conn = sqlite3.connect(":memory:")
    assert conn.execute("SELECT typeof(?), ?", (None, None)).fetchone() == ("null", None)
