"""Archiving: finished orders leave the live tables after a retention period.

An order whose every item endpoint is final, unchanged for `[database]
archive_after` seconds and not held by a source (a cheque still open at the
POS) moves to `archived_orders` (its wire JSON kept for the API and for
recognising a repeat); processed inbox and done outbox rows older than
`inbox_retention` are deleted. `Archiver` runs this every `archive_interval`
under the task supervisor, so the database does not grow without bound.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog

from .bus import EventBus
from .clock import Clock, SystemClock
from .config import DatabaseConfig
from .contracts import EventType
from .locks import KeyedLocks
from .model import Order, utcnow
from .numbers import PickupNumbers
from .reports import facts_of
from .store import OrderStore
from .tasks import TaskSupervisor
from .view import OrderView, all_final

log = structlog.get_logger(__name__)


class Archive:
    """Moves long-finished orders out of the live view and tables."""

    def __init__(
        self,
        config: DatabaseConfig,
        store: OrderStore,
        view: OrderView,
        locks: KeyedLocks,
        numbers: PickupNumbers,
        bus: EventBus,
    ) -> None:
        self._config = config
        self._store = store
        self._view = view
        self._locks = locks
        self._numbers = numbers
        self._bus = bus
        self._holds: list[Callable[[Order], bool]] = []

    def hold_while(self, holds: Callable[[Order], bool]) -> None:
        """Keep finished orders for which `holds(order)` is true in the live view."""
        self._holds.append(holds)

    async def archive_finished(self, now: datetime | None = None) -> int:
        """Move orders finished longer than `archive_after` out of the live tables."""
        now = now or utcnow()
        cutoff = now - timedelta(seconds=self._config.archive_after)
        # The date first: most live orders changed within `archive_after`, and comparing it is
        # cheaper than walking their item endpoints (50,000 open orders at start, then each run).
        done = [
            o
            for o in self._view.orders()
            if o.updated_at <= cutoff
            and all_final(o)
            and not any(holds(o) for holds in self._holds)
        ]
        for order in done:
            async with self._locks.hold(order.id):
                if self._view.get(order.id) is not order:
                    continue  # changed or gone while waiting for the lock
                facts = facts_of(order)  # report rows: a report over months reads these
                await self._store.archive(order, self._view.body_hash(order.id), now, facts)
                self._view.forget(order)
                self._numbers.forget(order.id, order.number)
            self._bus.publish(EventType.ORDER_REMOVED, {"orderId": order.id})
        await self._store.prune(now - timedelta(seconds=self._config.inbox_retention))
        return len(done)

    async def get(self, order_id: str) -> dict[str, Any] | None:
        """The wire JSON of an archived order."""
        return await self._store.archived_order(order_id)


class Archiver:
    """Runs `Archive.archive_finished` every `archive_interval`, as a supervised task."""

    name = "archiver"

    def __init__(
        self,
        archive: Archive,
        supervisor: TaskSupervisor,
        interval: float,
        *,
        clock: Clock | None = None,
    ) -> None:
        self._archive = archive
        self._supervisor = supervisor
        self._interval = interval
        self._clock: Clock = clock or SystemClock()
        self._last_error: str | None = None

    async def start(self) -> None:
        """Spawn the loop."""
        self._supervisor.spawn("archiver", self._run, restart=True)

    async def stop(self) -> None:
        """Cancel the loop."""
        await self._supervisor.cancel("archiver")

    def health(self) -> dict[str, Any]:
        """Whether the last run succeeded."""
        return {"ok": self._last_error is None, "lastError": self._last_error}

    async def _run(self) -> None:
        while True:
            try:
                archived = await self._archive.archive_finished()
                self._last_error = None
                if archived:
                    log.info("orders.archived", count=archived)
            except Exception as err:
                self._last_error = str(err)
                log.warning("orders.archive_failed", error=str(err))
            await self._clock.sleep(self._interval)
