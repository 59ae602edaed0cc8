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

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from .model import utcnow
from .store import Store, Write

log = structlog.get_logger(__name__)

INSERT_SQL = (
    "INSERT INTO outbox (id, kind, target, order_id, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)"
)


@dataclass
class OutboxEntry:
    """One pending side effect."""

    id: int
    kind: str
    target: str
    order_id: str | None
    payload: dict[str, Any]
    created_at: datetime
    attempts: int = 0
    #: Why the receiver refused it (kept, not re-sent until retried); None while it is pending.
    refused: str | None = None


Handler = Callable[[OutboxEntry], None]


class Outbox:
    """Hands out pending side effects to the consumer of their kind."""

    name = "outbox"

    def __init__(self, store: Store) -> None:
        self._store = store
        # (kind, target) → handler; target None handles every target of the kind.
        self._handlers: dict[tuple[str, str | None], Handler] = {}
        self._next_id = 1
        self._unclaimed: list[OutboxEntry] = []
        self.pending_count = 0

    async def start(self) -> None:
        """Load pending entries; they go to their consumers as these subscribe."""
        row = await self._store.fetchone("SELECT COALESCE(MAX(id), 0) AS m FROM outbox")
        self._next_id = (row["m"] if row else 0) + 1
        rows = await self._store.fetchall(
            "SELECT id, kind, target, order_id, payload, created_at, attempts, last_error, refused_at FROM outbox"
            " WHERE done_at IS NULL ORDER BY id"
        )
        for r in rows:
            entry = OutboxEntry(
                r["id"],
                r["kind"],
                r["target"],
                r["order_id"],
                json.loads(r["payload"]),
                datetime.fromisoformat(r["created_at"]),
                r["attempts"],
                (r["last_error"] or "refused") if r["refused_at"] else None,
            )
            self.pending_count += 1
            self._dispatch(entry)
        if rows:
            log.info("outbox.resumed", pending=len(rows))

    async def stop(self) -> None:
        """Nothing to release: pending rows stay in the store."""

    def health(self) -> dict[str, Any]:
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

    def stage(
        self, write: Write, kind: str, target: str, order_id: str | None, payload: dict[str, Any]
    ) -> OutboxEntry:
        """Add an entry to `write`; hand it out with `published()` after the commit."""
        entry = OutboxEntry(self._next_id, kind, target, order_id, payload, utcnow())
        self._next_id += 1
        write.add(
            INSERT_SQL,
            (
                entry.id,
                kind,
                target,
                order_id,
                json.dumps(payload, ensure_ascii=False),
                entry.created_at.isoformat(),
            ),
        )
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
        write = Write()
        write.add(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
            (error, entry_id),
        )
        await self._store.write(write)

    async def refuse(self, entry_id: int, error: str) -> None:
        """Durably mark the entry refused: kept pending, handed out again only after `unrefuse()`."""
        write = Write()
        write.add(
            "UPDATE outbox SET refused_at = ?, last_error = ? WHERE id = ?",
            (utcnow().isoformat(), error, entry_id),
        )
        await self._store.write(write)

    async def unrefuse(self, entry_ids: list[int]) -> None:
        """Make refused entries ordinary pending ones again (staff retry them)."""
        write = Write()
        write.add("UPDATE outbox SET refused_at = NULL WHERE id = ?", *[(i,) for i in entry_ids])
        await self._store.write(write)

    async def complete(self, entry_id: int, error: str | None = None) -> None:
        """Durably mark the entry done (with `error` when it was given up)."""
        write = Write()
        write.add(
            "UPDATE outbox SET done_at = ?, last_error = COALESCE(?, last_error) WHERE id = ?",
            (utcnow().isoformat(), error, entry_id),
        )
        await self._store.write(write)
        self.pending_count -= 1
