"""The durable store: SQLite in WAL mode through aiosqlite, with group commit.

Every write is a list of statements (`Write`) handed to `Store.write()`, which
returns only after the transaction holding it has committed. A single writer
task drains the queue: whatever arrived while the previous commit was on disk
goes into the next transaction, grouped into one `executemany` per statement.
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
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import structlog

from .errors import ConflictError, Unavailable

log = structlog.get_logger(__name__)
T = TypeVar("T")

#: Numbered migrations; `PRAGMA user_version` records how many ran.
MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE inbox (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        dedupe_key TEXT NOT NULL,
        payload BLOB NOT NULL,
        received_at TEXT NOT NULL,
        processed_at TEXT,
        error TEXT,
        UNIQUE (source, dedupe_key)
    );
    CREATE INDEX inbox_pending ON inbox (source, id) WHERE processed_at IS NULL;
    CREATE TABLE orders (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        external_id TEXT NOT NULL,
        number INTEGER NOT NULL,
        body_hash TEXT NOT NULL,
        data TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (source, external_id)
    );
    CREATE TABLE items (
        order_id TEXT NOT NULL,
        item_id INTEGER NOT NULL,
        position INTEGER NOT NULL,
        plu_name TEXT NOT NULL,
        plu_code,                          -- integer or text, as the POS sent it
        plu_stock_name TEXT,
        plu_group TEXT,
        amount TEXT NOT NULL,              -- decimal as text: no float rounding
        unit TEXT NOT NULL,
        comment TEXT,
        course_number INTEGER,
        modifiers TEXT NOT NULL,           -- JSON array of strings
        PRIMARY KEY (order_id, item_id)
    ) WITHOUT ROWID;
    CREATE TABLE item_endpoints (
        order_id TEXT NOT NULL,
        item_id INTEGER NOT NULL,
        endpoint TEXT NOT NULL,
        position INTEGER NOT NULL,
        status TEXT NOT NULL,
        PRIMARY KEY (order_id, item_id, endpoint)
    ) WITHOUT ROWID;
    CREATE TABLE status_changes (
        id INTEGER PRIMARY KEY,
        order_id TEXT NOT NULL,
        item_id INTEGER NOT NULL,
        endpoint TEXT NOT NULL,
        status TEXT NOT NULL,
        date TEXT NOT NULL,
        actor TEXT NOT NULL,
        reason TEXT
    );
    CREATE INDEX status_changes_by_order ON status_changes (order_id, id);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        order_id TEXT,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        done_at TEXT
    );
    CREATE INDEX outbox_pending ON outbox (id) WHERE done_at IS NULL;
    CREATE TABLE archived_orders (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        external_id TEXT NOT NULL,
        body_hash TEXT NOT NULL,
        data TEXT NOT NULL,
        archived_at TEXT NOT NULL,
        UNIQUE (source, external_id)
    );
    """,
    # 2: a cancel looks up the order's print entries (were VOIDs queued already?);
    # without this the outbox, kept for days, was scanned whole for every cancel.
    """
    CREATE INDEX outbox_prints_by_order ON outbox (order_id) WHERE kind = 'print';
    """,
    # 3: a write-back the POS refused (403/404/409) is kept as refused — pending, not
    # re-sent on its own — until staff retry it.
    """
    ALTER TABLE outbox ADD COLUMN refused_at TEXT;
    """,
    # 4: allergens of an item (matched or POS-flagged); report facts written when an order is
    # archived (kds.reports), so a report over months reads narrow rows, not order JSON.
    """
    ALTER TABLE items ADD COLUMN allergens TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE report_tickets (
        order_id TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        arrived_at TEXT NOT NULL,
        seconds REAL,
        items INTEGER NOT NULL,
        refusals INTEGER NOT NULL,
        recalls INTEGER NOT NULL,
        printer_failures INTEGER NOT NULL,
        PRIMARY KEY (order_id, endpoint)
    ) WITHOUT ROWID;
    CREATE INDEX report_tickets_by_arrival ON report_tickets (arrived_at);
    CREATE TABLE report_items (
        order_id TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        product TEXT NOT NULL,
        code TEXT,
        arrived_at TEXT NOT NULL,
        seconds REAL NOT NULL
    );
    CREATE INDEX report_items_by_arrival ON report_items (arrived_at);
    """,
]


class ConstraintViolation(ConflictError):
    """A write broke a constraint of the schema (e.g. a UNIQUE key): rejected, the store is fine."""


@dataclass(frozen=True)
class Statement:
    """One SQL statement and its parameter rows (run with executemany)."""

    sql: str
    rows: Sequence[Sequence[Any]]


@dataclass
class Write:
    """Statements that commit together or not at all."""

    statements: list[Statement] = field(default_factory=list)

    def add(self, sql: str, *rows: Sequence[Any]) -> None:
        """Append `sql` with parameter `rows`."""
        if rows:
            self.statements.append(Statement(sql, rows))

    def extend(self, other: Write) -> None:
        """Append the statements of another write."""
        self.statements.extend(other.statements)

    def __bool__(self) -> bool:
        return bool(self.statements)


@dataclass
class _Pending:
    write: Write
    done: asyncio.Future[None]


class Store:
    """SQLite with migrations, a group-committing writer and a read connection."""

    name = "store"

    def __init__(
        self, path: str | Path, *, synchronous: str = "FULL", max_group: int = 512
    ) -> None:
        self.path = str(path)
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
        self._task = asyncio.create_task(self._write_loop(), name="store:writer")

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
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        conn = sqlite3.connect(self.path, isolation_level=None)
        for pragma in self._pragmas():
            conn.execute(pragma)
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            log.info("store.migrate", version=number)
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
        """Commit `write`; return only once it is durable. Raises Unavailable."""
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

    async def _write_loop(self) -> None:
        while True:
            group = [await self._queue.get()]
            while len(group) < self.max_group and not self._queue.empty():
                group.append(self._queue.get_nowait())
            try:
                await self._commit_group(group)
            finally:
                for _ in group:
                    self._queue.task_done()

    async def _commit_group(self, group: list[_Pending]) -> None:
        try:
            await self._commit([p.write for p in group])
        except Exception as err:
            if len(group) > 1:
                # Isolate: one bad write must not fail the others that shared its transaction.
                for pending in group:
                    await self._commit_group([pending])
                return
            self._fail(group[0], err)
        else:
            self._healthy, self._last_error = True, None
            self.commits += 1
            self.writes += len(group)
            for pending in group:
                if not pending.done.done():
                    pending.done.set_result(None)

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
            self._probe = asyncio.create_task(self._probe_until_healthy(), name="store:probe")
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
                conn.executemany(sql, rows)
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
        """Run a read query on the read connection (in one round trip)."""
        assert self._reader is not None, "store not started"
        async with self._read_lock:
            return list(await self._reader.execute_fetchall(sql, tuple(params)))

    async def fetch_tuples(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Like fetchall, as plain tuples: for bulk reads (a Row per row costs at 100k rows)."""
        assert self._reader is not None, "store not started"
        async with self._read_lock, self._reader.execute(sql, tuple(params)) as cursor:
            cursor.row_factory = None
            return list(await cursor.fetchall())

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


META_UPSERT = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
