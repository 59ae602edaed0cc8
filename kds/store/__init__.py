"""The store seam: what the service core needs from a database, and nothing more.

`OrderStore` is the protocol; `kds.store.sqlite.SqliteStore` implements it on
SQLite (the default), a PostgreSQL implementation can fill it too. The
protocol speaks kds's own types (orders, outbox and inbox entries, datetimes),
never SQL, placeholders or cursors: a transaction is a `Batch` handed to
`commit()`, which returns only once everything in it is durable — or raises
and nothing of it was written.

Ids of inbox and outbox rows are handed out by their owners (`Inbox`,
`Outbox`) from `last_inbox_id()` / `last_outbox_id()`, so a batch needs no
round trip to learn them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ..contracts import OutboxEntry
from ..errors import ConstraintViolation
from ..model import ItemEndpoint, Order
from ..reports import ProductTotal, ReportData, TicketFact
from ..states import OrderStatus
from ..tasks import TaskSupervisor

if TYPE_CHECKING:
    from .sqlite import ChunkReader

__all__ = [
    "Batch",
    "ConstraintViolation",
    "InboxEntry",
    "NewEndpoint",
    "OrderStore",
    "StatusUpdate",
    "open_store",
]


@dataclass
class InboxEntry:
    """A raw source event kept for (re)processing."""

    id: int
    source: str
    dedupe_key: str
    payload: bytes
    received_at: datetime


class StatusUpdate(NamedTuple):
    """One item endpoint's new status and its audit row (the order's `updated_at` becomes `date`)."""

    order_id: str
    item_id: int
    endpoint: str
    status: OrderStatus
    date: datetime
    actor: str
    reason: str | None


class NewEndpoint(NamedTuple):
    """An item routed to one more endpoint (a move): its row and first status changes."""

    order_id: str
    item_id: int
    position: int
    endpoint: ItemEndpoint
    actor: str


@dataclass
class Batch:
    """What one command writes: committed together, or not at all."""

    #: New orders (header, items, item endpoints and their first status changes) with body hash.
    new_orders: list[tuple[Order, str]] = field(default_factory=list)
    #: Orders whose header (ticket, version, updated_at) changed, with their body hash.
    headers: list[tuple[Order, str]] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    new_endpoints: list[NewEndpoint] = field(default_factory=list)
    outbox: list[OutboxEntry] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(
            self.new_orders
            or self.headers
            or self.statuses
            or self.new_endpoints
            or self.outbox
            or self.meta
        )


class OrderStore(Protocol):
    """The queries and writes of the service core, its inbox, outbox, bus and archive."""

    name: str

    # lifecycle
    async def start(self) -> None:
        """Open the database and bring its schema up to date."""

    async def stop(self) -> None:
        """Commit what is queued, then close."""

    def health(self) -> dict[str, Any]:
        """`ok` is whether the last commit succeeded (plus `lastError`, `commits`)."""

    # writes: each returns once durable; raises Unavailable, or ConstraintViolation for a conflict
    async def commit(self, batch: Batch) -> None:
        """Write an order change (rows, audit, outbox rows, meta) in one transaction."""

    async def barrier(self) -> None:
        """Wait until every write queued so far has committed (or failed)."""

    async def set_meta(self, key: str, value: str) -> None:
        """Durably set a value of the meta table."""

    async def add_inbox(self, entry: InboxEntry) -> None:
        """Keep a raw event; ConstraintViolation when (source, dedupe_key) is stored already."""

    async def inbox_done(self, inbox_id: int, at: datetime, error: str | None) -> None:
        """Mark a raw event processed at `at` (with the reason it could not be used)."""

    async def outbox_attempted(self, entry_id: int, error: str | None) -> None:
        """Count one more attempt of an outbox entry, recording `error` as its last."""

    async def outbox_refused(self, entry_id: int, at: datetime, error: str) -> None:
        """Mark an outbox entry refused by its receiver (kept pending)."""

    async def outbox_unrefused(self, entry_ids: list[int]) -> None:
        """Make refused outbox entries ordinary pending ones again."""

    async def outbox_done(self, entry_id: int, at: datetime, error: str | None) -> None:
        """Mark an outbox entry done (`error` when it was given up; else the last error stays)."""

    async def archive(
        self,
        order: Order,
        body_hash: str,
        at: datetime,
        facts: tuple[list[TicketFact], list[ProductTotal]],
    ) -> None:
        """Move an order from the live tables to the archive, with its report facts."""

    async def prune(self, before: datetime) -> None:
        """Delete inbox entries processed and outbox entries done before `before`."""

    # reads
    async def meta(self, key: str) -> str | None:
        """A value of the meta table, None when unset."""

    async def load_orders(self) -> list[tuple[Order, str]]:
        """Every live order with its body hash, oldest (created_at, id) first."""

    async def load_orders_by_id(self, order_ids: Collection[str]) -> list[tuple[Order, str]]:
        """These live orders with their body hashes (archived or unknown ones left out): for a
        node re-reading what another node on the same database changed."""

    async def report_facts(
        self, start: datetime, end: datetime, endpoint: str | None
    ) -> ReportData:
        """Archived orders that arrived in [start, end): tickets summed per station and UTC hour
        (`archived`), each bumped ticket's (endpoint, hour, seconds) and product times summed
        per whole UTC hour from `start` on; hours as `kds.reports.hour_of` writes them."""

    async def archived_keys(self) -> list[tuple[str, str]]:
        """(source, external_id) of every archived order."""

    async def archived_order(self, order_id: str) -> dict[str, Any] | None:
        """The wire JSON of an archived order, None when there is none."""

    async def find_archived(self, source: str, external_id: str) -> tuple[str, str] | None:
        """(body hash, wire JSON text) of the archived order a POS knows as `external_id`."""

    async def order_id_of(self, source: str, external_id: str) -> str | None:
        """The id of the live order a POS knows as `external_id` (another node may have
        stored it: the view of this one may not have it yet)."""

    async def print_entries(self, order_id: str) -> list[OutboxEntry]:
        """Every print entry of an order, done or pending, in id order."""

    async def pending_outbox(self) -> list[OutboxEntry]:
        """Outbox entries not done (refused ones included), in id order."""

    async def last_outbox_id(self) -> int:
        """The highest outbox id ever written (0 for none)."""

    async def inbox_has(self, source: str, dedupe_key: str) -> bool:
        """Whether a raw event with this key was kept."""

    async def pending_inbox(self, source: str) -> list[InboxEntry]:
        """Raw events of `source` not yet processed, oldest first."""

    async def last_inbox_id(self) -> int:
        """The highest inbox id ever written (0 for none)."""


def open_store(
    path: str | Path,
    *,
    synchronous: str = "FULL",
    supervisor: TaskSupervisor | None = None,
    url: str | None = None,
    site: str | None = None,
    preload: ChunkReader | None = None,
) -> OrderStore:
    """The store for a database setting: PostgreSQL when a `url` is given (the rows of `site`
    only), else SQLite at `path`; its tasks run under `supervisor`. `preload`: the SQLite
    database's orders already being read (`preload_orders`)."""
    if url is not None:
        from .postgres import PostgresStore

        return PostgresStore(url, site=site, supervisor=supervisor)
    from .sqlite import SqliteStore

    return SqliteStore(path, synchronous=synchronous, supervisor=supervisor, preload=preload)


def preload_orders(path: str | Path, url: str | None = None) -> ChunkReader | None:
    """Start reading the orders of the SQLite database at `path` on a thread of its own, for
    the store to load (`kds run`, before it imports the daemon); None where there is nothing
    to read ahead: PostgreSQL (`url`), a database not created yet."""
    if url is not None or not Path(path).is_file():
        return None
    from .sqlite import ChunkReader

    return ChunkReader(str(path)).start()
