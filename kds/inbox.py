"""The inbox: raw source events kept before they are processed (beside the outbox).

A source stores what its POS pushed (a webhook body) with a dedupe key before
it answers, then processes it; `done()` marks it processed. What failed to
translate stays in the store (bounded retention) to be replayed after a fix.
"""

from __future__ import annotations

from .locks import KeyedLocks
from .model import utcnow
from .store import ConstraintViolation, InboxEntry, OrderStore

__all__ = ["Inbox", "InboxEntry"]


class Inbox:
    """Durable, deduplicated raw events per source."""

    def __init__(self, store: OrderStore) -> None:
        self._store = store
        self._locks = KeyedLocks()
        self._next_id = 1

    async def load(self) -> None:
        """Continue numbering after the last stored event."""
        self._next_id = await self._store.last_inbox_id() + 1

    async def receive(self, source: str, dedupe_key: str, payload: bytes) -> int | None:
        """Durably keep a raw source event; None when its key was seen before."""
        async with self._locks.hold((source, dedupe_key)):
            if await self._store.inbox_has(source, dedupe_key):
                await self._store.barrier()
                return None
            inbox_id, self._next_id = self._next_id, self._next_id + 1
            try:
                await self._store.add_inbox(
                    InboxEntry(inbox_id, source, dedupe_key, payload, utcnow())
                )
            except ConstraintViolation:
                # Stored meanwhile by someone the lock does not cover: still a duplicate.
                if await self._store.inbox_has(source, dedupe_key):
                    return None
                raise
            return inbox_id

    async def done(self, inbox_id: int, error: str | None = None) -> None:
        """Mark a raw event processed (with the reason when it could not be used)."""
        await self._store.inbox_done(inbox_id, utcnow(), error)

    async def pending(self, source: str) -> list[InboxEntry]:
        """Raw events of `source` not yet processed, oldest first."""
        return await self._store.pending_inbox(source)
