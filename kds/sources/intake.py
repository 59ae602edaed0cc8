"""The inbox worker every pushed source shares: store raw, then process, retry with backoff.

A POS event (a webhook body) is stored in the durable inbox before it is
acknowledged, then handed to the source's `process(inbox_id, body)` by one
worker task, in arrival order. A failure (the store is down, a bug) is retried
after 1, 2, 3, 4 s; after `attempts` failures the entry is closed with the
reason (and `gave_up` tells the source). Entries still pending from before a
stop are processed again on start, so nothing acknowledged is lost. The source closes each entry itself
(`RawInbox.done`) once it has done what the event asked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import structlog

from ..clock import Cancellable
from ..errors import KdsError
from .base import RawEvent, SourceContext

log = structlog.get_logger(__name__)

Process = Callable[[int, bytes], Awaitable[None]]


class InboxWorker:
    """Keeps one source's raw events and processes them one at a time, in order."""

    def __init__(
        self,
        source: str,
        ctx: SourceContext,
        process: Process,
        *,
        attempts: int = 5,
        lock: asyncio.Lock | None = None,
        after: Callable[[], Awaitable[None]] | None = None,
        gave_up: Callable[[int, Exception], None] | None = None,
    ) -> None:
        self.source = source
        self._ctx = ctx
        self._process = process
        self._attempts_allowed = attempts
        self._lock = lock or asyncio.Lock()
        self._after = after
        self._gave_up = gave_up
        self._queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self._queued: set[int] = set()  # outstanding: queued, running or waiting for a retry
        self._attempts: dict[int, int] = {}
        self._retries: dict[int, Cancellable] = {}

    @property
    def task_name(self) -> str:
        """The supervisor's name of the worker task."""
        return f"source:{self.source}:events"

    @property
    def queued(self) -> int:
        """Events waiting for the worker."""
        return self._queue.qsize()

    @property
    def busy(self) -> bool:
        """True while an event is queued, being processed or waiting for a retry."""
        return bool(self._queue.qsize() or self._queued)

    async def start(self) -> Sequence[RawEvent]:
        """Queue the events left pending before the last stop, start the worker; those events."""
        pending = await self._ctx.inbox.pending(self.source)
        for entry in pending:
            self.enqueue(entry.id, entry.payload)
        self._ctx.supervisor.spawn(self.task_name, self._run())
        return pending

    async def stop(self) -> None:
        """Stop the worker; unprocessed events stay in the inbox for the next start."""
        for handle in self._retries.values():
            handle.cancel()
        self._retries.clear()
        await self._ctx.supervisor.cancel(self.task_name)

    async def receive(self, dedupe_key: str, body: bytes) -> int | None:
        """Store a raw event durably and queue it; None (nothing queued) when it is a repeat."""
        inbox_id = await self._ctx.inbox.receive(self.source, dedupe_key, body)
        if inbox_id is not None:
            self.enqueue(inbox_id, body)
        return inbox_id

    def enqueue(self, inbox_id: int, body: bytes) -> None:
        """Queue a stored event (once, however often it is announced)."""
        if inbox_id not in self._queued:
            self._queued.add(inbox_id)
            self._queue.put_nowait((inbox_id, body))

    async def _run(self) -> None:
        while True:
            inbox_id, body = await self._queue.get()
            retrying = False
            try:
                async with self._lock:
                    await self._process(inbox_id, body)
            except Exception as err:
                retrying = await self._failed(inbox_id, body, err)
            else:
                self._attempts.pop(inbox_id, None)
            finally:
                if not retrying:
                    self._queued.discard(inbox_id)  # outstanding until processed or given up
                if self._after is not None:
                    await self._after()

    async def _failed(self, inbox_id: int, body: bytes, err: Exception) -> bool:
        """Retry an event whose processing failed; True when a retry is scheduled."""
        attempts = self._attempts[inbox_id] = self._attempts.get(inbox_id, 0) + 1
        log.error(
            "source.event_failed",
            source=self.source,
            inbox_id=inbox_id,
            attempt=attempts,
            exc_info=err,
        )
        if attempts < self._attempts_allowed:
            self._retries[inbox_id] = self._ctx.clock.call_later(
                attempts, lambda: self._requeue(inbox_id, body)
            )
            return True
        self._attempts.pop(inbox_id, None)
        try:
            await self._ctx.inbox.done(inbox_id, error=f"failed {attempts} times: {err}")
        except KdsError:
            pass  # still pending in the inbox: processed again on the next start
        if self._gave_up is not None:
            self._gave_up(inbox_id, err)
        return False

    def _requeue(self, inbox_id: int, body: bytes) -> None:
        self._retries.pop(inbox_id, None)
        self._queue.put_nowait((inbox_id, body))  # still in `_queued` since it failed
