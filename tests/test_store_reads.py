"""The store's reads see every commit made before them; a constraint hit fails one write, not the store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from kds.errors import KdsError, Unavailable
from kds.store import ConstraintViolation
from kds.store.sqlite import SqliteStore as Store
from kds.store.sqlite import Write

INBOX_INSERT = (
    "INSERT INTO inbox (id, source, dedupe_key, payload, received_at) VALUES (?, ?, ?, ?, ?)"
)
LOOKUP = "SELECT id FROM inbox WHERE source = ? AND dedupe_key = ?"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(tmp_path / "kds.sqlite3", synchronous="NORMAL")
    await store.start()
    yield store
    await store.stop()


def inbox_row(n: int, key: str | None = None) -> Write:
    write = Write()
    write.add(INBOX_INSERT, (n, "test", key or f"key-{n}", b"{}", "2024-01-01T00:00:00+00:00"))
    return write


async def test_a_lookup_sees_what_was_committed_while_other_reads_are_in_flight(
    store: Store,
) -> None:
    # A dedupe lookup (the inbox key, queued VOIDs, an archived repeat) runs on the shared read
    # connection while other reads are in flight; it must see every write committed before it
    # started, never the older snapshot another read's open statement still holds.
    await store.write(inbox_row(1000, "seen-before"))
    done = asyncio.Event()

    async def other_reads() -> None:
        # Lookups that find their row: a statement stays open until its rows are fetched.
        while not done.is_set():
            assert await store.fetchone(LOOKUP, ("test", "seen-before")) is not None

    async def write_then_look(n: int) -> bool:
        await store.write(inbox_row(n))
        return await store.fetchone(LOOKUP, ("test", f"key-{n}")) is not None

    readers = [asyncio.create_task(other_reads()) for _ in range(8)]
    try:
        seen = [await asyncio.wait_for(write_then_look(n), 10) for n in range(1, 301)]
    finally:
        done.set()
        await asyncio.gather(*readers)
    assert seen.count(False) == 0


async def test_a_constraint_hit_fails_that_write_only_and_is_not_a_store_failure(
    store: Store,
) -> None:
    # Inserting a key twice is the caller's mistake (e.g. a duplicate that raced its original):
    # that write raises ConstraintViolation (a 409, not a 503), writes committed in the same
    # group are kept, the store stays healthy and nothing is logged as a failed commit.
    await store.write(inbox_row(1, "dup"))
    with capture_logs() as logs:
        results = await asyncio.gather(
            store.write(inbox_row(2, "dup")),
            store.write(inbox_row(3)),
            store.write(inbox_row(4)),
            return_exceptions=True,
        )
    assert isinstance(results[0], ConstraintViolation) and not isinstance(results[0], Unavailable)
    assert isinstance(results[0], KdsError) and results[0].status == 409
    assert results[1:] == [None, None]
    assert [r[0] for r in await store.fetch_tuples("SELECT id FROM inbox ORDER BY id")] == [1, 3, 4]
    assert store.health()["ok"] and store.health()["lastError"] is None
    assert not [e for e in logs if e["event"] == "store.commit_failed"]
