"""The SQLite schema as numbered migrations; `PRAGMA user_version` records how many ran.

PostgreSQL's dialect of the same numbers is in `postgres.py`; both backends run
theirs through `pending`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import structlog

log = structlog.get_logger(__name__)


def pending(migrations: Sequence[str], version: int, backend: str) -> Iterator[tuple[int, str]]:
    """(number, script) of each migration after `version`, logged as it is handed out to run."""
    for number, script in enumerate(migrations[version:], start=version + 1):
        log.info("store.migrate", version=number, backend=backend)
        yield number, script


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
    # 5: a report reads only the tickets' covering index, and product prep times summed per
    # UTC hour (one row per hour, station and product instead of one per item).
    """
    DROP INDEX report_tickets_by_arrival;
    CREATE INDEX report_tickets_by_arrival ON report_tickets
        (arrived_at, endpoint, seconds, items, refusals, recalls, printer_failures);
    CREATE TABLE report_products (
        hour TEXT NOT NULL,                -- "2026-12-01T12": the UTC hour the items arrived in
        endpoint TEXT NOT NULL,
        product TEXT NOT NULL,
        code TEXT NOT NULL,                -- '' when the product has none
        items INTEGER NOT NULL,
        seconds REAL NOT NULL,
        PRIMARY KEY (hour, endpoint, product, code)
    ) WITHOUT ROWID;
    INSERT INTO report_products
        SELECT substr(arrived_at, 1, 13), endpoint, product, COALESCE(code, ''), COUNT(*), SUM(seconds)
        FROM report_items GROUP BY 1, 2, 3, 4;
    DROP TABLE report_items;
    """,
    # 6: an order's creation is one audit row (item_id -1, kds.store.rows.CREATION_ITEM), not
    # one per step of every item endpoint; an item endpoint names the status it was created in,
    # which gives those steps (rows.CREATION_PATHS). NULL: each step has a row (older orders).
    """
    ALTER TABLE item_endpoints ADD COLUMN first_status TEXT;
    """,
]
