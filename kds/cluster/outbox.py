"""The outbox of a node sharing its database: entries of every node, handed out by the holder.

Any node may stage an entry (a ticket for the grill, a write-back to PORTOS);
only the node holding the lock of its consumer (see `locks`) hands it out. So
a node hands out nothing it has no consumer for (the entry waits in the
database), and the consumer's node reads what other nodes staged from the
database: when it subscribes (taking over), when another node's order event
arrives, and every `poll_interval` as a safety net. Each entry is handed out
once per subscription; a takeover starts from the database again, where
every attempt was counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from ..clock import wait_event
from ..contracts import OutboxEntry
from ..model import utcnow
from ..outbox import Handler, Outbox
from ..store import OrderStore
from ..tasks import TaskSupervisor

log = structlog.get_logger(__name__)


class ClusterOutbox(Outbox):
    """Hands out pending entries of every node to this node's consumers."""

    def __init__(
        self, store: OrderStore, *, supervisor: TaskSupervisor, poll_interval: float = 1.0
    ) -> None:
        super().__init__(store)
        self._supervisor = supervisor
        self.poll_interval = poll_interval
        self._handed: dict[int, tuple[str, str]] = {}  # entry id → (kind, target)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_error: str | None = None
        #: Reads an order into the view (set by the cluster): an entry staged by a node that
        #: died before its order event went out still finds its order here.
        self.refresh: Callable[[set[str]], Awaitable[Any]] | None = None

    async def start(self) -> None:
        """Take this node's id range; pending entries are read as consumers subscribe."""
        self._next_id = await self._store.last_outbox_id() + 1
        self._task = self._supervisor.spawn("cluster:outbox", self._sync_loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def health(self) -> dict[str, Any]:
        return {
            "ok": self._last_error is None,
            "pending": len(self._handed),
            "lastError": self._last_error,
        }

    def subscribe(self, kind: str, handler: Handler, target: str | None = None) -> None:
        """As `Outbox.subscribe`; what is pending in the database follows at once."""
        super().subscribe(kind, handler, target)
        self.sync_soon()

    def unsubscribe(self, kind: str, target: str | None = None) -> None:
        """As `Outbox.unsubscribe`; a later subscriber gets its entries afresh from the database."""
        super().unsubscribe(kind, target)
        for entry_id, (k, t) in list(self._handed.items()):
            if k == kind and (target is None or t == target):
                del self._handed[entry_id]

    def sync_soon(self) -> None:
        """Read pending entries from the database soon (another node may have staged some)."""
        self._wake.set()

    def _handler_of(self, entry: OutboxEntry) -> Handler | None:
        return self._handlers.get((entry.kind, entry.target)) or self._handlers.get(
            (entry.kind, None)
        )

    def _dispatch(self, entry: OutboxEntry) -> None:
        handler = self._handler_of(entry)
        if handler is None or entry.id in self._handed:
            return  # not ours to hand out (it waits in the database), or handed out already
        self._handed[entry.id] = (entry.kind, entry.target)
        try:
            handler(entry)
        except Exception:
            log.exception("outbox.handler_failed", kind=entry.kind, entry=entry.id)

    async def complete(self, entry_id: int, error: str | None = None) -> None:
        """Durably mark the entry done."""
        await self._store.outbox_done(entry_id, utcnow(), error)
        self._handed.pop(entry_id, None)

    async def sync(self) -> None:
        """Hand out pending entries of the database that this node's consumers have not had."""
        if not self._handlers:
            return
        new = [
            entry
            for entry in await self._store.pending_outbox()
            if entry.id not in self._handed and self._handler_of(entry)
        ]
        orders = {e.order_id for e in new if e.order_id is not None}
        if orders and self.refresh is not None:
            await self.refresh(orders)
        for entry in new:
            self._dispatch(entry)

    async def _sync_loop(self) -> None:
        while True:
            await wait_event(self._supervisor.clock, self._wake, self.poll_interval)
            self._wake.clear()
            try:
                await self.sync()
                self._last_error = None
            except Exception as err:
                self._last_error = str(err)
                log.warning("outbox.sync_failed", error=str(err))
