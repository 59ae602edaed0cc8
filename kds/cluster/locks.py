"""Exactly one node drives each printer set and each POS source: PostgreSQL advisory locks.

A node wants a lock per resource (its site's printers, each polling source,
the archiver). `LockHolder` keeps one connection and tries, every
`retry_interval`, the session advisory locks it does not hold yet
(`pg_try_advisory_lock`); the component behind a lock starts once it is held
and stops the moment the connection is lost. A node that dies loses its
connection, so PostgreSQL frees its locks at once and another node takes over
within a retry interval — carrying on from the outbox, where every attempt was
counted (a ticket that may have printed comes out marked REPRINT).

Who holds what is PostgreSQL's own record: `pg_locks` joined with
`pg_stat_activity`, whose `application_name` is `kds:<node>` — no table of
ours that a dead node could leave stale.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from ..clock import wait_event
from ..store import postgres_cluster as db
from ..tasks import TaskSupervisor

log = structlog.get_logger(__name__)

APPLICATION_PREFIX = "kds:"


def lock_key(site: str | None, resource: str) -> int:
    """A stable signed 64-bit advisory lock key for `resource` at `site`."""
    digest = hashlib.blake2b(f"kds/{site or ''}/{resource}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _halves(key: int) -> tuple[int, int]:
    """The (classid, objid) pg_locks shows for a bigint advisory lock key."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


@dataclass
class _Wanted:
    resource: str
    key: int
    acquired: Callable[[], Awaitable[None]]
    lost: Callable[[], Awaitable[None]]
    held: bool = False


class LockHolder:
    """Holds this node's advisory locks on one connection; starts and stops what they guard."""

    name = "locks"

    def __init__(
        self,
        url: str,
        node: str,
        site: str | None = None,
        *,
        supervisor: TaskSupervisor,
        retry_interval: float = 1.0,
    ) -> None:
        self._supervisor = supervisor
        self.url = url
        self.node = node
        self.site = site
        self.retry_interval = retry_interval
        self._wanted: dict[str, _Wanted] = {}
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._last_error: str | None = None
        self._holders: dict[str, str | None] = {}

    def want(
        self,
        resource: str,
        acquired: Callable[[], Awaitable[None]],
        lost: Callable[[], Awaitable[None]],
    ) -> None:
        """Try to hold `resource`; call `acquired()` once held and `lost()` when it is not."""
        self._wanted[resource] = _Wanted(resource, lock_key(self.site, resource), acquired, lost)

    def holds(self, resource: str) -> bool:
        """Whether this node holds `resource` now."""
        wanted = self._wanted.get(resource)
        return wanted is not None and wanted.held

    async def start(self) -> None:
        """Try the locks now (a node that starts alone drives everything at once), then keep trying."""
        await self._round()
        self._task = self._supervisor.spawn("cluster:locks", self._run())

    async def stop(self) -> None:
        """Stop what the locks guard, then let the locks go (closing the connection)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._lose_all()
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()

    def health(self) -> dict[str, Any]:
        return {
            "ok": self._conn is not None and not self._conn.is_closed(),
            "node": self.node,
            "site": self.site,
            "holds": sorted(w.resource for w in self._wanted.values() if w.held),
            "holders": dict(self._holders),
            "lastError": self._last_error,
        }

    def holder(self, resource: str) -> str | None:
        """The node that held `resource` at the last round (None: nobody, or not known)."""
        return self._holders.get(resource)

    async def _read_holders(self) -> None:
        owned: dict[tuple[int, int], str] = {}
        for key, application in (await db.lock_holders(self._conn)).items():
            owned[key] = application.removeprefix(APPLICATION_PREFIX)
        self._holders = {w.resource: owned.get(_halves(w.key)) for w in self._wanted.values()}

    async def _run(self) -> None:
        while True:
            await wait_event(self._supervisor.clock, self._wake, self.retry_interval)
            self._wake.clear()
            await self._round()

    async def _round(self) -> None:
        """Check the connection (its loss loses every lock), then try the locks not held."""
        try:
            if self._conn is None or self._conn.is_closed():
                await self._lose_all()
                self._conn = await db.connect(self.url, APPLICATION_PREFIX + self.node)
                self._conn.add_termination_listener(lambda *_: self._wake.set())
            else:
                await db.ping(self._conn)
            for wanted in self._wanted.values():
                if not wanted.held and await db.try_lock(self._conn, wanted.key):
                    wanted.held = True
                    # Say so at once: the last round's holder (a dead node) must not show meanwhile.
                    self._holders[wanted.resource] = self.node
                    log.info("lock.acquired", resource=wanted.resource, node=self.node)
                    await wanted.acquired()
            await self._read_holders()
            self._last_error = None
        except Exception as err:
            self._last_error = str(err)
            log.warning("lock.connection_failed", error=str(err), node=self.node)
            if self._conn is not None and not self._conn.is_closed():
                self._conn.terminate()
            self._conn = None
            await self._lose_all()

    async def _lose_all(self) -> None:
        self._holders = {}
        for wanted in reversed(self._wanted.values()):
            if wanted.held:
                wanted.held = False
                log.warning("lock.lost", resource=wanted.resource, node=self.node)
                try:
                    await wanted.lost()
                except Exception:
                    log.exception("lock.stop_failed", resource=wanted.resource)


class Guarded:
    """A component that runs only on the node holding `resource` (a standby otherwise)."""

    def __init__(self, component: Any, resource: str, locks: LockHolder) -> None:
        self.component = component
        self.resource = resource
        self.name = getattr(component, "name", resource)
        self._running = False
        locks.want(resource, self._acquired, self._lost)
        self._locks = locks

    async def _acquired(self) -> None:
        await self.component.start()
        self._running = True

    async def _lost(self) -> None:
        if self._running:
            self._running = False
            await self.component.stop()

    async def start(self) -> None:
        """Nothing until the lock is held (the lock holder starts it)."""

    async def stop(self) -> None:
        await self._lost()

    def health(self) -> dict[str, Any]:
        if self._running and hasattr(self.component, "health"):
            health = self.component.health()
            return {**health, "lock": self.resource, "held": True, "heldBy": self._locks.node}
        holder = self._locks.holder(self.resource)
        return {"ok": True, "lock": self.resource, "held": False, "heldBy": holder}
