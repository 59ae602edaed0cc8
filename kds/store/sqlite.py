"""The SQLite store: WAL mode through aiosqlite, with group commit.

`SqliteStore` implements `OrderStore`: each batch or single write becomes a
list of statements (`Write`) handed to `SqliteStore.write()`, which
returns only after the transaction holding it has committed. A single writer
task drains the queue: whatever arrived while the previous commit was on disk
goes into the next transaction, grouped by statement: an INSERT's rows in statements
of many rows (`_execute_rows`: the writer thread holds the GIL per statement bound and
stepped, not per row), other statements with `executemany`.
So under load many requests share one fsync, and nothing is acknowledged
before it is durable (`synchronous=FULL` by default).

Grouping statements of several writes by SQL text is safe because the service
serialises writes per order (and outbox rows are only updated after they were
committed), so two writes in one group never touch the same row.

Reads use a second connection (aiosqlite); WAL lets it read while the writer
commits. One read runs at a time on it, start to end: a SELECT holds the
connection's snapshot from its first step until its last row is fetched, and
aiosqlite takes those in separate round trips, so a read slipped in between
would see that older snapshot — a dedupe lookup would miss a row committed
just before it (a duplicate webhook inserted twice, a VOID queued twice).

The writer runs each group's whole transaction in one call on its own
thread, with a plain sqlite3 connection that lives on that thread: going
through aiosqlite a statement at a time cost a round trip through the busy
event loop per statement (BEGIN, one per table, COMMIT), and those round trips,
not the disk, limited throughput under load. A write that breaks a constraint
(a UNIQUE key) fails alone with `ConstraintViolation`: the caller's conflict,
not a store failure.
"""

from __future__ import annotations

import asyncio
import functools
import json
import queue
import re
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

import aiosqlite
import structlog
from pydantic_core import from_json

from ..contracts import OutboxEntry
from ..errors import Unavailable
from ..model import Order
from ..reports import ProductTotal, ReportData, StationHour, TicketFact
from ..states import OrderStatus
from ..tasks import TaskSupervisor
from . import Batch, ConstraintViolation, InboxEntry
from .group import GroupCommit
from .migrations import MIGRATIONS, pending
from .rows import (
    CREATION_ITEM,
    ROW_PART_COLUMNS,
    OrderRecord,
    creation_rows,
    header_json,
    history_from_rows,
    item_row,
    new_order_header,
    orders_from_records,
    orders_from_rows,
    sqlite_header_values,
)

log = structlog.get_logger(__name__)
T = TypeVar("T")
S = OrderStatus

# sqlite3 (3.11) binds str, int and float at once but asks for an adapter for None, and not
# finding one costs ~3,300 instructions of failed attribute lookups per value — on the writer
# thread, GIL held (9 a bench order). A registered one is a dict hit; `{}.get` returns None
# for any value, a C call without a Python frame. The same NULL is bound.
_NOTHING: dict[object, None] = {}
sqlite3.register_adapter(type(None), _NOTHING.get)

#: Orders read per chunk when the view is rebuilt at start (at most).
LOAD_CHUNK = 1000
#: Text a `ChunkReader` may hold read ahead of the building. `kds run` starts it before it
#: imports the daemon (~0.4 s on the bench box): 10,000 orders of three items are 6.8 MB, all
#: read meanwhile, where a bound of 6 chunks (~1,100 orders) left the loader waiting 50-90 ms
#: for the rest (issue 19). Bigger stores, or orders, are read ahead only this far.
READ_AHEAD_BYTES = 8 * 1024 * 1024
#: What a status change of a chunk's history counts toward READ_AHEAD_BYTES (a row of tuples).
_HISTORY_ROW_BYTES = 200
#: The first chunk's size, and how much each next one grows (up to LOAD_CHUNK): the building
#: waits only for the first chunk's reading, while each next one is read (a little faster per
#: order than the building goes) beside the building of the one before. Small first chunks
#: also when `kds run` reads ahead: one chunk of 1,000 at once left 2.5 MB more RSS at 1k.
FIRST_CHUNK, CHUNK_GROWTH = 100, 1.25
#: The orders' rows the loaders read (`rows.orders_from_rows`).
LOADED_ORDERS = "SELECT id, body_hash, data, updated_at FROM orders"
#: Orders' status changes after their creation (`{}`: which orders).
LOADED_HISTORY = (
    "SELECT order_id, item_id, endpoint, status, date, reason FROM status_changes"
    f" WHERE order_id {{}} AND item_id != {CREATION_ITEM} ORDER BY order_id, id"
)
#: Orders' items, each joined with its item endpoints (`rows.orders_from_rows`; `{}`: which orders).
LOADED_ITEMS = (
    f"SELECT i.order_id, json_array({ROW_PART_COLUMNS}) FROM items i"
    " LEFT JOIN item_endpoints e ON e.order_id = i.order_id AND e.item_id = i.item_id"
    " WHERE i.order_id {} ORDER BY i.order_id, i.position, e.position"
)
#: What separates the fields of the orders in a `LOADED_CHUNK` text (five an order), and an
#: order's item endpoints' arrays: control characters, which JSON text and the ids, hashes
#: and stamps never hold raw.
FIELD_SEP, PART_SEP = "\x1f", "\x1d"
#: The first and last id of up to a chunk's size of orders after an id.
CHUNK_SPAN = "SELECT min(id), max(id) FROM (SELECT id FROM orders WHERE id > ? ORDER BY id LIMIT ?)"
#: The orders between two ids as one text (`rows.OrderRecord`s, `_records`): SQLite builds it
#: in one step, without the GIL, where a row per order and item endpoint took the GIL back
#: for every row (so reading hardly overlapped the building of the chunk before).
#: group_concat keeps the order of its input here: an aggregate's ORDER BY'd subquery keeps it.
LOADED_CHUNK = (
    "SELECT group_concat(line, char(31)) FROM ("
    " SELECT o.id || char(31) || o.body_hash || char(31) || o.updated_at || char(31)"
    " || coalesce((SELECT group_concat(part, char(29)) FROM ("
    f" SELECT json_array({ROW_PART_COLUMNS}) AS part FROM items i"
    " LEFT JOIN item_endpoints e ON e.order_id = i.order_id AND e.item_id = i.item_id"
    " WHERE i.order_id = o.id ORDER BY i.position, e.position)), '')"
    f" || char(31) || {sqlite_header_values('o.data')} AS line"
    " FROM orders o WHERE o.id BETWEEN ? AND ? ORDER BY o.id)"
)
#: The rows of a chunk of orders: those between two ids.
_SPAN = "BETWEEN ? AND ?"

META_UPSERT = (
    "INSERT INTO meta (key, value) VALUES (?, ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
ORDER_UPSERT = (
    "INSERT INTO orders (id, source, external_id, number, body_hash, data, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at"
)
ITEM_INSERT = (
    "INSERT INTO items (order_id, item_id, position, plu_name, plu_code, plu_stock_name, plu_group,"
    " amount, unit, comment, course_number, modifiers, allergens)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
ITEM_ENDPOINT_UPSERT = (
    "INSERT INTO item_endpoints (order_id, item_id, endpoint, position, status) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (order_id, item_id, endpoint) DO UPDATE SET status = excluded.status"
)
ITEM_ENDPOINT_INSERT = (
    "INSERT INTO item_endpoints (order_id, item_id, endpoint, position, status, first_status)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
STATUS_CHANGE_INSERT = (
    "INSERT INTO status_changes (order_id, item_id, endpoint, status, date, actor, reason)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
ORDER_TOUCH = "UPDATE orders SET updated_at = ? WHERE id = ?"
OUTBOX_INSERT = (
    "INSERT INTO outbox (id, kind, target, order_id, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)"
)
INBOX_INSERT = (
    "INSERT INTO inbox (id, source, dedupe_key, payload, received_at) VALUES (?, ?, ?, ?, ?)"
)
ARCHIVE_INSERT = (
    "INSERT OR REPLACE INTO archived_orders (id, source, external_id, body_hash, data, archived_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
#: The print entries of one order (which VOIDs are queued, which tickets may be on paper).
#: `kind = 'print'` is spelled out: the partial index `outbox_prints_by_order` needs it.
PRINT_ENTRIES_OF_ORDER = (
    "SELECT id, kind, target, order_id, payload, created_at, attempts, last_error, refused_at"
    " FROM outbox WHERE order_id = ? AND kind = 'print' ORDER BY id"
)
PENDING_OUTBOX = (
    "SELECT id, kind, target, order_id, payload, created_at, attempts, last_error, refused_at"
    " FROM outbox WHERE done_at IS NULL ORDER BY id"
)


class Statement(NamedTuple):
    """One SQL statement and its parameter rows (run with executemany; a tuple: made per table
    per write)."""

    sql: str
    rows: Sequence[Sequence[Any]]


#: `Statement(sql, rows)` without the Python frame of a NamedTuple's `__new__` (several a write).
_statement = functools.partial(tuple.__new__, Statement)


@dataclass
class Write:
    """Statements that commit together or not at all."""

    statements: list[Statement] = field(default_factory=list)

    def add(self, sql: str, *rows: Sequence[Any]) -> None:
        """Append `sql` with parameter `rows`."""
        if rows:
            self.statements.append(_statement((sql, rows)))

    def extend(self, other: Write) -> None:
        """Append the statements of another write."""
        self.statements.extend(other.statements)

    def __bool__(self) -> bool:
        return bool(self.statements)


@dataclass
class _Pending:
    write: Write
    done: asyncio.Future[None]


class SqliteStore(GroupCommit[_Pending]):
    """SQLite with migrations, a group-committing writer and a read connection (an OrderStore)."""

    name = "store"

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        max_group: int = 512,
        supervisor: TaskSupervisor | None = None,
        preload: ChunkReader | None = None,
    ) -> None:
        #: Runs the writer and the probe (a store used alone, e.g. by the CLI, has its own).
        self._tasks = supervisor or TaskSupervisor()
        self.path = str(path)
        #: The orders of this database already being read (`kds run`): the first load takes them.
        self._preload = preload if preload is not None and preload.path == self.path else None
        self.synchronous = synchronous
        self.max_group = max_group
        self._writer: sqlite3.Connection | None = None  # used only on the writer thread
        self._writer_thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="kds-store-writer"
        )
        self._reader: aiosqlite.Connection | None = None
        self._read_lock = asyncio.Lock()
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._healthy = True
        self._last_error: str | None = None
        self._probe: asyncio.Task[None] | None = None
        self.probe_interval = 1.0
        self.commits = 0
        self.writes = 0

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Open both connections, apply migrations, start the writer."""
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._on_writer(self._open_writer)
        self._reader = await self._connect()
        self._task = self._tasks.spawn("store:writer", self._write_loop())

    def _pragmas(self) -> list[str]:
        return [
            "PRAGMA journal_mode=WAL",
            f"PRAGMA synchronous={self.synchronous}",
            "PRAGMA busy_timeout=5000",
            "PRAGMA temp_store=MEMORY",
        ]

    async def _connect(self) -> aiosqlite.Connection:
        """The read connection."""
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        for pragma in self._pragmas():
            await conn.execute(pragma)
        conn.row_factory = sqlite3.Row
        return conn

    async def _on_writer(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer_thread, fn, *args)

    def _open_writer(self) -> sqlite3.Connection:
        """(writer thread) Open the write connection and apply migrations."""
        # isolation_level=None: we issue BEGIN/COMMIT ourselves. Room in the statement cache
        # for each INSERT's multi-row forms (`_rows_sql`) beside the other statements.
        conn = sqlite3.connect(self.path, isolation_level=None, cached_statements=256)
        for pragma in self._pragmas():
            conn.execute(pragma)
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        for number, script in pending(MIGRATIONS, version, "sqlite"):
            conn.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")
        return conn

    async def stop(self) -> None:
        """Commit what is queued, then close."""
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._reader is not None:
            await self._reader.close()
        if self._writer is not None:
            await self._on_writer(self._writer.close)
        self._writer_thread.shutdown(wait=False)
        self._reader = self._writer = None

    def health(self) -> dict[str, Any]:
        """Whether the last commit succeeded."""
        return {"ok": self._healthy, "lastError": self._last_error, "commits": self.commits}

    # ----------------------------------------------------------------- writes

    async def write(self, write: Write) -> None:
        """Commit raw statements; return only once durable. Raises Unavailable.

        SQLite-specific (tests and tools); kds's own writes go through the OrderStore methods.
        """
        if not write:
            return
        if self._task is None or self._task.done():
            raise Unavailable("the store is not running")
        done = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(write, done))
        await done

    async def barrier(self) -> None:
        """Wait until every write queued so far has committed (or failed)."""
        await self._queue.join()  # returns at once when nothing is in flight

    async def _commit_pending(self, group: list[_Pending]) -> None:
        await self._commit([p.write for p in group])

    def _fail(self, pending: _Pending, err: Exception) -> None:
        if isinstance(err, sqlite3.IntegrityError):
            # This write's own conflict (it was retried alone): the disk and the schema are fine.
            log.warning("store.write_rejected", error=str(err))
            if not pending.done.done():
                pending.done.set_exception(ConstraintViolation(f"the write was rejected: {err}"))
            return
        self._healthy, self._last_error = False, str(err)
        log.error("store.commit_failed", error=str(err))
        if self._probe is None or self._probe.done():
            self._probe = self._tasks.spawn("store:probe", self._probe_until_healthy())
        if not pending.done.done():
            pending.done.set_exception(Unavailable(f"the store could not commit: {err}"))

    async def _probe_until_healthy(self) -> None:
        """After a failed commit, try a tiny write every second so /readyz recovers
        by itself when the disk has room again (no traffic needed to notice)."""
        while not self._healthy:
            await asyncio.sleep(self.probe_interval)
            write = Write()
            write.add(META_UPSERT, ("store.probe", datetime.now(UTC).isoformat()))
            try:
                await self.write(write)
            except Unavailable:
                continue

    async def _commit(self, writes: list[Write]) -> None:
        grouped: dict[str, list[Sequence[Any]]] = {}
        for write in writes:
            for statement in write.statements:
                grouped.setdefault(statement.sql, []).extend(statement.rows)
        await self._on_writer(self._transaction, grouped)

    def _transaction(self, grouped: dict[str, list[Sequence[Any]]]) -> None:
        """(writer thread) One transaction: every statement, then COMMIT — or nothing."""
        conn = self._writer
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in grouped.items():
                _execute_rows(conn, sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # a failed COMMIT (disk full) may have rolled back already
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error as err:
                    log.error("store.rollback_failed", error=str(err))
            raise

    # ----------------------------------------------------------------- reads

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """Run a read query on the read connection (in one round trip; SQLite-specific)."""
        assert self._reader is not None, "store not started"
        async with self._read_lock:
            return list(await self._reader.execute_fetchall(sql, tuple(params)))

    async def fetch_tuples(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Like fetchall, as plain tuples: for bulk reads (a Row per row costs at 100k rows)."""
        assert self._reader is not None, "store not started"
        async with self._read_lock, self._reader.execute(sql, tuple(params)) as cursor:
            cursor.row_factory = None  # plain tuples (the typeshed stub says Row)
            return cast(list[tuple[Any, ...]], list(await cursor.fetchall()))

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        """The first row of a read query, or None."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def meta(self, key: str) -> str | None:
        """A value of the meta table."""
        row = await self.fetchone("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else row["value"]

    async def set_meta(self, key: str, value: str) -> None:
        """Durably set a value of the meta table."""
        write = Write()
        write.add(META_UPSERT, (key, value))
        await self.write(write)

    async def backup(self, target: str | Path) -> None:
        """A consistent online copy of the database at `target`."""
        assert self._reader is not None
        async with aiosqlite.connect(str(target)) as dest, self._read_lock:
            await self._reader.backup(dest)

    # ----------------------------------------------------------------- OrderStore: writes

    async def commit(self, batch: Batch) -> None:
        """Write an order change (rows, audit, outbox rows, meta) in one transaction."""
        write = Write()
        for order, body_hash in batch.new_orders:
            _add_new_order(write, order, body_hash)
        write.add(ORDER_UPSERT, *[_order_row(o, h) for o, h in batch.headers])
        added = batch.new_endpoints
        if added:
            write.add(
                ITEM_ENDPOINT_UPSERT,
                *[
                    (a.order_id, a.item_id, a.endpoint.name, a.position, a.endpoint.status.value)
                    for a in added
                ],
            )
            write.add(
                STATUS_CHANGE_INSERT,
                *[
                    (
                        a.order_id,
                        a.item_id,
                        a.endpoint.name,
                        c.status.value,
                        c.date.isoformat(),
                        a.actor,
                        c.reason,
                    )
                    for a in added
                    for c in a.endpoint.status_changes
                ],
            )
        statuses = batch.statuses
        if statuses:
            # position only matters on insert; these rows exist, so it is ignored.
            write.add(
                ITEM_ENDPOINT_UPSERT,
                *[(u.order_id, u.item_id, u.endpoint, 0, u.status.value) for u in statuses],
            )
            write.add(
                STATUS_CHANGE_INSERT,
                *[
                    (
                        u.order_id,
                        u.item_id,
                        u.endpoint,
                        u.status.value,
                        u.date.isoformat(),
                        u.actor,
                        u.reason,
                    )
                    for u in statuses
                ],
            )
            touched = {u.order_id: u.date for u in statuses}
            write.add(ORDER_TOUCH, *[(d.isoformat(), o) for o, d in touched.items()])
        write.add(OUTBOX_INSERT, *[_outbox_row(e) for e in batch.outbox])
        write.add(META_UPSERT, *batch.meta.items())
        await self.write(write)

    async def add_inbox(self, entry: InboxEntry) -> None:
        """Keep a raw event; ConstraintViolation when (source, dedupe_key) is stored already."""
        write = Write()
        write.add(
            INBOX_INSERT,
            (
                entry.id,
                entry.source,
                entry.dedupe_key,
                entry.payload,
                entry.received_at.isoformat(),
            ),
        )
        await self.write(write)

    async def inbox_done(self, inbox_id: int, at: datetime, error: str | None) -> None:
        """Mark a raw event processed at `at` (with the reason it could not be used)."""
        await self._one(
            "UPDATE inbox SET processed_at = ?, error = ? WHERE id = ?",
            (at.isoformat(), error, inbox_id),
        )

    async def outbox_attempted(self, entry_id: int, error: str | None) -> None:
        """Count one more attempt of an outbox entry, recording `error` as its last."""
        await self._one(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
            (error, entry_id),
        )

    async def outbox_refused(self, entry_id: int, at: datetime, error: str) -> None:
        """Mark an outbox entry refused by its receiver (kept pending)."""
        await self._one(
            "UPDATE outbox SET refused_at = ?, last_error = ? WHERE id = ?",
            (at.isoformat(), error, entry_id),
        )

    async def outbox_unrefused(self, entry_ids: list[int]) -> None:
        """Make refused outbox entries ordinary pending ones again."""
        write = Write()
        write.add("UPDATE outbox SET refused_at = NULL WHERE id = ?", *[(i,) for i in entry_ids])
        await self.write(write)

    async def outbox_done(self, entry_id: int, at: datetime, error: str | None) -> None:
        """Mark an outbox entry done (`error` when it was given up; else the last error stays)."""
        await self._one(
            "UPDATE outbox SET done_at = ?, last_error = COALESCE(?, last_error) WHERE id = ?",
            (at.isoformat(), error, entry_id),
        )

    async def archive(
        self,
        order: Order,
        body_hash: str,
        at: datetime,
        facts: tuple[list[TicketFact], list[ProductTotal]],
    ) -> None:
        """Move an order from the live tables to the archive (its wire JSON and report facts kept)."""
        write = Write()
        _add_report_facts(write, order, *facts)
        write.add(
            ARCHIVE_INSERT,
            (
                order.id,
                order.source,
                order.external_id,
                body_hash,
                order.wire_json(),
                at.isoformat(),
            ),
        )
        for table in ("status_changes", "item_endpoints", "items"):
            write.add(f"DELETE FROM {table} WHERE order_id = ?", (order.id,))
        write.add("DELETE FROM orders WHERE id = ?", (order.id,))
        await self.write(write)

    async def prune(self, before: datetime) -> None:
        """Delete inbox entries processed and outbox entries done before `before`."""
        write = Write()
        write.add(
            "DELETE FROM inbox WHERE processed_at IS NOT NULL AND processed_at < ?",
            (before.isoformat(),),
        )
        write.add(
            "DELETE FROM outbox WHERE done_at IS NOT NULL AND done_at < ?", (before.isoformat(),)
        )
        await self.write(write)

    async def _one(self, sql: str, row: Sequence[Any]) -> None:
        write = Write()
        write.add(sql, row)
        await self.write(write)

    # ----------------------------------------------------------------- OrderStore: reads

    async def load_orders(self) -> list[tuple[Order, str]]:
        """Every live order with its body hash, oldest (created_at, id) first.

        Read a chunk of orders at a time: the rows of all 10,000 at once were
        ~40 MB of short-lived tuples spread between the objects that stay, and
        the allocator could not give that memory back (RSS after a restart was
        15-30 MB above the ingesting process's); chunks reuse the same memory.
        The chunks are read on a thread of their own (`ChunkReader`, its own connection)
        while the orders of those before are built: SQLite builds a chunk's text without
        the GIL (`LOADED_CHUNK`), so on two cores the reading is hidden behind the building
        (and behind `kds run`'s imports, when it started the reader: `preload`).
        """
        orders: list[tuple[Order, str]] = []
        # One datetime per distinct stamp (an order's changes share a few).
        dates: dict[str, datetime] = {}
        reader, self._preload = self._preload, None
        if reader is None or not await reader.usable():
            reader = ChunkReader(self.path, check=False).start()  # migrated by start()
        try:
            while (read := await reader.next()) is not None:
                chunk, history = read
                orders += orders_from_records(
                    _records(chunk), history_from_rows(history, dates), dates
                )
        finally:
            reader.close()
        orders.sort(key=lambda pair: (pair[0].created_at, pair[0].id))
        return orders

    async def load_orders_by_id(self, order_ids: Collection[str]) -> list[tuple[Order, str]]:
        """These live orders with their body hashes (archived or unknown ones left out)."""
        ids = sorted(order_ids)
        if not ids:
            return []
        which = f"IN ({','.join('?' * len(ids))})"
        rows = await self.fetch_tuples(f"{LOADED_ORDERS} WHERE id {which}", ids)
        if not rows:
            return []
        history = await self.fetch_tuples(LOADED_HISTORY.format(which), ids)
        items = await self.fetch_tuples(LOADED_ITEMS.format(which), ids)
        return orders_from_rows(rows, history, items)

    async def report_facts(
        self, start: datetime, end: datetime, endpoint: str | None
    ) -> ReportData:
        """Archived orders that arrived in [start, end) (at `endpoint`), summed by SQL."""
        where = "arrived_at >= ? AND arrived_at < ?" + (" AND endpoint = ?" if endpoint else "")
        args = (_utc_text(start), _utc_text(end), *((endpoint,) if endpoint else ()))
        hours: dict[str, str] = {}  # "2026-12-01T12" (UTC) → ISO 8601 in the server's zone
        data = ReportData()
        for name, hour, *counts in await self.fetch_tuples(
            f"SELECT endpoint, {_UTC_HOUR}, COUNT(*), SUM(items), SUM(refusals), SUM(recalls),"
            f" SUM(printer_failures) FROM report_tickets WHERE {where} GROUP BY 1, 2",
            args,
        ):
            data.archived.append(StationHour(name, _zoned_hour(hour, hours), *counts))
        data.archived_times = [
            (name, _zoned_hour(hour, hours), seconds)
            for name, hour, seconds in await self.fetch_tuples(
                f"SELECT endpoint, {_UTC_HOUR}, seconds FROM report_tickets"
                f" WHERE {where} AND seconds IS NOT NULL",
                args,
            )
        ]
        by_hour = "hour >= ? AND hour < ?" + (" AND endpoint = ?" if endpoint else "")
        data.products = [
            ProductTotal(name, product, code or None, count, seconds)
            for name, product, code, count, seconds in await self.fetch_tuples(
                "SELECT endpoint, product, code, SUM(items), SUM(seconds) FROM report_products"
                f" WHERE {by_hour} GROUP BY endpoint, product, code",
                (args[0][:13], args[1][:13], *args[2:]),
            )
        ]
        return data

    async def archived_keys(self) -> list[tuple[str, str]]:
        """(source, external_id) of every archived order."""
        rows = await self.fetch_tuples("SELECT source, external_id FROM archived_orders")
        return [(source, external_id) for source, external_id in rows]

    async def archived_order(self, order_id: str) -> dict[str, Any] | None:
        """The wire JSON of an archived order, None when there is none."""
        row = await self.fetchone("SELECT data FROM archived_orders WHERE id = ?", (order_id,))
        return None if row is None else dict(json.loads(row["data"]))

    async def find_archived(self, source: str, external_id: str) -> tuple[str, str] | None:
        """(body hash, wire JSON text) of the archived order a POS knows as `external_id`."""
        row = await self.fetchone(
            "SELECT body_hash, data FROM archived_orders WHERE source = ? AND external_id = ?",
            (source, external_id),
        )
        return None if row is None else (row["body_hash"], row["data"])

    async def order_id_of(self, source: str, external_id: str) -> str | None:
        """The id of the live order a POS knows as `external_id`."""
        row = await self.fetchone(
            "SELECT id FROM orders WHERE source = ? AND external_id = ?", (source, external_id)
        )
        return None if row is None else str(row["id"])

    async def print_entries(self, order_id: str) -> list[OutboxEntry]:
        """Every print entry of an order, done or pending, in id order."""
        return [_outbox_entry(r) for r in await self.fetchall(PRINT_ENTRIES_OF_ORDER, (order_id,))]

    async def pending_outbox(self) -> list[OutboxEntry]:
        """Outbox entries not done (refused ones included), in id order."""
        return [_outbox_entry(r) for r in await self.fetchall(PENDING_OUTBOX)]

    async def last_outbox_id(self) -> int:
        """The highest outbox id ever written (0 for none)."""
        return await self._max_id("outbox")

    async def inbox_has(self, source: str, dedupe_key: str) -> bool:
        """Whether a raw event with this key was kept."""
        row = await self.fetchone(
            "SELECT 1 FROM inbox WHERE source = ? AND dedupe_key = ?", (source, dedupe_key)
        )
        return row is not None

    async def pending_inbox(self, source: str) -> list[InboxEntry]:
        """Raw events of `source` not yet processed, oldest first."""
        rows = await self.fetchall(
            "SELECT id, source, dedupe_key, payload, received_at FROM inbox"
            " WHERE source = ? AND processed_at IS NULL ORDER BY id",
            (source,),
        )
        return [
            InboxEntry(
                r["id"],
                r["source"],
                r["dedupe_key"],
                bytes(r["payload"]),
                datetime.fromisoformat(r["received_at"]),
            )
            for r in rows
        ]

    async def last_inbox_id(self) -> int:
        """The highest inbox id ever written (0 for none)."""
        return await self._max_id("inbox")

    async def _max_id(self, table: str) -> int:
        row = await self.fetchone(f"SELECT COALESCE(MAX(id), 0) AS m FROM {table}")
        return int(row["m"]) if row else 0


#: The most rows one INSERT statement takes: a group's rows go in statements of 64, 32, … 1
#: rows (a few distinct texts per INSERT for the statement cache; 64 × 13 columns stays under
#: 999 parameters, the oldest SQLite's limit).
MAX_ROWS_PER_INSERT = 64
#: The one row of values of an INSERT kds writes ("VALUES (?, ?, ?)").
_VALUES = re.compile(r"VALUES (\(\?(?:, \?)*\))")


@functools.lru_cache(maxsize=512)
def _rows_sql(sql: str, rows: int) -> str | None:
    """`sql` (an INSERT of one row of values) for `rows` rows; None for any other statement."""
    found = _VALUES.search(sql) if sql.startswith("INSERT") else None
    if found is None:
        return None
    return f"{sql[: found.start(1)]}{','.join([found[1]] * rows)}{sql[found.end(1) :]}"


def _execute_rows(conn: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """(writer thread) `sql` for each row; an INSERT's rows in multi-row statements, in order.

    The writer thread holds the GIL while it binds a row and takes it back after every step:
    row by row (executemany) a group's rows cost ~90k instructions of GIL time per ingested
    order, taken from the main thread; a statement of many rows steps once.
    """
    total = len(rows)
    if total == 1 or _rows_sql(sql, 2) is None:
        conn.executemany(sql, rows)
        return
    start, size = 0, MAX_ROWS_PER_INSERT
    while start < total:
        while size > total - start:
            size //= 2
        if size == 1:
            conn.execute(sql, rows[start])
        else:
            values = list(chain.from_iterable(rows[start : start + size]))
            conn.execute(cast(str, _rows_sql(sql, size)), values)
        start += size


#: What a `ChunkReader` hands over: a chunk (its `LOADED_CHUNK` text, its status changes
#: after creation), None once every order was read, `_UNUSABLE` or the error it ran into.
_Read = tuple[str, list[Any]] | None | BaseException | object
#: A preload found a database that needs migrating (or another journal mode) and read nothing.
_UNUSABLE = object()


class ChunkReader:
    """A SQLite database's live orders, read a chunk at a time on a thread of its own.

    The loader takes each chunk's text and status changes (`next()`) while the reader reads
    up to `read_ahead` bytes further: SQLite builds the text without the GIL, so on a second
    core the reading costs the loader's thread nothing. `kds run` starts one before it imports
    aiohttp and the daemon (`kds.store.preload_orders`); that one reads only a database that
    needs no migration and is in WAL mode, as the store leaves it (else `usable()` is False
    and the store reads with a reader of its own once it has migrated the database).
    """

    def __init__(
        self, path: str, *, check: bool = True, read_ahead: int = READ_AHEAD_BYTES
    ) -> None:
        self.path = path
        self._check = check  # read only a database as the store leaves it
        self._reads: queue.Queue[_Read] = queue.Queue()  # bounded by `_room`, in bytes
        self._read_ahead = read_ahead
        self._room = threading.Condition()
        #: Bytes read and not taken yet.
        self.held = 0
        #: Set while the reader waits for the loader to take what it holds.
        self.paused = threading.Event()
        #: Set once the last chunk was read.
        self.read_all = threading.Event()
        self._closed = threading.Event()
        self._head: _Read = _UNUSABLE  # a read taken by usable(), handed out by next() first
        self._peeked = False
        self._thread = threading.Thread(target=self._run, name="kds-store-preload", daemon=True)

    def start(self) -> ChunkReader:
        """Start reading."""
        self._thread.start()
        return self

    async def usable(self) -> bool:
        """Whether this reader reads the orders (False: the database needed migrating, or
        reading failed; the caller reads again after its own start)."""
        self._head = await self._take()
        self._peeked = True
        return self._head is not _UNUSABLE and not isinstance(self._head, BaseException)

    async def next(self) -> tuple[str, list[Any]] | None:
        """The next chunk (its text and its status changes), None after the last."""
        if self._peeked:
            read, self._peeked = self._head, False
        else:
            read = await self._take()
        if isinstance(read, BaseException):
            raise read
        assert read is not _UNUSABLE
        chunk = cast("tuple[str, list[Any]] | None", read)
        if chunk is not None:
            with self._room:
                self.held -= _size(chunk)
                self._room.notify()
        return chunk

    async def _take(self) -> _Read:
        try:
            return self._reads.get_nowait()
        except queue.Empty:  # not read yet: wait for it off the event loop
            return await asyncio.get_running_loop().run_in_executor(None, self._reads.get)

    def close(self) -> None:
        """Stop reading (a reader waiting for room is let go) and close its connection."""
        self._closed.set()
        with self._room:
            self._room.notify()
        while True:
            try:
                self._reads.get_nowait()
            except queue.Empty:
                return

    def _run(self) -> None:
        """(reader thread) Read the chunks into the queue until the last or close()."""
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except Exception as err:
            self._put(err)
            return
        try:
            if self._check and not _current(conn):
                self._put(_UNUSABLE)
                return
            after, size = "", FIRST_CHUNK
            while not self._closed.is_set():
                chunk, after, history = _read_chunk(conn, after, size)
                if chunk is None:
                    self._put(None)
                    self.read_all.set()
                    return
                self._put_chunk((chunk, history))
                size = min(LOAD_CHUNK, int(size * CHUNK_GROWTH))
        except Exception as err:
            self._put(err)
        finally:
            conn.close()

    def _put(self, read: _Read) -> None:
        if not self._closed.is_set():
            self._reads.put(read)

    def _put_chunk(self, read: tuple[str, list[Any]]) -> None:
        """Hand a chunk over once there is room for it (one always fits when nothing is held)."""
        size = _size(read)
        with self._room:
            while self.held and self.held + size > self._read_ahead and not self._closed.is_set():
                self.paused.set()
                self._room.wait()
            self.paused.clear()
            self.held += size
        self._put(read)


def _size(read: tuple[str, list[Any]]) -> int:
    """What a chunk read ahead holds, roughly, in bytes."""
    chunk, history = read
    return len(chunk) + _HISTORY_ROW_BYTES * len(history)


def _current(conn: sqlite3.Connection) -> bool:
    """(reader thread) Whether a database is as the store leaves it: migrated, in WAL mode."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    return bool(version == len(MIGRATIONS) and mode == "wal")


def _read_chunk(
    conn: sqlite3.Connection, after: str, size: int
) -> tuple[str | None, str, list[Any]]:
    """(loader thread) Up to `size` orders after id `after`, read in one transaction (one
    snapshot): their `LOADED_CHUNK` text (None: no more), the last one's id, and their status
    changes after creation."""
    conn.execute("BEGIN")
    try:
        span = conn.execute(CHUNK_SPAN, (after, size)).fetchone()
        if span[0] is None:
            return None, after, []
        (chunk,) = conn.execute(LOADED_CHUNK, span).fetchone()
        history = conn.execute(LOADED_HISTORY.format(_SPAN), span).fetchall()
        return chunk, span[1], history
    finally:
        conn.execute("COMMIT")


def _records(chunk: str) -> Iterator[OrderRecord]:
    """The orders of a `LOADED_CHUNK` text."""
    # One split of the whole text (C), its fields taken five at a time (zip of one iterator).
    fields = iter(chunk.split(FIELD_SEP))
    for order_id, body_hash, updated_at, parts, values in zip(
        fields, fields, fields, fields, fields, strict=True
    ):
        # Text values not cached by pydantic: what repeats is shared by kds.interning.
        parsed = from_json(values, cache_strings="keys")
        yield order_id, body_hash, parsed, updated_at, parts.split(PART_SEP) if parts else ()


def _order_row(
    order: Order, body_hash: str, stamp: str | None = None, header: str | None = None
) -> tuple[Any, ...]:
    created = stamp or order.created_at.isoformat()  # `stamp`: created_at's, already written
    updated_at = order.updated_at
    return (
        order.id,
        order.source,
        order.external_id,
        order.number,
        body_hash,
        header_json(order) if header is None else header,
        created,
        created if updated_at is order.created_at else updated_at.isoformat(),
    )


def _add_new_order(write: Write, order: Order, body_hash: str) -> None:
    """A new order's header, items, item endpoints and its creation's audit row."""
    header, stamp = new_order_header(order)
    endpoints, audit = creation_rows(order, stamp)
    order_id = order.id
    write.add(ORDER_UPSERT, _order_row(order, body_hash, stamp, header))
    write.add(ITEM_INSERT, *[item_row(order_id, pos, item) for pos, item in enumerate(order.items)])
    write.add(ITEM_ENDPOINT_INSERT, *endpoints)
    write.add(STATUS_CHANGE_INSERT, *audit)


#: The UTC hour of a report row ("2026-12-01T12"): a text prefix, cheap for 100,000s of rows.
_UTC_HOUR = "substr(arrived_at, 1, 13)"


def _zoned_hour(utc_hour: str, seen: dict[str, str]) -> str:
    """`2026-12-01T12` (UTC) → `2026-12-01T13:00:00+01:00`, as `reports.hour_of` writes it."""
    text = seen.get(utc_hour)
    if text is None:
        when = datetime.fromisoformat(f"{utc_hour}:00:00+00:00")
        text = seen[utc_hour] = when.astimezone().isoformat()
    return text


def _utc_text(when: datetime) -> str:
    """A time as the ISO text the report tables hold (UTC, so text order is time order)."""
    return when.astimezone(UTC).isoformat()


def _add_report_facts(
    write: Write, order: Order, tickets: list[TicketFact], products: list[ProductTotal]
) -> None:
    """The report rows of an order being archived (kds.reports reads them)."""
    write.add(
        "INSERT OR REPLACE INTO report_tickets (order_id, endpoint, arrived_at, seconds, items,"
        " refusals, recalls, printer_failures) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        *[
            (
                t.order_id,
                t.endpoint,
                _utc_text(t.arrived_at),
                t.seconds,
                t.items,
                t.refusals,
                t.recalls,
                t.printer_failures,
            )
            for t in tickets
        ],
    )
    write.add(
        "INSERT INTO report_products (hour, endpoint, product, code, items, seconds)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hour, endpoint, product, code) DO UPDATE SET"
        " items = items + excluded.items, seconds = seconds + excluded.seconds",
        *[
            (
                _utc_text(p.arrived_at or order.created_at)[:13],
                p.endpoint,
                p.product,
                p.code or "",
                p.items,
                p.seconds,
            )
            for p in products
        ],
    )


def _outbox_row(entry: OutboxEntry) -> tuple[Any, ...]:
    return (
        entry.id,
        entry.kind,
        entry.target,
        entry.order_id,
        json.dumps(entry.payload, ensure_ascii=False),
        entry.created_at.isoformat(),
    )


def _outbox_entry(r: sqlite3.Row) -> OutboxEntry:
    return OutboxEntry(
        r["id"],
        r["kind"],
        r["target"],
        r["order_id"],
        json.loads(r["payload"]),
        datetime.fromisoformat(r["created_at"]),
        r["attempts"],
        (r["last_error"] or "refused") if r["refused_at"] else None,
    )
