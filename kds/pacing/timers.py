"""KitchenTimers: the one component that acts on pacing deadlines.

It keeps, per open order, the next time something is due (`Pacing.due`): a
held item's release time, a course's automatic fire, an auto-bump. One task
sleeps on the injected clock until the earliest deadline or until an order
changes, then asks the service to release, fire or bump — the service alone
changes order state, audits it and tells the screens, printers and POS.
Deadlines are recomputed from stored state, so they survive a restart.
"""

from __future__ import annotations

import asyncio
import heapq
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from ..clock import Clock, SystemClock, wait_event
from ..config import Settings
from ..durations import format_duration
from ..model import Order, OrderStatus
from .plan import Pacing

if TYPE_CHECKING:
    from ..service import KitchenService
    from ..tasks import TaskSupervisor

log = structlog.get_logger(__name__)

#: The actor the audit log records for what the timers do.
ACTOR = "timer"
AUTO_BUMP_ACTOR = "auto-bump"
#: The supervised task that sleeps until the next deadline.
TASK = "pacing:timers"
#: After a failed action the order is looked at again this much later.
RETRY_AFTER = 5.0


class KitchenTimers:
    """Releases held items, fires courses and auto-bumps tickets when their time comes."""

    name = "timers"

    def __init__(
        self,
        service: KitchenService,
        settings: Settings,
        supervisor: TaskSupervisor,
        clock: Clock | None = None,
    ) -> None:
        self.service = service
        self.pacing = Pacing.from_settings(settings)
        self._auto_bumps = self.pacing.auto_bumps
        self.supervisor = supervisor
        self.clock: Clock = clock or SystemClock()
        self._deadlines: dict[str, datetime] = {}
        self._heap: list[tuple[datetime, str]] = []
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._unwatch: Any = None
        self._last_error: str | None = None

    async def start(self) -> None:
        """Look at every open order once, then follow changes."""
        self._dirty.update(o.id for o in self.service.orders() if o.holds or self._auto_bumps)
        self._unwatch = self.service.watch(self._changed)
        self.supervisor.spawn(TASK, self._run, restart=True)

    async def stop(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
        await self.supervisor.cancel(TASK)

    def health(self) -> dict[str, Any]:
        """Orders with a deadline, the last failed action, the task's state."""
        return {
            "ok": self._last_error is None,
            "scheduled": len(self._deadlines),
            "lastError": self._last_error,
            "task": self.supervisor.state(TASK),
        }

    def deadline(self, order_id: str) -> datetime | None:
        """When the timers will next act on the order, if at all."""
        return self._deadlines.get(order_id)

    def _changed(self, order: Order) -> None:
        # Only an order with holds, or a ticket that may be auto-bumped, can have a deadline.
        if order.holds or self._auto_bumps or order.id in self._deadlines:
            self._dirty.add(order.id)
            self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            now = self.clock.utcnow()
            visit, self._dirty = self._dirty, set()
            while self._heap and self._heap[0][0] <= now:
                at, order_id = heapq.heappop(self._heap)
                if self._deadlines.get(order_id) == at:
                    del self._deadlines[order_id]
                    visit.add(order_id)
            for order_id in visit:
                await self._visit(order_id, now)
            if self._dirty:
                continue
            await self._sleep(now)

    async def _sleep(self, now: datetime) -> None:
        """Until the earliest deadline, or until an order changes."""
        seconds = (self._heap[0][0] - now).total_seconds() if self._heap else None
        await wait_event(self.clock, self._wake, seconds)

    async def _visit(self, order_id: str, now: datetime) -> None:
        order = self.service.get(order_id)
        if order is None:
            self._deadlines.pop(order_id, None)
            return
        due = self.pacing.due(order, now)
        next_at = due.next_at
        try:
            if due.release:
                await self.service.release_due(order_id, now=now, actor=ACTOR)
            for course, endpoint in due.fires:
                await self.service.fire_course(order_id, course, endpoints=[endpoint], actor=ACTOR)
            for endpoint, item_ids in due.bumps.items():
                after = self.pacing.endpoints[endpoint].auto_bump_after or 0
                await self.service.set_status(
                    order_id,
                    OrderStatus.PROCESSED,
                    endpoint=endpoint,
                    item_ids=item_ids,
                    reason=f"auto-bump after {format_duration(after)}",
                    actor=AUTO_BUMP_ACTOR,
                    strict=False,
                )
            self._last_error = None
        except Exception as err:  # a failed store write: try again shortly, never give up
            self._last_error = f"{type(err).__name__}: {err}"
            log.warning("pacing.action_failed", order=order_id, error=self._last_error)
            retry = now + timedelta(seconds=RETRY_AFTER)
            next_at = retry if next_at is None else min(next_at, retry)
        if next_at is not None:
            self._schedule(order_id, next_at)
        else:
            self._deadlines.pop(order_id, None)

    def _schedule(self, order_id: str, at: datetime) -> None:
        if self._deadlines.get(order_id) == at:
            return
        self._deadlines[order_id] = at
        heapq.heappush(self._heap, (at, order_id))
