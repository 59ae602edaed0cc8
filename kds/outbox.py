"""The outbox: side effects (prints, write-backs) recorded with their change.

The service writes outbox rows in the same transaction as the state change
they belong to, so a crash between commit and side effect loses nothing: on
start every pending row is handed out again. Consumers (the print spooler,
a POS write-back) subscribe to a `kind`, get entries in id order, call
`attempted()` before they try (so a retry after an unknown outcome is known)
and `complete()` when the side effect is done. A receiver that refuses an entry
for good (a POS answering 403) makes the consumer `refuse()` it: it stays in
the outbox, marked refused, until staff fix the cause and it is `unrefuse()`d.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from .contracts import EFFECT_KIND, Effect, OutboxEntry
from .model import utcnow
from .store import Batch, OrderStore

__all__ = ["Handler", "Outbox", "OutboxEntry"]

log = structlog.get_logger(__name__)

Handler = Callable[[OutboxEntry], None]


class Outbox:
    """Hands out pending side effects to the consumer of their kind."""

    name = "outbox"

    def __init__(self, store: OrderStore) -> None:
        self._store = store
        # (kind, target) → handler; target None handles every target of the kind.
        self._handlers: dict[tuple[str, str | None], Handler] = {}
        self._next_id = 1
        self._unclaimed: list[OutboxEntry] = []
        self.pending_count = 0

    async def start(self) -> None:
        """Load pending entries; they go to their consumers as these subscribe."""
        self._next_id = await self._store.last_outbox_id() + 1
        entries = await self._store.pending_outbox()
        for entry in entries:
            self.pending_count += 1
            self._dispatch(entry)
        if entries:
            log.info("outbox.resumed", pending=len(entries))

    async def stop(self) -> None:
        """Nothing to release: pending rows stay in the store."""

    def health(self) -> dict[str, Any]:
        """Pending entries, and those no consumer has claimed yet (by kind:target)."""
        unclaimed: dict[str, int] = {}
        for entry in self._unclaimed:
            unclaimed[f"{entry.kind}:{entry.target}"] = (
                unclaimed.get(f"{entry.kind}:{entry.target}", 0) + 1
            )
        return {"ok": True, "pending": self.pending_count, "unclaimed": unclaimed}

    def subscribe(self, kind: str, handler: Handler, target: str | None = None) -> None:
        """Hand every entry of `kind` (for `target`, or any target) to `handler`.

        Entries already pending are handed over at once, in id order.
        """
        key = (kind, target)
        if key in self._handlers:
            raise RuntimeError(f"outbox kind {kind!r} (target {target!r}) already has a consumer")
        self._handlers[key] = handler
        waiting, self._unclaimed = self._unclaimed, []
        for entry in waiting:
            self._dispatch(entry)

    def unsubscribe(self, kind: str, target: str | None = None) -> None:
        """Stop handing out entries of `kind` (they stay pending)."""
        self._handlers.pop((kind, target), None)

    def stage(self, batch: Batch, effect: Effect, target: str, order_id: str) -> OutboxEntry:
        """Add an entry to `batch`; hand it out with `published()` after the commit."""
        entry = OutboxEntry(
            self._next_id,
            EFFECT_KIND[type(effect)].value,
            target,
            order_id,
            effect.to_dict(),
            utcnow(),
        )
        self._next_id += 1
        batch.outbox.append(entry)
        return entry

    def published(self, entries: list[OutboxEntry]) -> None:
        """Hand committed entries to their consumers."""
        for entry in entries:
            self.pending_count += 1
            self._dispatch(entry)

    def _dispatch(self, entry: OutboxEntry) -> None:
        handler = self._handlers.get((entry.kind, entry.target)) or self._handlers.get(
            (entry.kind, None)
        )
        if handler is None:
            self._unclaimed.append(entry)
            return
        try:
            handler(entry)
        except Exception:
            log.exception("outbox.handler_failed", kind=entry.kind, entry=entry.id)

    async def attempted(self, entry_id: int, error: str | None = None) -> None:
        """Durably count an attempt (before sending: an unknown outcome is then known)."""
        await self._store.outbox_attempted(entry_id, error)

    async def refuse(self, entry_id: int, error: str) -> None:
        """Durably mark the entry refused: kept pending, handed out again only after `unrefuse()`."""
        await self._store.outbox_refused(entry_id, utcnow(), error)

    async def unrefuse(self, entry_ids: list[int]) -> None:
        """Make refused entries ordinary pending ones again (staff retry them)."""
        await self._store.outbox_unrefused(entry_ids)

    async def complete(self, entry_id: int, error: str | None = None) -> None:
        """Durably mark the entry done (with `error` when it was given up)."""
        await self._store.outbox_done(entry_id, utcnow(), error)
        self.pending_count -= 1
