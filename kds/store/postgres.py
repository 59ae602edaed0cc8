"""The PostgreSQL store: the same `OrderStore` on a server several kds nodes can share.

`[database] url = "postgresql://user@host:5432/kds"` selects it. It keeps the
SQLite store's promises: numbered migrations (PostgreSQL dialect, recorded in
`schema_version`, applied under an advisory lock so two nodes starting at once
do not race), group commit (one writer connection; whatever queued while the
previous transaction committed goes into the next: one binary COPY per table
for the rows of new orders and outbox entries, a pipelined `executemany` for
the rest) and durability (a write returns only after its
COMMIT returned, so nothing is acknowledged before the server has it).

Grouping statements of several writes by SQL text is safe for the same reason
as on SQLite: the service serialises writes per order, so two writes in one
group never touch the same row. A write that breaks a constraint fails alone
with `ConstraintViolation`. Reads run on a small pool; PostgreSQL's MVCC gives
each statement the committed state as of its start.

Dates are `timestamptz` (an order's header JSON keeps its own ISO text),
decimals stay text (no rounding), a product code keeps its JSON type.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from ..contracts import OutboxEntry
from ..errors import Unavailable
from ..model import Order, OrderItem, OrderStatus
from ..numbers import NUMBER_KEY
from ..reports import ProductTotal, ReportData, StationHour, TicketFact
from ..tasks import TaskSupervisor
from . import Batch, ConstraintViolation, InboxEntry
from .group import GroupCommit
from .migrations import pending as pending_migrations
from .rows import (
    CREATION_ITEM,
    ROW_PART_COLUMNS,
    creation_rows,
    header_json,
    item_row,
    new_order_header,
    orders_from_rows,
)

try:
    import asyncpg  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - the optional extra is missing
    asyncpg = None

log = structlog.get_logger(__name__)
S = OrderStatus

#: Orders read per chunk when the view is rebuilt at start.
LOAD_CHUNK = 1000
#: Ids a node may hand out per start (outbox jobs, inbox events) before the next range.
ID_RANGE = 1_000_000_000
#: Held while migrations run, so nodes starting together migrate once.
MIGRATION_LOCK = 0x6B64_7301

#: Numbered migrations in PostgreSQL's dialect; each matches the SQLite one of the same number.
MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE meta (
        site TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (site, key)
    );
    CREATE TABLE inbox (
        id BIGINT PRIMARY KEY,
        site TEXT NOT NULL,
        source TEXT NOT NULL,
        dedupe_key TEXT NOT NULL,
        payload BYTEA NOT NULL,
        received_at TIMESTAMPTZ NOT NULL,
        processed_at TIMESTAMPTZ,
        error TEXT,
        UNIQUE (site, source, dedupe_key)
    );
    CREATE INDEX inbox_pending ON inbox (site, source, id) WHERE processed_at IS NULL;
    CREATE TABLE orders (
        id TEXT PRIMARY KEY,
        site TEXT NOT NULL,
        source TEXT NOT NULL,
        external_id TEXT NOT NULL,
        number INTEGER NOT NULL,
        body_hash TEXT NOT NULL,
        data TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        UNIQUE (site, source, external_id)
    );
    CREATE TABLE items (
        order_id TEXT NOT NULL,
        item_id BIGINT NOT NULL,
        position INTEGER NOT NULL,
        plu_name TEXT NOT NULL,
        plu_code JSONB,                    -- integer or text, as the POS sent it
        plu_stock_name TEXT,
        plu_group TEXT,
        amount TEXT NOT NULL,              -- decimal as text: no float rounding
        unit TEXT NOT NULL,
        comment TEXT,
        course_number INTEGER,
        modifiers TEXT NOT NULL,           -- JSON array of strings
        PRIMARY KEY (order_id, item_id)
    );
    CREATE TABLE item_endpoints (
        order_id TEXT NOT NULL,
        item_id BIGINT NOT NULL,
        endpoint TEXT NOT NULL,
        position INTEGER NOT NULL,
        status TEXT NOT NULL,
        PRIMARY KEY (order_id, item_id, endpoint)
    );
    CREATE TABLE status_changes (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        order_id TEXT NOT NULL,
        item_id BIGINT NOT NULL,
        endpoint TEXT NOT NULL,
        status TEXT NOT NULL,
        date TIMESTAMPTZ NOT NULL,
        actor TEXT NOT NULL,
        reason TEXT
    );
    CREATE INDEX status_changes_by_order ON status_changes (order_id, id);
    CREATE TABLE outbox (
        id BIGINT PRIMARY KEY,
        site TEXT NOT NULL,
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        order_id TEXT,
        payload TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        done_at TIMESTAMPTZ
    );
    CREATE INDEX outbox_pending ON outbox (site, id) WHERE done_at IS NULL;
    CREATE TABLE archived_orders (
        id TEXT PRIMARY KEY,
        site TEXT NOT NULL,
        source TEXT NOT NULL,
        external_id TEXT NOT NULL,
        body_hash TEXT NOT NULL,
        data TEXT NOT NULL,
        archived_at TIMESTAMPTZ NOT NULL,
        UNIQUE (site, source, external_id)
    );
    -- Every table with rows of its own site has `site` (one database, many restaurants).
    -- Only PostgreSQL: the events every node fans out (kds.cluster.bus), numbered by a
    -- sequence; and the ranges of outbox and inbox ids a node hands out (see `last_outbox_id`).
    CREATE SEQUENCE events_seq;
    CREATE TABLE events (
        seq BIGINT PRIMARY KEY,
        site TEXT NOT NULL,
        node TEXT NOT NULL,
        type TEXT NOT NULL,
        body TEXT NOT NULL,
        endpoints TEXT,                    -- JSON array of endpoint names; NULL: everyone
        at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    -- One round trip per batch of events: under a lock, so seq order is commit order.
    CREATE FUNCTION kds_publish(
        p_site TEXT, p_origin TEXT, p_types TEXT[], p_bodies TEXT[], p_endpoints TEXT[]
    ) RETURNS BIGINT LANGUAGE plpgsql AS $$
    DECLARE newest BIGINT;
    BEGIN
        PERFORM pg_advisory_xact_lock(7738229764702073602);
        INSERT INTO events (seq, site, node, type, body, endpoints)
        SELECT nextval('events_seq'), p_site, p_origin, u.t, u.b, u.e
        FROM unnest(p_types, p_bodies, p_endpoints) WITH ORDINALITY AS u(t, b, e, n)
        ORDER BY u.n;
        newest := currval('events_seq');
        PERFORM pg_notify('kds_events', newest::text);
        RETURN newest;
    END $$;
    CREATE SEQUENCE id_ranges;
    """,
    # 2: a cancel looks up the order's print entries (were VOIDs queued already?).
    """
    CREATE INDEX outbox_prints_by_order ON outbox (order_id) WHERE kind = 'print';
    """,
    # 3: a write-back the POS refused is kept as refused until staff retry it.
    """
    ALTER TABLE outbox ADD COLUMN refused_at TIMESTAMPTZ;
    """,
    # 4: allergens of an item; report facts written when an order is archived (kds.reports).
    """
    ALTER TABLE items ADD COLUMN allergens TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE report_tickets (
        site TEXT NOT NULL,
        order_id TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        arrived_at TIMESTAMPTZ NOT NULL,
        seconds DOUBLE PRECISION,
        items INTEGER NOT NULL,
        refusals INTEGER NOT NULL,
        recalls INTEGER NOT NULL,
        printer_failures INTEGER NOT NULL,
        PRIMARY KEY (order_id, endpoint)
    );
    CREATE INDEX report_tickets_by_arrival ON report_tickets (site, arrived_at);
    CREATE TABLE report_items (
        site TEXT NOT NULL,
        order_id TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        product TEXT NOT NULL,
        code TEXT,
        arrived_at TIMESTAMPTZ NOT NULL,
        seconds DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX report_items_by_arrival ON report_items (site, arrived_at);
    """,
    # 5: a report reads only the tickets' covering index, and product prep times summed per
    # UTC hour (one row per hour, station and product instead of one per item).
    """
    DROP INDEX report_tickets_by_arrival;
    CREATE INDEX report_tickets_by_arrival ON report_tickets
        (site, arrived_at, endpoint, seconds, items, refusals, recalls, printer_failures);
    CREATE TABLE report_products (
        site TEXT NOT NULL,
        hour TIMESTAMPTZ NOT NULL,         -- the UTC hour the items arrived in
        endpoint TEXT NOT NULL,
        product TEXT NOT NULL,
        code TEXT NOT NULL,                -- '' when the product has none
        items INTEGER NOT NULL,
        seconds DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (site, hour, endpoint, product, code)
    );
    INSERT INTO report_products
        SELECT site, date_trunc('hour', arrived_at, 'UTC'), endpoint, product,
            COALESCE(code, ''), COUNT(*), SUM(seconds)
        FROM report_items GROUP BY 1, 2, 3, 4, 5;
    DROP TABLE report_items;
    """,
    # 6: an order's creation is one audit row (item_id -1), an item endpoint names the status
    # it was created in (kds.store.rows.CREATION_PATHS); NULL: each step has a row.
    """
    ALTER TABLE item_endpoints ADD COLUMN first_status TEXT;
    """,
]

META_UPSERT = (
    "INSERT INTO meta (site, key, value) VALUES ($1, $2, $3)"
    " ON CONFLICT (site, key) DO UPDATE SET value = excluded.value"
)
ORDER_INSERT = (
    "INSERT INTO orders (id, source, external_id, number, body_hash, data, created_at, updated_at,"
    " site) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)
ORDER_UPSERT = (
    "INSERT INTO orders (id, source, external_id, number, body_hash, data, created_at, updated_at,"
    " site) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    " ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at"
)
ITEM_INSERT = (
    "INSERT INTO items (order_id, item_id, position, plu_name, plu_code, plu_stock_name, plu_group,"
    " amount, unit, comment, course_number, modifiers, allergens)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
)
ITEM_ENDPOINT_UPSERT = (
    "INSERT INTO item_endpoints (order_id, item_id, endpoint, position, status)"
    " VALUES ($1, $2, $3, $4, $5)"
    " ON CONFLICT (order_id, item_id, endpoint) DO UPDATE SET status = excluded.status"
)
ITEM_ENDPOINT_INSERT = (
    "INSERT INTO item_endpoints (order_id, item_id, endpoint, position, status, first_status)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
)
STATUS_CHANGE_INSERT = (
    "INSERT INTO status_changes (order_id, item_id, endpoint, status, date, actor, reason)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
ORDER_TOUCH = "UPDATE orders SET updated_at = $1 WHERE id = $2"
OUTBOX_INSERT = (
    "INSERT INTO outbox (id, kind, target, order_id, payload, created_at, site)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
INBOX_INSERT = (
    "INSERT INTO inbox (id, source, dedupe_key, payload, received_at, site)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
)


def _copy_target(sql: str) -> tuple[str, list[str]]:
    """(table, columns) of `INSERT INTO table (columns) VALUES (…)`."""
    table, columns = sql.split(" VALUES ", 1)[0].removeprefix("INSERT INTO ").split(" ", 1)
    return table, [column.strip() for column in columns.strip("()").split(",")]


#: The plain INSERTs a group sends as one binary COPY per table: (table, columns). A COPY of
#: all the group's rows costs client and server far less than an execution per row.
COPIED = {
    sql: _copy_target(sql)
    for sql in (
        ORDER_INSERT,
        ITEM_INSERT,
        ITEM_ENDPOINT_INSERT,
        STATUS_CHANGE_INSERT,
        OUTBOX_INSERT,
    )
}
ARCHIVE_UPSERT = (
    "INSERT INTO archived_orders (id, source, external_id, body_hash, data, archived_at, site)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET"
    " source = excluded.source, external_id = excluded.external_id,"
    " body_hash = excluded.body_hash, data = excluded.data, archived_at = excluded.archived_at"
)
#: Several nodes share the pickup-number cursor (kds.numbers.SharedNumbers): one atomic update.
NUMBERS_CLAIM = (
    "INSERT INTO meta (site, key, value) VALUES ($1, $2, $3::bigint::text)"
    " ON CONFLICT (site, key) DO UPDATE SET value = (meta.value::bigint + $3::bigint)::text"
    " RETURNING value"
)
#: The channel on which a commit names the orders it changed ("<site> <node> <order id>").
ORDERS_CHANNEL = "kds_orders"
NOTIFY_CHANGED = "SELECT pg_notify($1, $2)"
#: Order ids per notification (a payload must stay under 8000 bytes; an id is 32).
NOTIFY_IDS = 200
REPORT_TICKET_UPSERT = (
    "INSERT INTO report_tickets (order_id, endpoint, arrived_at, seconds, items, refusals,"
    " recalls, printer_failures, site) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    " ON CONFLICT (order_id, endpoint) DO UPDATE SET arrived_at = excluded.arrived_at,"
    " seconds = excluded.seconds, items = excluded.items, refusals = excluded.refusals,"
    " recalls = excluded.recalls, printer_failures = excluded.printer_failures"
)
REPORT_PRODUCT_ADD = (
    "INSERT INTO report_products (hour, endpoint, product, code, items, seconds, site)"
    " VALUES (date_trunc('hour', $1::timestamptz, 'UTC'), $2, $3, $4, $5, $6, $7)"
    " ON CONFLICT (site, hour, endpoint, product, code) DO UPDATE SET"
    " items = report_products.items + excluded.items,"
    " seconds = report_products.seconds + excluded.seconds"
)
#: The rows an order is built from (`rows.orders_from_rows`): its header, its status changes
#: after creation, its items joined with their item endpoints.
ORDER_COLUMNS = "id, body_hash, data, updated_at"
HISTORY_COLUMNS = "order_id, item_id, endpoint, status, date, reason"
AFTER_CREATION = f"item_id != {CREATION_ITEM}"
ITEM_JOIN = (
    f"SELECT i.order_id, json_build_array({ROW_PART_COLUMNS})::text AS parts"
    " FROM items i"
    " LEFT JOIN item_endpoints e ON e.order_id = i.order_id AND e.item_id = i.item_id"
)
#: A chunk of orders at start (read in one snapshot, `_read_chunk`).
CHUNK_ORDERS = (
    f"SELECT {ORDER_COLUMNS} FROM orders WHERE site = $1 AND id > $2 ORDER BY id LIMIT $3"
)
CHUNK_HISTORY = (
    f"SELECT {HISTORY_COLUMNS} FROM status_changes"
    f" WHERE order_id = ANY($1) AND {AFTER_CREATION} ORDER BY order_id, id"
)
CHUNK_ITEMS = f"{ITEM_JOIN} WHERE i.order_id = ANY($1) ORDER BY i.order_id, i.position, e.position"
#: Orders with their rows in one statement (one snapshot, one round trip): arrays of rows.
ORDERS_WITH_ROWS = (
    f"SELECT {ORDER_COLUMNS},"
    f" ARRAY(SELECT ({HISTORY_COLUMNS}) FROM status_changes"
    f" WHERE order_id = o.id AND {AFTER_CREATION} ORDER BY id),"
    f" ARRAY(SELECT (j.order_id, j.parts) FROM ({ITEM_JOIN} WHERE i.order_id = o.id"
    " ORDER BY i.position, e.position) j)"
    " FROM orders o WHERE o.site = $1 AND o.id = ANY($2)"
)
OUTBOX_COLUMNS = "id, kind, target, order_id, payload, created_at, attempts, last_error, refused_at"
#: `kind = 'print'` is spelled out: the partial index `outbox_prints_by_order` needs it.
PRINT_ENTRIES_OF_ORDER = (
    f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE order_id = $1 AND kind = 'print' ORDER BY id"
)
PENDING_OUTBOX = (
    f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE site = $1 AND done_at IS NULL ORDER BY id"
)

#: One transaction's statements: (sql, parameter rows) in order.
Statements = list[tuple[str, list[Sequence[Any]]]]


@dataclass
class _Pending:
    statements: Statements
    done: asyncio.Future[None]
    changed: Collection[str] = ()  # ids of the orders the write changes (other nodes re-read)


def require_asyncpg() -> Any:
    """asyncpg, or a clear error naming the extra that brings it."""
    if asyncpg is None:
        raise Unavailable("the PostgreSQL store needs asyncpg: pip install 'kds[postgresql]'")
    return asyncpg


class PostgresStore(GroupCommit[_Pending]):
    """PostgreSQL through asyncpg: migrations, a group-committing writer, a read pool."""

    name = "store"

    def __init__(
        self,
        url: str,
        *,
        site: str | None = None,
        max_group: int = 512,
        pool_size: int = 4,
        supervisor: TaskSupervisor | None = None,
    ) -> None:
        #: Runs the writer and the probe (a store used alone, e.g. by the CLI, has its own).
        self._tasks = supervisor or TaskSupervisor()
        self.url = url
        #: Rows of other sites sharing the database are neither read nor touched.
        self.site = site or ""
        self.max_group = max_group
        self.pool_size = pool_size
        self._writer: Any = None  # asyncpg.Connection, used only by the writer task
        self._pool: Any = None  # asyncpg.Pool for reads
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._healthy = True
        self._last_error: str | None = None
        self._probe: asyncio.Task[None] | None = None
        self.probe_interval = 1.0
        self.commits = 0
        self.writes = 0
        #: Set when several nodes share the database: commits then notify the others.
        self.origin: str | None = None

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Connect, bring the schema up to date, start the writer."""
        pg = require_asyncpg()
        try:
            self._writer = await pg.connect(self.url)
            await migrate(self._writer)
            # The pool reads, and claims pickup numbers (`claim_numbers`) without waiting for
            # WAL flush: an order that uses a claimed number commits durably on the writer,
            # which flushes the claim too; an unused claim lost in a crash is only a skip.
            self._pool = await pg.create_pool(
                self.url,
                min_size=1,
                max_size=self.pool_size,
                server_settings={"synchronous_commit": "off"},
                reset=_keep_session,
            )
        except (OSError, pg.PostgresError) as err:
            await self._close()
            raise Unavailable(f"cannot use the PostgreSQL database: {err}") from err
        self._task = self._tasks.spawn("store:writer", self._write_loop())

    async def stop(self) -> None:
        """Commit what is queued, then close."""
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._close()

    async def _close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        if self._writer is not None and not self._writer.is_closed():
            await self._writer.close()
        self._pool = self._writer = None

    def health(self) -> dict[str, Any]:
        """Whether the last commit succeeded."""
        return {"ok": self._healthy, "lastError": self._last_error, "commits": self.commits}

    # ----------------------------------------------------------------- group commit

    async def execute(self, statements: Statements, changed: Collection[str] = ()) -> None:
        """Commit `statements` in one transaction; return only once durable.

        `changed`: the orders they change, named to the other nodes on COMMIT."""
        if not statements:
            return
        if self._task is None or self._task.done():
            raise Unavailable("the store is not running")
        done = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(statements, done, changed))
        await done

    async def barrier(self) -> None:
        """Wait until every write queued so far has committed (or failed)."""
        await self._queue.join()

    async def _commit_pending(self, group: list[_Pending]) -> None:
        await self._transaction(group)

    async def _transaction(self, group: list[_Pending]) -> None:
        """One transaction: every statement of the group by SQL text, then COMMIT — or nothing."""
        grouped: dict[str, list[Sequence[Any]]] = {}
        for pending in group:
            for sql, rows in pending.statements:
                grouped.setdefault(sql, []).extend(rows)
        if self.origin is not None:
            changed = sorted({i for pending in group for i in pending.changed})
            if changed:
                grouped[NOTIFY_CHANGED] = self._changed_notifications(changed)
        if self._writer is None or self._writer.is_closed():
            # The server restarted or the connection broke: a new one for this group.
            self._writer = await asyncpg.connect(self.url)
        async with self._writer.transaction():
            for sql, rows in grouped.items():
                target = COPIED.get(sql)
                if target is None:
                    await self._writer.executemany(sql, rows)
                else:
                    table, columns = target
                    await self._writer.copy_records_to_table(table, records=rows, columns=columns)

    def _fail(self, pending: _Pending, err: Exception) -> None:
        if isinstance(err, asyncpg.IntegrityConstraintViolationError):
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
        """After a failed commit, try a tiny write every second so /readyz recovers by itself."""
        while not self._healthy:
            await asyncio.sleep(self.probe_interval)
            try:
                await self.set_meta("store.probe", datetime.now(UTC).isoformat())
            except Unavailable:
                continue

    async def _one(self, sql: str, row: Sequence[Any]) -> None:
        await self.execute([(sql, [row])])

    # ----------------------------------------------------------------- reads

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[Any]:
        """A pooled connection to read on; a database out of reach is Unavailable."""
        if self._pool is None:
            raise Unavailable("the store is not running")
        try:
            async with self._pool.acquire() as conn:
                yield conn
        except (OSError, asyncpg.PostgresConnectionError) as err:
            raise Unavailable(f"the database cannot be read: {err}") from err

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        """Rows of a read query (asyncpg Records: by index or by column name)."""
        async with self._reading() as conn:
            return list(await conn.fetch(sql, *args))

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        """The first row of a read query, or None."""
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def meta(self, key: str) -> str | None:
        """A value of the meta table."""
        row = await self.fetchrow(
            "SELECT value FROM meta WHERE site = $1 AND key = $2", self.site, key
        )
        return None if row is None else str(row["value"])

    async def set_meta(self, key: str, value: str) -> None:
        """Durably set a value of the meta table."""
        await self._one(META_UPSERT, (self.site, key, value))

    # ----------------------------------------------------------------- OrderStore: writes

    async def commit(self, batch: Batch) -> None:
        """Write an order change (rows, audit, outbox rows, meta) in one transaction."""
        statements: Statements = []

        def add(sql: str, rows: list[Sequence[Any]]) -> None:
            if rows:
                statements.append((sql, rows))

        for order, body_hash in batch.new_orders:
            _add_new_order(add, order, body_hash, self.site)
        add(ORDER_UPSERT, [_order_row(o, h, self.site) for o, h in batch.headers])
        if added := batch.new_endpoints:  # a move: the item at one more station
            add(
                ITEM_ENDPOINT_UPSERT,
                [
                    (a.order_id, a.item_id, a.endpoint.name, a.position, a.endpoint.status.value)
                    for a in added
                ],
            )
            add(
                STATUS_CHANGE_INSERT,
                [
                    (
                        a.order_id,
                        a.item_id,
                        a.endpoint.name,
                        c.status.value,
                        c.date,
                        a.actor,
                        c.reason,
                    )
                    for a in added
                    for c in a.endpoint.status_changes
                ],
            )
        if statuses := batch.statuses:
            add(
                ITEM_ENDPOINT_UPSERT,
                [(u.order_id, u.item_id, u.endpoint, 0, u.status.value) for u in statuses],
            )
            add(
                STATUS_CHANGE_INSERT,
                [
                    (u.order_id, u.item_id, u.endpoint, u.status.value, u.date, u.actor, u.reason)
                    for u in statuses
                ],
            )
            touched = {u.order_id: u.date for u in statuses}
            add(ORDER_TOUCH, [(d, o) for o, d in touched.items()])
        add(OUTBOX_INSERT, [(*_outbox_row(e), self.site) for e in batch.outbox])
        add(META_UPSERT, [(self.site, k, v) for k, v in batch.meta.items()])
        changed = {o.id for o, _ in batch.new_orders} | {o.id for o, _ in batch.headers}
        changed |= {u.order_id for u in batch.statuses} | {a.order_id for a in batch.new_endpoints}
        await self.execute(statements, changed)

    def _changed_notifications(self, order_ids: list[str]) -> list[Sequence[Any]]:
        """`pg_notify` rows telling the other nodes which orders a transaction changed: one
        per transaction (per NOTIFY_IDS ids), sent on COMMIT only, so a node that dies right
        after committing still lets the others know."""
        head = f"{self.site} {self.origin}"
        return [
            (ORDERS_CHANNEL, " ".join([head, *order_ids[n : n + NOTIFY_IDS]]))
            for n in range(0, len(order_ids), NOTIFY_IDS)
        ]

    async def add_inbox(self, entry: InboxEntry) -> None:
        """Keep a raw event; ConstraintViolation when (source, dedupe_key) is stored already."""
        row = (
            entry.id,
            entry.source,
            entry.dedupe_key,
            entry.payload,
            entry.received_at,
            self.site,
        )
        await self._one(INBOX_INSERT, row)

    async def inbox_done(self, inbox_id: int, at: datetime, error: str | None) -> None:
        """Mark a raw event processed at `at` (with the reason it could not be used)."""
        await self._one(
            "UPDATE inbox SET processed_at = $1, error = $2 WHERE id = $3", (at, error, inbox_id)
        )

    async def outbox_attempted(self, entry_id: int, error: str | None) -> None:
        """Count one more attempt of an outbox entry, recording `error` as its last."""
        await self._one(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1 WHERE id = $2",
            (error, entry_id),
        )

    async def outbox_refused(self, entry_id: int, at: datetime, error: str) -> None:
        """Mark an outbox entry refused by its receiver (kept pending)."""
        await self._one(
            "UPDATE outbox SET refused_at = $1, last_error = $2 WHERE id = $3",
            (at, error, entry_id),
        )

    async def outbox_unrefused(self, entry_ids: list[int]) -> None:
        """Make refused outbox entries ordinary pending ones again."""
        rows: list[Sequence[Any]] = [(i,) for i in entry_ids]
        await self.execute(
            [("UPDATE outbox SET refused_at = NULL WHERE id = $1", rows)] if rows else []
        )

    async def outbox_done(self, entry_id: int, at: datetime, error: str | None) -> None:
        """Mark an outbox entry done (`error` when it was given up; else the last error stays)."""
        await self._one(
            "UPDATE outbox SET done_at = $1, last_error = COALESCE($2, last_error) WHERE id = $3",
            (at, error, entry_id),
        )

    async def archive(
        self,
        order: Order,
        body_hash: str,
        at: datetime,
        facts: tuple[list[TicketFact], list[ProductTotal]],
    ) -> None:
        """Move an order from the live tables to the archive (its wire JSON and report facts kept)."""
        row = (
            order.id,
            order.source,
            order.external_id,
            body_hash,
            order.wire_json(),
            at,
            self.site,
        )
        statements: Statements = [(ARCHIVE_UPSERT, [row])]
        _add_report_facts(statements, order, *facts, site=self.site)
        for table in ("status_changes", "item_endpoints", "items"):
            statements.append((f"DELETE FROM {table} WHERE order_id = $1", [(order.id,)]))
        statements.append(("DELETE FROM orders WHERE id = $1", [(order.id,)]))
        await self.execute(statements, {order.id})

    async def prune(self, before: datetime) -> None:
        """Delete inbox entries processed and outbox entries done before `before`."""
        await self.execute(
            [
                ("DELETE FROM inbox WHERE site = $1 AND processed_at < $2", [(self.site, before)]),
                ("DELETE FROM outbox WHERE site = $1 AND done_at < $2", [(self.site, before)]),
            ]
        )

    # ----------------------------------------------------------------- OrderStore: reads

    async def load_orders(self) -> list[tuple[Order, str]]:
        """Every live order with its body hash, oldest (created_at, id) first, read a chunk
        at a time in the shape SQLite's loader reads (`_read_chunk`)."""
        orders: list[tuple[Order, str]] = []
        dates: dict[str, datetime] = {}  # one datetime per distinct stamp of the headers
        after = ""
        while True:
            rows, history, items = await self._read_chunk(after)
            if not rows:
                break
            orders += orders_from_rows(rows, history, items, dates)
            after = rows[-1][0]
        orders.sort(key=lambda pair: (pair[0].created_at, pair[0].id))
        return orders

    async def _read_chunk(self, after: str) -> tuple[list[Any], list[Any], list[Any]]:
        """The rows of up to LOAD_CHUNK orders after id `after` (`rows.orders_from_rows`),
        read in one snapshot."""
        async with (
            self._reading() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            rows = await conn.fetch(CHUNK_ORDERS, self.site, after, LOAD_CHUNK)
            if not rows:
                return rows, [], []
            ids = [row[0] for row in rows]
            return (
                rows,
                await conn.fetch(CHUNK_HISTORY, ids),
                await conn.fetch(CHUNK_ITEMS, ids),
            )

    async def load_orders_by_id(self, order_ids: Collection[str]) -> list[tuple[Order, str]]:
        """These live orders with their body hashes (one not live — archived, unknown — is
        left out), read in one statement (one snapshot, one round trip): another node may be
        committing a change of them, and a node reads what others changed on every event."""
        rows = await self.fetch(ORDERS_WITH_ROWS, self.site, list(order_ids))
        return orders_from_rows(
            [row[:4] for row in rows],
            [change for row in rows for change in row[4]],
            [item for row in rows for item in row[5]],
        )

    async def report_facts(
        self, start: datetime, end: datetime, endpoint: str | None
    ) -> ReportData:
        """This site's archived orders that arrived in [start, end) (at `endpoint`), summed by SQL."""
        where = "site = $1 AND arrived_at >= $2 AND arrived_at < $3" + (
            " AND endpoint = $4" if endpoint else ""
        )
        args = (self.site, start, end, *((endpoint,) if endpoint else ()))
        data = ReportData()
        for name, hour, *counts in await self.fetch(
            f"SELECT endpoint, {_UTC_HOUR}, COUNT(*), SUM(items), SUM(refusals), SUM(recalls),"
            f" SUM(printer_failures) FROM report_tickets WHERE {where} GROUP BY 1, 2",
            *args,
        ):
            data.archived.append(StationHour(name, _zoned_hour(hour), *counts))
        data.archived_times = [
            (name, _zoned_hour(hour), seconds)
            for name, hour, seconds in await self.fetch(
                f"SELECT endpoint, {_UTC_HOUR}, seconds FROM report_tickets"
                f" WHERE {where} AND seconds IS NOT NULL",
                *args,
            )
        ]
        by_hour = (
            "site = $1 AND hour >= date_trunc('hour', $2::timestamptz, 'UTC')"
            " AND hour < date_trunc('hour', $3::timestamptz, 'UTC')"
        ) + (" AND endpoint = $4" if endpoint else "")
        data.products = [
            ProductTotal(name, product, code or None, count, seconds)
            for name, product, code, count, seconds in await self.fetch(
                "SELECT endpoint, product, code, SUM(items), SUM(seconds) FROM report_products"
                f" WHERE {by_hour} GROUP BY endpoint, product, code",
                *args,
            )
        ]
        return data

    async def archived_keys(self) -> list[tuple[str, str]]:
        """(source, external_id) of every archived order."""
        rows = await self.fetch(
            "SELECT source, external_id FROM archived_orders WHERE site = $1", self.site
        )
        return [(source, external_id) for source, external_id in rows]

    async def archived_order(self, order_id: str) -> dict[str, Any] | None:
        """The wire JSON of an archived order, None when there is none."""
        row = await self.fetchrow(
            "SELECT data FROM archived_orders WHERE site = $1 AND id = $2", self.site, order_id
        )
        return None if row is None else dict(json.loads(row["data"]))

    async def find_archived(self, source: str, external_id: str) -> tuple[str, str] | None:
        """(body hash, wire JSON text) of the archived order a POS knows as `external_id`."""
        row = await self.fetchrow(
            "SELECT body_hash, data FROM archived_orders"
            " WHERE site = $1 AND source = $2 AND external_id = $3",
            self.site,
            source,
            external_id,
        )
        return None if row is None else (row["body_hash"], row["data"])

    async def order_id_of(self, source: str, external_id: str) -> str | None:
        """The id of the live order a POS knows as `external_id` (another node may have stored it)."""
        row = await self.fetchrow(
            "SELECT id FROM orders WHERE site = $1 AND source = $2 AND external_id = $3",
            self.site,
            source,
            external_id,
        )
        return None if row is None else str(row["id"])

    async def print_entries(self, order_id: str) -> list[OutboxEntry]:
        """Every print entry of an order, done or pending, in id order."""
        return [_outbox_entry(r) for r in await self.fetch(PRINT_ENTRIES_OF_ORDER, order_id)]

    async def pending_outbox(self) -> list[OutboxEntry]:
        """Outbox entries not done (refused ones included), in id order."""
        return [_outbox_entry(r) for r in await self.fetch(PENDING_OUTBOX, self.site)]

    async def last_outbox_id(self) -> int:
        """Where this node's outbox ids start (exclusive): a range no other node uses.

        Several nodes write one outbox, and each hands out ids itself (a batch needs no
        round trip), so each start of a node reserves a range of ID_RANGE ids from a
        sequence, past every earlier range: unique across nodes, increasing per node.
        """
        return await self._id_range()

    async def inbox_has(self, source: str, dedupe_key: str) -> bool:
        """Whether a raw event with this key was kept."""
        row = await self.fetchrow(
            "SELECT 1 FROM inbox WHERE site = $1 AND source = $2 AND dedupe_key = $3",
            self.site,
            source,
            dedupe_key,
        )
        return row is not None

    async def pending_inbox(self, source: str) -> list[InboxEntry]:
        """Raw events of `source` not yet processed, oldest first."""
        rows = await self.fetch(
            "SELECT id, source, dedupe_key, payload, received_at FROM inbox"
            " WHERE site = $1 AND source = $2 AND processed_at IS NULL ORDER BY id",
            self.site,
            source,
        )
        return [
            InboxEntry(r["id"], r["source"], r["dedupe_key"], bytes(r["payload"]), r["received_at"])
            for r in rows
        ]

    async def last_inbox_id(self) -> int:
        """Where this node's inbox ids start (exclusive): see `last_outbox_id`."""
        return await self._id_range()

    async def claim_numbers(self, count: int) -> int:
        """Move the site's shared pickup-number cursor on by `count`; its new value."""
        row = await self.fetchrow(NUMBERS_CLAIM, self.site, NUMBER_KEY, count)
        return int(row["value"])

    async def _id_range(self) -> int:
        row = await self.fetchrow("SELECT nextval('id_ranges') * $1 AS start", ID_RANGE)
        return int(row["start"])


async def _keep_session(conn: Any) -> None:
    """A pooled connection goes back as it is: its single statements leave no session state
    (no LISTEN, lock or SET), so asyncpg's reset query would be one more round trip per read.
    An open transaction is still rolled back (asyncpg does that before calling this)."""


async def migrate(conn: Any) -> int:
    """Apply the migrations not yet run (under an advisory lock); the schema version."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        version = await conn.fetchval("SELECT max(version) FROM schema_version") or 0
        for number, script in pending_migrations(MIGRATIONS, version, "postgresql"):
            await conn.execute(script)
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", number)
    return len(MIGRATIONS)


def _order_row(
    order: Order, body_hash: str, site: str, header: str | None = None
) -> tuple[Any, ...]:
    return (
        order.id,
        order.source,
        order.external_id,
        order.number,
        body_hash,
        header_json(order) if header is None else header,
        order.created_at,
        order.updated_at,
        site,
    )


def _add_new_order(add: Any, order: Order, body_hash: str, site: str) -> None:
    """A new order's header, items, item endpoints and its creation's audit row."""
    endpoints, audit = creation_rows(order, order.created_at)
    add(ORDER_INSERT, [_order_row(order, body_hash, site, new_order_header(order)[0])])
    add(ITEM_INSERT, [_item_row(order.id, pos, item) for pos, item in enumerate(order.items)])
    add(ITEM_ENDPOINT_INSERT, endpoints)
    add(STATUS_CHANGE_INSERT, audit)


#: The UTC hour a report row arrived in (`kds.reports.hour_of` gives it in the server's zone).
_UTC_HOUR = "date_trunc('hour', arrived_at, 'UTC')"


def _zoned_hour(utc_hour: datetime) -> str:
    """A UTC hour → `2026-12-01T13:00:00+01:00`, as `reports.hour_of` writes it."""
    return utc_hour.astimezone().isoformat()


def _add_report_facts(
    statements: Statements,
    order: Order,
    tickets: list[TicketFact],
    products: list[ProductTotal],
    *,
    site: str,
) -> None:
    """The report rows of an order being archived (kds.reports reads them)."""
    if tickets:
        rows: list[Sequence[Any]] = [
            (
                t.order_id,
                t.endpoint,
                t.arrived_at,
                t.seconds,
                t.items,
                t.refusals,
                t.recalls,
                t.printer_failures,
                site,
            )
            for t in tickets
        ]
        statements.append((REPORT_TICKET_UPSERT, rows))
    if products:
        rows = [
            (
                p.arrived_at or order.created_at,
                p.endpoint,
                p.product,
                p.code or "",
                p.items,
                p.seconds,
                site,
            )
            for p in products
        ]
        statements.append((REPORT_PRODUCT_ADD, rows))


def _item_row(order_id: str, position: int, item: OrderItem) -> tuple[Any, ...]:
    """`rows.item_row` with the product code as JSON (it keeps being a number or text)."""
    row = item_row(order_id, position, item)
    code = row[4]
    return (*row[:4], None if code is None else json.dumps(code), *row[5:])


def _outbox_row(entry: OutboxEntry) -> tuple[Any, ...]:
    return (
        entry.id,
        entry.kind,
        entry.target,
        entry.order_id,
        json.dumps(entry.payload, ensure_ascii=False),
        entry.created_at,
    )


def _outbox_entry(r: Any) -> OutboxEntry:
    return OutboxEntry(
        r["id"],
        r["kind"],
        r["target"],
        r["order_id"],
        json.loads(r["payload"]),
        r["created_at"],
        r["attempts"],
        (r["last_error"] or "refused") if r["refused_at"] else None,
    )
