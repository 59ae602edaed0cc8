"""One supervisor owns every background task: named, referenced, crash-logged, restarted.

Tasks spawned through it cannot be garbage-collected mid-flight, a crash is
logged with its traceback instead of vanishing into "Task exception was never
retrieved", and `/readyz` shows each task's state: `running`, `restarting`
(it crashed and is started again after a backoff, for tasks spawned with
`restart=True`) or `failed` (it crashed and stays down), with the last error.

Nothing here waits with a timeout of its own: `cancel()` and `stop()` wait for
the tasks to finish, and the daemon bounds the whole shutdown with one deadline
(see `kds.app`). Per-connection work (a websocket's sender) lives in an
`asyncio.TaskGroup` of its request handler instead: it ends with the handler.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog

from .clock import Clock, SystemClock

log = structlog.get_logger(__name__)

Work = Coroutine[Any, Any, Any]

#: Restart backoff of a crashing task: doubles from the first to the cap.
RESTART_FIRST = 1.0
RESTART_MAX = 60.0
#: Tasks listed by name on /readyz (per-order write-back retries can be many).
LISTED = 50
#: What /readyz and /metrics say of a task.
STATES = ("running", "restarting", "failed")


@dataclass
class _Supervised:
    """One named task and what /readyz says about it."""

    name: str
    state: str = "running"
    restarts: int = 0
    last_error: str | None = None
    task: asyncio.Task[Any] = field(init=False)

    def report(self) -> dict[str, Any]:
        report: dict[str, Any] = {"state": self.state}
        if self.restarts:
            report["restarts"] = self.restarts
        if self.last_error is not None:
            report["lastError"] = self.last_error
        return report


class TaskSupervisor:
    """Spawns named background tasks, restarts the ones asked for, cancels them all on stop."""

    name = "tasks"

    def __init__(self, clock: Clock | None = None) -> None:
        #: The restart backoff waits on this clock.
        self.clock: Clock = clock or SystemClock()
        self._tasks: dict[str, _Supervised] = {}

    def spawn(
        self, name: str, work: Work | Callable[[], Work], *, restart: bool = False
    ) -> asyncio.Task[Any]:
        """Run `work` (a coroutine, or a function making one) as the task `name`.

        A name is unique while its task runs. With `restart=True`, `work` must be
        a function: when its coroutine crashes it is called again after a backoff.
        """
        current = self._tasks.get(name)
        if current is not None and not current.task.done():
            if asyncio.iscoroutine(work):
                work.close()
            raise RuntimeError(f"task {name!r} is already running")
        record = _Supervised(name)
        if restart:
            if asyncio.iscoroutine(work):
                work.close()
                raise TypeError("restart=True needs a function that makes the coroutine")
            coro = self._run_restarting(record, work)
        else:
            coro = work if asyncio.iscoroutine(work) else work()
        record.task = asyncio.create_task(coro, name=name)
        self._tasks[name] = record
        record.task.add_done_callback(partial(self._on_done, record))
        return record.task

    async def _run_restarting(self, record: _Supervised, make: Callable[[], Work]) -> None:
        delay = RESTART_FIRST
        while True:
            try:
                await make()
                return
            except Exception as err:
                record.restarts += 1
                record.last_error = repr(err)
                record.state = "restarting"
                log.error("task.crashed", task=record.name, restart_in=delay, exc_info=err)
            await self.clock.sleep(delay)
            delay = min(delay * 2, RESTART_MAX)
            record.state = "running"

    def _on_done(self, record: _Supervised, task: asyncio.Task[Any]) -> None:
        if self._tasks.get(record.name) is not record:
            return  # replaced by a newer task of the same name
        if task.cancelled() or task.exception() is None:
            del self._tasks[record.name]
            return
        exc = task.exception()
        record.state = "failed"
        record.last_error = repr(exc)
        log.error("task.crashed", task=record.name, exc_info=exc)

    def state(self, name: str) -> dict[str, Any] | None:
        """The state of task `name` (None when it is not running and did not fail)."""
        record = self._tasks.get(name)
        return record.report() if record is not None else None

    async def cancel(self, name: str) -> None:
        """Cancel one task and wait for it to finish (the caller's deadline bounds the wait)."""
        record = self._tasks.get(name)
        if record is not None and not record.task.done():
            record.task.cancel()
            await asyncio.wait({record.task})

    async def start(self) -> None:
        """Nothing to acquire; present for the Component protocol."""

    async def stop(self) -> None:
        """Cancel every task still running and wait for them (bounded by the daemon's deadline)."""
        tasks = [r.task for r in self._tasks.values() if not r.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def counts(self) -> dict[str, int]:
        """How many tasks are in each state (for /metrics)."""
        counts = dict.fromkeys(STATES, 0)
        for record in self._tasks.values():
            counts[record.state] += 1
        return counts

    def health(self) -> dict[str, Any]:
        """ok while no task failed or waits to restart; each task's state by name."""
        records = sorted(self._tasks.values(), key=lambda r: (r.state == "running", r.name))
        report: dict[str, Any] = {
            "ok": all(r.state == "running" for r in records),
            "running": sum(1 for r in records if r.state == "running"),
            "tasks": {r.name: r.report() for r in records[:LISTED]},
        }
        if len(records) > LISTED:
            report["notListed"] = len(records) - LISTED
        troubled = [r for r in records if r.state != "running"]
        if troubled:
            report["reason"] = f"{troubled[0].name} {troubled[0].state}: {troubled[0].last_error}"
        return report
