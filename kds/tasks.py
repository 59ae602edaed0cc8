"""One supervisor owns every background task: named, referenced, crash-logged.

Tasks spawned through it cannot be garbage-collected mid-flight, a crash is
logged with its traceback instead of vanishing into "Task exception was never
retrieved", and `/readyz` can show which tasks are alive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class TaskSupervisor:
    """Spawns named background tasks and cancels them all on stop."""

    name = "tasks"

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._crashed: dict[str, str] = {}

    def spawn(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run `coro` as the task `name` (a name is unique while its task runs)."""
        if name in self._tasks and not self._tasks[name].done():
            coro.close()
            raise RuntimeError(f"task {name!r} is already running")
        task = asyncio.create_task(coro, name=name)
        self._tasks[name] = task
        task.add_done_callback(self._on_done)
        return task

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        name = task.get_name()
        if self._tasks.get(name) is task:
            del self._tasks[name]
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._crashed[name] = repr(exc)
            log.error("task.crashed", task=name, exc_info=exc)

    async def cancel(self, name: str, grace: float = 5.0) -> None:
        """Cancel one task and wait (bounded) for it to finish."""
        task = self._tasks.get(name)
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=grace)

    async def start(self) -> None:
        """Nothing to acquire; present for the Component protocol."""

    async def stop(self, grace: float = 5.0) -> None:
        """Cancel every task and wait up to `grace` seconds for them."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)

    def health(self) -> dict[str, Any]:
        """Running task names and any that crashed."""
        return {
            "ok": not self._crashed,
            "running": sorted(self._tasks),
            "crashed": dict(self._crashed),
        }
