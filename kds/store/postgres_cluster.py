"""The SQL of several nodes on one PostgreSQL database (used by `kds.cluster`).

Events: `kds_publish()` (see the PostgreSQL migrations) numbers a batch from
`events_seq` under a transaction lock and notifies `kds_events`; nodes read
them back by seq. Locks: session advisory locks on a connection whose
`application_name` names the node, so `pg_locks` says who holds what.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .postgres import ORDERS_CHANNEL, require_asyncpg

#: Notified (by `kds_publish`) when events committed; the payload is the newest seq.
EVENTS_CHANNEL = "kds_events"
#: Events kept in the table beyond the newest (a screen further behind gets a snapshot).
KEEP_EVENTS = 10_000
PRUNE_EVERY = 1000

PUBLISH = "SELECT kds_publish($1, $2, $3, $4, $5)"
#: The events of one site (seqs are shared by all sites: a site sees gaps).
READ = (
    "SELECT seq, node, type, body, endpoints FROM events"
    " WHERE site = $1 AND seq > $2 ORDER BY seq LIMIT $3"
)
HOLDERS = """
SELECT l.classid::bigint, l.objid::bigint, a.application_name
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
"""


async def connect(url: str, application_name: str | None = None) -> Any:
    """A connection of its own (listening and session locks need one that is not pooled)."""
    settings = {} if application_name is None else {"application_name": application_name}
    return await require_asyncpg().connect(url, server_settings=settings)


async def newest_event(conn: Any, site: str) -> int:
    """The seq of the site's newest stored event (0: none)."""
    return int(
        await conn.fetchval("SELECT COALESCE(max(seq), 0) FROM events WHERE site = $1", site)
    )


async def publish_events(
    conn: Any,
    site: str,
    origin: str,
    types: list[str],
    bodies: list[str],
    endpoints: list[str | None],
) -> int:
    """Number, store and notify a batch of events in one round trip; the newest seq."""
    newest = int(await conn.fetchval(PUBLISH, site, origin, types, bodies, endpoints))
    if newest % PRUNE_EVERY < len(types):  # now and then: forget what no screen needs
        await conn.fetchval(
            "WITH gone AS (DELETE FROM events WHERE seq <= $1 RETURNING 1) SELECT count(*) FROM gone",
            newest - KEEP_EVENTS,
        )
    return newest


async def read_events(conn: Any, site: str, after: int, limit: int) -> list[Any]:
    """The site's events after seq `after`: (seq, node, type, body, endpoints) rows."""
    return list(await conn.fetch(READ, site, after, limit))


async def listen(
    conn: Any,
    on_events: Callable[..., None],
    on_orders: Callable[..., None],
    on_lost: Callable[..., None],
) -> None:
    """Call `on_events` when events committed, `on_orders(conn, pid, channel, payload)` when a
    commit changed orders, `on_lost` when the connection goes."""
    await conn.add_listener(EVENTS_CHANNEL, on_events)
    await conn.add_listener(ORDERS_CHANNEL, on_orders)
    conn.add_termination_listener(on_lost)


async def ping(conn: Any) -> None:
    """A round trip: raises when the connection (and with it its locks) is gone."""
    await conn.fetchval("SELECT 1")


async def try_lock(conn: Any, key: int) -> bool:
    """Take the session advisory lock `key` if nobody holds it."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", key))


async def lock_holders(conn: Any) -> dict[tuple[int, int], str]:
    """Held advisory locks: (classid, objid) → the holder's application_name."""
    return {(c, o): app for c, o, app in await conn.fetch(HOLDERS)}
