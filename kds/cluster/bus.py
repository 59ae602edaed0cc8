"""The event bus of a node that shares its PostgreSQL database with other nodes.

Every event, whichever node publishes it, goes through the database: the
publishing node inserts it into `events` (its seq from the `events_seq`
sequence) and sends `NOTIFY kds_events` in the same transaction; every node,
the publisher included, reads new rows by seq when notified and fans them out
to its own screens. So each node's history holds the same events under the
same numbers, and a screen may reconnect to either node with `?since=`. A
node's own events come back with the data it published them with (their
bodies are not parsed again).

The insert takes a transaction-level advisory lock before it draws its seqs,
so events commit in seq order: a node that has read seq N will never see a
smaller seq commit later (no gap it could skip). After a lost connection the
node reconnects and catches up by seq (a second a poll does the same, should
a notification ever be missed).

Before the events of a batch fan out, the orders other nodes changed are read
back into this node's view (`on_changed`): those the events name, and those a
commit's `kds_orders` notification named (sent on COMMIT, so a node that died
before publishing its event still lets the others know). A change whose event
has not come from its node `announce_after` seconds after its notification
(the node died in between) is announced by this node instead (`on_unannounced`
publishes the order as it now is), so screens see it without a snapshot.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from ..bus import Event, EventBus
from ..clock import wait_event
from ..store import postgres_cluster as db
from ..tasks import TaskSupervisor

log = structlog.get_logger(__name__)

#: Orders remembered as read since their last notification (beyond: read again, harmless).
FRESH_LIMIT = 10_000
#: Rows read per catch-up query.
READ_CHUNK = 500


@dataclass(frozen=True)
class _Outgoing:
    type: str
    body: str  # the event's JSON object without type and seq
    endpoints: str | None  # JSON array of endpoint names; None: everyone


class ClusterBus(EventBus):
    """Numbers events by the database's sequence and fans out every node's events."""

    def __init__(
        self,
        url: str,
        origin: str,
        site: str | None = None,
        history: int = 1000,
        *,
        supervisor: TaskSupervisor,
        poll_interval: float = 1.0,
        retry_interval: float = 0.5,
        announce_after: float = 1.0,
    ) -> None:
        super().__init__(store=None, supervisor=supervisor, history=history)  # type: ignore[arg-type]
        self.url = url
        self.origin = origin  # this process, unique: its own events come back too
        self.site = site or ""
        self.poll_interval = poll_interval
        self.retry_interval = retry_interval
        self.announce_after = announce_after
        #: Called with the ids of orders another node changed, before their events fan out.
        self.on_changed: Callable[[set[str]], Awaitable[None]] | None = None
        #: Called with the ids of orders another node changed and never published an event of.
        self.on_unannounced: Callable[[set[str]], None] | None = None
        self._changed: set[str] = set()
        # Order id → (the node that changed it, when its notification came): until its event.
        self._unannounced: dict[str, tuple[str, float]] = {}
        # Orders read since their last change notification (their events need no read).
        self._fresh: set[str] = set()
        # Body → (data, endpoints) of the events this node published, until read back numbered:
        # its own events are not parsed again (and keep their data, as on a single node).
        self._own: dict[str, tuple[dict[str, Any], frozenset[str] | None]] = {}
        self._outgoing: asyncio.Queue[_Outgoing] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._listener: Any = None
        self._writer: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._connected = False
        self._last_error: str | None = None
        self.remote = 0

    async def start(self) -> None:
        """Listen, start after the newest event stored, run the writer and the reader."""
        self._writer = await db.connect(self.url)
        await self._listen()
        self._seq = await db.newest_event(self._writer, self.site)
        self._tasks = [
            self._supervisor.spawn("cluster:bus:write", self._write_loop()),
            self._supervisor.spawn("cluster:bus:read", self._read_loop()),
        ]

    async def stop(self) -> None:
        """Send what is queued (bounded by the caller), then close."""
        if self._tasks:
            await self._outgoing.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for conn in (self._listener, self._writer):
            if conn is not None and not conn.is_closed():
                await conn.close()

    def health(self) -> dict[str, Any]:
        return {
            "ok": self._connected,
            "seq": self._seq,
            "origin": self.origin,
            "site": self.site,
            "subscribers": len(self._subscribers),
            "remoteEvents": self.remote,
            "lastError": self._last_error,
        }

    # ----------------------------------------------------------------- publishing

    def publish(
        self,
        type_: str,
        data: dict[str, Any] | None = None,
        *,
        encoded: dict[str, str] | None = None,
        endpoints: frozenset[str] | None = None,
    ) -> None:  # type: ignore[override]
        """Queue one event for the database; it is fanned out once it comes back numbered."""
        body = json.dumps(data or {}, separators=(",", ":"), ensure_ascii=False)
        if encoded:
            fields = ",".join(f'"{key}":{value}' for key, value in encoded.items())
            body = body[:-1] + ("," if body != "{}" else "") + fields + "}"
        names = None if endpoints is None else json.dumps(sorted(endpoints))
        if len(self._own) > FRESH_LIMIT:  # never read back (a stop): parse the rest instead
            self._own.clear()
        self._own[body] = (data or {}, endpoints)
        self._outgoing.put_nowait(_Outgoing(type_, body, names))

    async def _write_loop(self) -> None:
        """Insert queued events in one transaction per batch, in publish order."""
        while True:
            batch = [await self._outgoing.get()]
            while not self._outgoing.empty():
                batch.append(self._outgoing.get_nowait())
            while True:
                try:
                    await self._insert(batch)
                    break
                except Exception as err:  # the database is away: keep them, retry
                    self._last_error = str(err)
                    log.warning("bus.publish_failed", error=str(err), events=len(batch))
                    await asyncio.sleep(self.retry_interval)
                    await self._reconnect_writer()
            for _ in batch:
                self._outgoing.task_done()

    async def _insert(self, batch: list[_Outgoing]) -> None:
        await db.publish_events(
            self._writer,
            self.site,
            self.origin,
            [e.type for e in batch],
            [e.body for e in batch],
            [e.endpoints for e in batch],
        )

    async def _reconnect_writer(self) -> None:
        if self._writer is not None and not self._writer.is_closed():
            return
        try:
            self._writer = await db.connect(self.url)
        except Exception as err:
            self._last_error = str(err)

    # ----------------------------------------------------------------- receiving

    async def _listen(self) -> None:
        self._listener = await db.connect(self.url)
        await db.listen(self._listener, self._notified, self._order_changed, self._lost)
        self._connected = True
        self._wake.set()  # catch up with what was committed while we were away

    def _notified(self, *args: Any) -> None:
        self._wake.set()

    def _order_changed(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        site, node, *order_ids = payload.split(" ")  # one notification per commit
        if site == self.site and node != self.origin:
            now = self._supervisor.clock.monotonic()
            for order_id in order_ids:
                self._changed.add(order_id)
                self._fresh.discard(order_id)
                self._unannounced.setdefault(order_id, (node, now))
            self._wake.set()

    def _lost(self, *args: Any) -> None:
        self._connected = False
        self._wake.set()

    async def _read_loop(self) -> None:
        """Fan out new events by seq: when notified, after a reconnect, and every poll_interval."""
        while True:
            await wait_event(self._supervisor.clock, self._wake, self.poll_interval)
            self._wake.clear()
            try:
                if not self._connected or self._listener.is_closed():
                    await self._listen()
                await self._catch_up()
                self._last_error = None
            except Exception as err:
                self._connected = False
                self._last_error = str(err)
                log.warning("bus.read_failed", error=str(err))
                await asyncio.sleep(self.retry_interval)

    async def _catch_up(self) -> None:
        """Read new events by seq; refresh the orders other nodes changed; then fan out."""
        while True:
            rows = await db.read_events(self._listener, self.site, self._seq, READ_CHUNK)
            own = self._own
            events = [
                (node, _event(seq, type_, body, endpoints, own.pop(body, None)))
                if node == self.origin
                else (node, _event(seq, type_, body, endpoints))
                for seq, node, type_, body, endpoints in rows
            ]
            notified, self._changed = self._changed, set()
            needed = set()
            for node, event in events:
                order_id = _order_id(event)
                if order_id is not None and self._unannounced.get(order_id, ("",))[0] == node:
                    del self._unannounced[order_id]  # its node announced it
                # An event comes after its commit's notification: if the order was read
                # since that notification, the view has this change already.
                if node != self.origin and order_id is not None and order_id not in self._fresh:
                    needed.add(order_id)
            self.remote += sum(1 for node, _ in events if node != self.origin)
            # Into the view before the screens hear of it: a snapshot taken between the two
            # never misses a change its seq claims. One read for the whole batch.
            await self._refresh(needed, notified - needed)
            for _, event in events:
                self._seq = event.seq
                self._deliver(event)
            # Orders notified whose events are still to come: read ahead, after these events
            # went out (so their screens do not wait for it), before those events arrive.
            await self._refresh(notified - needed)
            if len(rows) < READ_CHUNK:
                self._announce_orphans()
                return

    async def _refresh(self, order_ids: set[str], later: set[str] | None = None) -> None:
        """Read `order_ids` into the view (`later`: to be read after, kept should this fail)."""
        if not order_ids or self.on_changed is None:
            return
        try:
            await self.on_changed(order_ids)
        except Exception:
            self._changed |= order_ids | (later or set())  # read them again next round
            raise
        if len(self._fresh) > FRESH_LIMIT:
            self._fresh.clear()
        self._fresh |= order_ids

    def _announce_orphans(self) -> None:
        """Announce the changes whose node died between its commit and its event."""
        cutoff = self._supervisor.clock.monotonic() - self.announce_after
        orphans = {oid for oid, (_, since) in self._unannounced.items() if since <= cutoff}
        if not orphans:
            return
        for order_id in orphans:
            del self._unannounced[order_id]
        log.warning("bus.unannounced_changes", orders=len(orphans))
        if self.on_unannounced is not None:
            self.on_unannounced(orphans)


def _event(
    seq: int,
    type_: str,
    body: str,
    endpoints: str | None,
    published: tuple[dict[str, Any], frozenset[str] | None] | None = None,
) -> Event:
    """An event as stored, numbered: the same JSON the single-node bus makes. Its data is
    the body parsed, or (`published`: this node's own) the data and endpoints it was
    published with."""
    head = json.dumps({"type": type_, "seq": seq}, separators=(",", ":"), ensure_ascii=False)
    payload = head[:-1] + ("" if body == "{}" else "," + body[1:-1]) + "}"
    if published is not None:
        return Event(seq, type_, published[0], payload.encode(), published[1])
    names = None if endpoints is None else frozenset(json.loads(endpoints))
    return Event(seq, type_, json.loads(body), payload.encode(), names)


def _order_id(event: Event) -> str | None:
    """The order an event is about (None for printer or source events)."""
    order = event.data.get("order")
    if isinstance(order, dict):
        return order.get("id")
    return event.data.get("orderId")
